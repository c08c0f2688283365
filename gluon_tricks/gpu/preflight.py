"""Which GPUs the installed MXNet can drive, known before a GPU run writes anything.

Each GPU's name, compute capability and driver come from ``nvidia-smi --query-gpu=name,
compute_cap,driver_version --format=csv,noheader``, or, where nvidia-smi is missing or too old
to know ``compute_cap``, from the driver's CUDA library (libcuda.so.1, through ctypes; its
device attributes are numbered alike in every CUDA release, unlike the layout of the
runtime's cudaDeviceProp). The architectures the installed libmxnet.so was compiled for
come from its ``.nv_fatbin`` (fatbin.py), not from a list of ours. NVIDIA's rules decide
(Hopper Compatibility Guide, "Application Compatibility on Hopper Architecture"): SASS for
sm_XY runs on devices of the same major version and a minor version of Y or more (sm_86
runs on 8.9, not on 9.0); PTX for compute_XY is compiled by the driver, when the program
loads, for any device of capability X.Y or more.

A library runs on a device only if each of its fatbin containers (one per compiled source
file) holds a kernel for it; the union over containers is not enough.

GPU ids are MXNet's (``--gpus``, CUDA's numbering): with CUDA_VISIBLE_DEVICES a list of
integers or GPU UUIDs (``GPU-8f6c...``, or a unique prefix of one, as nvidia-smi -L prints
them), id i is the GPU CUDA_VISIBLE_DEVICES[i] names. Otherwise they are taken as
nvidia-smi's indices, which is CUDA's order unless a host mixes GPU models (CUDA then puts
the fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, nvidia-smi's order).

The driver is judged too. MXNet fuses pointwise operators on the GPU (MXNET_USE_FUSION,
on by default; src/imperative/cached_op.h reads it when a graph is built): it compiles them
to PTX with NVRTC (``--gpu-architecture=compute_XY``, src/operator/fusion/fused_op.cu) and
loads the PTX with ``cuModuleLoadData``, a fatal CUDA_DRIVER_CALL. The pip NVRTC 11.8 writes
PTX ISA 7.8, which only drivers of CUDA 11.8 or later (520.61.05) can load: on an older
driver the preflight sets MXNET_USE_FUSION=0 and says so. DALI 1.35's CUDA 12 build needs a
CUDA 12.0 driver (525.60.13) or later: ``data.backend: dali`` on an older one is refused.
"""
import ctypes
import importlib.metadata
import logging
import os
import shutil
import subprocess
from typing import NamedTuple

from ..errors import RunError
from .cuda_libs import find_libmxnet
from .fatbin import NO_KERNELS, Fatbin, read_fatbin

log = logging.getLogger(__name__)

SMI_FIELDS = "name,compute_cap,driver_version"
SMI_TIMEOUT_S = 30
CUDA_SUCCESS, CUDA_ERROR_NO_DEVICE = 0, 100
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
CONTAINER = "NVIDIA's NGC MXNet container (24.06: MXNet 1.9.1, CUDA 12.4, for H100)"
# the oldest Linux driver of a CUDA release (CUDA toolkit release notes, "CUDA Toolkit and
# Corresponding Driver Versions"), and the CUDA version its driver library reports
FUSION_DRIVER = ((520, 61, 5), (11, 8))  # NVRTC 11.8's PTX (nvidia-cuda-nvrtc-cu11 11.8)
DALI_DRIVER = ((525, 60, 13), (12, 0))  # nvidia-dali-cuda120: CUDA 12.0
NVRTC_WHEEL = "nvidia-cuda-nvrtc-cu11"


class GpuError(RunError):
    """A GPU run cannot start: a GPU the installed MXNet cannot drive, or no such GPU."""


