"""`install` into a DESTDIR for every zipl layout: names, link targets, modes, contents."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import pytest
from install_helpers import TextReporter, compile_fake_zipl, plan_for, snapshot

from support.buildcli import run_cli
from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import InstallError
from zfcpdump_builder.deploy import install, transaction, zipl

ZDIR = Path("lib/s390-tools/zfcpdump")
ALIASES = {
    "2.7+": ("zfcpdump-image", "zfcpdump-initrd"),
    "2.0-2.6": ("zfcpdump_part.image", "zfcpdump_part.rd"),
    "pre-2.0": (),
}


def check_installed(folder: Path, out: Path, layout: str, link: str) -> None:
    aliases = ALIASES[layout]
    assert sorted(os.listdir(folder)) == sorted(["zfcpdump.image", "zfcpdump.rd", *aliases])
    for name in ("zfcpdump.image", "zfcpdump.rd"):
        path = folder / name
        assert path.is_file() and not path.is_symlink()
        assert path.stat().st_mode & 0o7777 == 0o644
        assert path.read_bytes() == (out / name).read_bytes()
    for alias, base in zip(aliases, ("zfcpdump.image", "zfcpdump.rd"), strict=False):
        path = folder / alias
        if link == "symlink":
            assert path.is_symlink() and os.readlink(path) == base  # relative, same directory
        else:
            assert not path.is_symlink() and path.stat().st_mode & 0o7777 == 0o644
        assert path.read_bytes() == (out / base).read_bytes()


@pytest.mark.parametrize("link", ["symlink", "copy"])
@pytest.mark.parametrize("layout", ["2.7+", "2.0-2.6", "pre-2.0"])
def test_install_each_layout(
    tmp_path: Path,
    out: Path,
    out2: Path,
    default_recipe: recipe.Recipe,
    reporter: TextReporter,
    layout: str,
    link: str,
) -> None:
    dest = tmp_path / "dest"
    opts = install.Options(destdir=dest, layout=layout, link=link)
    plan = install.install_artifacts(out, default_recipe, reporter, opts)
    folder = dest / ZDIR
    assert plan.folder == folder
    check_installed(folder, out, layout, link)
    assert oct(folder.stat().st_mode & 0o777) == oct(0o755)
    install.install_artifacts(out2, default_recipe, reporter, opts)  # an update replaces the pair
    check_installed(folder, out2, layout, link)
    assert "zipl -d /dev/mapper/<WWID>-part1" in reporter.text
    assert f"staged under {dest}" in reporter.text


def test_install_ignores_the_umask(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    old = os.umask(0o077)
    try:
        install.install_artifacts(
            out, default_recipe, reporter, install.Options(destdir=tmp_path, layout="2.7+", link="copy")
        )
    finally:
        os.umask(old)
    for entry in (tmp_path / ZDIR).iterdir():
        assert entry.stat().st_mode & 0o777 == 0o644, entry


def test_dry_run_changes_nothing(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    plan = install.install_artifacts(
        out, default_recipe, reporter, install.Options(destdir=tmp_path / "d", layout="2.7+", dry_run=True)
    )
    assert not (tmp_path / "d").exists()
    assert [e.name for e in plan.entries] == [
        "zfcpdump.image",
        "zfcpdump.rd",
        "zfcpdump-image",
        "zfcpdump-initrd",
    ]
    assert "dry run: nothing was changed" in reporter.text


def test_a_lone_image_is_never_installed(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    (out / "zfcpdump.rd").unlink()
    with pytest.raises(InstallError, match="lacks zfcpdump.rd"):
        install.install_artifacts(
            out, default_recipe, reporter, install.Options(destdir=tmp_path / "d", layout="2.7+")
        )
    assert not (tmp_path / "d").exists()


def test_auto_layout_detects_the_zipl_inside_destdir(
    tmp_path: Path, out: Path, debian_zipl: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    dest = tmp_path / "dest"
    (dest / "sbin").mkdir(parents=True)
    shutil.copy2(debian_zipl, dest / "sbin" / "zipl")
    plan = install.install_artifacts(out, default_recipe, reporter, install.Options(destdir=dest))
    assert plan.target.layout.name == "2.7+" and plan.target.detected is not None
    check_installed(dest / ZDIR, out, "2.7+", "symlink")
    assert "2.16.0-build-20210818" in reporter.text


def test_suse_directory_compiled_into_zipl_is_used(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    dest = tmp_path / "dest"
    (dest / "usr" / "sbin").mkdir(parents=True)
    compile_fake_zipl(
        dest / "usr" / "sbin" / "zipl", "/usr/lib/s390-tools/zfcpdump", "zfcpdump-image", "zfcpdump-initrd"
    )
    install.install_artifacts(out, default_recipe, reporter, install.Options(destdir=dest))
    check_installed(dest / "usr/lib/s390-tools/zfcpdump", out, "2.7+", "symlink")
    assert not (dest / ZDIR).exists()
    assert "warning: zipl reads /usr/lib/s390-tools/zfcpdump" in reporter.text


def test_auto_without_a_target_zipl_says_how_to_choose(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InstallError, match="holds no zipl") as info:
        install.install_artifacts(out, default_recipe, reporter, install.Options(destdir=dest))
    assert "--layout 2.7+" in (info.value.hint or "") and "install.zipl_layout" in info.value.hint
    assert list(dest.iterdir()) == []


def test_recipe_layout_and_install_from_build(tmp_path: Path, out: Path, reporter: TextReporter) -> None:
    path = tmp_path / "old-target.yaml"
    path.write_text(
        "extends: default\ninstall:\n  zipl_layout: 2.0-2.6\n  link: copy\n  dir: /usr/share/zfcpdump\n"
    )
    loaded = recipe.load(path)
    install.install_artifacts(out, loaded, reporter, install.Options(destdir=(tmp_path / "dest").resolve()))
    check_installed(tmp_path / "dest/usr/share/zfcpdump", out, "2.0-2.6", "copy")


def test_destdir_symlink_leading_out_is_refused(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe, reporter: TextReporter
) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "host-lib"
    dest.mkdir()
    outside.mkdir()
    os.symlink(str(outside), dest / "lib")  # an absolute symlink, as in some unpacked images
    with pytest.raises(InstallError, match="leads outside DESTDIR"):
        install.install_artifacts(out, default_recipe, reporter, install.Options(destdir=dest, layout="2.7+"))
    assert list(outside.iterdir()) == []


def test_cli_install(tmp_path: Path, out: Path) -> None:
    dest = tmp_path / "dest"
    run = run_cli("install", "--from", str(out), "--destdir", str(dest), "--layout", "2.7+")
    assert run.code == 0, run.stderr + str(run.events)
    check_installed(dest / ZDIR, out, "2.7+", "symlink")
    names = sorted(e["name"] for e in run.of("artifact"))
    assert names == ["zfcpdump.image", "zfcpdump.rd"]
    texts = [e["text"] for e in run.of("message")]
    assert any("zipl -d /dev/mapper/<WWID>-part1" in t for t in texts)
    assert snapshot(dest / ZDIR)["zfcpdump-initrd"] == ("link", "zfcpdump.rd")


@pytest.mark.skipif(platform.machine() == "s390x", reason="a native s390x host may detect its own zipl")
def test_cli_cross_build_needs_a_layout(tmp_path: Path, out: Path) -> None:
    run = run_cli("install", "--from", str(out), "--dir", str(tmp_path / "zfcpdump"))
    assert run.code == InstallError.exit_code
    error = run.error()
    assert "cross build" in error["message"] and "--layout" in error["hint"]
    assert not (tmp_path / "zfcpdump").exists()


def test_cli_zipl_option_reads_the_real_binary(tmp_path: Path, out: Path, debian_zipl: Path) -> None:
    run = run_cli(
        "install", "--from", str(out), "--destdir", str(tmp_path), "--zipl", str(debian_zipl), "--dry-run"
    )
    assert run.code == 0, run.stderr
    table = next(e for e in run.of("table") if e["title"].startswith("zipl "))
    assert ["layout", "2.7+ (s390-tools 2.7 and later)"] in table["rows"]
    assert ["zfcpdump dir", "/lib/s390-tools/zfcpdump"] in table["rows"]
    assert not (tmp_path / "lib").exists()  # --dry-run


def test_step_order_is_writes_journal_renames_sync_commit(out: Path, tmp_path: Path) -> None:
    plan = plan_for(out, tmp_path, "2.7+", "symlink")
    assert transaction.step_names(plan) == [
        "write/zfcpdump.image",
        "write/zfcpdump.rd",
        "write/zfcpdump-image",
        "write/zfcpdump-initrd",
        "journal",
        "rename/zfcpdump.image",
        "rename/zfcpdump.rd",
        "rename/zfcpdump-image",
        "rename/zfcpdump-initrd",
        "sync",
        "commit",
    ]
    assert zipl.KNOWN_NAMES == (
        "zfcpdump-image",
        "zfcpdump-initrd",
        "zfcpdump_part.image",
        "zfcpdump_part.rd",
        "zfcpdump.image",
        "zfcpdump.rd",
    )


@pytest.mark.parametrize("damage", ["empty rd", "one byte changed", "no manifest", "foreign manifest"])
def test_install_checks_every_file_against_the_manifest(tmp_path: Path, out: Path, damage: str) -> None:
    """An empty or altered zfcpdump.rd would make a dump disk without user space: refused."""
    if damage == "empty rd":
        (out / "zfcpdump.rd").write_bytes(b"")
    elif damage == "one byte changed":
        data = bytearray((out / "zfcpdump.image").read_bytes())
        data[1000] ^= 1
        (out / "zfcpdump.image").write_bytes(bytes(data))
    elif damage == "no manifest":
        (out / "manifest.json").unlink()
    else:
        (out / "manifest.json").write_text('{"outputs": "nope"}')
    dest = tmp_path / "dest"
    run = run_cli("install", "default", "--from", str(out), "--layout", "2.7+", "--destdir", str(dest))
    assert run.code == InstallError.exit_code, run.stderr
    message = run.error()["message"]
    if damage == "empty rd":
        assert "zfcpdump.rd is 0 bytes" in message
    elif damage == "one byte changed":
        assert "zfcpdump.image does not match the sha256" in message
    else:
        assert "manifest.json" in message
    assert not dest.exists(), "nothing may be installed"
