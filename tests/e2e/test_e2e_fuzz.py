"""Fuzzing from real seeds: a disk the real zipl prepared and the real writer filled in the
capture kernel (tests/support/fuzzing.py; the recipe loader's twin is in
tests/spine/test_recipe.py). A bounded number of examples here; `bench/run.py --only fuzz`
runs >= 100,000."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import scenario as sc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support import fuzzing, realzipl, zipldisk

from zfcpdump_builder.deploy import dumpdisk

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def seed_disk(art: sc.Artifacts, first_rd: Path, e2e_dir: Path) -> zipldisk.ZiplDisk:
    work = e2e_dir / "fuzz"
    work.mkdir(exist_ok=True)
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    sc.kdump(art, first_rd, disk.path, work / "console.log", expect=(sc.WRITER_START, sc.SUCCESS)).check()
    return disk


@pytest.fixture(scope="module")
def disk_targets(seed_disk: zipldisk.ZiplDisk, e2e_dir: Path) -> Iterator[dict[str, fuzzing.Target]]:
    targets, patched = fuzzing.disk_targets(seed_disk, e2e_dir / "fuzz")
    yield {t.name: t for t in targets}
    patched.close()


def test_the_seed_is_a_whole_dump_with_every_structure(seed_disk: zipldisk.ZiplDisk) -> None:
    assert dumpdisk.inspect(seed_disk.path)["state"] == "complete"
    spots = fuzzing.disk_fields(seed_disk)
    phdrs = (len(spots["elf"]) - len(fuzzing.EHDR)) // len(fuzzing.PHDR)
    assert len(spots["mbr"]) > len(fuzzing.MBR) and len(spots["superblock"]) == 9
    assert phdrs >= 2, spots["elf"]  # a PT_NOTE and at least one PT_LOAD, plus note headers


@pytest.mark.parametrize("name", ["dumpdisk inspect", "layout", "core"])
@EXAMPLES
@given(rng=st.randoms(use_true_random=False))
def test_mutated_real_disks_raise_only_documented_errors(
    disk_targets: dict[str, fuzzing.Target], name: str, rng: random.Random
) -> None:
    disk_targets[name].one(rng)
