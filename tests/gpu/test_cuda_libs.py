"""prepare() with stand-in CUDA libraries compiled by gcc, laid out as NVIDIA's wheels lay
them out (site-packages/nvidia/<name>/lib), each run in a fresh process so that none of them
is loaded into this one: the load order, the libnvrtc.so alias, the one-line errors."""
import ctypes.util
import json
import os
import shutil
import subprocess
import sys

import pytest
from gpu_standins import compile_library, run_python, write_elf

from gluon_tricks.gpu.cuda_libs import alias_library, find_libmxnet, prepare
from gluon_tricks.gpu.fatbin import dynamic_section, read_fatbin

NVRTC = "int nvrtcVersion(int *major, int *minor) { *major = 11; *minor = 8; return 0; }\n"
# cuBLAS 11.11 dlopens libnvrtc.so while it loads; the stand-in records whether it could.
CUBLAS_LT = r"""
#include <dlfcn.h>
int nvrtc_found_at_load = -1;
__attribute__((constructor)) static void look(void) {
    nvrtc_found_at_load = dlopen("libnvrtc.so", RTLD_NOW) != 0; }
int cublasLtAnswer(void) { return 11; }
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Stand-in wheels and libmxnet.so files: {'dirs': the wheels' lib folders, 'mxnet':
    needing cuSOLVER (which needs cuBLAS, in another wheel, which needs cuBLASLt) and NVRTC,
    'mxnet_cudnn': also libcudnn.so.8, which no wheel here has, 'mxnet_driver': also
    libcuda.so.1, 'driver': the folder of a stand-in libcuda.so.1}."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("host")
    wheels = root / "site-packages" / "nvidia"
    cublas, cusolver, nvrtc = (str(wheels / n / "lib") for n in ("cublas", "cusolver",
                                                                  "cuda_nvrtc"))
    lt = compile_library(cublas, "libcublasLt.so.11", CUBLAS_LT)
    blas = compile_library(cublas, "libcublas.so.11", "int cublasAnswer(void) { return 11; }\n",
                           [lt])
    solver = compile_library(cusolver, "libcusolver.so.11",
                             "int cusolverAnswer(void) { return 11; }\n", [blas])
    rtc = compile_library(nvrtc, "libnvrtc.so.11.2", NVRTC)
    compile_library(nvrtc, "libnvrtc-builtins.so.11.8", "int builtins(void) { return 0; }\n")
    for folder in (cublas, cusolver, nvrtc):  # as in the real wheels
        open(os.path.join(folder, "__init__.py"), "w").close()
    elsewhere = str(root / "elsewhere")
    cudnn = compile_library(elsewhere, "libcudnn.so.8", "int cudnnAnswer(void) { return 8; }\n")
    driver = str(root / "driver")
    cuda = compile_library(driver, "libcuda.so.1", "int cuInit(unsigned f) { return 100; }\n")
    body = "int mxnetAnswer(void) { return 42; }\n"
    mxnet = str(root / "mxnet")
    return {
        "dirs": [cublas, cusolver, nvrtc],
        "mxnet": compile_library(mxnet, "libmxnet.so", body, [solver, blas, rtc]),
        "mxnet_cudnn": compile_library(mxnet, "libmxnet.so", body, [solver, cudnn],
                                       filename="libmxnet-cudnn.so"),
        "mxnet_driver": compile_library(mxnet, "libmxnet.so", body, [cuda, solver],
                                        filename="libmxnet-driver.so"),
        "driver": driver,
    }


def prepare_in_a_new_process(library, dirs, env=None):
    """prepare(library, dirs) in a fresh process, then load ``library`` as `import mxnet`
    would and look at what the stand-ins saw. Returns the report (dict) or the error line."""
    done = run_python(f"""
import ctypes, json, os, sys
from gluon_tricks.gpu.cuda_libs import CudaLibraryError, prepare
try:
    loaded = prepare({library!r}, {dirs!r})
except CudaLibraryError as e:
    print(json.dumps({{"error": str(e)}})); sys.exit()
ctypes.CDLL({library!r})  # what import mxnet does: every needed library found by soname
lt = ctypes.CDLL("libcublasLt.so.11")
major, minor = ctypes.c_int(), ctypes.c_int()
ctypes.CDLL("libnvrtc.so").nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
names = ["(alias)" if p.endswith("-libnvrtc.so") else os.path.basename(p) for p in loaded]
print(json.dumps({{"loaded": names, "alias_gone": not any(map(os.path.exists, loaded[1:2])),
                  "nvrtc_found_at_load": ctypes.c_int.in_dll(lt, "nvrtc_found_at_load").value,
                  "nvrtc_version": [major.value, minor.value]}}))
