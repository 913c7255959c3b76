"""The output directory is swapped in one step: never missing, never half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.buildcli import ROOT
from zfcpdump_builder.stages import publish

# Publishes one generation: a staging dir with a manifest naming it, swapped in over OUT.
PUBLISHER = """
import json, os, sys
sys.path.insert(0, {src!r})
from pathlib import Path
from zfcpdump_builder.stages import publish
target = Path(sys.argv[1])
start = int(sys.argv[3])
for generation in range(start, start + int(sys.argv[2])):
    publish.clean_debris(target)
    staging = publish.staging_dir(target)
    staging.mkdir(parents=True)
    (staging / "zfcpdump.rd").write_bytes(b"rd %d" % generation)
    record = {{"manifest_version": 1, "generation": generation,
              "outputs": {{"zfcpdump.rd": {{"size": 0, "sha256": ""}}}}}}
    (staging / "manifest.json").write_text(json.dumps(record))
    publish.swap_in(staging, target, print)
"""


def publisher(
    target: Path, generations: int, *prefix: str, start: int = 0
) -> subprocess.CompletedProcess[str]:
    code = PUBLISHER.format(src=str(ROOT / "src"))
    return subprocess.run(
        [*prefix, sys.executable, "-c", code, str(target), str(generations), str(start)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def generation(target: Path) -> int:
    return json.loads((target / "manifest.json").read_text())["generation"]


def test_an_observer_never_sees_the_output_missing_or_half_written(tmp_path: Path) -> None:
    target = tmp_path / "out" / "default"
    assert publisher(target, 1).returncode == 0
    code = PUBLISHER.format(src=str(ROOT / "src"))
    writer = subprocess.Popen([sys.executable, "-c", code, str(target), "300", "0"])
    seen, gaps = set(), 0
    deadline = time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        try:
            seen.add(generation(target))
            (target / "zfcpdump.rd").read_bytes()
        except FileNotFoundError:
            gaps += 1
    assert writer.wait(timeout=60) == 0
    assert gaps == 0, f"the output directory was missing {gaps} times during 300 publishes"
    assert len(seen) > 10, "the observer should have seen many generations"
    assert generation(target) == 299
    assert sorted(os.listdir(target.parent)) == ["default"], "no staging or old copies are left"


@pytest.mark.parametrize(("kill_at", "expected"), [("renameat2", 0), ("unlinkat", 1)])
def test_a_publish_killed_at_the_swap_leaves_a_whole_build(
    tmp_path: Path, kill_at: str, expected: int
) -> None:
    """strace kills the publisher at the swap itself (renameat2) or right after it, while the
    old copy is being deleted (the first unlinkat): OUT is the whole old or the whole new build."""
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: ./setup.sh test installs it")
    target = tmp_path / "out" / "default"
    assert publisher(target, 1).returncode == 0
    killed = publisher(
        target,
        1,
        "strace",
        "-f",
        "-qq",
        "-o",
        os.devnull,
        "-e",
        f"inject={kill_at}:signal=KILL:when=1",
        start=1,
    )
    assert killed.returncode != 0, "strace should have killed the publisher"
    assert generation(target) == expected  # before the swap: the old build; after it: the new
    assert (target / "zfcpdump.rd").read_bytes() == b"rd %d" % expected
    debris = [p.name for p in target.parent.iterdir() if p.name != "default"]
    assert debris, "the killed publish left its staging or old copy behind"
    assert publisher(target, 1, start=2).returncode == 0  # the next publish sweeps the left-overs
    assert sorted(os.listdir(target.parent)) == ["default"]


def test_debris_that_holds_a_users_file_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "default"
    target.mkdir()
    leftover = tmp_path / ".default.old-999999999"
    leftover.mkdir()
    (leftover / "precious.txt").write_text("not ours")
    publish.clean_debris(target)
    assert (leftover / "precious.txt").is_file()


def test_a_file_dropped_into_the_output_during_the_build_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "default"
    assert publisher(target, 1).returncode == 0
    (target / "notes.txt").write_text("written while the build ran\n")  # after the ownership check
    staging = publish.staging_dir(target)
    staging.mkdir()
    (staging / "zfcpdump.rd").write_bytes(b"rd new")
    (staging / "manifest.json").write_text(
        json.dumps({"manifest_version": 1, "generation": 9, "outputs": {"zfcpdump.rd": {}}})
    )
    warnings: list[str] = []
    publish.swap_in(staging, target, warnings.append)
    assert generation(target) == 9
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".default.kept-")]
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "written while the build ran\n"
    assert warnings and str(kept[0]) in warnings[0]
