"""The copy plan: HSA regions first, then the rest, the ELF header page last.

Ranges are half-open (start, end) byte ranges of the dump source file. The target offset of a
source byte is its source offset plus the dump area start.
"""

from __future__ import annotations

from .elfcore import PT_LOAD, is_elf

HEADER_PAGE = 4096

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .elfcore import Segment

    Range = tuple[int, int]


class Plan:
    """hsa: ranges to copy before the HSA is released; rest: after it; header: last."""

    __slots__ = ("size", "hsa", "rest", "header")

    def __init__(self, size: int, hsa: list[Range], rest: list[Range], header: Range) -> None:
        self.size, self.hsa, self.rest, self.header = size, hsa, rest, header

    def phases(self) -> list[tuple[str, list[Range]]]:
        return [("hsa", self.hsa), ("rest", self.rest), ("header", [self.header])]


def hsa_ranges(segments: Iterable[Segment], hsa_size: int) -> list[Range]:
    """File ranges of PT_LOAD segments that map physical memory below *hsa_size*."""
    out = []
    for seg in segments:
        if seg.type == PT_LOAD and seg.filesz and seg.paddr < hsa_size:
            out.append((seg.offset, seg.offset + min(seg.filesz, hsa_size - seg.paddr)))
    return out


def _merge(ranges: list[Range], low: int, high: int) -> list[Range]:
    merged: list[Range] = []
    for start, end in sorted((max(s, low), min(e, high)) for s, e in ranges):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _complement(ranges: list[Range], low: int, high: int) -> list[Range]:
    out, pos = [], low
    for start, end in ranges:
        if start > pos:
            out.append((pos, start))
        pos = max(pos, end)
    if pos < high:
        out.append((pos, high))
    return out


def make_plan(size: int, hsa: list[Range]) -> Plan:
    """Order the whole file [0, size): *hsa* ranges, the rest, then the header page."""
    head = min(HEADER_PAGE, size)
    first = _merge(hsa, head, size)
    return Plan(size, first, _complement(first, head, size), (0, head))


class Source:
    """The opened dump source: fd, size, header page, copy plan."""

    def __init__(self, path: str, fd: int, size: int, head: bytes) -> None:
        self.path, self.fd, self.size, self.head = path, fd, size, head
        self.elf = is_elf(head)
        self.plan = make_plan(size, [])
