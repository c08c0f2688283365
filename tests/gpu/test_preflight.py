"""The preflight's verdicts: a stand-in nvidia-smi first on PATH (or a stand-in CUDA driver
library) against a stand-in libmxnet.so that holds what the mxnet-cu117 1.9.1 wheel holds
(SASS sm_50, 60, 70, 80, 86, no PTX), judged by NVIDIA's compatibility rules."""
import pytest
from gpu_standins import compile_library, needs_gcc, wheel_library

from gluon_tricks.gpu.fatbin import Arch
from gluon_tricks.gpu.preflight import (GpuError, check_gpus, list_gpus, preflight, runs_on,
                                        table)

HOST = ["NVIDIA A100-SXM4-80GB, 8.0, 550.54.15", "NVIDIA L4, 8.9, 550.54.15",
        "NVIDIA H200, 9.0, 550.54.15", "NVIDIA B200, 10.0, 570.86.15"]
NO_DRIVER = None  # the tests never ask a real libcuda.so.1


@pytest.fixture
def wheel(tmp_path):
    return wheel_library(tmp_path / "libmxnet.so")


@pytest.fixture
def smi(tmp_path, monkeypatch):
    """``smi(rows, compute_cap=True)``: an nvidia-smi printing ``rows`` ("name, cap,
    driver"), alone on PATH; compute_cap=False: one of a driver that has no such field."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def install(rows, compute_cap=True):
        old = "\\n".join(f"{r.split(', ')[0]}, {r.split(', ')[2]}" for r in rows)
        new = "\\n".join(rows)
        when_asked = (f"printf '{new}\\n'" if compute_cap else
                      "echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2")
        script = folder / "nvidia-smi"
        script.write_text("#!/bin/sh\ncase \"$*\" in\n"
                          f"  *compute_cap*) {when_asked} ;;\n"
                          f"  *) printf '{old}\\n' ;;\nesac\n")
        script.chmod(0o755)
    return install


def test_verdicts_of_a100_l4_h200_b200(smi, wheel):
    smi(HOST)
    verdicts = check_gpus([0, 1, 2, 3], library=wheel, cuda_driver=NO_DRIVER)
    assert [v.supported for v in verdicts] == [True, True, False, False]
    assert [v.reason for v in verdicts[:2]] == ["sm_80 SASS", "sm_86 SASS"]  # 8.9 runs 8.6
    assert [v.gpu.capability for v in verdicts] == [(8, 0), (8, 9), (9, 0), (10, 0)]
    assert verdicts[0].gpu == ("NVIDIA A100-SXM4-80GB", (8, 0), "550.54.15")


def test_an_h200_learns_in_one_line_what_to_do(smi, wheel):
    smi(HOST)
    with pytest.raises(GpuError) as e:
        preflight([0, 2], library=wheel, cuda_driver=NO_DRIVER)
    message = str(e.value)
    assert "\n" not in message
    for words in ("GPU 2", "NVIDIA H200", "compute capability 9.0",
                  "sm_50, sm_60, sm_70, sm_80, sm_86, no PTX", "NGC MXNet container",
                  "MXNET_CUDA_ARCH including 9.0+PTX", "docs/gpu.md"):
        assert words in message, words


def test_a_b200_is_told_no_container_is_documented(smi, wheel):
    smi(HOST)
    with pytest.raises(GpuError) as e:
        preflight([3], library=wheel, cuda_driver=NO_DRIVER)
    message = str(e.value)
    assert "NVIDIA B200" in message and "10.0" in message and "no PTX" in message
    assert "MXNET_CUDA_ARCH including 10.0+PTX" in message and "\n" not in message


def test_supported_gpus_pass_the_preflight(smi, wheel):
    smi(HOST)
    assert [v.supported for v in preflight([1, 0], library=wheel, cuda_driver=NO_DRIVER)] == \
        [True, True]


def test_every_gpu_of_the_host_or_none_at_all(smi, wheel, monkeypatch):
    smi(HOST)
    assert [v.gpu.name for v in check_gpus(library=wheel, cuda_driver=NO_DRIVER)] == \
        [row.split(",")[0] for row in HOST]
    monkeypatch.setenv("PATH", "")  # an empty list asks nobody, not even nvidia-smi
    assert preflight([], library="/nonexistent", cuda_driver=NO_DRIVER) == []


def test_no_nvidia_smi_means_no_gpu(smi, wheel):
    assert list_gpus(cuda_driver=NO_DRIVER) == []
    with pytest.raises(GpuError, match="--gpus 0: no NVIDIA GPU is known here"):
        preflight([0], library=wheel, cuda_driver=NO_DRIVER)


def test_an_id_past_the_hosts_gpus(smi, wheel, monkeypatch):
    smi(HOST[:2])
    with pytest.raises(GpuError, match="--gpus 2: no GPU 2: 2 here \\(ids 0..1\\)"):
        preflight([2], library=wheel, cuda_driver=NO_DRIVER)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(GpuError, match="no GPU 1: 1 here under CUDA_VISIBLE_DEVICES=1"):
        preflight([1], library=wheel, cuda_driver=NO_DRIVER)


def test_cuda_visible_devices_renumbers_the_gpus(smi, wheel, monkeypatch):
    smi(HOST)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    verdicts = check_gpus([0, 1], library=wheel, cuda_driver=NO_DRIVER)
    assert [(v.gpu.name, v.supported) for v in verdicts] == [("NVIDIA H200", False),
                                                             ("NVIDIA A100-SXM4-80GB", True)]


def test_an_old_driver_without_compute_cap_cannot_tell(smi, wheel):
    smi(HOST, compute_cap=False)
    verdicts = preflight([2], library=wheel, cuda_driver=NO_DRIVER)  # does not stop the run
    assert verdicts[0].supported is None and verdicts[0].gpu.name == "NVIDIA H200"
    assert "cannot be told" in verdicts[0].message()


def test_a_cpu_build_is_sent_to_gpu_install(smi, tmp_path):
    smi(HOST)
    cpu = wheel_library(tmp_path / "cpu.so", archs=())
    with pytest.raises(GpuError, match="a CPU build\\): run `make gpu-install`"):
        preflight([0], library=cpu, cuda_driver=NO_DRIVER)


@pytest.mark.parametrize("arch, capability, runs", [
    (Arch((8, 6), False), (8, 9), True),  # SASS: same major, minor at least the kernel's
    (Arch((8, 6), False), (8, 0), False),
    (Arch((8, 6), False), (9, 0), False),
    (Arch((7, 0), False), (7, 5), True),
    (Arch((8, 0), True), (9, 0), True),  # PTX: any capability at least the PTX's
    (Arch((8, 0), True), (10, 0), True),
    (Arch((8, 0), True), (7, 5), False),
])
def test_nvidia_compatibility_rules(arch, capability, runs):
    assert runs_on(arch, capability) is runs


def test_ptx_would_let_hopper_and_blackwell_in(smi, tmp_path):
    smi(HOST)
    with_ptx = wheel_library(tmp_path / "ptx.so", archs=(80, 86), ptx=(86,))
    verdicts = check_gpus([0, 1, 2, 3], library=with_ptx, cuda_driver=NO_DRIVER)
    assert [v.supported for v in verdicts] == [True, True, True, True]
    assert verdicts[2].reason == "compute_86 PTX, compiled by the driver"


def test_table_has_one_row_per_gpu(smi, wheel):
    smi(HOST)
    text = table(check_gpus([0, 1, 2, 3], library=wheel, cuda_driver=NO_DRIVER))
    lines = text.splitlines()
    assert lines[0].split() == ["GPU", "name", "capability", "driver", "MXNet", "kernels",
                                "that", "run"]
    assert lines[3].split()[:6] == ["2", "NVIDIA", "H200", "9.0", "550.54.15", "NO"]
    assert lines[-1] == "libmxnet.so holds: sm_50, sm_60, sm_70, sm_80, sm_86, no PTX"


DRIVER_SOURCE = r"""
#include <string.h>
static const char *names[] = {"NVIDIA H200", "NVIDIA L4"};
static const int caps[][2] = {{9, 0}, {8, 9}};
int cuInit(unsigned flags) { return 0; }
int cuDriverGetVersion(int *version) { *version = 12040; return 0; }
int cuDeviceGetCount(int *count) { *count = 2; return 0; }
int cuDeviceGet(int *device, int ordinal) { *device = ordinal; return 0; }
int cuDeviceGetName(char *name, int len, int device) {
    strncpy(name, names[device], len); return 0; }
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    if (attribute != 75 && attribute != 76) return 1;
    *value = caps[device][attribute - 75]; return 0; }
"""


@needs_gcc
def test_without_nvidia_smi_the_driver_library_answers(smi, wheel, tmp_path):
    driver = compile_library(tmp_path / "driver", "libcuda-standin.so", DRIVER_SOURCE)
    verdicts = check_gpus([0, 1], library=wheel, cuda_driver=driver)
    assert [(v.gpu, v.supported) for v in verdicts] == [
        (("NVIDIA H200", (9, 0), "CUDA 12.4"), False), (("NVIDIA L4", (8, 9), "CUDA 12.4"), True)]


@needs_gcc
def test_an_old_nvidia_smi_and_the_driver_library(smi, wheel, tmp_path):
    smi(HOST[2:], compute_cap=False)
    driver = compile_library(tmp_path / "driver", "libcuda-standin.so", DRIVER_SOURCE)
    gpus = list_gpus(cuda_driver=driver)
    assert gpus[0] == ("NVIDIA H200", (9, 0), "550.54.15")  # nvidia-smi's driver release
