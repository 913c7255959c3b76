"""Big-endian ELF64 s390x core files: header, program headers (streamed), notes.

Only program headers are trusted (section headers of some producers are broken). Every
offset is checked against the file size, so a truncated or corrupt core gives an ElfError.
"""

from __future__ import annotations

from struct import Struct

from .errors import ElfError

EHDR = Struct(">16sHHIQQQIHHHHHH")
PHDR = Struct(">IIQQQQQQ")
PHDR_SIZE = PHDR.size  # 56
EM_S390 = 22
ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
PN_XNUM = 0xFFFF
NOTE = Struct(">III")
PHDR_BATCH = 1024
U64 = 1 << 64

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Reader = Callable[[int, int], bytes]


def is_elf(head: bytes) -> bool:
    return head[:4] == b"\x7fELF"


def parse_header(head: bytes, size: int) -> tuple[int, int]:
    """Validate the ELF header of an s390x core of *size* bytes; return (phoff, phnum)."""
    if len(head) < EHDR.size or size < EHDR.size:
        raise ElfError(f"dump source too short for an ELF header ({size} bytes)")
    ident, etype, machine, _v, _e, phoff, _s, _f, _eh, phentsize, phnum, *_ = EHDR.unpack_from(head)
    if ident[:4] != b"\x7fELF":
        raise ElfError(f"dump source is not ELF (magic {ident[:4].hex()})")
    if ident[4] != 2 or ident[5] != 2:
        raise ElfError(f"dump source is not big-endian ELF64 (class {ident[4]}, data {ident[5]})")
    if etype != ET_CORE or machine != EM_S390:
        raise ElfError(f"dump source is not an s390x core (type {etype}, machine {machine})")
    if phentsize != PHDR_SIZE or phnum == 0 or phnum == PN_XNUM:
        raise ElfError(f"unsupported program headers (entsize {phentsize}, count {phnum})")
    if phoff < EHDR.size or phoff + phnum * PHDR_SIZE > size:
        raise ElfError(
            f"program headers at {phoff} ({phnum} x {PHDR_SIZE}) exceed the core ({size} bytes): truncated?"
        )
    return phoff, phnum


class Segment:
    __slots__ = ("type", "offset", "paddr", "filesz", "memsz", "vaddr")

    def __init__(self, ptype: int, offset: int, vaddr: int, paddr: int, filesz: int, memsz: int) -> None:
        self.type, self.offset, self.vaddr, self.paddr = ptype, offset, vaddr, paddr
        self.filesz, self.memsz = filesz, memsz

    @property
    def end(self) -> int:
        return self.offset + self.filesz


def _segment(raw: bytes, pos: int, index: int, size: int) -> Segment:
    ptype, _flags, offset, vaddr, paddr, filesz, memsz, _align = PHDR.unpack_from(raw, pos)
    seg = Segment(ptype, offset, vaddr, paddr, filesz, memsz)
    if ptype in (PT_LOAD, PT_NOTE) and seg.end > size:
        raise ElfError(
            f"segment {index} (offset {offset:#x}, {filesz} bytes) ends beyond "
            f"the core ({size} bytes): truncated"
        )
    if ptype == PT_LOAD and paddr + filesz > U64:
        raise ElfError(f"segment {index} wraps the physical address space")
    return seg


def segments(read: Reader, size: int, head: bytes | None = None) -> Iterator[Segment]:
    """Yield the program headers of the core, validated, reading the table in batches."""
    phoff, phnum = parse_header(head if head is not None else read(0, EHDR.size), size)
    for first in range(0, phnum, PHDR_BATCH):
        count = min(PHDR_BATCH, phnum - first)
        raw = read(phoff + first * PHDR_SIZE, count * PHDR_SIZE)
        if len(raw) != count * PHDR_SIZE:
            raise ElfError("short read of the program headers: truncated core")
        for i in range(count):
            yield _segment(raw, i * PHDR_SIZE, first + i, size)


class Note:
    __slots__ = ("name", "type", "desc")

    def __init__(self, name: bytes, ntype: int, desc: bytes) -> None:
        self.name, self.type, self.desc = name, ntype, desc


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def parse_notes(data: bytes) -> list[Note]:
    """Split a PT_NOTE segment into notes (4-byte aligned, big-endian headers)."""
    notes, pos = [], 0
    while pos + NOTE.size <= len(data):
        namesz, descsz, ntype = NOTE.unpack_from(data, pos)
        name_at = pos + NOTE.size
        desc_at = name_at + _pad4(namesz)
        end = desc_at + _pad4(descsz)
        if desc_at + descsz > len(data):
            raise ElfError(f"note at {pos} (name {namesz}, desc {descsz} bytes) overruns its segment")
        notes.append(
            Note(data[name_at : name_at + namesz].rstrip(b"\0"), ntype, data[desc_at : desc_at + descsz])
        )
        pos = end
    return notes
