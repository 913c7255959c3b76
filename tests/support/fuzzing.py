"""Structure-aware fuzzing of everything that reads a dump disk, a core or a recipe.

The seeds are real: a disk the real zipl prepared and the real writer filled from a real
/proc/vmcore, and the project's own recipes. A mutation picks fields of the seed's structure
(zipl's MBR header and boot_info, the DOS partition table, the dump superblock, the ELF
header, the program headers, the note headers; a recipe's values and lines) and sets them to
boundary values, flips bits, fills them at random or nudges them. A *crash* is any exception
but the documented ones; `Target.run` raises `Crash` for it.

The same targets serve the tests (hypothesis draws the `random.Random`, a bounded number of
examples) and `bench/run.py --only fuzz` (a seeded loop of >= 100,000 cases).
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import zipldisk

from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import BuildError
from zfcpdump_builder.deploy import dumpdisk
from zfcpdump_writer import diskinfo, elfcore, layout
from zfcpdump_writer.errors import DumpError

BOUNDARY = (0, 1, 2, 7, 0x38, 0x7F, 0x80, 0xFF, 0x200, 0x1000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF)
BOUNDARY += (1 << 32, 1 << 40, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
YAML_VALUES = ("", "~", "-1", "0", "1e999", "0x10", "true", "[", "{", "'", '"', "[]", "{a: b}", "*x", "&x 1")
YAML_VALUES += ("!!python/object/apply:os.system ['true']", "9" * 400, "[" * 200, "{a: {b: {c: [1, 2]}}}")
YAML_VALUES += ("-", "? x", "|", ">", "%YAML 1.1", "\t", "\u00e9\u00ff", "..", "../../../etc/passwd")


class Crash(AssertionError):
    """An input made a parser fail in a way it must not: any exception not documented."""


@dataclass(frozen=True)
class Field:
    offset: int
    size: int


def _set(data: bytearray, spot: Field, value: int) -> None:
    data[spot.offset : spot.offset + spot.size] = (value % (1 << (8 * spot.size))).to_bytes(spot.size, "big")


def mutate(seed: bytes, fields: Sequence[Field], rng: random.Random, cut: bool = True) -> bytes:
    """1-4 field mutations of *seed*; with *cut*, sometimes cut short at or inside a field."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        spot = rng.choice(fields)
        if spot.offset + spot.size > len(data):
            continue
        old = int.from_bytes(data[spot.offset : spot.offset + spot.size], "big")
        action = rng.randrange(4)
        if action == 0:
            _set(data, spot, rng.choice(BOUNDARY))
        elif action == 1:
            _set(data, spot, old ^ (1 << rng.randrange(8 * spot.size)))
        elif action == 2:
            data[spot.offset : spot.offset + spot.size] = rng.randbytes(spot.size)
        else:
            _set(data, spot, old + rng.choice((-4096, -512, -56, -1, 1, 56, 512, 4096)))
    if cut and rng.random() < 0.1:
        spot = rng.choice(fields)
        del data[min(len(data), spot.offset + rng.randrange(spot.size + 1)) :]
    return bytes(data)


def _fields(offset: int, layout_: Sequence[tuple[int, int]]) -> list[Field]:
    return [Field(offset + off, size) for off, size in layout_]