class Gpu(NamedTuple):
    """A GPU of this host: ``name`` (e.g. 'NVIDIA H200'), ``capability`` (major, minor) or
    None when nothing could tell, ``driver`` (the driver's version as nvidia-smi prints it,
    or the CUDA version the driver library reports, e.g. 'CUDA 12.4'; None if unknown)."""
    name: str
    capability: object
    driver: object


class GpuVerdict(NamedTuple):
    """Whether MXNet can drive GPU ``gpu_id``: ``gpu`` (Gpu, None if there is no such GPU),
    ``supported`` (True, False, or None when its capability is unknown), ``reason`` (a few
    words: which kernels run on it, or why none does) and ``kernels`` (what libmxnet.so holds,
    Fatbin.describe())."""
    gpu_id: int
    gpu: object
    supported: object
    reason: str
    kernels: str

    def message(self):
        """One line for a user: the GPU, its capability, what the wheel holds, the way out."""
        if self.gpu is None:
            return f"--gpus {self.gpu_id}: {self.reason}"
        head = (f"GPU {self.gpu_id} ({self.gpu.name}, compute capability "
                f"{capability_text(self.gpu.capability)})")
        if self.supported is None:
            return f"{head}: {self.reason}; the installed MXNet holds {self.kernels}"
        if self.supported:
            return f"{head}: the installed MXNet runs on it ({self.reason})"
        if self.kernels.startswith(NO_KERNELS):
            return (f"{head}: the installed MXNet has {self.kernels}: run `make gpu-install` "
                    "(docs/gpu.md)")
        return (f"{head} cannot run the installed MXNet wheel, which holds {self.kernels} "
                f"({self.reason}): {way_out(self.gpu.capability)} (docs/gpu.md)")


def capability_text(capability):
    """(9, 0) -> '9.0'; None -> 'unknown'."""
    return "unknown" if capability is None else f"{capability[0]}.{capability[1]}"


def runs_on(arch, capability):
    """True if fatbin Arch ``arch`` runs on a device of ``capability`` (major, minor), by
    NVIDIA's binary-compatibility rules (module docstring)."""
    if arch.ptx:
        return tuple(capability) >= arch.capability
    return capability[0] == arch.capability[0] and capability[1] >= arch.capability[1]


def way_out(capability):
    """What to do for a GPU of ``capability`` that no pip wheel of MXNet 1.9.1 drives."""
    arch = f"{capability[0]}.{capability[1]}+PTX"
    if capability >= (10, 0):
        return ("no MXNet wheel or NGC MXNet container is documented for it: a source build "
                f"with MXNET_CUDA_ARCH including {arch}, on a CUDA that supports this GPU, is "
                "the only route, and untested")
    if capability >= (6, 0):
        return f"use {CONTAINER} or build MXNet from source with MXNET_CUDA_ARCH including {arch}"
    return ("NGC's MXNet containers need compute capability 6.0 or later: build MXNet from "
            f"source with MXNET_CUDA_ARCH including {arch}")


def _parse_capability(text):
    """'8.6' -> (8, 6); anything else ('[N/A]') -> None."""
    try:
        major, minor = text.strip().split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def query_smi(smi="nvidia-smi"):
    """The GPUs nvidia-smi lists, in its order: a list of Gpu (capability None when this
    nvidia-smi has no compute_cap field); [] when it runs but lists none; None when there is
    no nvidia-smi or it fails."""
    exe = shutil.which(smi)
    if exe is None:
        return None

    def run(fields):
        try:
            done = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=SMI_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.splitlines() if done.returncode == 0 else None

    rows = run(SMI_FIELDS)
    if rows is not None:
        gpus = []
        for row in rows:
            if row.count(",") >= 2:
                name, cap, driver = [v.strip() for v in row.rsplit(",", 2)]
                gpus.append(Gpu(name, _parse_capability(cap), driver))
        return gpus
    rows = run("name,driver_version")  # a driver too old for compute_cap
    if rows is None:
        return None
    gpus = []
    for row in rows:
        if row.count(",") >= 1:
            name, driver = [v.strip() for v in row.rsplit(",", 1)]
            gpus.append(Gpu(name, None, driver))
    return gpus


