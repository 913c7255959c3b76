"""The store under faults: a corrupted object is found on use, reported, rebuilt and never
published; a build killed (SIGKILL to its process group) at any stage leaves no object that
a later build trusts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from support.buildcli import BuiltRecipe, private_cache, run_cli, shared_cache_dir
from zfcpdump_builder.core.store import META_FILE, Store, file_sha256

ROOT = Path(__file__).resolve().parents[2]


def one_file(content: bytes):  # noqa: ANN201
    def producer(out: Path) -> None:
        (out / "blob").write_bytes(content)

    return producer


def test_a_flipped_byte_is_found_on_use_and_the_object_rebuilt(tmp_path: Path) -> None:
    told: list[str] = []
    store = Store(tmp_path / "cache", on_corrupt=told.append)
    first = store.produce("runtime", {"n": 1}, one_file(b"A" * 4096))
    assert store.verify(first.path) is None
    blob = first.path / "blob"
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    again = store.produce("runtime", {"n": 1}, one_file(b"A" * 4096))
    assert not again.cached and (again.path / "blob").read_bytes() == b"A" * 4096
    assert len(told) == 1 and "is corrupt" in told[0] and first.path.name in told[0], told
    assert store.produce("runtime", {"n": 1}, one_file(b"never run")).cached
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_an_unreadable_meta_file_is_corrupt_too(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    made = store.produce("runtime", {"n": 2}, one_file(b"B"))
    (made.path / META_FILE).write_text("{not json")
    assert "cannot be read" in (store.verify(made.path) or "")
    assert not store.produce("runtime", {"n": 2}, one_file(b"B")).cached


def test_a_corrupt_cached_rd_is_rebuilt_and_the_good_one_published(
    tmp_path: Path, built_default: BuiltRecipe
) -> None:
    finish = {e["stage"]: e for e in built_default.run.of("stage-finish")}
    obj = shared_cache_dir() / "objects" / f"initramfs-{finish['initramfs']['key'][:32]}"
    rd = obj / "zfcpdump.rd"
    good = file_sha256(rd)
    data = bytearray(rd.read_bytes())
    data[len(data) // 2] ^= 0x40
    rd.write_bytes(bytes(data))
    run = run_cli("build", "default", "--out", str(tmp_path / "out"))
    assert run.code == 0, run.stderr
    warned = [e["text"] for e in run.of("message") if e["level"] == "warning" and "is corrupt" in e["text"]]
    assert warned and obj.name in warned[0], run.events
    rebuilt = {e["stage"]: e for e in run.of("stage-finish")}
    assert rebuilt["initramfs"]["cached"] is False and rebuilt["kernel"]["cached"] is True
    assert file_sha256(tmp_path / "out" / "zfcpdump.rd") == good == file_sha256(rd)


QUICK = ("kconfig", "initramfs")  # stages of about two seconds: killed sooner
REBUILT = ("initramfs",)  # rebuilt after the kill, to show the build resumes (the rest would compile)


def kill_case(stage: str, folder: Path) -> tuple[str, tuple[str, ...]]:
    """A recipe change and the objects left out of the seeded cache, so that *stage* runs
    (it is nowhere cached, whatever earlier runs left) and everything before it is cached."""
    unique = uuid.uuid4().hex[:12]
    if stage in ("kconfig", "kernel"):
        return f'kernel:\n  config:\n    set: {{LOCALVERSION: "-killed-{unique}"}}\n', ()
    if stage == "initramfs":
        (folder / "overlay" / "etc").mkdir(parents=True)
        (folder / "overlay" / "etc" / "killed-build").write_text(unique + "\n")
        return "initramfs:\n  overlay: [overlay]\n", ()
    return "", {"source": ("source",), "runtime": ("runtime", "cpython")}[stage]


def seeded_cache(tmp_path: Path, without: tuple[str, ...]) -> Path:
    """A private cache holding hard links to the shared cache's downloads and its objects that
    verify, but those named in *without* (objects are never written once committed, so the
    links are safe)."""
    cache = private_cache(tmp_path)
    shared = shared_cache_dir()
    (cache / "objects").mkdir()
    trusted = Store(shared)
    for obj in (shared / "objects").iterdir():
        if obj.name.rsplit("-", 1)[0] in without or not (obj / META_FILE).is_file() or trusted.verify(obj):
            continue
        subprocess.run(["cp", "-al", str(obj), str(cache / "objects" / obj.name)], check=True)
    return cache


@pytest.mark.parametrize("stage", ["source", "kconfig", "kernel", "runtime", "initramfs"])
def test_a_build_killed_mid_stage_leaves_nothing_a_later_build_trusts(
    tmp_path: Path, stage: str, built_default: BuiltRecipe
) -> None:
    """SIGKILL (no handler runs) to the build's whole process group during *stage*; every
    object left verifies, nothing is published, and the next build resumes."""
    change, left_out = kill_case(stage, tmp_path)
    cache = seeded_cache(tmp_path, left_out)
    before = {p.name for p in (cache / "objects").iterdir()}
    recipe = tmp_path / "killed.yaml"
    recipe.write_text(f"extends: {ROOT / 'recipes' / 'default.yaml'}\n{change}")
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "build.py"), "build", str(recipe), "--json"]
    command += ["--cache-dir", str(cache), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None
    for line in process.stdout:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "stage-start" and event.get("stage") == stage:
            break
    else:
        pytest.fail(f"the build never started stage {stage}: exit {process.wait()}")
    time.sleep(0.2 if stage in QUICK else 1.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    store = Store(cache)
    for entry in store.entries():
        if entry.kind == "object":
            assert store.verify(entry.path) is None, entry.path
    assert not out.exists()
    if stage in REBUILT:
        run = run_cli("build", str(recipe), "--out", str(out), cache=cache)
        assert run.code == 0, run.stderr
        assert not list((cache / "tmp").iterdir()), "the killed build's partial tree was kept"
        made = {p.name for p in (cache / "objects").iterdir()} - before
        assert any(name.startswith(f"{stage}-") for name in made), made