MBR = ((0, 4), (4, 4), (0x10, 8), (0x18, 2), (0x1A, 2), (0x70, 4), (0x74, 1), (0x75, 1), (0x76, 1), (0x78, 8))
PART_ENTRY = ((0, 1), (4, 1), (8, 4), (12, 4))
SUPERBLOCK = tuple((8 * i, 8) for i in range(9))
EHDR = (
    (0, 4),
    (4, 1),
    (5, 1),
    (6, 1),
    (16, 2),
    (18, 2),
    (20, 4),
    (32, 8),
    (40, 8),
    (52, 2),
    (54, 2),
    (56, 2),
)
PHDR = ((0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (48, 8))
NOTE = ((0, 4), (4, 4), (8, 4))


def disk_fields(disk: zipldisk.ZiplDisk) -> dict[str, list[Field]]:
    """The structure of a real dump disk, found by reading it: where each field is."""
    table = [f for i in range(4) for f in _fields(0x1BE + 16 * i, PART_ENTRY)] + [Field(0x1FE, 2)]
    head = disk.read(disk.dump_start, 4096)
    phoff, phnum = struct.unpack_from(">Q", head, 32)[0], struct.unpack_from(">H", head, 56)[0]
    elf = _fields(disk.dump_start, EHDR)
    notes: list[Field] = []
    for i in range(min(phnum, 8)):
        at = phoff + 56 * i
        elf += _fields(disk.dump_start + at, PHDR)
        p_type, _flags, p_offset, *_rest, p_filesz = struct.unpack_from(">IIQQQQ", head, at)
        if p_type == elfcore.PT_NOTE:
            notes += _note_fields(disk, disk.dump_start + p_offset, p_filesz)
    return {
        "mbr": _fields(0, MBR) + table,
        "superblock": _fields(disk.sb_offset, SUPERBLOCK),
        "elf": elf + notes,
    }


def _note_fields(disk: zipldisk.ZiplDisk, start: int, size: int) -> Iterator[Field]:
    offset, count = 0, 0
    while offset + 12 <= size and count < 6:
        namesz, descsz, _type = struct.unpack(">III", disk.read(start + offset, 12))
        yield from _fields(start + offset, NOTE)
        offset += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
        count += 1


@dataclass
class Target:
    """One parser under fuzz: `run(rng)` makes one mutated input and judges the outcome."""

    name: str
    run: Callable[[random.Random], None]
    cases: int = 0
    crashes: list[str] = field(default_factory=list)

    def one(self, rng: random.Random) -> None:
        self.cases += 1
        try:
            self.run(rng)
        except Crash:
            raise
        except Exception as exc:  # noqa: BLE001 - anything undocumented is the finding
            raise Crash(f"{self.name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}") from exc


class PatchedDisk:
    """A private sparse copy of a real dump disk; mutations go in and are put back."""

    def __init__(self, disk: zipldisk.ZiplDisk, work: Path) -> None:
        self.path = work / "fuzz-disk.img"
        zipldisk.copy_sparse(disk.path, 0, disk.disk_size, self.path)
        self.size = disk.disk_size
        self.fd = os.open(self.path, os.O_RDWR)

    def apply(self, spots: Sequence[Field], rng: random.Random) -> Callable[[], None]:
        """Mutate the bytes around *spots* (one region: a sector or a few) in place; return
        the undo."""
        lo = min(f.offset for f in spots)
        hi = max(f.offset + f.size for f in spots)
        seed = os.pread(self.fd, hi - lo, lo)
        local = [Field(f.offset - lo, f.size) for f in spots]
        os.pwrite(self.fd, mutate(seed, local, rng, cut=False), lo)
        return lambda: os.pwrite(self.fd, seed, lo)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        os.close(self.fd)


def disk_targets(disk: zipldisk.ZiplDisk, work: Path) -> tuple[list[Target], PatchedDisk]:
    """`dumpdisk inspect` (never raises), the writer's layout check (LayoutError only) and
    its ELF reader (DumpError only), each on mutations of one real dump disk."""
    spots = disk_fields(disk)
    patched = PatchedDisk(disk, work)

    def inspect(rng: random.Random) -> None:
        groups = rng.sample(sorted(spots), rng.randint(1, len(spots)))
        undo = [patched.apply(spots[group], rng) for group in groups]
        try:
            info = diskinfo.inspect(str(patched.path))
            dumpdisk.rows(info)
        finally:
            for step in reversed(undo):
                step()

    def read_layout(rng: random.Random) -> None:
        groups = rng.sample(["mbr", "superblock"], rng.randint(1, 2))
        undo = [patched.apply(spots[group], rng) for group in groups]
        try:
            layout.read_layout(patched.read, patched.size, 512)
        except layout.LayoutError as exc:
            _one_line(exc)
        finally:
            for step in reversed(undo):
                step()

    head_len = 64 << 10
    base = disk.dump_start
    core = patched.read(base, head_len)
    elf_spots = [Field(f.offset - base, f.size) for f in spots["elf"] if f.offset + f.size <= base + head_len]

    def read_core(rng: random.Random) -> None:
        data = mutate(core, elf_spots, rng)
        size = rng.choice((len(data), disk.dump_size, rng.randrange(1, disk.dump_size)))
        try:
            head = data[:4096]
            elfcore.parse_header(head, size)
            for seg in elfcore.segments(lambda off, n: data[off : off + n], size, head):
                if seg.type == elfcore.PT_NOTE and seg.offset < len(data):
                    elfcore.parse_notes(data[seg.offset : seg.offset + min(seg.filesz, 1 << 16)])
        except DumpError as exc:
            _one_line(exc)

    targets = [Target("dumpdisk inspect", inspect), Target("layout", read_layout), Target("core", read_core)]
    return targets, patched


def _one_line(exc: Exception) -> None:
    if not str(exc) or "\n" in str(exc):
        raise Crash(f"a documented error without a one-line message: {exc!r}")


def recipe_target(recipes: Path, work: Path) -> Target:
    """The recipe loader on line- and value-level mutations of the real recipes: a
    RecipeError (or another of the builder's own errors, shown without a traceback) with a message, never a traceback."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-recipes.", dir=work))
    for path in recipes.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    seeds = {p.name: p.read_text().splitlines() for p in sorted(folder.glob("*.yaml"))}

    def load(rng: random.Random) -> None:
        name = rng.choice(sorted(seeds))
        lines = list(seeds[name])
        for _ in range(rng.randint(1, 3)):
            _mutate_line(lines, rng)
        target = folder / f"fuzzed-{name}"
        target.write_text("\n".join(lines) + "\n")
        try:
            recipe.load(target)
        except BuildError as exc:
            if not exc.message:
                raise Crash(f"{type(exc).__name__} without a message") from exc

    return Target("recipe loader", load)


def _mutate_line(lines: list[str], rng: random.Random) -> None:
    at = rng.randrange(len(lines))
    line = lines[at]
    action = rng.randrange(5)
    if action == 0 and ":" in line:
        key = line.split(":", 1)[0]
        lines[at] = f"{key}: {rng.choice(YAML_VALUES)}"
    elif action == 1:
        del lines[at]
    elif action == 2:
        lines.insert(at, line)
    elif action == 3:
        lines[at] = " " * rng.choice((0, 1, 2, 3, 4, 8)) + line.lstrip()
    else:
        lines.insert(
            at, f"{rng.choice(('kernel', 'writer', 'budget', 'zzz', 'set'))}: {rng.choice(YAML_VALUES)}"
        )
    if not lines:
        lines.append(rng.choice(YAML_VALUES))
