"""write_cpio: the entry model, determinism, and kernel-safe compression (fast tests)."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import libarchive
import pytest

from support import chroot
from zfcpdump_builder.stages import initramfs
from zfcpdump_builder.stages.initramfs import RdEntry, write_cpio

EPOCH = 1_650_000_000


def sample_entries() -> list[RdEntry]:
    return [
        RdEntry("init", "file", 0o755, b"#!/bin/sh\necho hi\n"),
        RdEntry("dev/console", "chr", 0o600, rdev=(5, 1)),
        RdEntry("dev/null", "chr", 0o666, rdev=(1, 3)),
        RdEntry("usr/lib/libx.so.1", "file", 0o644, b"\x7fELF" + bytes(range(256)) * 40),
        RdEntry("usr/lib/libx.so", "symlink", 0o777, target="libx.so.1"),
        RdEntry("proc", "dir", 0o555),
        RdEntry("etc/empty", "file", 0o600, b""),
    ]


def gnu_listing(raw: bytes) -> list[list[str]]:
    """`cpio -itv --numeric-uid-gid` lines split into fields."""
    result = subprocess.run(
        ["cpio", "-itv", "--numeric-uid-gid", "--quiet"], input=raw, capture_output=True, check=True
    )
    return [line.split() for line in result.stdout.decode().splitlines()]


def newc_headers(raw: bytes) -> list[dict[str, int | str]]:
    """Parse newc headers ourselves (ino, mode, uid, gid, nlink, mtime, size, rdev)."""
    fields = (
        "ino",
        "mode",
        "uid",
        "gid",
        "nlink",
        "mtime",
        "size",
        "devmajor",
        "devminor",
        "rdevmajor",
        "rdevminor",
        "namesize",
        "check",
    )
    out, pos = [], 0
    while True:
        assert raw[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        values = {f: int(raw[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i, f in enumerate(fields)}
        name_at = pos + 110
        name = raw[name_at : name_at + values["namesize"] - 1].decode()
        pos = (name_at + values["namesize"] + 3) & ~3
        pos = (pos + values["size"] + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append({"name": name, **values})


def test_gnu_cpio_sees_modes_owners_devices_and_links(tmp_path: Path) -> None:
    info = write_cpio(sample_entries(), tmp_path / "a.cpio", "none", mtime=EPOCH)
    listing = {
        fields[-1] if "->" not in fields else fields[-3]: fields
        for fields in gnu_listing(info.path.read_bytes())
    }
    assert listing["dev/console"][0] == "crw-------" and listing["dev/console"][4:6] == ["5,", "1"]
    assert listing["dev/null"][0] == "crw-rw-rw-"
    assert listing["init"][0] == "-rwxr-xr-x"
    assert listing["proc"][0] == "dr-xr-xr-x"
    assert listing["usr/lib/libx.so"][0].startswith("l") and listing["usr/lib/libx.so"][-1] == "libx.so.1"
    assert all(fields[2] == "0" and fields[3] == "0" for fields in listing.values())


def test_headers_are_normalised(tmp_path: Path) -> None:
    raw = write_cpio(sample_entries(), tmp_path / "a.cpio", "none", mtime=EPOCH).path.read_bytes()
    headers = newc_headers(raw)
    names = [h["name"] for h in headers]
    assert names == sorted(names, key=lambda n: tuple(n.split("/")))
    assert {"dev", "usr", "usr/lib", "etc"} <= set(names)  # parents were added
    assert [h["ino"] for h in headers] == list(range(1, len(headers) + 1))
    assert {h["mtime"] for h in headers} == {EPOCH}
    assert {(h["uid"], h["gid"], h["devmajor"], h["devminor"], h["check"]) for h in headers} == {
        (0, 0, 0, 0, 0)
    }
    by_name = {h["name"]: h for h in headers}
    assert by_name["usr"]["nlink"] == 3  # ".", its entry in /, and usr/lib's ".."
    assert by_name["usr/lib"]["nlink"] == 2
    assert by_name["init"]["nlink"] == 1
    assert (by_name["dev/console"]["rdevmajor"], by_name["dev/console"]["rdevminor"]) == (5, 1)
    assert by_name["usr/lib/libx.so"]["size"] == len("libx.so.1")


def test_libarchive_reads_back_the_same_entries(tmp_path: Path) -> None:
    info = write_cpio(sample_entries(), tmp_path / "a.cpio.gz", "gzip", mtime=EPOCH)
    seen = {}
    with libarchive.file_reader(str(info.path)) as archive:
        for entry in archive:
            seen[entry.pathname] = (
                entry.isdir,
                entry.issym,
                entry.ischr,
                entry.perm,
                entry.uid,
                b"".join(entry.get_blocks()) if entry.isreg else entry.linkpath,
            )
    assert seen["init"][3:] == (0o755, 0, b"#!/bin/sh\necho hi\n")
    assert seen["dev/null"][2] and seen["usr/lib/libx.so"][1] and seen["proc"][0]
    assert seen["usr/lib/libx.so"][5] == "libx.so.1"


def test_order_of_input_does_not_matter_but_content_does(tmp_path: Path) -> None:
    entries = sample_entries()
    first = write_cpio(entries, tmp_path / "1", "xz", mtime=EPOCH)
    random.Random(7).shuffle(entries)
    second = write_cpio(entries, tmp_path / "2", "xz", mtime=EPOCH)
    assert first.sha256 == second.sha256
    third = write_cpio(entries, tmp_path / "3", "xz", mtime=EPOCH + 1)
    assert third.sha256 != first.sha256


def test_duck_typed_entries_like_the_crashside_ones(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Other:
        path: str
        kind: str
        mode: int = 0o755
        data: bytes = b""
        target: str = ""
        rdev: tuple[int, int] = (0, 0)

    mine = write_cpio([RdEntry("bin/sh", "symlink", 0o777, target="busybox")], tmp_path / "1", "none")
    theirs = write_cpio([Other("bin/sh", "symlink", 0o777, target="busybox")], tmp_path / "2", "none")
    assert mine.sha256 == theirs.sha256


@pytest.mark.parametrize(
    "entries, message",
    [
        ([RdEntry("a", "file"), RdEntry("a", "file")], "duplicate"),
        ([RdEntry("a", "file"), RdEntry("a/b", "file")], "inside it"),
        ([RdEntry("../etc/x", "file")], "bad archive path"),
        ([RdEntry("x", "fifo")], "entry kind"),
    ],
)
def test_bad_entries_are_refused(tmp_path: Path, entries: list[RdEntry], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_cpio(entries, tmp_path / "x", "none")


def big_entries() -> list[RdEntry]:
    rng = random.Random(3)
    blob = bytes(rng.getrandbits(8) for _ in range(300_000)) * 2  # repeats at 300 KB distance
    return [*sample_entries(), RdEntry("blob", "file", 0o644, blob)]


@pytest.mark.parametrize("method", ["gzip", "xz", "zstd", "lz4", "none"])
def test_each_compression_round_trips_with_the_standard_tool(tmp_path: Path, method: str) -> None:
    tool = {"gzip": "gzip", "xz": "xz", "zstd": "zstd", "lz4": "lz4", "none": "cpio"}[method]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    raw = initramfs.cpio_bytes(big_entries(), EPOCH)
    info = write_cpio(big_entries(), tmp_path / f"rd.{method}", method, mtime=EPOCH)
    assert info.compression == method and info.cpio_size == len(raw)
    assert chroot.decompress(info.path.read_bytes()) == raw
    if method != "none":
        assert info.size < len(raw)


def test_gzip_has_no_name_and_no_timestamp(tmp_path: Path) -> None:
    data = write_cpio(sample_entries(), tmp_path / "rd", "gzip").path.read_bytes()
    flags, mtime = data[3], struct.unpack("<I", data[4:8])[0]
    assert flags & 0x08 == 0 and mtime == 0


def test_xz_uses_crc32_and_a_small_dictionary(tmp_path: Path) -> None:
    path = write_cpio(big_entries(), tmp_path / "rd.xz", "xz").path
    out = subprocess.run(
        ["xz", "--robot", "--list", "-vv", str(path)], capture_output=True, text=True, check=True
    ).stdout
    block = [line.split("\t") for line in out.splitlines() if line.startswith("block")]
    assert block and all(b[9] == "CRC32" for b in block)
    filters = " ".join(b[-1] for b in block)
    assert "dict=1MiB" in filters, filters
    summary = [line.split("\t") for line in out.splitlines() if line.startswith("summary")][0]
    assert int(summary[1]) <= (1 << 20) + (1 << 18), "decoder needs more than dict + 256 KiB"


def test_zstd_window_is_at_most_1_mib(tmp_path: Path) -> None:
    if shutil.which("zstd") is None:
        pytest.skip("zstd is not installed")
    path = write_cpio(big_entries(), tmp_path / "rd.zst", "zstd").path
    out = subprocess.run(["zstd", "-lv", str(path)], capture_output=True, text=True, check=True).stdout
    window = next(line for line in out.splitlines() if "Window Size" in line)
    value, unit = window.split(":")[1].split()[:2]
    assert float(value) * {"KiB": 1 << 10, "MiB": 1 << 20, "B": 1}[unit] <= 1 << 20, window


def test_lz4_uses_the_legacy_frame(tmp_path: Path) -> None:
    if shutil.which("lz4") is None:
        pytest.skip("lz4 is not installed")
    data = write_cpio(big_entries(), tmp_path / "rd.lz4", "lz4").path.read_bytes()
    assert data[:4] == b"\x02\x21\x4c\x18"  # 0x184C2102 little-endian: the legacy magic


def test_auto_picks_the_smallest(tmp_path: Path) -> None:
    info = write_cpio(big_entries(), tmp_path / "rd", "auto")
    assert info.compression == min(info.candidates, key=info.candidates.get)
    assert info.size == info.candidates[info.compression] == info.path.stat().st_size
    assert len(info.candidates) >= 3
