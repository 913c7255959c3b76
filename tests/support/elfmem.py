"""Read an ELF core's memory by physical address (pyelftools), for judging converted dumps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

MIB = 1 << 20
Loads = list[tuple[int, int, int]]


def pt_loads(path: Path) -> Loads:
    """(paddr, file offset, file size) of every PT_LOAD segment."""
    with open(path, "rb") as handle:
        return [
            (s["p_paddr"], s["p_offset"], s["p_filesz"])
            for s in ELFFile(handle).iter_segments()
            if s["p_type"] == "PT_LOAD"
        ]


def read_physical(path: Path, loads: Loads, paddr: int, size: int) -> bytes:
    """*size* bytes at physical address *paddr*; AssertionError when no segment holds them."""
    for start, offset, length in loads:
        if start <= paddr and paddr + size <= start + length:
            with open(path, "rb") as handle:
                handle.seek(offset + paddr - start)
                return handle.read(size)
    raise AssertionError(f"paddr {paddr:#x}+{size} missing from {path}")


def assert_memory_matches(original: Any, converted: Path) -> Loads:
    """Every PT_LOAD of the synthetic *original* (a vmcore.Vmcore) reads back from *converted*,
    compared MiB by MiB by physical address. Returns the converted core's loads."""
    loads = pt_loads(converted)
    for load in original.loads:
        for paddr in range(load.paddr, load.paddr + load.size, MIB):
            size = min(MIB, load.paddr + load.size - paddr)
            assert read_physical(converted, loads, paddr, size) == original.memory(paddr, size), hex(paddr)
    return loads
