"""Synthetic s390x vmcores: big-endian ELF64 ET_CORE, EM_S390, shaped to please zgetdump 2.16.

- program headers at byte 64, one PT_NOTE then the PT_LOADs; p_vaddr == p_paddr;
- a PT_LOAD covers physical address 0 (the caller's first load should start at 0);
- per-CPU notes start with NT_PRSTATUS (336 bytes), then FPREGSET 136, TIMER 8, TODCMP 8,
  TODPREG 4, CTRS 128, PREFIX 4; an optional VMCOREINFO note;
- memory is sparse: each load gets a seeded random head plus a tag every `tag_stride` bytes
  (b"PA" + the physical address), the rest are holes. Multi-GiB cores cost almost no disk.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 4096
NT_PRSTATUS, NT_PRFPREG = 1, 2
S390_NOTES = ((0x301, 8), (0x302, 8), (0x303, 4), (0x304, 128), (0x305, 4))
PRSTATUS_SIZE, FPREGSET_SIZE = 336, 136
PR_PID_AT, PR_REG_AT = 32, 112


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def note(name: bytes, ntype: int, desc: bytes) -> bytes:
    namez = name + b"\0"
    return struct.pack(">III", len(namez), len(desc), ntype) + _pad4(namez) + _pad4(desc)


def cpu_regs(cpu: int) -> bytes:
    """pr_reg of CPU *cpu*: psw mask/addr, 16 gprs, 16 acrs, orig_gpr2 (216 bytes)."""
    psw = struct.pack(">QQ", 0x0705000180000000, 0x100000 + 0x10 * cpu)
    gprs = b"".join(struct.pack(">Q", (cpu << 32) | (0xA0 + i)) for i in range(16))
    acrs = b"".join(struct.pack(">I", (cpu << 8) | i) for i in range(16))
    return psw + gprs + acrs + struct.pack(">Q", cpu)


def cpu_notes(cpu: int) -> bytes:
    prstatus = bytearray(PRSTATUS_SIZE)
    struct.pack_into(">I", prstatus, PR_PID_AT, cpu + 1)
    prstatus[PR_REG_AT : PR_REG_AT + 216] = cpu_regs(cpu)
    out = note(b"CORE", NT_PRSTATUS, bytes(prstatus))
    out += note(b"CORE", NT_PRFPREG, bytes((cpu + i) & 0xFF for i in range(FPREGSET_SIZE)))
    for ntype, size in S390_NOTES:
        out += note(b"LINUX", ntype, bytes([cpu + 1]) * size)
    return out


@dataclass
class Load:
    paddr: int
    size: int
    offset: int = 0


@dataclass
class Vmcore:
    path: Path
    size: int
    loads: list[Load]
    cpus: int
    notes_offset: int
    notes_size: int
    extra: dict[str, int] = field(default_factory=dict)

    def memory(self, paddr: int, length: int) -> bytes:
        """*length* bytes of physical memory at *paddr* as stored in this core."""
        for load in self.loads:
            if load.paddr <= paddr and paddr + length <= load.paddr + load.size:
                with open(self.path, "rb") as handle:
                    handle.seek(load.offset + paddr - load.paddr)
                    return handle.read(length)
        raise KeyError(f"paddr {paddr:#x}+{length} not in one load")


def _ehdr(phnum: int) -> bytes:
    ident = b"\x7fELF" + bytes([2, 2, 1, 0]) + b"\0" * 8
    return struct.pack(">16sHHIQQQIHHHHHH", ident, 4, 22, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)


def _phdr(ptype: int, offset: int, addr: int, size: int, flags: int = 7) -> bytes:
    return struct.pack(">IIQQQQQQ", ptype, flags, offset, addr, addr, size, size, 0)


def _notes(cpus: int, vmcoreinfo: bool) -> bytes:
    data = b"".join(cpu_notes(cpu) for cpu in range(cpus))
    if vmcoreinfo:
        data += note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0-synthetic\nPAGESIZE=4096\n")
    return data


def _fill(handle: object, load: Load, rng: random.Random, head: int, tag_stride: int) -> None:
    head = min(head, load.size)
    handle.seek(load.offset)
    handle.write(rng.randbytes(head))
    for pa in range(load.paddr - load.paddr % tag_stride, load.paddr + load.size, tag_stride):
        if pa >= load.paddr + head:
            handle.seek(load.offset + pa - load.paddr)
            avail = load.paddr + load.size - pa
            handle.write((b"PA" + pa.to_bytes(8, "big"))[:avail])


def write_vmcore(
    path: Path,
    loads: list[tuple[int, int]],
    cpus: int = 2,
    vmcoreinfo: bool = False,
    notes_page: bool = False,
    seed: int = 1,
    head: int = 64 << 10,
    tag_stride: int = 1 << 20,
) -> Vmcore:
    """Write a sparse core with PT_LOADs for the (paddr, size) pairs in *loads*.

    Notes follow the program headers (inside the header page) unless *notes_page*, which puts
    them at 0x1000 like a kdump /proc/vmcore. Loads start page aligned after the notes.
    """
    notes = _notes(cpus, vmcoreinfo)
    phnum = 1 + len(loads)
    notes_off = PAGE if notes_page else 64 + 56 * phnum
    pos = -(-(notes_off + len(notes)) // PAGE) * PAGE
    items = []
    for paddr, size in loads:
        items.append(Load(paddr, size, pos))
        pos += -(-size // PAGE) * PAGE
    size = items[-1].offset + items[-1].size if items else pos
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        handle.truncate(size)
        handle.write(_ehdr(phnum) + _phdr(4, notes_off, 0, len(notes), 0))
        handle.write(b"".join(_phdr(1, ld.offset, ld.paddr, ld.size) for ld in items))
        handle.seek(notes_off)
        handle.write(notes)
        for load in items:
            _fill(handle, load, rng, head, tag_stride)
    return Vmcore(Path(path), size, items, cpus, notes_off, len(notes))


def truncate(core: Vmcore, new_size: int) -> None:
    os.truncate(core.path, new_size)
