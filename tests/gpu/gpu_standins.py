"""Stand-ins for what a GPU host has, written by the tests themselves: ELF files in the
documented layouts (our own writer, so that the package's reader is checked against the
formats, not against itself), shared libraries compiled by gcc, and a fake nvidia-smi."""
import os
import shutil
import struct
import subprocess
import sys

import pytest

GCC = shutil.which("gcc")
TOOLS_PATH = os.environ.get("PATH", os.defpath)  # gcc's own tools, whatever a test does to PATH
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = 0x400000  # virtual address of file offset 0, so that addresses and offsets differ

FATBIN_MAGIC = 0xBA55ED50
PTX, SASS = 1, 2


def fatbin_entry(kind, sm, payload):
    """One fatbin entry: a 64-byte header (kind, header size, payload size, the SM number
    at byte 28) and ``payload`` padded to 8 bytes."""
    payload += bytes(-len(payload) % 8)
    header = struct.pack("<HHIQIIII", kind, 0x0101, 64, len(payload), 0, 0, 0x000B0007, sm)
    return header + bytes(64 - len(header)) + payload


def fatbin_container(entries):
    """A fatbin container of ``entries`` ((kind, sm) pairs, each with a dummy payload)."""
    body = b"".join(fatbin_entry(kind, sm, f"kernels for {sm}".encode()) for kind, sm in entries)
    return struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body


def write_elf(path, sections=(), needed=(), soname=None, ident=b"\x7fELF\x02\x01\x01\x00"):
    """A 64-bit little-endian ELF shared object at ``path``: ``sections`` ((name, bytes)
    pairs) with a section header table; ``needed``/``soname``: a PT_DYNAMIC segment with
    DT_NEEDED/DT_SONAME entries, its string table addressed through one PT_LOAD segment."""
    dynamic = bool(needed or soname)
    phnum = 2 if dynamic else 0
    at = 64 + 56 * phnum
    out = bytearray(at)
    strtab = b"\0"
    offsets = {}
    for name in list(needed) + ([soname] if soname else []):
        offsets[name] = len(strtab)
        strtab += name.encode() + b"\0"
    strtab_at = len(out)
    out += strtab + bytes(-len(strtab) % 8)
    tags = [(1, offsets[n]) for n in needed] + ([(14, offsets[soname])] if soname else [])
    tags += [(5, BASE + strtab_at), (10, len(strtab)), (0, 0)]
    dynamic_at = len(out)
    out += b"".join(struct.pack("<qQ", t, v) for t, v in tags)
    placed = []
    for name, data in sections:
        out += bytes(-len(out) % 8)
        placed.append((name, len(out), len(data)))
        out += data
    names = b"\0" + b"".join(n.encode() + b"\0" for n, _ in sections) + b".shstrtab\0"
    names_at = len(out)
    out += names + bytes(-len(names) % 8)
    shoff = len(out)
    headers = [bytes(64)]
    name_at = 1
    for name, offset, size in placed:
        headers.append(struct.pack("<IIQQQQIIQQ", name_at, 1, 2, BASE + offset, offset, size,
                                   0, 0, 8, 0))
        name_at += len(name) + 1
    headers.append(struct.pack("<IIQQQQIIQQ", name_at, 3, 0, 0, names_at, len(names),
                               0, 0, 1, 0))
    out += b"".join(headers)
    end = len(out)
    struct.pack_into("<16sHHIQQQIHHHHHH", out, 0, ident, 3, 62, 1, 0, 64 if dynamic else 0,
                     shoff, 0, 64, 56, phnum, 64, len(headers), len(headers) - 1)
    if dynamic:
        struct.pack_into("<IIQQQQQQ", out, 64, 1, 4, 0, BASE, BASE, end, end, 0x1000)
        struct.pack_into("<IIQQQQQQ", out, 120, 2, 6, dynamic_at, BASE + dynamic_at,
                         BASE + dynamic_at, 16 * len(tags), 16 * len(tags), 8)
    with open(path, "wb") as f:
        f.write(out)
    return str(path)


def wheel_library(path, archs=(50, 60, 70, 80, 86), ptx=(), translation_units=3):
    """A stand-in libmxnet.so whose .nv_fatbin holds, per translation unit, SASS for each SM
    of ``archs`` and PTX for each of ``ptx``, with zero padding between two containers."""
    entries = [(SASS, sm) for sm in archs] + [(PTX, sm) for sm in ptx]
    fatbin = b"".join(fatbin_container(entries) + bytes(8) for _ in range(translation_units))
    return write_elf(path, [(".text", b"\xc3" * 16), (".nv_fatbin", fatbin)],
                     needed=("libcudart.so.11.0", "libc.so.6"), soname="libmxnet.so")


def compile_library(folder, soname, source, links=(), filename=None):
    """gcc -shared: ``source`` (C) as folder/``filename`` (default: the soname) with that
    soname, needing the libraries at paths ``links``. Returns its path."""
    os.makedirs(folder, exist_ok=True)
    c_file = os.path.join(folder, (filename or soname) + ".c")
    with open(c_file, "w") as f:
        f.write(source)
    out = os.path.join(folder, filename or soname)
    subprocess.run([GCC, "-shared", "-fPIC", "-o", out, c_file, f"-Wl,-soname,{soname}",
                    "-Wl,--no-as-needed", *links, "-ldl"], check=True,
                   env=dict(os.environ, PATH=TOOLS_PATH))
    return out


def run_python(code, env=None):
    """``code`` in a fresh Python process (the libraries it loads stay out of this one), the
    repository on its path. Returns the CompletedProcess (text)."""
    full_env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=60)
