"""The preflight's rules beyond the architectures: the driver against MXNet's runtime
compilation (NVRTC 11.8's PTX) and against DALI's CUDA 12, fatbin containers each judged,
GPU UUIDs in CUDA_VISIBLE_DEVICES, and Horovod's build for GPU arrays; stand-in nvidia-smi
and libraries as in test_preflight.py."""
import importlib.util
import logging
import os
from types import SimpleNamespace

import pytest
from gpu_standins import PTX, SASS, fatbin_container, wheel_library, write_elf
from test_preflight import NO_DRIVER, smi  # noqa: F401 (a fixture)

from gluon_tricks.errors import RunError
from gluon_tricks.gpu.preflight import (GpuError, check_gpus, judge_drivers, known_older,
                                        preflight)
from gluon_tricks.run.parallel import horovod_build, require_gpu_horovod

A100_R470 = "NVIDIA A100-SXM4-80GB, 8.0, 470.82.01"
A100_R520 = "NVIDIA A100-SXM4-80GB, 8.0, 520.61.05"
A100_R525 = "NVIDIA A100-SXM4-80GB, 8.0, 525.60.13"


@pytest.fixture
def wheel(tmp_path):
    return wheel_library(tmp_path / "libmxnet.so")


def test_driver_versions_against_a_release():
    minimum = ((520, 61, 5), (11, 8))
    assert known_older("470.82.01", minimum) is True
    assert known_older("520.61.05", minimum) is False
    assert known_older("520.56.06", minimum) is True  # an R520 beta before 11.8's driver
    assert known_older("CUDA 11.4", minimum) is True  # from the driver library
    assert known_older("CUDA 12.2", minimum) is False
    assert known_older(None, minimum) is None and known_older("[N/A]", minimum) is None


def test_an_old_driver_turns_fusion_off_and_says_so(smi, wheel, monkeypatch, caplog):
    monkeypatch.delenv("MXNET_USE_FUSION", raising=False)
    smi([A100_R470])
    verdicts = check_gpus([0], library=wheel, cuda_driver=NO_DRIVER)
    with caplog.at_level(logging.WARNING):
        notes = judge_drivers(verdicts, nvrtc=(11, 8))
    assert os.environ["MXNET_USE_FUSION"] == "0"
    assert len(notes) == 1 and "\n" not in notes[0]
    for words in ("driver 470.82.01", "NVRTC 11.8", "520.61.05 (CUDA 11.8)",
                  "MXNET_USE_FUSION=0"):
        assert words in notes[0] and words in caplog.text
    # a user who asked for fusion is told instead
    monkeypatch.setenv("MXNET_USE_FUSION", "1")
    with pytest.raises(GpuError, match="unset MXNET_USE_FUSION=1, or install"):
        judge_drivers(verdicts, nvrtc=(11, 8))


def test_a_recent_driver_keeps_fusion(smi, wheel, monkeypatch):
    monkeypatch.delenv("MXNET_USE_FUSION", raising=False)
    smi([A100_R520])
    verdicts = check_gpus([0], library=wheel, cuda_driver=NO_DRIVER)
    assert judge_drivers(verdicts, nvrtc=(11, 8)) == []
    assert "MXNET_USE_FUSION" not in os.environ
    smi([A100_R470])  # another NVRTC (a source build, the NGC container): not judged here
    verdicts = check_gpus([0], library=wheel, cuda_driver=NO_DRIVER)
    assert judge_drivers(verdicts, nvrtc=(12, 4)) == []
    assert "MXNET_USE_FUSION" not in os.environ


def test_dali_needs_a_cuda_12_driver(smi, wheel, monkeypatch):
    monkeypatch.setenv("MXNET_USE_FUSION", "0")
    smi([A100_R520])
    with pytest.raises(GpuError) as e:
        preflight([0], library=wheel, cuda_driver=NO_DRIVER, dali=True)
    assert "\n" not in str(e.value)
    for words in ("GPU 0", "driver 520.61.05", "525.60.13 (CUDA 12.0)", "DALI 1.35",
                  "data.backend recordio"):
        assert words in str(e.value)
    preflight([0], library=wheel, cuda_driver=NO_DRIVER)  # without DALI it runs
    smi([A100_R525])
    preflight([0], library=wheel, cuda_driver=NO_DRIVER, dali=True)


def test_every_fatbin_container_must_hold_a_kernel(smi, tmp_path):
    # one source file compiled for Hopper as well, the others not: the union would say yes
    fatbin = (fatbin_container([(SASS, 80), (SASS, 90)])
              + fatbin_container([(SASS, 80)]) * 2)
    library = write_elf(tmp_path / "libmxnet.so", [(".nv_fatbin", fatbin)])
    smi(["NVIDIA H100 80GB HBM3, 9.0, 550.54.15", A100_R525])
    h100, a100 = check_gpus([0, 1], library=library, cuda_driver=NO_DRIVER)
    assert h100.supported is False and a100.supported is True
    assert "2 of its 3 fatbin containers (one per source file) have no kernel for 9.0" in \
        h100.message()
    # PTX in every container lets it in, compiled by the driver
    fatbin = fatbin_container([(SASS, 80), (SASS, 90)]) + fatbin_container([(PTX, 80)])
    library = write_elf(tmp_path / "libptx.so", [(".nv_fatbin", fatbin)])
    assert check_gpus([0], library=library, cuda_driver=NO_DRIVER)[0].supported is True


