"""Scenario b: zfcpdump.rd booted directly (no kexec, so no /proc/vmcore and no zcore).

The writer must say "no dump source", leave the disk byte for byte as it was, and power off.
"""

from __future__ import annotations

from pathlib import Path

import dumpcheck as dc
import pytest
import scenario as sc
from tests.support import realzipl, zipldisk

from zfcpdump_builder.deploy.qemu import DEFAULT_FAILURES

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]


def test_no_dump_source_fails_cleanly_and_leaves_the_disk(
    art: sc.Artifacts, e2e_dir: Path, metrics: dict[str, object]
) -> None:
    work = e2e_dir / "nokexec"
    work.mkdir(exist_ok=True)
    disk = realzipl.make_disk(work / "disk.img", 16 * zipldisk.MIB)
    before = dc.sha256(disk.path)
    result = sc.plain(
        art,
        disk.path,
        work / "console.log",
        memory=sc.PLAIN_MIB,
        expect=(sc.WRITER_START, sc.NO_SOURCE),
        failures=(*DEFAULT_FAILURES, sc.SUCCESS),
    )
    metrics[f"plain boot -m {sc.PLAIN_MIB}: 'no dump source' at (s)"] = result.seen.get(sc.NO_SOURCE)
    metrics[f"plain boot -m {sc.PLAIN_MIB}: QEMU ran (s)"] = result.duration
    result.check()
    assert result.exited, "the guest did not power off by itself"
    assert dc.sha256(disk.path) == before, "the disk changed although there was nothing to dump"
