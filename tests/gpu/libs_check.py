"""The opt-in check of the pip-only GPU install (`make gpu-libs-check`), for a host without
a GPU: run by the Python of a venv holding the `gpu` extra (mxnet-cu117 and NVIDIA's wheels).

It reads the installed libmxnet.so (its CUDA architectures, its DT_NEEDED), compiles a
stand-in libcuda.so.1 (the driver's library: the entry points libmxnet.so binds at load,
each answering "no device") and puts it on LD_LIBRARY_PATH as a driver install would, then,
each in a fresh process: `import mxnet` without prepare() fails; with it, every needed
library resolves (to which file is printed), mxnet imports and computes on the CPU, sees
0 GPUs, and `libnvrtc.so` reaches NVRTC 11.8 (it compiles a kernel); a missing wheel and a
missing driver are one line each; the preflight judges an A100, L4, H200 and B200 (a
stand-in nvidia-smi) against this libmxnet.so. Exit status 0 when every check passes.
"""
import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

from gluon_tricks.gpu.cuda_libs import find_libmxnet, nvidia_lib_dirs
from gluon_tricks.gpu.fatbin import dynamic_section, read_fatbin
from gluon_tricks.gpu.preflight import check_gpus, table

WHEEL_HOLDS = "sm_50, sm_60, sm_70, sm_80, sm_86, no PTX"  # issue 23's reading of the wheel
# The driver entry points libmxnet.so of mxnet-cu117 1.9.1 binds when it loads (nm -D
# --undefined-only), and those CUDA's runtime asks first; all say CUDA_ERROR_NO_DEVICE.
STANDIN_LIBCUDA = r"""
#define NO_DEVICE 100
int cuInit(unsigned flags) { return NO_DEVICE; }
int cuDriverGetVersion(int *version) { *version = 11080; return 0; }
int cuDeviceGetCount(int *count) { *count = 0; return NO_DEVICE; }
int cuGetErrorString(int error, const char **text) { *text = "stand-in: no device"; return 0; }
int cuDeviceGet(void) { return NO_DEVICE; }
int cuDevicePrimaryCtxRetain(void) { return NO_DEVICE; }
int cuGraphKernelNodeGetParams(void) { return NO_DEVICE; }
int cuGraphNodeGetType(void) { return NO_DEVICE; }
int cuLaunchKernel(void) { return NO_DEVICE; }
int cuModuleGetFunction(void) { return NO_DEVICE; }
int cuModuleLoadData(void) { return NO_DEVICE; }
int cuModuleLoadDataEx(void) { return NO_DEVICE; }
int cuModuleUnload(void) { return NO_DEVICE; }
"""
# In the child: prepare(), import mxnet, then where each needed library came from.
PROBE = r"""
import ctypes, json, os, sys
from gluon_tricks.gpu.cuda_libs import prepare
loaded = prepare()
import mxnet as mx

class LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]

libdl = ctypes.CDLL("libdl.so.2")
def where(name):
    handle = ctypes.CDLL(name, mode=os.RTLD_NOLOAD | os.RTLD_NOW)._handle
    link = ctypes.POINTER(LinkMap)()
    libdl.dlinfo(ctypes.c_void_p(handle), 2, ctypes.byref(link))  # RTLD_DI_LINKMAP
    return link.contents.l_name.decode()

needed = json.loads(sys.argv[1])
resolved = {}
for name in needed:
    try:
        resolved[name] = where(name)
    except OSError:
        resolved[name] = None
nvrtc = ctypes.CDLL("libnvrtc.so")
major, minor = ctypes.c_int(), ctypes.c_int()
nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
program = ctypes.c_void_p()
source = b'extern "C" __global__ void twice(float *x) { x[threadIdx.x] *= 2.0f; }'
nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"twice.cu", 0, None, None)
options = (ctypes.c_char_p * 1)(b"--gpu-architecture=compute_80")
compiled = nvrtc.nvrtcCompileProgram(program, 1, options)
ptx_bytes = ctypes.c_size_t()
nvrtc.nvrtcGetPTXSize(program, ctypes.byref(ptx_bytes))
cudnn_dir = os.path.dirname(resolved.get("libcudnn.so.8") or "")
ctypes.CDLL(os.path.join(cudnn_dir, "libcudnn_cnn_infer.so.8"))  # cuDNN's lazy sub-library
features = mx.runtime.Features()
print(json.dumps({
    "loaded": len(loaded), "resolved": resolved, "num_gpus": mx.context.num_gpus(),
    "features": {k: features.is_enabled(k) for k in ("CUDA", "CUDNN", "NCCL", "CUDA_RTC")},
    "cpu_sum": float(mx.nd.ones((2, 3)).sum().asscalar()), "mxnet": mx.__version__,
    "nvrtc": f"{major.value}.{minor.value}", "nvrtc_compile": compiled,
    "ptx_bytes": ptx_bytes.value, "alias": where("libnvrtc.so")}))
"""
ERROR_PROBE = r"""
import sys
from gluon_tricks.errors import run_cli  # the package loads the wheels' libraries first
sys.exit(run_cli(lambda argv: __import__("mxnet")))
"""

