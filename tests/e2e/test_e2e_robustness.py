"""Scenario c: the writer refuses what it must refuse, and an interrupted dump stays invalid.

All three run the real kdump cycle (so /proc/vmcore exists) against a bad or small disk, or
kill the guest (SIGKILL to QEMU: the plug pulled) after the writer's first progress line.
"""

from __future__ import annotations

import re
from pathlib import Path

import dumpcheck as dc
import pytest
import scenario as sc
from tests.support import realzipl, zgetdump, zipldisk

from zfcpdump_builder.deploy.qemu import DEFAULT_FAILURES

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]
BUSY = b"zfcpdump busy\0"


def _workdir(e2e_dir: Path, name: str) -> Path:
    work = e2e_dir / name
    work.mkdir(exist_ok=True)
    return work


def _refused_unchanged(art: sc.Artifacts, first_rd: Path, disk: zipldisk.ZiplDisk, work: Path) -> str:
    """Crash into the rd with *disk* attached; the writer must refuse and leave it unchanged."""
    before = dc.sha256(disk.path)
    result = sc.kdump(
        art,
        first_rd,
        disk.path,
        work / "console.log",
        expect=(sc.WRITER_START, sc.FAILED),
        failures=sc.FAILING_RUN,
    )
    line = sc.failed_line(result)
    assert dc.sha256(disk.path) == before
    return line


def _unprepare(disk: zipldisk.ZiplDisk) -> None:
    """Remove every trace of zipl: MBR header and boot_info, and the superblock."""
    disk.write(0, b"\0" * 0x98)
    disk.write(disk.sb_offset, b"\0" * 72)


def test_unprepared_disk_is_refused_and_unchanged(art: sc.Artifacts, first_rd: Path, e2e_dir: Path) -> None:
    work = _workdir(e2e_dir, "unprepared")
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    _unprepare(disk)
    line = _refused_unchanged(art, first_rd, disk, work)
    assert re.search(r"zipl|dump disk", line, re.I), line


def test_too_small_dump_area_is_refused_and_unchanged(
    art: sc.Artifacts, first_rd: Path, e2e_dir: Path
) -> None:
    work = _workdir(e2e_dir, "toosmall")
    disk = realzipl.make_disk(work / "disk.img", sc.DUMPED_MIB // 2 * zipldisk.MIB)
    line = _refused_unchanged(art, first_rd, disk, work)
    assert re.search(r"larger|too small|does not fit|exceed", line, re.I), line


def test_killed_mid_dump_leaves_an_invalid_dump_and_a_valid_superblock(
    art: sc.Artifacts, first_rd: Path, e2e_dir: Path, zg_root: Path, metrics: dict[str, object]
) -> None:
    work = _workdir(e2e_dir, "killed")
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    sb_before = dc.read_superblock(disk.path)
    bps, _interval = sc.progress_write_bps(art.rd, sc.DUMPED_MIB * zipldisk.MIB)
    result = sc.kdump(
        art,
        first_rd,
        disk.path,
        work / "console.log",
        expect=(sc.WRITER_START,),
        failures=(*DEFAULT_FAILURES, sc.SUCCESS),
        kill_after=sc.PROGRESS,
        write_bps=bps,
    )
    metrics["kill test: killed at (s)"] = result.seen.get(sc.PROGRESS.pattern)
    assert result.killed, (
        "the guest was not killed: no progress line before the end; "
        f"{'; '.join(result.problems())}; writer said: "
        f"{sc.writer_lines(result.console)}"
    )
    result.check()
    part = disk.partition_image(work / "part.img")
    info = zgetdump.info(part, zg_root)
    assert info.returncode != 0, "zgetdump accepted an interrupted dump"
    assert disk.read(disk.dump_start, len(BUSY)) == BUSY, "no busy marker at the dump start"
    assert dc.superblock_problems(disk.path, sb_before) == []
    assert disk.check_sentinels() == []
