"""`build.py cache list|prune` on a private store: what is old goes, what is used or held stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.buildcli import run_cli
from zfcpdump_builder.core.store import Store, file_lock

DAY = 86400


def make_store(root: Path) -> tuple[Store, dict[str, Path]]:
    """Two objects and a workspace; 'old' and the workspace were last used 40 days ago."""
    store = Store(root)
    made = {}

    def one_mib_object(out: Path) -> None:
        (out / "blob").write_bytes(b"x" * 2**20)

    for name in ("old", "recent"):
        made[name] = store.produce("runtime", {"n": name}, one_mib_object).path
    with store.workspace("kbuild-0123456789abcdef") as tree:
        (tree / "vmlinux").write_bytes(b"y" * 4096)
        made["workspace"] = tree
    past = time.time() - 40 * DAY
    for name in ("old", "workspace"):
        os.utime(made[name], (past, past))
    return store, made


def table_rows(run) -> list[list]:
    return [row for table in run.of("table") for row in table["rows"]]


def test_list_shows_every_entry_with_size_and_age(tmp_path: Path) -> None:
    _store, made = make_store(tmp_path / "cache")
    run = run_cli("cache", "list", cache=tmp_path / "cache")
    assert run.code == 0, run.stderr
    rows = {row[2]: row for row in table_rows(run)}
    assert set(rows) == {path.name for path in made.values()}
    assert rows[made["old"].name][3] == "1.0 MiB"
    assert float(rows[made["old"].name][4]) >= 39.9 and float(rows[made["recent"].name][4]) < 1


def test_prune_removes_only_what_was_not_used_lately(tmp_path: Path) -> None:
    _store, made = make_store(tmp_path / "cache")
    dry = run_cli("cache", "prune", "--older-than", "30", "--dry-run", cache=tmp_path / "cache")
    assert dry.code == 0 and all(path.exists() for path in made.values())
    assert {row[2] for row in table_rows(dry)} == {made["old"].name, made["workspace"].name}
    run = run_cli("cache", "prune", "--older-than", "30", cache=tmp_path / "cache")
    assert run.code == 0, run.stderr
    assert not made["old"].exists() and not made["workspace"].exists()
    assert made["recent"].is_dir()
    assert not list((tmp_path / "cache" / "tmp").glob("*.prune.*"))


def test_a_cache_hit_counts_as_a_use(tmp_path: Path) -> None:
    store, made = make_store(tmp_path / "cache")
    again = store.produce("runtime", {"n": "old"}, lambda d: None)
    assert again.cached and again.path == made["old"]
    run = run_cli("cache", "prune", "--older-than", "30", cache=tmp_path / "cache")
    assert run.code == 0 and made["old"].is_dir()


def test_an_entry_held_by_a_build_is_kept(tmp_path: Path) -> None:
    store, made = make_store(tmp_path / "cache")
    with file_lock(store.locks / f"{made['old'].name}.lock"):
        run = run_cli("cache", "prune", "--all", cache=tmp_path / "cache")
    assert run.code == 0, run.stderr
    assert made["old"].is_dir() and not made["recent"].exists()
    assert any("in use" in m["text"] for m in run.of("message"))


def test_a_negative_age_is_refused(tmp_path: Path) -> None:
    run = run_cli("cache", "prune", "--older-than", "-1", cache=tmp_path / "cache")
    assert run.code == 2
    assert "--older-than" in run.error()["message"]


def test_left_overs_of_a_killed_prune_are_listed_and_pruned(tmp_path: Path) -> None:
    store, _made = make_store(tmp_path / "cache")
    dead_pid = 2**22 + 12345  # above pid_max's default: never a live process
    debris = store.tmp / f"runtime-{'0' * 32}.prune.{dead_pid}"
    debris.mkdir(parents=True)
    (debris / "blob").write_bytes(b"x")
    foreign = store.tmp / "someone-elses.txt"
    foreign.write_text("not ours")
    listed = run_cli("cache", "list", cache=tmp_path / "cache")
    assert any(debris.name in e["text"] for e in listed.of("message")), listed.events
    assert debris.is_dir()
    pruned = run_cli("cache", "prune", "--all", cache=tmp_path / "cache")
    assert pruned.code == 0, pruned.stderr
    assert not debris.exists() and foreign.read_text() == "not ours"


def test_prune_on_a_read_only_cache_is_a_host_error(tmp_path: Path) -> None:
    import subprocess

    from support.guard import tmpfs, tree_state

    with tmpfs(tmp_path / "mnt", "16m") as mount:
        make_store(mount / "cache")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = tree_state(mount)
        run = run_cli("cache", "prune", "--all", cache=mount / "cache")
        assert run.code == 4, run.stderr
        assert "Read-only file system" in run.error()["message"] and str(mount) in run.error()["message"]
        assert run.events[-1]["event"] == "result" and "Traceback" not in run.stderr
        assert tree_state(mount) == before