def test_gpu_uuids_in_cuda_visible_devices(smi, wheel, monkeypatch, tmp_path):
    smi(["NVIDIA A100-SXM4-80GB, 8.0, 550.54.15", "NVIDIA H200, 9.0, 550.54.15",
         "NVIDIA L4, 8.9, 550.54.15"])
    uuids = ["GPU-8f6c1a2b-0000-1111-2222-333344445555",
             "GPU-1d2e3f40-aaaa-bbbb-cccc-ddddeeeeffff",
             "GPU-8f00beef-9999-8888-7777-666655554444"]
    smi_script = tmp_path / "bin" / "nvidia-smi"
    text = smi_script.read_text().replace(
        "case \"$*\" in\n", "case \"$*\" in\n  *uuid*) printf '" + "\\n".join(uuids) + "\\n' ;;\n")
    smi_script.write_text(text)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{uuids[2]},GPU-8f6c")  # a unique prefix
    names = [v.gpu.name for v in check_gpus(None, library=wheel, cuda_driver=NO_DRIVER)]
    assert names == ["NVIDIA L4", "NVIDIA A100-SXM4-80GB"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1d2e,GPU-8f,2")  # GPU-8f names two
    names = [v.gpu.name for v in check_gpus(None, library=wheel, cuda_driver=NO_DRIVER)]
    assert names == ["NVIDIA H200"]  # CUDA stops at the first entry that names no GPU


def fake_horovod(cuda, nccl):
    return SimpleNamespace(cuda_built=lambda: cuda, nccl_built=lambda: nccl,
                           gloo_built=lambda: True, mpi_built=lambda: False)


def test_gpu_arrays_need_a_horovod_built_with_cuda():
    cpu_build = fake_horovod(False, 0)  # what `make horovod` builds (checked below)
    assert horovod_build(cpu_build) == "CUDA no, NCCL no, Gloo yes, MPI no"
    with pytest.raises(RunError) as e:
        require_gpu_horovod(cpu_build)
    assert "\n" not in str(e.value) and "docs/distributed.md" in str(e.value)
    gpu_build = fake_horovod(True, 21805)
    assert horovod_build(gpu_build) == "CUDA yes, NCCL 2.18.5, Gloo yes, MPI no"
    require_gpu_horovod(gpu_build)
    assert "NCCL 2.7.8" in horovod_build(fake_horovod(True, 2708))


def test_the_installed_horovod_is_a_cpu_build():
    hvd = pytest.importorskip("horovod.mxnet")
    assert horovod_build(hvd).startswith("CUDA no, NCCL no")
    with pytest.raises(RunError, match="built without CUDA"):
        require_gpu_horovod(hvd)


def gpu_check_tool():
    from gpu_standins import ROOT
    spec = importlib.util.spec_from_file_location("gpu_check_tool",
                                                  os.path.join(ROOT, "tools", "gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_first_table_names_libraries_horovod_and_cpus(smi, capsys, monkeypatch):
    tool = gpu_check_tool()
    lines = tool.host_lines()
    assert lines[0] == "CUDA libraries: none (a CPU build of MXNet)"  # this machine's wheel
    if importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali"):
        assert any(line.startswith("nvJPEG") for line in lines)
    assert any(line.startswith("Horovod 0.28.1: CUDA no, NCCL no, Gloo yes") and
               "docs/distributed.md" in line for line in lines)
    assert lines[-1].startswith("CPUs this process may use: ")
    # under horovodrun only rank 0 prints the table; every rank still checks
    smi([])
    for rank, printed in (("1", False), ("0", True)):
        monkeypatch.setenv("HOROVOD_RANK", rank)
        assert tool.run_cli(tool.main, ["--steps", "1"]) == 2  # MXNet sees no GPU here
        assert ("CUDA libraries" in capsys.readouterr().out) is printed


def test_a_horovod_rank_checks_the_build_before_it_takes_a_gpu():
    from gluon_tricks.run.parallel import HorovodRank

    rank = HorovodRank.__new__(HorovodRank)  # without hvd.init(): only contexts() is used
    rank.hvd, rank.local_rank, rank.local_size = fake_horovod(False, 0), 0, 1
    with pytest.raises(RunError, match="built without CUDA"):
        rank.contexts([0])
    assert [c.device_type for c in rank.contexts([])] == ["cpu"]  # no GPU, no check
