"""Host-side judges of a dump, independent of the writer's code.

- the DOS partition table and the zipl dump superblock, read straight from the disk image;
- an s390x ELF64 core (`zgetdump PART > dump.elf`): its VMCOREINFO note and its memory by
  physical address, read with pyelftools;
- gdb-multiarch on the same core: a memory read and CPU 0's registers.
"""

from __future__ import annotations

import mmap
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from support import elfmem
from zfcpdump_builder.core.store import file_sha256

SB_MAGIC = 0x5A46435044554D50
SB_STRUCT = struct.Struct(">9Q")
CSUM_SEED = 0x12345678


# --- disk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int  # bytes
    ptype: int


def primary_partitions(disk: Path, block: int = 512) -> list[Partition]:
    """The non-empty primary entries of the DOS partition table (little-endian)."""
    with open(disk, "rb") as handle:
        mbr = handle.read(512)
    if mbr[510:512] != b"\x55\xaa":
        return []
    parts = []
    for index in range(4):
        raw = mbr[0x1BE + 16 * index : 0x1BE + 16 * (index + 1)]
        ptype = raw[4]
        lba, count = struct.unpack("<II", raw[8:16])
        if ptype and count:
            parts.append(Partition(index + 1, lba * block, count * block, ptype))
    return parts


def extract(disk: Path, part: Partition, out: Path) -> Path:
    """Copy the bytes of *part* into the regular file *out* (zgetdump wants a partition image)."""
    with open(disk, "rb") as src, open(out, "wb") as dst:
        src.seek(part.start)
        left = part.size
        while left:
            block = src.read(min(left, 1 << 20))
            if not block:
                break
            dst.write(block)
            left -= len(block)
    return out


sha256 = file_sha256


def cksm(data: bytes, seed: int = CSUM_SEED) -> int:
    """The seeded CKSM checksum (end-around carry), as in facts section 4."""
    data += b"\0" * (-len(data) % 4)
    total = seed
    for (word,) in struct.iter_unpack(">I", data):
        total += word
        if total > 0xFFFFFFFF:
            total = (total & 0xFFFFFFFF) + 1
    return total


@dataclass(frozen=True)
class Superblock:
    magic: int
    version: int
    part_start: int
    part_size: int
    dump_offset: int
    dump_size: int
    csum_offset: int
    csum_size: int
    csum: int


def superblock_offset(disk: Path) -> int:
    """The byte offset of the dump superblock, from the zIPL boot_info in the MBR."""
    with open(disk, "rb") as handle:
        mbr = handle.read(0x98)
    if mbr[0:4] != b"zIPL" or mbr[0x70:0x74] != b"zIPL":
        raise ValueError("no zIPL MBR / boot_info")
    return struct.unpack(">Q", mbr[0x78:0x80])[0]


def read_superblock(disk: Path) -> Superblock:
    with open(disk, "rb") as handle:
        handle.seek(superblock_offset(disk))
        return Superblock(*SB_STRUCT.unpack(handle.read(SB_STRUCT.size)))


def superblock_problems(disk: Path, before: Superblock | None = None) -> list[str]:
    """Why the superblock is not valid (empty list when it is), optionally vs. *before*."""
    sb = read_superblock(disk)
    problems = []
    if sb.magic != SB_MAGIC or sb.version != 1:
        problems.append(f"bad magic/version {sb.magic:#x}/{sb.version}")
    with open(disk, "rb") as handle:
        handle.seek(sb.part_start + sb.csum_offset)
        actual = cksm(handle.read(sb.csum_size))
    if actual != sb.csum:
        problems.append(f"checksum {sb.csum:#x} does not match the area ({actual:#x})")
    if before is not None:
        for name in ("part_start", "part_size", "dump_offset", "dump_size", "csum_size"):
            if getattr(sb, name) != getattr(before, name):
                problems.append(f"{name} changed: {getattr(before, name)} -> {getattr(sb, name)}")
    return problems


# --- ELF core -----------------------------------------------------------------------------


def notes(core: Path) -> list[tuple[str, int | str, bytes]]:
    """(name, type, descriptor bytes) of every note in the core's PT_NOTE segments."""
    found = []
    with open(core, "rb") as handle:
        elf = ELFFile(handle)
        for seg in elf.iter_segments():
            if seg.header.p_type != "PT_NOTE":
                continue
            for note in seg.iter_notes():
                desc = note.n_descdata if "n_descdata" in note else note.n_desc
                if isinstance(desc, str):
                    desc = desc.encode("latin-1")
                found.append((note.n_name, note.n_type, bytes(desc)))
    return found


def vmcoreinfo(core: Path) -> dict[str, str]:
    """The VMCOREINFO note as a dict (KEY=value lines); empty when absent."""
    for name, _type, desc in notes(core):
        if name == "VMCOREINFO":
            text = desc.rstrip(b"\0").decode(errors="replace")
            return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {}


def prstatus_count(core: Path) -> int:
    return sum(1 for _n, t, _d in notes(core) if t == "NT_PRSTATUS")


def read_phys(core: Path, paddr: int, size: int) -> bytes:
    """*size* bytes of memory at physical address *paddr*, via the core's PT_LOAD segments."""
    return elfmem.read_physical(core, elfmem.pt_loads(core), paddr, size)


def contains(path: Path, needle: bytes) -> bool:
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mem:
        return mem.find(needle) >= 0


# --- System.map ---------------------------------------------------------------------------


def system_map(path: Path) -> dict[str, int]:
    symbols: dict[str, int] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols.setdefault(parts[2], int(parts[0], 16))
    return symbols


def symbol_at(symbols: dict[str, int], address: int) -> str | None:
    best = None
    for name, value in symbols.items():
        if value <= address and (best is None or value > symbols[best]):
            best = name
    return best


# --- gdb ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GdbView:
    banner: str
    registers: dict[str, int]
    output: str


GDB_REG = re.compile(r"^(pswm|pswa|r\d+)\s+(0x[0-9a-f]+)", re.M)


def gdb_view(core: Path, banner_addr: int, vmlinux: Path | None = None) -> GdbView:
    """Read the string at *banner_addr* and CPU 0's registers with gdb-multiarch."""
    gdb = shutil.which("gdb-multiarch")
    if gdb is None:
        raise FileNotFoundError("gdb-multiarch is not installed")
    argv = [gdb, "-nx", "-batch", "-ex", "set architecture s390:64-bit"]
    if vmlinux is not None:
        argv += ["-ex", f"file {vmlinux}"]
    argv += [
        "-ex",
        f"core-file {core}",
        "-ex",
        "thread 1",
        "-ex",
        f"x/s {banner_addr:#x}",
        "-ex",
        "info registers",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    text = out.stdout + out.stderr
    match = re.search(rf"^{banner_addr:#x}(?: <[^>]*>)?:\s+\"(.*)\"", text, re.M)
    regs = {name: int(value, 16) for name, value in GDB_REG.findall(text)}
    return GdbView(match.group(1) if match else "", regs, text)