def query_driver(library="libcuda.so.1"):
    """The GPUs the CUDA driver library (path or name ``library``) reports, in CUDA's order
    (which already follows CUDA_VISIBLE_DEVICES): a list of Gpu; [] when it reports no
    device; None when the library cannot be loaded or fails otherwise."""
    try:
        cuda = ctypes.CDLL(library)
    except OSError:
        return None
    status = cuda.cuInit(0)
    if status == CUDA_ERROR_NO_DEVICE:
        return []
    count, version = ctypes.c_int(), ctypes.c_int()
    if status != CUDA_SUCCESS or cuda.cuDeviceGetCount(ctypes.byref(count)) != CUDA_SUCCESS:
        return None
    driver = None
    if cuda.cuDriverGetVersion(ctypes.byref(version)) == CUDA_SUCCESS:
        driver = f"CUDA {version.value // 1000}.{version.value % 1000 // 10}"
    gpus = []
    for i in range(count.value):
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        if (cuda.cuDeviceGet(ctypes.byref(device), i) != CUDA_SUCCESS
                or cuda.cuDeviceGetName(name, len(name), device) != CUDA_SUCCESS):
            return None
        ok = all(cuda.cuDeviceGetAttribute(ctypes.byref(value), attribute, device)
                 == CUDA_SUCCESS
                 for value, attribute in ((major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                                          (minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)))
        gpus.append(Gpu(name.value.decode(errors="replace"),
                        (major.value, minor.value) if ok else None, driver))
    return gpus


def visible_order(gpus, uuids=()):
    """``gpus`` (nvidia-smi's order) as CUDA numbers them under CUDA_VISIBLE_DEVICES, whose
    entries are indices or GPU UUIDs (a unique prefix of one of ``uuids``, nvidia-smi's
    order); like CUDA, the list ends at its first entry that names no GPU. Unchanged when
    the variable is unset."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    order = []
    for entry in (v.strip() for v in visible.split(",")):
        matches = [i for i, u in enumerate(uuids) if u.startswith(entry)] if entry else []
        if entry.isdigit() and int(entry) < len(gpus):
            order.append(gpus[int(entry)])
        elif entry.startswith(("GPU-", "MIG-")) and len(matches) == 1 and matches[0] < len(gpus):
            order.append(gpus[matches[0]])
        else:
            break
    return order


def query_uuids(smi="nvidia-smi"):
    """The UUIDs nvidia-smi lists (``GPU-...``), in its order; [] when it cannot tell."""
    exe = shutil.which(smi)
    if exe is None:
        return []
    try:
        done = subprocess.run([exe, "--query-gpu=uuid", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = [r.strip() for r in done.stdout.splitlines()] if done.returncode == 0 else []
    return [r for r in rows if r.startswith("GPU-")]


def visible_uuids(smi):
    """query_uuids(smi) when CUDA_VISIBLE_DEVICES names a GPU by UUID, else () (no call)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return query_uuids(smi) if any(v.strip().startswith(("GPU-", "MIG-"))
                                   for v in visible.split(",")) else ()


def list_gpus(smi="nvidia-smi", cuda_driver="libcuda.so.1"):
    """The GPUs of this host in MXNet's numbering (a list of Gpu, [] when none is known):
    nvidia-smi's, re-ordered by CUDA_VISIBLE_DEVICES; the driver library's (``cuda_driver``;
    None: do not ask it) when nvidia-smi is missing or gives no capability."""
    gpus = query_smi(smi)
    if gpus is not None and all(g.capability is not None for g in gpus):
        return visible_order(gpus, visible_uuids(smi))
    from_driver = query_driver(cuda_driver) if cuda_driver else None
    if from_driver is not None:
        if gpus:  # keep nvidia-smi's driver release, which names the driver better
            from_driver = [g._replace(driver=gpus[0].driver) for g in from_driver]
        return from_driver
    return visible_order(gpus or [], visible_uuids(smi))


def check_gpus(gpu_ids=None, smi="nvidia-smi", library=None, cuda_driver="libcuda.so.1"):
    """A GpuVerdict for each id of ``gpu_ids`` (ints, MXNet's GPU ids; None: every GPU of
    the host; empty: none, and nothing is asked): GPUs from list_gpus(smi, cuda_driver),
    kernels from the ``.nv_fatbin`` of ``library`` (default: the libmxnet.so ``import mxnet``
    will load; mxnet is not imported)."""
    if gpu_ids is not None and not len(gpu_ids):
        return []
    library = library or find_libmxnet()
    fatbin = read_fatbin(library) if library else Fatbin((), 0, 0, 0)
    kernels = fatbin.describe() if library else NO_KERNELS + " (MXNet is not installed)"
    gpus = list_gpus(smi, cuda_driver)
    verdicts = []
    for gpu_id in range(len(gpus)) if gpu_ids is None else gpu_ids:
        if not gpus:
            verdicts.append(GpuVerdict(gpu_id, None, False, "no NVIDIA GPU is known here "
                                       "(no nvidia-smi lists one, no CUDA driver reports one); "
                                       "leave --gpus out to run on the CPU", kernels))
            continue
        if not 0 <= gpu_id < len(gpus):
            under = (f" under CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}"
                     if "CUDA_VISIBLE_DEVICES" in os.environ else "")
            verdicts.append(GpuVerdict(gpu_id, None, False, f"no GPU {gpu_id}: {len(gpus)} "
                                       f"here{under} (ids 0..{len(gpus) - 1})", kernels))
            continue
        gpu = gpus[gpu_id]
        if gpu.capability is None:
            verdicts.append(GpuVerdict(gpu_id, gpu, None, "its compute capability cannot be "
                                       "told (this nvidia-smi has no compute_cap field and "
                                       "libcuda.so.1 did not answer)", kernels))
            continue
        drivers = [a for a in fatbin.archs if runs_on(a, gpu.capability)]
        cap = capability_text(gpu.capability)
        lacking = sum(count for archs, count in fatbin.container_archs
                      if not any(runs_on(a, gpu.capability) for a in archs))
        if drivers and lacking:
            reason = (f"{lacking} of its {fatbin.containers} fatbin containers (one per "
                      f"source file) have no kernel for {cap}")
            drivers = []
        elif drivers:
            best = max(drivers, key=lambda a: (not a.ptx, a.capability))
            reason = f"{best}{' PTX, compiled by the driver' if best.ptx else ' SASS'}"
        else:
            major = gpu.capability[0]
            higher = any(not a.ptx and a.capability[0] == major for a in fatbin.archs)
            ptx = any(a.ptx for a in fatbin.archs)
            reason = (f"no SASS for {major}.x{f' up to {cap}' if higher else ''}, "
                      f"no PTX{f' up to {cap}' if ptx else ''}")
        verdicts.append(GpuVerdict(gpu_id, gpu, bool(drivers), reason, kernels))
    return verdicts


def known_older(driver, minimum):
    """True if ``driver`` (Gpu.driver: '470.82.01', or 'CUDA 11.4' from the driver library)
    is older than ``minimum`` ((release), (CUDA version)), False if not, None if unknown."""
    text = (driver or "").strip()
    try:
        if text.startswith("CUDA "):
            return tuple(int(v) for v in text[5:].split(".")) < minimum[1]
        return tuple(int(v) for v in text.split(".")) < minimum[0]
    except ValueError:
        return None


def nvrtc_version():
    """(major, minor) of the installed NVRTC wheel (nvidia-cuda-nvrtc-cu11), None without."""
    try:
        return tuple(int(v) for v in importlib.metadata.version(NVRTC_WHEEL).split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def release_text(minimum):
    """((520, 61, 5), (11, 8)) -> '520.61.05 (CUDA 11.8)'."""
    major, minor, patch = minimum[0]
    return f"{major}.{minor}.{patch:02d} (CUDA {minimum[1][0]}.{minimum[1][1]})"


def judge_drivers(verdicts, dali=False, nvrtc=None):
    """The driver rules (module docstring) for the GPUs of ``verdicts``: GpuError (one line)
    for ``dali`` (data.backend dali) on a driver older than DALI's; on a driver too old for
    the PTX of NVRTC 11.8 (``nvrtc``, default the installed wheel's version), MXNet's fusion
    turned off (MXNET_USE_FUSION=0 in this process's environment, which MXNet reads when it
    builds a graph), or GpuError if the user set MXNET_USE_FUSION=1. Returns the notes to
    show (a list of one-line strings, also logged as warnings)."""
    for v in verdicts:
        if v.gpu is not None and dali and known_older(v.gpu.driver, DALI_DRIVER):
            raise GpuError(f"GPU {v.gpu_id} ({v.gpu.name}): driver {v.gpu.driver} is older than "
                           f"{release_text(DALI_DRIVER)}, which DALI 1.35 needs for "
                           "data.backend dali: install that driver or later, or use "
                           "data.backend recordio (docs/gpu.md)")
    nvrtc = nvrtc_version() if nvrtc is None else nvrtc
    old = [v for v in verdicts
           if v.gpu is not None and known_older(v.gpu.driver, FUSION_DRIVER)]
    if nvrtc != FUSION_DRIVER[1] or not old:
        return []
    head = (f"GPU {old[0].gpu_id} ({old[0].gpu.name}): driver {old[0].gpu.driver} cannot load "
            f"the PTX of NVRTC 11.8, which MXNet's operator fusion compiles (it needs "
            f"{release_text(FUSION_DRIVER)} or later)")
    setting = os.environ.get("MXNET_USE_FUSION", "").strip()
    if setting == "1":
        raise GpuError(f"{head}: unset MXNET_USE_FUSION=1, or install that driver or later "
                       "(docs/gpu.md)")
    if setting == "0":
        return []
    os.environ["MXNET_USE_FUSION"] = "0"
    note = (f"{head}: fusion turned off (MXNET_USE_FUSION=0), a few percent slower; install "
            "that driver or later to keep it (docs/gpu.md)")
    log.warning("note: %s", note)
    return [note]


def preflight(gpu_ids, smi="nvidia-smi", library=None, cuda_driver="libcuda.so.1", dali=False):
    """check_gpus(...) for the GPU ids a run asks for (none: nothing is checked); GpuError
    (one line) for the first one MXNet cannot drive or that is not here; then the driver
    rules (judge_drivers; ``dali``: the run reads its data with DALI). Returns the verdicts
    (for a table); those whose capability is unknown (``supported`` None) do not stop the
    run."""
    verdicts = check_gpus(gpu_ids, smi, library, cuda_driver)
    for verdict in verdicts:
        if verdict.supported is False:
            raise GpuError(verdict.message())
    judge_drivers(verdicts, dali)
    return verdicts


def table(verdicts):
    """The verdicts as a text table, one row per GPU (for tools/gpu_check.py)."""
    rows = [("GPU", "name", "capability", "driver", "MXNet", "kernels that run")]
    for v in verdicts:
        gpu = v.gpu or Gpu("-", None, None)
        rows.append((str(v.gpu_id), gpu.name, capability_text(gpu.capability),
                     gpu.driver or "-", {True: "yes", False: "NO", None: "?"}[v.supported],
                     v.reason if v.supported else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if verdicts:
        lines.append(f"libmxnet.so holds: {verdicts[0].kernels}")
    return "\n".join(lines) + "\n"