class Checks:
    """Prints each check as it is made and counts them."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, what):
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
        self.passed += bool(ok)
        self.failed += not ok


def child(code, args=(), env=None):
    """``code`` in a fresh Python process of this venv. Returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=600)


def main():
    check = Checks()
    library = find_libmxnet()
    fatbin = read_fatbin(library)
    needed = list(dynamic_section(library).needed)
    print(f"libmxnet.so: {library} ({os.path.getsize(library) / 2**20:.0f} MiB)")
    print(f".nv_fatbin: {fatbin.containers} containers, {fatbin.sass_images} SASS images, "
          f"{fatbin.ptx_images} PTX images: {fatbin.describe()}")
    check(fatbin.describe() == WHEEL_HOLDS, f"the wheel holds {WHEEL_HOLDS}")
    print(f"DT_NEEDED ({len(needed)}): {' '.join(needed)}")

    work = tempfile.mkdtemp(prefix="gpu-libs-check-")
    try:
        source = os.path.join(work, "libcuda.c")
        with open(source, "w") as f:
            f.write(STANDIN_LIBCUDA)
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", os.path.join(work, "libcuda.so.1"),
                        source, "-Wl,-soname,libcuda.so.1"], check=True)
        driver = {"LD_LIBRARY_PATH": work}

        bare = child("import mxnet", env=driver)
        last = (bare.stderr.strip().splitlines() or ["(nothing)"])[-1]
        check(bare.returncode != 0, f"without prepare(), import mxnet fails: {last}")

        probe = child(PROBE, [json.dumps(needed)], env=driver)
        if probe.returncode != 0:
            check(False, f"prepare() and import mxnet: {probe.stderr.strip()[-2000:]}")
            return 1
        report = json.loads(probe.stdout.strip().splitlines()[-1])
        print(f"prepare() loaded {report['loaded']} libraries; each DT_NEEDED resolved to:")
        for name in needed:
            print(f"    {name:24s} {report['resolved'][name]}")
        check(all(report["resolved"].values()), "every library libmxnet.so needs resolves")
        check(report["resolved"]["libcuda.so.1"] == os.path.join(work, "libcuda.so.1"),
              "libcuda.so.1 is the stand-in, from LD_LIBRARY_PATH as a driver's would be")
        check(report["cpu_sum"] == 6.0, f"import mxnet ({report['mxnet']}) works and computes "
              f"on the CPU; features {report['features']}")
        check(all(report["features"].values()), "it is the CUDA build (CUDA, CUDNN, NCCL, RTC)")
        check(report["num_gpus"] == 0, f"mx.context.num_gpus() == {report['num_gpus']}")
        check(report["nvrtc"] == "11.8" and report["nvrtc_compile"] == 0
              and report["ptx_bytes"] > 0,
              f"libnvrtc.so ({report['alias']}) is NVRTC {report['nvrtc']}; it compiled a "
              f"kernel to {report['ptx_bytes']} bytes of PTX")

        cudnn = next(d for d in nvidia_lib_dirs() if "cudnn" in d)
        hidden = cudnn + ".hidden"  # the wheel taken away, as a half-done install leaves it
        os.rename(cudnn, hidden)
        try:
            missing = child(ERROR_PROBE, env=driver).stderr.strip()
        finally:
            os.rename(hidden, cudnn)
        check(missing.startswith("error: ") and "\n" not in missing and "libcudnn.so.8" in missing,
              f"without the cuDNN wheel, one line: {missing}")
        if ctypes.util.find_library("cuda") is None:
            no_driver = child(ERROR_PROBE).stderr.strip()
            check(no_driver.startswith("error: ") and "libcuda.so.1" in no_driver,
                  f"without a driver, one line: {no_driver}")

        smi = os.path.join(work, "bin", "nvidia-smi")
        os.makedirs(os.path.dirname(smi))
        with open(smi, "w") as f:
            f.write("#!/bin/sh\nprintf 'NVIDIA A100-SXM4-80GB, 8.0, 550.54.15\\n"
                    "NVIDIA L4, 8.9, 550.54.15\\nNVIDIA H200, 9.0, 550.54.15\\n"
                    "NVIDIA B200, 10.0, 570.86.15\\n'\n")
        os.chmod(smi, 0o755)
        os.environ["PATH"] = os.path.dirname(smi) + os.pathsep + os.environ["PATH"]
        verdicts = check_gpus([0, 1, 2, 3], library=library, cuda_driver=None)
        print(table(verdicts), end="")
        check([v.supported for v in verdicts] == [True, True, False, False],
              "preflight: A100 and L4 yes, H200 and B200 no")
        print(f"    H200: error: {verdicts[2].message()}")
    finally:
        shutil.rmtree(work)
    print(f"gpu-libs-check: {check.passed} passed, {check.failed} failed")
    return 0 if check.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
