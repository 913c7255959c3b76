"""Both-or-neither: a fault or a crash at any step keeps the previous pair; odd filesystems."""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

import pytest
from install_helpers import TextReporter, mount, need_root, plan_for, snapshot, umount

from support.buildcli import run_cli
from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import InstallError
from zfcpdump_builder.deploy import install, transaction

ZDIR = Path("lib/s390-tools/zfcpdump")
COMBOS = [("2.7+", "symlink"), ("2.7+", "copy"), ("2.0-2.6", "symlink"), ("pre-2.0", "copy")]


def do_install(
    out: Path,
    dest: Path,
    loaded: recipe.Recipe,
    layout: str,
    link: str,
    fault: transaction.Fault | None = None,
) -> transaction.InstallPlan:
    opts = install.Options(destdir=dest, layout=layout, link=link, fault=fault)
    return install.install_artifacts(out, loaded, TextReporter(), opts)


def fault_at(number: int, exc: type[BaseException] = transaction.InjectedFault) -> transaction.Fault:
    def fault(n: int, name: str) -> None:
        if n == number:
            raise exc(f"injected at {n} {name}")

    return fault


def steps(out: Path, layout: str, link: str) -> list[str]:
    return transaction.step_names(plan_for(out, Path("/unused"), layout, link))


def visible(folder: Path) -> dict[str, tuple[str, str]]:
    return {k: v for k, v in snapshot(folder).items() if not k.startswith(".")}


@pytest.mark.parametrize(("layout", "link"), COMBOS)
def test_a_fault_at_every_step_keeps_the_previous_pair(
    tmp_path: Path, out: Path, out2: Path, default_recipe: recipe.Recipe, layout: str, link: str
) -> None:
    dest = tmp_path / "dest"
    folder = do_install(out, dest, default_recipe, layout, link).folder
    before = snapshot(folder)  # hidden files included: no temp file, backup or journal may remain
    names = steps(out2, layout, link)
    for number, name in enumerate(names, start=1):
        with pytest.raises(InstallError, match=rf"step {number} \({re.escape(name)}\).*unchanged"):
            do_install(out2, dest, default_recipe, layout, link, fault_at(number))
        assert snapshot(folder) == before, f"after a fault at step {number} ({name})"
    do_install(out2, dest, default_recipe, layout, link)
    assert (folder / "zfcpdump.rd").read_bytes() == (out2 / "zfcpdump.rd").read_bytes()


def test_a_fault_in_a_first_install_leaves_nothing(
    tmp_path: Path, out: Path, default_recipe: recipe.Recipe
) -> None:
    dest = tmp_path / "dest"
    for number in range(1, len(steps(out, "2.7+", "symlink")) + 1):
        with pytest.raises(InstallError):
            do_install(out, dest, default_recipe, "2.7+", "symlink", fault_at(number))
        assert snapshot(dest / ZDIR) == {}, number


def test_the_hook_sees_every_step_in_order(tmp_path: Path, out: Path, default_recipe: recipe.Recipe) -> None:
    seen: list[tuple[int, str]] = []
    do_install(out, tmp_path, default_recipe, "2.7+", "symlink", lambda n, s: seen.append((n, s)))
    assert seen == list(enumerate(steps(out, "2.7+", "symlink"), start=1))


def test_ctrl_c_mid_install_rolls_back_and_propagates(
    tmp_path: Path, out: Path, out2: Path, default_recipe: recipe.Recipe
) -> None:
    folder = do_install(out, tmp_path, default_recipe, "2.7+", "symlink").folder
    before = snapshot(folder)
    rename_rd = steps(out2, "2.7+", "symlink").index("rename/zfcpdump.rd") + 1
    with pytest.raises(KeyboardInterrupt):
        do_install(out2, tmp_path, default_recipe, "2.7+", "symlink", fault_at(rename_rd, KeyboardInterrupt))
    assert snapshot(folder) == before


