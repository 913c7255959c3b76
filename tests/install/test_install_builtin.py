"""`install` of a build whose initramfs is built into the image: the image alone, and no
ramdisk left for zipl to load (an old one would be unpacked over the built-in writer)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from install_helpers import MIB, TextReporter, make_out, snapshot, write_build_manifest

from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import InstallError
from zfcpdump_builder.core.store import file_sha256
from zfcpdump_builder.deploy import install, prepare, transaction, zipl

ZDIR = Path("lib/s390-tools/zfcpdump")
BUILTIN_PLAN = {"initramfs": {"placement": "builtin"}}


def make_builtin_out(folder: Path, tag: str = "b1") -> Path:
    """A fake build output with the initramfs built in: zfcpdump.image and no zfcpdump.rd."""
    folder.mkdir(parents=True, exist_ok=True)
    unit = f"<{tag}:zfcpdump.image>".encode()
    image = folder / "zfcpdump.image"
    image.write_bytes((unit * (2 * MIB // len(unit) + 1))[: 2 * MIB])
    outputs = {"zfcpdump.image": {"sha256": file_sha256(image), "size": image.stat().st_size}}
    write_build_manifest(folder, outputs, plan=BUILTIN_PLAN, placement={"name": "builtin"})
    return folder


@pytest.fixture
def builtin_recipe(tmp_path: Path) -> recipe.Recipe:
    path = tmp_path / "builtin.yaml"
    path.write_text("extends: default\ninitramfs:\n  placement: builtin\n")
    return recipe.load(path)


@pytest.mark.parametrize("link", ["symlink", "copy"])
@pytest.mark.parametrize("layout", sorted(zipl.LAYOUTS))
def test_builtin_over_an_external_install_removes_every_ramdisk(
    tmp_path: Path, default_recipe: recipe.Recipe, builtin_recipe: recipe.Recipe, layout: str, link: str
) -> None:
    dest, reporter = tmp_path / "dest", TextReporter()
    opts = install.Options(destdir=dest, layout=layout, link=link)
    install.install_artifacts(make_out(tmp_path / "external"), default_recipe, reporter, opts)
    folder = dest / ZDIR
    rd_names = {"zfcpdump.rd", zipl.LAYOUTS[layout].rd}
    assert rd_names <= set(os.listdir(folder))
    out = make_builtin_out(tmp_path / "builtin")
    plan = install.install_artifacts(out, builtin_recipe, reporter, opts)
    assert {e.name for e in plan.entries if e.remove} == rd_names
    names = set(os.listdir(folder))
    assert names == {"zfcpdump.image", zipl.LAYOUTS[layout].image}, names
    assert (folder / zipl.LAYOUTS[layout].image).read_bytes() == (out / "zfcpdump.image").read_bytes()
    assert "removed where present" in reporter.text
    # and prepare agrees that zipl now finds the image and no ramdisk
    checks = prepare.artifact_checks(folder, zipl.Target(zipl.LAYOUTS[layout], "/x", "test"), with_rd=False)
    assert not any(c.failed for c in checks), [c.detail for c in checks]


def test_a_failed_builtin_install_keeps_the_old_ramdisk(
    tmp_path: Path, default_recipe: recipe.Recipe, builtin_recipe: recipe.Recipe
) -> None:
    dest, reporter = tmp_path / "dest", TextReporter()
    opts = install.Options(destdir=dest, layout="2.7+", link="symlink")
    install.install_artifacts(make_out(tmp_path / "external"), default_recipe, reporter, opts)
    folder = dest / ZDIR
    before = snapshot(folder)
    out = make_builtin_out(tmp_path / "builtin")
    target = zipl.Target(zipl.LAYOUTS["2.7+"], "/lib/s390-tools/zfcpdump", "test")
    image, rd = install.artifacts(out)
    assert rd is None
    steps = transaction.step_names(transaction.make_plan(image, rd, folder, target, "symlink"))
    assert "remove/zfcpdump-initrd" in steps and "write/zfcpdump.rd" not in steps
    for number in range(1, len(steps)):  # every step but the commit
        with pytest.raises(InstallError):
            install.install_artifacts(
                out, builtin_recipe, reporter, dataclasses.replace(opts, fault=_fault_at(number))
            )
        assert snapshot(folder) == before, f"fault at step {number} ({steps[number - 1]}) left a change"


def _fault_at(step: int) -> transaction.Fault:
    def fault(number: int, name: str) -> None:
        if number == step:
            raise transaction.InjectedFault(f"fault injected at step {number} ({name})")

    return fault


def test_prepare_refuses_a_stale_ramdisk_beside_a_builtin_image(tmp_path: Path) -> None:
    folder = tmp_path / "z"
    folder.mkdir()
    (folder / "zfcpdump-image").write_bytes(b"image")
    (folder / "zfcpdump-initrd").write_bytes(b"old rd")
    checks = prepare.artifact_checks(folder, zipl.Target(zipl.LAYOUTS["2.7+"], "/x", "test"), with_rd=False)
    failed = [c for c in checks if c.failed]
    assert failed and "an old writer would run" in failed[0].detail


def test_an_external_build_without_its_rd_is_still_refused(tmp_path: Path) -> None:
    out = make_out(tmp_path / "external")
    (out / "zfcpdump.rd").unlink()
    with pytest.raises(InstallError, match="lacks zfcpdump.rd"):
        install.artifacts(out)
