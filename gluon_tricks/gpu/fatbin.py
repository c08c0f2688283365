"""The CUDA architectures compiled into a shared library (MXNet's libmxnet.so), read from its
ELF file with the standard library alone, and the rest of the ELF that cuda_libs needs: the
dynamic section's DT_NEEDED and DT_SONAME.

Only 64-bit little-endian ELF is read; that is every platform MXNet's CUDA wheels exist for
(manylinux x86_64). Anything else is an ElfError.

nvcc puts one fatbin container per translation unit into the ``.nv_fatbin`` section, one after
the other. NVIDIA's fatbinary.h defines the container header; the header of each entry in it
is not documented by NVIDIA, and its layout below is the one the open fatbin readers agree on
(all little-endian, offsets in bytes):

    container  0 u32 magic 0xBA55ED50   4 u16 version   6 u16 header size
               8 u64 bytes of entries after the container header
    entry      0 u16 kind (1 PTX, 2 ELF = SASS)         4 u32 header size
               8 u64 payload size (follows the entry header)    28 u32 SM number (86: sm_86)

A CPU build of MXNet has no ``.nv_fatbin`` section.
"""
import struct
from typing import NamedTuple

from ..errors import UserError

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME = 0, 1, 5, 10, 14
FATBIN_SECTION = ".nv_fatbin"
FATBIN_MAGIC = 0xBA55ED50
KIND_PTX, KIND_SASS = 1, 2
NO_KERNELS = "no CUDA kernels"  # how Fatbin.describe() opens for a library without any

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr
SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
DYNAMIC_ENTRY = struct.Struct("<qQ")  # Elf64_Dyn
CONTAINER_HEADER = struct.Struct("<IHHQ")
ENTRY_HEADER = struct.Struct("<HHIQ12xI")  # kind, -, header size, payload size, arch at 28


class ElfError(UserError):
    """A file that should be a shared library cannot be read as one (one line, naming it)."""


class Arch(NamedTuple):
    """One architecture in a fatbin: ``capability`` (major, minor), e.g. (8, 6); ``ptx``:
    True for PTX (the driver JIT-compiles it), False for SASS (machine code)."""
    capability: tuple
    ptx: bool

    def __str__(self):
        major, minor = self.capability
        return f"{'compute' if self.ptx else 'sm'}_{major}{minor}"


class Fatbin(NamedTuple):
    """What a library's ``.nv_fatbin`` holds: ``archs``, the distinct architectures (sorted
    Arch tuples, SASS before PTX of the same capability); ``containers``, ``sass_images`` and
    ``ptx_images``, counts over the whole section (all 0 for a CPU build);
    ``container_archs``, what the containers hold: ((frozenset of Arch, number of containers
    holding exactly those), ...). A device runs the library only if every container has a
    kernel for it, since each container is one source file's kernels."""
    archs: tuple
    containers: int
    sass_images: int
    ptx_images: int
    container_archs: tuple = ()

    def describe(self):
        """E.g. ``sm_50, sm_60, sm_70, sm_80, sm_86, no PTX``."""
        if not self.archs:
            return f"{NO_KERNELS} (a CPU build)"
        sass = [str(a) for a in self.archs if not a.ptx]
        ptx = [str(a) for a in self.archs if a.ptx]
        return ", ".join(sass + (["PTX " + ", ".join(ptx)] if ptx else ["no PTX"]))


class Dynamic(NamedTuple):
    """A shared library's own name (DT_SONAME, None if it has none) and the names of the
    libraries it needs (DT_NEEDED, in the file's order)."""
    soname: object
    needed: tuple


