"""MXNet's CUDA wheel loadable with NVIDIA's pip wheels of the CUDA libraries, and no
LD_LIBRARY_PATH: ``prepare()``, called before mxnet is imported.

mxnet-cu117's libmxnet.so bundles no CUDA library; its DT_NEEDED list names them
(libcudart.so.11.0, libcudnn.so.8, libcublas.so.11, ...). NVIDIA's wheels (setup.py's ``gpu``
extra) install them under site-packages/nvidia/<name>/lib, which the dynamic loader never
searches, and LD_LIBRARY_PATH is read only when a process starts. But glibc satisfies a needed
name with an already loaded library whose DT_SONAME is that name, so prepare() loads each of
them by its path (ctypes, RTLD_GLOBAL), the libraries each one needs first; libmxnet.so then
finds them all when mxnet is imported.

cuBLAS 11.11 and cuDNN 8.9 also dlopen the unversioned name ``libnvrtc.so``, which no wheel
ships: a symlink does not help (glibc matches loaded libraries by soname or by the exact
string they were opened with, never by file), and when it is missing cuDNN may abort() on the
stale dlerror (pytorch/pytorch#97041). prepare() therefore writes a 432-byte alias library
whose soname is ``libnvrtc.so`` and whose only DT_NEEDED is the wheel's libnvrtc.so.11.2,
loads it before anything that looks for the name, and deletes the file (a loaded library
needs no file): dlopen("libnvrtc.so") then returns the alias, and dlsym on it searches its
dependency, the real NVRTC.
"""
import ctypes
import importlib.util
import os
import re
import struct
import sys
import tempfile

from ..errors import UserError, one_line
from .fatbin import (DT_NEEDED, DT_NULL, DT_SONAME, DT_STRSZ, DT_STRTAB, DYNAMIC_ENTRY,
                     ELF_HEADER, ELF_MAGIC, ELFCLASS64, ELFDATA2LSB, PROGRAM_HEADER, PT_DYNAMIC,
                     PT_LOAD, dynamic_section)

DRIVER = "libcuda.so.1"
# The file name up to ".so" of every CUDA library a CUDA build of MXNet 1.9.1 needs, and the
# NVIDIA wheel that has it (setup.py's ``gpu`` extra pins them).
WHEELS = {
    "libcudart": "nvidia-cuda-runtime-cu11",
    "libcublas": "nvidia-cublas-cu11",
    "libcublasLt": "nvidia-cublas-cu11",
    "libcudnn": "nvidia-cudnn-cu11",
    "libcufft": "nvidia-cufft-cu11",
    "libcurand": "nvidia-curand-cu11",
    "libcusolver": "nvidia-cusolver-cu11",
    "libcusparse": "nvidia-cusparse-cu11",
    "libnccl": "nvidia-nccl-cu11",
    "libnvrtc": "nvidia-cuda-nvrtc-cu11",
    "libnvToolsExt": "nvidia-nvtx-cu11",
}
SHARED_LIBRARY = re.compile(r"lib.+\.so(\.\d+)*")  # libcudnn.so.8; not __init__.py
UNVERSIONED = ("libnvrtc.so",)  # dlopened by these names by cuBLAS and cuDNN (see above)
# ELF values the alias library needs beyond those fatbin.py reads
ET_DYN, PT_GNU_STACK, PF_RW = 3, 0x6474E551, 6
DT_HASH, DT_SYMTAB, DT_SYMENT, SYMBOL_SIZE = 4, 6, 11, 24
INSTALL = "run `make gpu-install` (or GLUON_TRICKS_CUDA=cu117 pip install -e '.[gpu]'); docs/gpu.md"


class CudaLibraryError(UserError):
    """A CUDA library that libmxnet.so needs cannot be loaded (one line: which, and the fix)."""


def stem(soname):
    """``libcudnn.so.8`` -> ``libcudnn``."""
    return soname.split(".so", 1)[0]


def find_libmxnet():
    """The path of the libmxnet.so ``import mxnet`` will load, found without importing mxnet
    (which is what fails while its libraries are missing): MXNet's own rule, from the
    installed package's ``libinfo.py`` loaded on its own. None if mxnet is not installed."""
    spec = importlib.util.find_spec("mxnet")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        libinfo = os.path.join(folder, "libinfo.py")
        if os.path.isfile(libinfo):
            # libinfo.py imports only os, platform and logging, unlike mxnet/__init__.py
            info_spec = importlib.util.spec_from_file_location("_gluon_tricks_libinfo", libinfo)
            info = importlib.util.module_from_spec(info_spec)
            info_spec.loader.exec_module(info)
            try:
                return info.find_lib_path()[0]
            except RuntimeError:
                return None
    return None


