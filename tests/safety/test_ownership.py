"""`build --out` and `--cache-dir` replace only what the tool made (issue: do no harm)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from support.buildcli import ROOT, run_cli, shared_cache_dir
from support.guard import top_level_state, tree_state
from zfcpdump_builder.core import ownership

OWNERSHIP_EXIT = 7


def _file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("mine\n")
    return tmp / "notes.txt"


def _foreign_dir(tmp: Path) -> Path:
    (tmp / "D").mkdir()
    (tmp / "D" / "keep").write_text("hi\n")
    return tmp / "D"


def _owned_plus_user_file(tmp: Path) -> Path:
    out = tmp / "owned"
    out.mkdir()
    (out / "zfcpdump.rd").write_bytes(b"rd")
    (out / "manifest.json").write_text('{"manifest_version": 1, "outputs": {"zfcpdump.rd": {}}}')
    (out / "my-notes.txt").write_text("not the tool's\n")
    return out


def _fake_manifest(tmp: Path) -> Path:
    out = tmp / "fake"
    out.mkdir()
    (out / "manifest.json").write_text('{"hello": "world"}')
    return out


def _symlink_to_foreign(tmp: Path) -> Path:
    (tmp / "target").mkdir()
    (tmp / "target" / "keep").write_text("hi\n")
    os.symlink("target", tmp / "link")
    return tmp / "link"


def _inside_cache(tmp: Path) -> Path:
    return tmp / "cache" / "objects" / "x"


def _parent_of_cache(tmp: Path) -> Path:
    (tmp / "cache").mkdir(exist_ok=True)
    return tmp


OUT_CASES: dict[str, Callable[[Path], Path]] = {
    "a file": _file,
    "a foreign non-empty directory": _foreign_dir,
    "our output plus a user's file": _owned_plus_user_file,
    "a manifest.json that is not ours": _fake_manifest,
    "a symlink to a foreign directory": _symlink_to_foreign,
    "inside the cache": _inside_cache,
    "a parent of the cache": _parent_of_cache,
}


@pytest.mark.parametrize("case", list(OUT_CASES))
def test_build_refuses_an_out_it_does_not_own(tmp_path: Path, case: str) -> None:
    out = OUT_CASES[case](tmp_path)
    before = tree_state(tmp_path)
    run = run_cli("build", "default", "--out", str(out), cache=tmp_path / "cache")
    assert run.code == OWNERSHIP_EXIT, run.stderr
    assert run.error()["kind"] == "ownership" and run.error()["hint"]
    assert run.events[-1] == {"v": 1, "event": "result", "status": "failed", "exit_code": 7}
    assert "Traceback" not in run.stderr
    assert not run.of("stage-start"), "the refusal must come before any stage runs"
    after = tree_state(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("cache")} == {
        k: v for k, v in before.items() if not k.startswith("cache")
    }


@pytest.mark.parametrize("where", ["/", "HOME", "checkout", "checkout/.git"])
def test_build_refuses_special_places(tmp_path: Path, where: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dotfile").write_text("x")
    out = {"/": Path("/"), "HOME": home, "checkout": ROOT, "checkout/.git": ROOT / ".git"}[where]
    watched = out if out != Path("/") else None
    before = tree_state(watched) if watched else top_level_state()
    run = run_cli("build", "default", "--out", str(out), cache=tmp_path / "cache", env={"HOME": str(home)})
    assert run.code == OWNERSHIP_EXIT, run.stderr
    assert "refusing" in run.error()["message"] or "did not make" in run.error()["message"]
    assert run.events[-1]["event"] == "result" and "Traceback" not in run.stderr
    assert (tree_state(watched) if watched else top_level_state()) == before


def test_out_dot_in_a_checkout_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    before = tree_state(ROOT / ".git" / "refs")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "build.py"),
            "build",
            "--out",
            ".",
            "--json",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == OWNERSHIP_EXIT
    assert "checkout" in result.stderr + result.stdout
    assert tree_state(ROOT / ".git" / "refs") == before and (ROOT / "README.md").is_file()


@pytest.mark.parametrize("stem", ["..", ".hidden", "a b"])
def test_recipe_names_cannot_become_paths(tmp_path: Path, stem: str) -> None:
    recipe = tmp_path / f"{stem}.yaml"
    shutil.copy(ROOT / "recipes" / "default.yaml", recipe)
    run = run_cli("plan", str(recipe), cache=tmp_path / "cache")
    assert run.code == 2, run.stderr
    assert "cannot name a directory" in run.error()["message"]


def test_cache_dir_must_be_ours(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    foreign = _foreign_dir(tmp_path)
    before = tree_state(tmp_path)
    for cache in (tmp_path / "file", foreign):
        for verb in (
            ("build", "default"),
            ("plan", "default"),
            ("cache", "list"),
            ("cache", "prune", "--all"),
        ):
            run = run_cli(*verb, cache=cache)
            assert run.code == OWNERSHIP_EXIT, (verb, cache, run.stderr)
            assert run.events[-1]["event"] == "result" and "Traceback" not in run.stderr
    assert tree_state(tmp_path) == before


def test_a_new_cache_gets_its_tag(tmp_path: Path) -> None:
    ownership.tag_cache_dir(tmp_path / "new")
    assert (
        (tmp_path / "new" / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    ownership.check_cache_dir(tmp_path / "new")


def test_an_owned_output_is_replaced_and_an_empty_dir_is_fine(tmp_path: Path, built_default) -> None:  # noqa: ANN001
    """The happy path stays: rebuilding into our own output, or into an empty directory."""
    for out in (built_default.out, tmp_path / "empty"):
        out.mkdir(exist_ok=True)
        run = run_cli("build", "default", "--out", str(out), cache=shared_cache_dir())
        assert run.code == 0, run.stderr[-3000:]
        assert sorted(os.listdir(out)) == sorted(a["name"] for a in run.of("artifact"))


@pytest.mark.parametrize("layout", ["workspaces/myproj/notes.txt", "objects/ab/cdef", "debs/mine.deb"])
def test_a_directory_that_only_looks_like_a_cache_is_refused(tmp_path: Path, layout: str) -> None:
    """Subdirectory names are no evidence (a git repository has objects/): prune must not run."""
    fake = tmp_path / "fake"
    (fake / layout).parent.mkdir(parents=True)
    (fake / layout).write_text("precious\n")
    (fake / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n# another tool\n")
    before = tree_state(fake)
    run = run_cli("cache", "prune", "--all", cache=fake)
    assert run.code == OWNERSHIP_EXIT, run.stderr
    assert tree_state(fake) == before


def test_a_cache_from_before_the_tag_is_still_ours(tmp_path: Path) -> None:
    old = tmp_path / "old"
    stage = old / "objects" / f"runtime-{'0' * 32}"
    stage.mkdir(parents=True)
    (stage / ".stage.json").write_text("{}")
    ownership.check_cache_dir(old)