@pytest.mark.slow
def test_a_crash_at_every_step_is_recoverable(tmp_path: Path, out: Path, out2: Path) -> None:
    """SIGKILL-like exits (no cleanup at all): the journal lets the next run roll back."""
    dest = tmp_path / "dest"
    base = ["install", "--destdir", str(dest), "--layout", "2.7+"]
    assert run_cli(*base, "--from", str(out)).code == 0
    folder = dest / ZDIR
    before = snapshot(folder)
    names = steps(out2, "2.7+", "symlink")
    for number, name in enumerate(names, start=1):
        env = {transaction.FAULT_ENV: str(number), transaction.FAULT_MODE_ENV: "crash"}
        assert run_cli(*base, "--from", str(out2), env=env).code == transaction.FAULT_EXIT
        after_journal = number > names.index("journal") + 1
        assert transaction.pending(folder) == after_journal, name
        if not after_journal:  # nothing visible changed yet, only hidden temp files remain
            assert visible(folder) == {k: v for k, v in before.items() if not k.startswith(".")}, name
        assert transaction.recover(folder) == after_journal
        assert snapshot(folder) == before, f"after a crash at step {number} ({name})"
    env = {
        transaction.FAULT_ENV: str(names.index("rename/zfcpdump.rd") + 1),
        transaction.FAULT_MODE_ENV: "crash",
    }
    assert run_cli(*base, "--from", str(out2), env=env).code == transaction.FAULT_EXIT
    run = run_cli(*base, "--from", str(out2))  # rolls back first, then installs
    assert run.code == 0, run.stderr
    assert any("was rolled back first" in e["text"] for e in run.of("message"))
    assert (folder / "zfcpdump-initrd").read_bytes() == (out2 / "zfcpdump.rd").read_bytes()
    assert not [n for n in os.listdir(folder) if n.startswith(".")]


def test_env_fault_raises_by_name(
    tmp_path: Path, out: Path, out2: Path, default_recipe: recipe.Recipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = do_install(out, tmp_path, default_recipe, "2.7+", "copy").folder
    before = snapshot(folder)
    monkeypatch.setenv(transaction.FAULT_ENV, "rename/zfcpdump-image")
    with pytest.raises(InstallError, match=r"step 8 \(rename/zfcpdump-image\)"):
        do_install(out2, tmp_path, default_recipe, "2.7+", "copy")
    assert snapshot(folder) == before


def test_a_concurrent_install_is_refused(tmp_path: Path, out: Path, default_recipe: recipe.Recipe) -> None:
    folder = do_install(out, tmp_path, default_recipe, "2.7+", "symlink").folder
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(InstallError, match="another install"):
            do_install(out, tmp_path, default_recipe, "2.7+", "symlink")
    finally:
        os.close(fd)


def test_unwritable_directory(tmp_path: Path, out: Path, out2: Path, default_recipe: recipe.Recipe) -> None:
    """A read-only filesystem (as root, where permissions do not stop us), else a 0555 directory."""
    dest = tmp_path / "dest"
    dest.mkdir()
    if os.geteuid() == 0:
        mount("tmpfs", dest)
    try:
        folder = do_install(out, dest, default_recipe, "2.7+", "symlink").folder
        before = snapshot(folder)
        if os.geteuid() == 0:
            assert os.system(f"mount -o remount,ro {dest}") == 0
        else:
            folder.chmod(0o555)
        with pytest.raises(InstallError, match="not writable: nothing was changed"):
            do_install(out2, dest, default_recipe, "2.7+", "symlink")
        assert snapshot(folder) == before
        with pytest.raises(InstallError, match="cannot create the zfcpdump directory"):
            install.install_artifacts(
                out2,
                default_recipe,
                TextReporter(),
                install.Options(destdir=dest, directory="/new/zfcpdump", layout="2.7+"),
            )
    finally:
        if os.geteuid() == 0:
            umount(dest)
        else:
            (dest / ZDIR).chmod(0o755)


def test_destdir_on_another_filesystem(
    tmp_path: Path, out: Path, out2: Path, default_recipe: recipe.Recipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_root()
    dest = tmp_path / "tmpfs"
    dest.mkdir()
    mount("tmpfs", dest, "size=64m")
    try:
        assert os.stat(dest).st_dev != os.stat(out).st_dev
        renames: list[tuple[Path, Path]] = []
        real_replace = os.replace

        def replace(src: str | Path, dst: str | Path) -> None:
            renames.append((Path(src), Path(dst)))
            real_replace(src, dst)

        monkeypatch.setattr(install.os, "replace", replace)
        folder = do_install(out, dest, default_recipe, "2.7+", "symlink").folder
        before = snapshot(folder)
        for number in range(1, len(steps(out2, "2.7+", "symlink")) + 1):
            with pytest.raises(InstallError):
                do_install(out2, dest, default_recipe, "2.7+", "symlink", fault_at(number))
            assert snapshot(folder) == before, number
        do_install(out2, dest, default_recipe, "2.7+", "symlink")
        assert renames and all(src.parent == dst.parent == folder for src, dst in renames)
        assert (folder / "zfcpdump-image").read_bytes() == (out2 / "zfcpdump.image").read_bytes()
    finally:
        umount(dest)