def nvidia_lib_dirs():
    """The ``lib`` folders of NVIDIA's wheels (site-packages/nvidia/<name>/lib), found
    through the ``nvidia`` package without importing it; [] when none is installed."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [os.path.join(root, name, "lib")
            for root in spec.submodule_search_locations
            for name in sorted(os.listdir(root))
            if os.path.isdir(os.path.join(root, name, "lib"))]


def wheel_libraries(lib_dirs):
    """{soname: (path, Dynamic)} of the shared libraries in ``lib_dirs`` (the first folder
    wins for a soname two of them hold)."""
    found = {}
    for folder in lib_dirs:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if SHARED_LIBRARY.fullmatch(name) and os.path.isfile(path):
                dynamic = dynamic_section(path)
                found.setdefault(dynamic.soname or name, (path, dynamic))
    return found


def load_order(needed, found):
    """The wheel libraries (paths from ``found``, as wheel_libraries gives) that the names
    ``needed`` take, each after the wheel libraries it needs itself: the order in which
    loading them by path never asks the loader to search for one of them."""
    order, seen = [], set()

    def visit(soname):
        if soname in seen or soname not in found:
            return
        seen.add(soname)
        path, dynamic = found[soname]
        for dependency in dynamic.needed:
            visit(dependency)
        order.append(path)

    for soname in needed:
        visit(soname)
    return order


def alias_library(soname, target, machine):
    """The bytes of a shared library whose DT_SONAME is ``soname`` and whose only DT_NEEDED
    is ``target``, for ELF machine number ``machine`` (62: x86_64): one read-write PT_LOAD
    segment (nothing in it is executable), PT_DYNAMIC, PT_GNU_STACK (no executable stack), an
    empty symbol table and its hash table, which glibc's symbol lookup expects."""
    strings = b"\0" + target.encode() + b"\0" + soname.encode() + b"\0"
    segments = 3
    strings_at = ELF_HEADER.size + segments * PROGRAM_HEADER.size
    symbols_at = -(-(strings_at + len(strings)) // 8) * 8
    hash_at = symbols_at + SYMBOL_SIZE  # the null symbol alone
    dynamic_at = hash_at + 16  # nbucket = nchain = 1, bucket[0] = chain[0] = 0
    dynamic = [(DT_NEEDED, 1), (DT_SONAME, 2 + len(target)), (DT_STRTAB, strings_at),
               (DT_STRSZ, len(strings)), (DT_SYMTAB, symbols_at), (DT_SYMENT, SYMBOL_SIZE),
               (DT_HASH, hash_at), (DT_NULL, 0)]
    dynamic_size = DYNAMIC_ENTRY.size * len(dynamic)
    size = dynamic_at + dynamic_size
    ident = ELF_MAGIC + bytes([ELFCLASS64, ELFDATA2LSB, 1, 0]) + bytes(8)  # v1, System V
    header = ELF_HEADER.pack(ident, ET_DYN, machine, 1, 0, ELF_HEADER.size, 0, 0,
                             ELF_HEADER.size, PROGRAM_HEADER.size, segments, 64, 0, 0)
    program = (PROGRAM_HEADER.pack(PT_LOAD, PF_RW, 0, 0, 0, size, size, 0x1000)
               + PROGRAM_HEADER.pack(PT_DYNAMIC, PF_RW, dynamic_at, dynamic_at, dynamic_at,
                                     dynamic_size, dynamic_size, 8)
               + PROGRAM_HEADER.pack(PT_GNU_STACK, PF_RW, 0, 0, 0, 0, 0, 16))
    body = header + program + strings
    body += bytes(symbols_at - len(body)) + bytes(SYMBOL_SIZE) + struct.pack("<4I", 1, 1, 0, 0)
    return body + b"".join(DYNAMIC_ENTRY.pack(tag, value) for tag, value in dynamic)


def libraries_line(library=None, lib_dirs=None):
    """One line for a table: where the NVIDIA libraries ``library`` (default: the libmxnet.so
    ``import mxnet`` will load) needs come from: NVIDIA's wheels (``lib_dirs``, default
    their folders), or not from them (then from the system's paths, if at all)."""
    library = library or find_libmxnet()
    if library is None:
        return "CUDA libraries: MXNet is not installed"
    needed = [n for n in dynamic_section(library).needed if stem(n) in WHEELS]
    if not needed:
        return "CUDA libraries: none (a CPU build of MXNet)"
    found = wheel_libraries(nvidia_lib_dirs() if lib_dirs is None else lib_dirs)
    outside = [n for n in needed if n not in found]
    return (f"CUDA libraries: {len(needed) - len(outside)} of {len(needed)} from NVIDIA's wheels"
            + (f"; not in them (the system's, if any): {', '.join(outside)}" if outside else ""))


def is_loaded(soname):
    """True if a library of that name (or soname) is already loaded in this process."""
    try:
        ctypes.CDLL(soname, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    except OSError:
        return False
    return True


def load_alias(soname, target_path):
    """Load a library named ``soname`` that stands for the loaded one at ``target_path``
    (alias_library), from a temporary file deleted once it is loaded. Returns its path."""
    with open(target_path, "rb") as f:
        machine = struct.unpack_from("<H", f.read(20), 18)[0]  # e_machine
    target = dynamic_section(target_path).soname or os.path.basename(target_path)
    fd, path = tempfile.mkstemp(prefix="gluon-tricks-", suffix="-" + soname)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(alias_library(soname, target, machine))
        ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
    finally:
        os.unlink(path)
    return path


def load(path_or_name, what):
    """ctypes.CDLL(path_or_name, RTLD_GLOBAL); CudaLibraryError (one line) naming ``what``."""
    try:
        ctypes.CDLL(path_or_name, mode=os.RTLD_GLOBAL)
    except OSError as e:
        raise CudaLibraryError(f"{what} cannot be loaded ({one_line(e)}): {INSTALL}") from None


def prepare(library=None, lib_dirs=None):
    """Make the CUDA libraries of MXNet's ``library`` (default: the libmxnet.so ``import
    mxnet`` will load) loadable before mxnet is imported: load every NVIDIA library it needs
    from NVIDIA's wheels (``lib_dirs``, default: their site-packages/nvidia/*/lib folders),
    dependencies first, and the ``libnvrtc.so`` alias; a needed NVIDIA library no wheel has
    must load from the system's paths (the cu112 route: a system CUDA). Nothing for a CPU
    build, for mxnet not installed, or once mxnet is imported (its libraries are then loaded
    already, and loading other copies would only add a second CUDA runtime).

    Returns the paths loaded, in order. CudaLibraryError (one line) for a library that cannot
    be loaded: the driver's libcuda.so.1, or one the wheels should have brought."""
    if "mxnet" in sys.modules:
        return []
    library = library or find_libmxnet()
    if library is None:
        return []
    needed = [n for n in dynamic_section(library).needed if stem(n) in WHEELS or n == DRIVER]
    if not needed:
        return []
    found = wheel_libraries(nvidia_lib_dirs() if lib_dirs is None else lib_dirs)
    loaded = []
    for name in UNVERSIONED:  # before the libraries that dlopen it while they load
        versioned = sorted(s for s in found if stem(s) == stem(name))
        targets = [s for s in versioned if s in needed] or versioned
        if targets and name not in found and not is_loaded(name):
            target = load_order([targets[0]], found)
            for path in target:
                load(path, path)
            loaded += target + [load_alias(name, found[targets[0]][0])]
    for path in load_order(needed, found):
        if path not in loaded:
            load(path, path)
            loaded.append(path)
    for soname in needed:
        if soname != DRIVER and soname not in found:
            load(soname, f"{soname} (from {WHEELS[stem(soname)]}, needed by {library})")
    # the driver last: with the wheels' libraries loaded, a host without it gets the loader's
    # own word for it too when mxnet is imported, not one about a library the wheels have
    if DRIVER in needed:
        try:
            ctypes.CDLL(DRIVER, mode=os.RTLD_GLOBAL)
        except OSError:
            raise CudaLibraryError(
                f"{DRIVER} (the NVIDIA driver's CUDA library, which {library} needs) is not "
                "installed: install the NVIDIA driver, or on a host without an NVIDIA GPU "
                "install the CPU wheel (pip uninstall mxnet-cu117 mxnet-cu112; pip install "
                "-e .)") from None
    return loaded