""", env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_stand_ins_need_prepare_and_its_order(host):
    without = run_python(f"import ctypes; ctypes.CDLL({host['mxnet']!r})")
    assert "libcusolver.so.11: cannot open shared object file" in without.stderr
    solver_first = run_python("import ctypes; ctypes.CDLL("
                              f"{os.path.join(host['dirs'][1], 'libcusolver.so.11')!r})")
    assert "libcublas.so.11: cannot open shared object file" in solver_first.stderr


def test_prepare_loads_dependencies_first_and_mxnet_then_loads(host):
    report = prepare_in_a_new_process(host["mxnet"], host["dirs"])
    assert report["loaded"] == ["libnvrtc.so.11.2", "(alias)", "libcublasLt.so.11",
                                "libcublas.so.11", "libcusolver.so.11"]
    assert report["alias_gone"]  # the alias file is deleted once loaded


def test_libnvrtc_so_is_there_before_cublas_looks_for_it(host):
    report = prepare_in_a_new_process(host["mxnet"], host["dirs"])
    assert report["nvrtc_found_at_load"] == 1
    assert report["nvrtc_version"] == [11, 8]  # dlsym through the alias reaches NVRTC


@pytest.mark.skipif(ctypes.util.find_library("cudnn") is not None,
                    reason="this host has a system cuDNN")
def test_a_library_no_wheel_has_is_one_line_naming_it(host):
    error = prepare_in_a_new_process(host["mxnet_cudnn"], host["dirs"])["error"]
    assert "\n" not in error
    for words in ("libcudnn.so.8", "nvidia-cudnn-cu11", "make gpu-install", "docs/gpu.md"):
        assert words in error, words


def test_a_library_of_a_missing_wheel_is_one_line_naming_it(host):
    error = prepare_in_a_new_process(host["mxnet"], host["dirs"][1:])["error"]  # no cuBLAS
    assert "libcublas.so.11" in error and "make gpu-install" in error and "\n" not in error


@pytest.mark.skipif(ctypes.util.find_library("cuda") is not None,
                    reason="this host has an NVIDIA driver")
def test_no_driver_is_one_line(host):
    error = prepare_in_a_new_process(host["mxnet_driver"], host["dirs"])["error"]
    assert "libcuda.so.1" in error and "NVIDIA driver" in error and "\n" not in error


def test_the_drivers_library_comes_from_the_system(host):
    report = prepare_in_a_new_process(host["mxnet_driver"], host["dirs"],
                                      env={"LD_LIBRARY_PATH": host["driver"]})
    assert report["loaded"][-1] == "libcusolver.so.11"


def test_nothing_for_the_cpu_wheel():
    library = find_libmxnet()
    if library is None or read_fatbin(library).archs:
        pytest.skip("this environment has a CUDA build of MXNet, not the CPU wheel")
    assert prepare() == []


def test_nothing_once_mxnet_is_imported(tmp_path, monkeypatch):
    library = write_elf(tmp_path / "libmxnet.so", needed=("libcudnn.so.8",))
    monkeypatch.setitem(sys.modules, "mxnet", sys)
    assert prepare(library, []) == []


def test_the_alias_library_as_readelf_and_our_reader_see_it(tmp_path):
    path = tmp_path / "libalias.so"
    path.write_bytes(alias_library("libnvrtc.so", "libnvrtc.so.11.2", 62))
    assert dynamic_section(path) == ("libnvrtc.so", ("libnvrtc.so.11.2",))
    if shutil.which("readelf"):
        listing = subprocess.run(["readelf", "-W", "-d", "-l", str(path)], capture_output=True,
                                 text=True).stdout
        assert "Shared library: [libnvrtc.so.11.2]" in listing
        assert "Library soname: [libnvrtc.so]" in listing
        assert "GNU_STACK" in listing and " RWE " not in listing and " R E " not in listing


@pytest.mark.skipif(ctypes.util.find_library("z") is None, reason="no zlib on this host")
def test_an_alias_of_a_real_system_library_resolves_without_gcc():
    done = run_python("""
import ctypes, zlib
from gluon_tricks.gpu.cuda_libs import load_alias
path = [line.split()[-1] for line in open("/proc/self/maps") if "/libz.so" in line][0]
load_alias("libzz-gluon-tricks.so", path)
version = ctypes.CDLL("libzz-gluon-tricks.so").zlibVersion
version.restype = ctypes.c_char_p
print(version().decode() == zlib.ZLIB_RUNTIME_VERSION)
""")
    assert done.stdout.strip() == "True", done.stderr
