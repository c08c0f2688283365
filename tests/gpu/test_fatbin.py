"""The ELF and fatbin reader against files written in the documented layouts
(gpu_standins.py), gcc's output read back by readelf, and the installed CPU wheel."""
import shutil
import subprocess

import pytest
from gpu_standins import (PTX, SASS, compile_library, fatbin_container, needs_gcc,
                          wheel_library, write_elf)

from gluon_tricks.gpu.cuda_libs import find_libmxnet
from gluon_tricks.gpu.fatbin import Arch, ElfError, dynamic_section, read_fatbin


def test_sass_and_ptx_of_every_container(tmp_path):
    tu1 = fatbin_container([(SASS, 50), (SASS, 86), (PTX, 80)])
    tu2 = fatbin_container([(SASS, 50), (SASS, 86)])
    path = write_elf(tmp_path / "lib.so", [(".text", b"\x90" * 8),
                                           (".nv_fatbin", tu1 + bytes(16) + tu2)])
    fatbin = read_fatbin(path)
    assert fatbin.archs == (Arch((5, 0), False), Arch((8, 0), True), Arch((8, 6), False))
    assert (fatbin.containers, fatbin.sass_images, fatbin.ptx_images) == (2, 4, 1)
    assert fatbin.describe() == "sm_50, sm_86, PTX compute_80"


def test_the_wheels_architectures(tmp_path):
    fatbin = read_fatbin(wheel_library(tmp_path / "libmxnet.so"))
    assert [str(a) for a in fatbin.archs] == ["sm_50", "sm_60", "sm_70", "sm_80", "sm_86"]
    assert fatbin.describe() == "sm_50, sm_60, sm_70, sm_80, sm_86, no PTX"
    assert (fatbin.containers, fatbin.sass_images, fatbin.ptx_images) == (3, 15, 0)


def test_two_digit_major_versions(tmp_path):
    path = write_elf(tmp_path / "lib.so", [(".nv_fatbin", fatbin_container(
        [(SASS, 100), (SASS, 120), (PTX, 90)]))])
    assert read_fatbin(path).archs == (Arch((9, 0), True), Arch((10, 0), False),
                                       Arch((12, 0), False))


def test_a_library_without_the_section_holds_nothing(tmp_path):
    fatbin = read_fatbin(write_elf(tmp_path / "cpu.so", [(".text", b"\x90" * 8)]))
    assert fatbin.archs == () and fatbin.containers == 0
    assert fatbin.describe() == "no CUDA kernels (a CPU build)"


def test_the_installed_cpu_wheel():
    library = find_libmxnet()
    if library is None or read_fatbin(library).archs:
        pytest.skip("this environment has a CUDA build of MXNet, not the CPU wheel")
    assert not any(n.startswith("libcudart") for n in dynamic_section(library).needed)


@pytest.mark.parametrize("content, words", [
    (b"# a text file\n" * 8, "not an ELF file"),
    (b"\x7fELF\x01\x01\x01\x00" + bytes(56), "32-bit or big-endian"),
])
def test_a_file_that_is_not_a_64_bit_elf_is_one_line(tmp_path, content, words):
    path = tmp_path / "libmxnet.so"
    path.write_bytes(content)
    with pytest.raises(ElfError) as e:
        read_fatbin(path)
    assert str(path) in str(e.value) and words in str(e.value)
    assert "\n" not in str(e.value)


def test_a_section_that_is_not_fatbin_containers(tmp_path):
    section = fatbin_container([(SASS, 80)]) + b"garbage!" * 4
    with pytest.raises(ElfError, match="no fatbin container at byte 96"):
        read_fatbin(write_elf(tmp_path / "lib.so", [(".nv_fatbin", section)]))


def test_needed_and_soname(tmp_path):
    path = write_elf(tmp_path / "lib.so", needed=("libcudnn.so.8", "libc.so.6"),
                     soname="libmxnet.so")
    assert dynamic_section(path) == ("libmxnet.so", ("libcudnn.so.8", "libc.so.6"))
    assert dynamic_section(write_elf(tmp_path / "bare.so")) == (None, ())


@needs_gcc
@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf is not installed")
def test_needed_and_soname_of_a_gcc_library_as_readelf_reads_them(tmp_path):
    dep = compile_library(tmp_path, "libdep.so.3", "int dep(void) { return 3; }\n")
    path = compile_library(tmp_path, "libtop.so.1", "int top(void) { return 1; }\n", [dep])
    listing = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    needed = tuple(line.split("[")[1].rstrip("]") for line in listing.splitlines()
                   if "(NEEDED)" in line)
    assert "libdep.so.3" in needed
    assert dynamic_section(path) == ("libtop.so.1", needed)