class _Elf:
    """An open 64-bit little-endian ELF file: its program and section headers."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self.file = open(self.path, "rb")
        except OSError as e:
            raise ElfError(f"{self.path}: cannot open ({e.strerror})") from None
        try:
            self._read_headers()
        except ElfError:
            self.file.close()
            raise

    def _read_headers(self):
        ident = self.file.read(ELF_HEADER.size)
        if len(ident) < ELF_HEADER.size or ident[:4] != ELF_MAGIC:
            raise ElfError(f"{self.path}: not an ELF file, so not a shared library")
        if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
            raise ElfError(f"{self.path}: a 32-bit or big-endian ELF file; only 64-bit "
                           "little-endian ELF (x86_64 Linux) is read")
        (_, _, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
         shstrndx) = ELF_HEADER.unpack(ident)
        self.segments = [PROGRAM_HEADER.unpack_from(self.read(phoff + i * phentsize,
                                                              PROGRAM_HEADER.size))
                         for i in range(phnum)]
        self.sections = [SECTION_HEADER.unpack_from(self.read(shoff + i * shentsize,
                                                              SECTION_HEADER.size))
                         for i in range(shnum)]
        self.shstrndx = shstrndx

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def read(self, offset, size):
        """``size`` bytes at file offset ``offset``; ElfError if the file ends before."""
        self.file.seek(offset)
        data = self.file.read(size)
        if len(data) != size:
            raise ElfError(f"{self.path}: truncated (wanted {size} bytes at byte {offset})")
        return data

    def section(self, name):
        """(file offset, size in bytes) of the section called ``name``, or None."""
        if not self.sections or self.shstrndx >= len(self.sections):
            return None
        names_at, names_size = self.sections[self.shstrndx][4:6]
        names = self.read(names_at, names_size)
        for sh_name, _, _, _, offset, size, *_ in self.sections:
            if names[sh_name:names.find(b"\0", sh_name)].decode("latin-1") == name:
                return offset, size
        return None

    def file_offset(self, address):
        """The file offset of virtual ``address``, through the PT_LOAD segment holding it."""
        for p_type, _, offset, vaddr, _, filesz, _, _ in self.segments:
            if p_type == PT_LOAD and vaddr <= address < vaddr + filesz:
                return address - vaddr + offset
        raise ElfError(f"{self.path}: address {address:#x} lies in no loaded segment")


def dynamic_section(path):
    """The Dynamic (soname, needed) of the shared library at ``path``, read through its
    PT_DYNAMIC segment as the dynamic loader does (so stripped libraries are read too); no
    PT_DYNAMIC: Dynamic(None, ())."""
    with _Elf(path) as elf:
        dynamic = [p for p in elf.segments if p[0] == PT_DYNAMIC]
        if not dynamic:
            return Dynamic(None, ())
        _, _, offset, _, _, filesz, _, _ = dynamic[0]
        raw = elf.read(offset, filesz - filesz % DYNAMIC_ENTRY.size)
        entries = []
        for tag, value in DYNAMIC_ENTRY.iter_unpack(raw):
            if tag == DT_NULL:
                break
            entries.append((tag, value))
        strtab = [v for t, v in entries if t == DT_STRTAB]
        strsz = [v for t, v in entries if t == DT_STRSZ]
        if not strtab or not strsz:
            return Dynamic(None, ())
        strings = elf.read(elf.file_offset(strtab[0]), strsz[0])

        def name(at):
            return strings[at:strings.find(b"\0", at)].decode("utf-8", "replace")

        sonames = [name(v) for t, v in entries if t == DT_SONAME]
        return Dynamic(sonames[0] if sonames else None,
                       tuple(name(v) for t, v in entries if t == DT_NEEDED))


def read_fatbin(path):
    """The Fatbin of the shared library at ``path`` (its ``.nv_fatbin`` section; a library
    without one, such as MXNet's CPU wheel, gives an empty Fatbin). Only the headers are read,
    so a 900 MB libmxnet.so takes milliseconds. ElfError (one line) for a file that is not a
    64-bit little-endian ELF or whose section is not made of fatbin containers."""
    with _Elf(path) as elf:
        where = elf.section(FATBIN_SECTION)
        if where is None:
            return Fatbin((), 0, 0, 0)
        start, size = where
        archs, containers, counts = set(), 0, {KIND_PTX: 0, KIND_SASS: 0}
        container_archs = {}
        at, end = start, start + size
        while at + CONTAINER_HEADER.size <= end:
            magic, _, header_size, entries_size = CONTAINER_HEADER.unpack(
                elf.read(at, CONTAINER_HEADER.size))
            if magic == 0:  # padding between containers, should the linker align them
                at += 8
                continue
            if magic != FATBIN_MAGIC or header_size < CONTAINER_HEADER.size:
                raise ElfError(f"{elf.path}: {FATBIN_SECTION} holds no fatbin container at "
                               f"byte {at - start} (magic {magic:#010x}, not {FATBIN_MAGIC:#x})")
            container_end = at + header_size + entries_size
            if container_end > end:
                raise ElfError(f"{elf.path}: the fatbin container at byte {at - start} of "
                               f"{FATBIN_SECTION} runs past the section's end")
            entry, mine = at + header_size, set()
            while entry + ENTRY_HEADER.size <= container_end:
                kind, _, entry_header_size, payload_size, sm = ENTRY_HEADER.unpack(
                    elf.read(entry, ENTRY_HEADER.size))
                if entry_header_size < ENTRY_HEADER.size:
                    raise ElfError(f"{elf.path}: a fatbin entry at byte {entry - start} of "
                                   f"{FATBIN_SECTION} has a {entry_header_size}-byte header")
                if kind in counts:
                    counts[kind] += 1
                    mine.add(Arch((sm // 10, sm % 10), kind == KIND_PTX))
                entry += entry_header_size + payload_size
            archs |= mine
            if mine:
                key = frozenset(mine)
                container_archs[key] = container_archs.get(key, 0) + 1
            containers += 1
            at = container_end
        return Fatbin(tuple(sorted(archs)), containers, counts[KIND_SASS], counts[KIND_PTX],
                      tuple(sorted(container_archs.items(), key=lambda kv: sorted(kv[0]))))
