"""Parsers, checksum, copy plan and config: examples plus hypothesis fuzzing (only our errors)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support import vmcore
from tests.support.zipldisk import ckm
from writer_helpers import make_env

from zfcpdump_writer import config
from zfcpdump_writer.copier import AUTO_CHUNK_KIB, auto_chunk_kib, rollup_kib
from zfcpdump_writer.copyplan import HEADER_PAGE, hsa_ranges, make_plan
from zfcpdump_writer.elfcore import PT_LOAD, Segment, parse_notes, segments
from zfcpdump_writer.errors import ConfigError, ElfError, LayoutError
from zfcpdump_writer.layout import (
    check_superblock,
    checksum,
    parse_mbr,
    parse_superblock,
    read_layout,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.binary(max_size=600), st.integers(0, 0xFFFFFFFF))
def test_checksum_matches_reference(data: bytes, seed: int) -> None:
    assert checksum(data, seed) == ckm(data, seed)


def test_checksum_of_zero_page_is_seed() -> None:
    assert checksum(bytes(4096)) == 0x12345678
    assert checksum(b"\xff\xff\xff\xff" * 2, 1) == ckm(b"\xff\xff\xff\xff" * 2, 1) == 1


@pytest.fixture(scope="module")
def good_core(tmp_path_factory) -> bytes:  # noqa: ANN001
    path = tmp_path_factory.mktemp("core") / "core"
    vmcore.write_vmcore(path, [(0, 8192), (1 << 20, 4096)], cpus=1, head=64, tag_stride=4096)
    return path.read_bytes()


def _reader(data: bytes):  # noqa: ANN202
    return lambda off, n: data[off : off + n]


def _parse_core(data: bytes) -> None:
    try:
        list(segments(_reader(data), len(data)))
    except ElfError as exc:
        assert str(exc) and "\n" not in str(exc)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_elf_random(data: bytes) -> None:
    _parse_core(b"\x7fELF\x02\x02" + data if len(data) % 2 else data)


@FUZZ
@given(st.data())
def test_fuzz_elf_mutations(good_core: bytes, data: st.DataObject) -> None:
    core = bytearray(good_core)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, 64 + 3 * 56 - 1))
        core[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(core)))
    _parse_core(bytes(core[:cut]))


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_notes(data: bytes) -> None:
    try:
        notes = parse_notes(data)
    except ElfError:
        return
    assert all(len(n.desc) <= len(data) for n in notes)


@FUZZ
@given(st.binary(max_size=100), st.integers(0, 1 << 40), st.integers(0, 1 << 40))
def test_fuzz_superblock_random(raw: bytes, sb_off: int, disk: int) -> None:
    try:
        check_superblock(parse_superblock(raw), sb_off, disk, 512)
    except LayoutError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(
    st.lists(st.sampled_from([0, 1, 4096, 1 << 20, 1 << 30, (1 << 64) - 1]), min_size=7, max_size=7),
    st.integers(0, 1 << 30),
)
def test_fuzz_superblock_fields(fields: list[int], sb_off: int) -> None:
    raw = struct.pack(">9Q", 0x5A46435044554D50, 1, *fields)
    try:
        sb = parse_superblock(raw)
        check_superblock(sb, sb_off, 1 << 30, 512)
    except LayoutError:
        return
    # accepted: every area lies on the disk and the dump area misses the superblock
    assert sb.part_start + sb.part_size <= 1 << 30
    assert sb.dump_start + sb.dump_size <= sb.part_start + sb.part_size
    assert not (sb.dump_start < sb_off + 72 and sb_off < sb.dump_start + sb.dump_size)


@FUZZ
@given(st.binary(min_size=0, max_size=0x200))
def test_fuzz_mbr(raw: bytes) -> None:
    try:
        info = parse_mbr(raw)
    except LayoutError as exc:
        assert "\n" not in str(exc)
        return
    assert raw[:4] == raw[0x70:0x74] == b"zIPL" and 0 <= info.sb_offset < 1 << 64


@pytest.fixture(scope="module")
def disk_image(tmp_path_factory) -> bytes:  # noqa: ANN001
    env = make_env(
        tmp_path_factory.mktemp("disk"), loads=[(0, 8192)], dump_size=1 << 20, tail=64 << 10, logical=True
    )
    return env.sda.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_layout_mutations(disk_image: bytes, data: st.DataObject) -> None:
    """Mutate MBR, EBRs and the superblock: read_layout accepts or raises LayoutError only."""
    img = bytearray(disk_image)
    sb_off = int.from_bytes(img[0x78:0x80], "big")
    spots = [(0, 512), (1024 * 512, 512), ((4104 - 8) * 512, 512), (sb_off, 72)]
    for _ in range(data.draw(st.integers(1, 6))):
        base, size = data.draw(st.sampled_from(spots))
        img[base + data.draw(st.integers(0, size - 1))] = data.draw(st.integers(0, 255))
    try:
        read_layout(_reader(bytes(img)), len(img), 512)
    except LayoutError as exc:
        assert "\n" not in str(exc)


def test_plan_example() -> None:
    segs = [
        Segment(PT_LOAD, 0x1000, 0, 0, 0x3000, 0x3000),
        Segment(PT_LOAD, 0x4000, 0x2000, 0x2000, 0x4000, 0x4000),
        Segment(PT_LOAD, 0x8000, 0x10000, 0x10000, 0x1000, 0x1000),
    ]
    plan = make_plan(0x9000, hsa_ranges(segs, 0x4000))
    assert plan.hsa == [(0x1000, 0x6000)]
    assert plan.rest == [(0x6000, 0x9000)]
    assert plan.header == (0, HEADER_PAGE)


@given(
    st.integers(1, 1 << 14),
    st.lists(
        st.tuples(st.integers(0, 1 << 14), st.integers(0, 1 << 14), st.integers(0, 1 << 12)), max_size=8
    ),
    st.integers(0, 1 << 14),
)
def test_plan_covers_file_once(size: int, loads: list[tuple[int, int, int]], hsa: int) -> None:
    segs = [Segment(PT_LOAD, off, pa, pa, n, n) for off, pa, n in loads]
    plan = make_plan(size, hsa_ranges(segs, hsa))
    pieces = sorted(plan.hsa + plan.rest + [plan.header])
    pos = 0
    for start, end in pieces:  # disjoint, in order, no gap, covering [0, size)
        assert start == pos and end > start
        pos = end
    assert pos == size
    assert plan.header == (0, min(size, HEADER_PAGE))
    below = {
        b for s in segs if s.paddr < hsa for b in range(s.offset, s.offset + min(s.filesz, hsa - s.paddr))
    }
    wanted = {b for b in below if HEADER_PAGE <= b < size}
    assert {b for start, end in plan.hsa for b in range(start, end)} == wanted


def test_config_roundtrip_and_defaults() -> None:
    text = config.render({"after": "halt", "disk_timeout": 5, "device": "/dev/sdb"})
    parsed = config.parse(text)
    assert parsed["after"] == "halt" and parsed["disk_timeout"] == 5 and parsed["device"] == "/dev/sdb"
    assert parsed["progress_interval"] == 10 and parsed["source"] == "auto"
    assert config.parse("") == config.DEFAULTS
    assert config.parse("# c\n\n debug = 4  # trailing\n")["debug"] == 4


@pytest.mark.parametrize(
    "text,needle",
    [
        ("after = reboot\n", "after must be one of"),
        ("nope = 1\n", "unknown key"),
        ("debug = 9\n", "out of range"),
        ("debug 3\n", "expected key = value"),
        ("debug = 2\ndebug = 3\n", "duplicate"),
        ("device = sda\n", "/dev/ path"),
        ("chunk_kib = 66\n", "out of range"),
        ("disk_timeout = -1\n", "whole number"),
    ],
)
def test_config_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        config.parse(text)


def test_config_render_validates() -> None:
    with pytest.raises(ConfigError, match="after must be one of"):
        config.render({"after": "explode"})
    with pytest.raises(ConfigError, match="unknown key"):
        config.render({"colour": "blue"})


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_config(text: str) -> None:
    try:
        config.parse(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)


ROLLUP = """00400000-7ffd2a9e0000 ---p 00000000 00:00 0                          [rollup]
Rss:                3340 kB
Pss:                3340 kB
Private_Clean:      2412 kB
Private_Dirty:       928 kB
"""


def test_rollup_kib_reads_one_field() -> None:
    assert rollup_kib(ROLLUP, "Private_Dirty") == 928
    assert rollup_kib(ROLLUP, "Rss") == 3340
    assert rollup_kib(ROLLUP, "Swap") is None
    assert rollup_kib("Private_Dirty: lots kB\n", "Private_Dirty") is None


@given(st.text(max_size=300))
def test_rollup_kib_never_raises(text: str) -> None:
    value = rollup_kib(text, "Private_Dirty")
    assert value is None or value >= 0


@given(st.one_of(st.none(), st.integers(min_value=0, max_value=1 << 40)))
def test_auto_chunk_is_a_bounded_power_of_two_within_its_share(available: int | None) -> None:
    chunk = auto_chunk_kib(available)
    low, high = AUTO_CHUNK_KIB
    assert low <= chunk <= high and chunk & (chunk - 1) == 0
    if chunk > low:  # above the floor, the two buffers take at most 1/16 of what was available
        assert available is not None and 2 * chunk <= available // 16
    if available is not None and chunk < high:  # and the next size up would take more
        assert 2 * chunk > available // 32
