"""The guard: every verb that takes a path, with every kind of bad path, changes nothing it
does not own. Each run is hashed before and after (the whole tree around the bad path, or
the top level of `/`), must end with a result event, and must never show a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from support.buildcli import ROOT, run_cli, shared_cache_dir
from support.guard import tmpfs, top_level_state, tree_state

sys.path.insert(0, str(ROOT))
from tests.writer.writer_helpers import make_env  # noqa: E402

BAD_PATHS = ("a file", "a foreign non-empty dir", "/", "a read-only dir", "a full tmpfs")
# verb -> (argv for a path P, the exit codes each bad path may give)
Verb = tuple[Callable[[Path, dict[str, Path]], list[str]], dict[str, set[int]]]
REFUSED, HOST = {7}, {4}
VERBS: dict[str, Verb] = {
    "build --out": (
        lambda p, ctx: ["build", "default", "--out", str(p)],
        {
            "a file": REFUSED,
            "a foreign non-empty dir": REFUSED,
            "/": REFUSED,
            "a read-only dir": HOST,
            "a full tmpfs": HOST,
        },
    ),
    "build --cache-dir": (
        lambda p, ctx: [
            "build",
            "default",
            "--out",
            str(ctx["scratch"] / "o"),
            "--offline",
            "--cache-dir",
            str(p),
        ],
        {
            "a file": REFUSED,
            "a foreign non-empty dir": REFUSED,
            "/": REFUSED,
            "a read-only dir": HOST,
            "a full tmpfs": HOST,
        },
    ),
    "plan --cache-dir": (
        lambda p, ctx: ["plan", "default", "--cache-dir", str(p)],
        {
            "a file": REFUSED,
            "a foreign non-empty dir": REFUSED,
            "/": REFUSED,
            "a read-only dir": {0},
            "a full tmpfs": {0},
        },
    ),
    "cache prune --all": (
        lambda p, ctx: ["cache", "prune", "--all", "--cache-dir", str(p)],
        {
            "a file": REFUSED,
            "a foreign non-empty dir": REFUSED,
            "/": REFUSED,
            "a read-only dir": {0},
            "a full tmpfs": {0},
        },
    ),
    "dumpdisk extract": (
        lambda p, ctx: ["dumpdisk", "extract", str(ctx["disk"]), str(p)],
        {
            "a file": REFUSED,
            "a foreign non-empty dir": REFUSED,
            "/": REFUSED,
            "a read-only dir": HOST,
            "a full tmpfs": HOST,
        },
    ),
    "install --destdir": (
        lambda p, ctx: [
            "install",
            "default",
            "--from",
            str(ctx["out"]),
            "--layout",
            "2.7+",
            "--destdir",
            str(p),
        ],
        {"a file": REFUSED, "a read-only dir": {4, 7}, "a full tmpfs": {4, 7}},
    ),
}
CASES = [(verb, bad) for verb, (_, codes) in VERBS.items() for bad in BAD_PATHS if bad in codes]


@pytest.fixture(scope="module")
def dump_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = make_env(tmp_path_factory.mktemp("dumpdisk"))
    assert env.run()[0] == 0
    return env.sda


def _bad_path(bad: str, scratch: Path, stack: ExitStack) -> tuple[Path, Path | None]:
    """The path to pass, and the tree to watch (None: the top level of /)."""
    if bad == "a file":
        (scratch / "notes.txt").write_text("mine\n")
        return scratch / "notes.txt", scratch
    if bad == "a foreign non-empty dir":
        (scratch / "D").mkdir()
        (scratch / "D" / "keep").write_text("hi\n")
        return scratch / "D", scratch
    if bad == "/":
        return Path("/"), None
    mount = stack.enter_context(
        tmpfs(
            scratch / "mnt",
            "1m",
            read_only=bad == "a read-only dir",
            full=bad == "a full tmpfs",
            seed={"keep": b"hi\n"},
        )
    )
    return mount / "new", mount


def _owned(verb: str, watched: Path, path: Path) -> Callable[[str], bool]:
    """What the verb may legitimately create below *watched* (DESTDIR's zfcpdump directory)."""
    if verb == "install --destdir":
        rel = os.path.relpath(path / "lib/s390-tools/zfcpdump", watched)
        return lambda name: (
            name == rel
            or name.startswith(rel + "/")
            or rel.startswith(name + "/")
            or name in ("lib", "lib/s390-tools")
        )
    return lambda name: False


@pytest.mark.parametrize(("verb", "bad"), CASES)
def test_nothing_outside_the_tools_own_paths_changes(
    tmp_path: Path, verb: str, bad: str, dump_disk: Path, built_default
) -> None:  # noqa: ANN001
    argv_for, codes = VERBS[verb]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    context = {"disk": dump_disk, "out": built_default.out, "scratch": scratch}
    with ExitStack() as stack:
        path, watched = _bad_path(bad, scratch, stack)
        before = tree_state(watched) if watched else top_level_state()
        argv = argv_for(path, context)
        run = run_cli(*argv, cache=shared_cache_dir())
        after = tree_state(watched) if watched else top_level_state()
    assert run.code in codes[bad], f"{verb} with {bad}: exit {run.code}\n{run.stderr[-2000:]}"
    assert run.events and run.events[-1]["event"] == "result", run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    if run.code:
        assert run.error()["message"] and run.error()["hint"], run.error()
    owned = _owned(verb, watched, path) if watched else (lambda name: False)
    changed = {
        k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and not owned(k) and k != "."
    }
    assert not changed, f"{verb} with {bad} changed {sorted(changed)[:10]}"
