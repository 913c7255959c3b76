"""`plan` says exactly what `build` then does: the same stages, the same keys, cached or not."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from support.buildcli import CliRun, run_cli, shared_cache_dir


def shared_log(recipe: str) -> str:
    return (shared_cache_dir() / "logs" / recipe / "kernel-build.log").read_text(errors="replace")


def planned(recipe: str) -> dict[str, tuple[str, str]]:
    run = run_cli("plan", recipe)
    assert run.code == 0, run.stderr
    table = next(t for t in run.of("table") if t["title"] == "stages")
    return {row[0]: (row[1], row[2]) for row in table["rows"]}


def built(recipe: str, out: Path) -> CliRun:
    run = run_cli("build", recipe, "--out", str(out))
    assert run.code == 0, run.stderr[-3000:]
    return run


def assert_plan_matches(plan: dict[str, tuple[str, str]], run: CliRun) -> None:
    finished = {e["stage"]: e for e in run.of("stage-finish")}
    for stage, event in finished.items():
        state, key = plan[stage]
        if state.startswith("found or built"):  # its key is computed while the runtime runs
            assert key == "-", (stage, key)
            continue
        if key == "-":  # it needs a stage that must run first, so its key was not known yet
            assert state == "will run" and not event["cached"], (stage, state)
            continue
        assert event["key"].startswith(key), (stage, key, event["key"])
        assert (state == "cached") == event["cached"], (stage, state, event["cached"])
    for stage, (state, _key) in plan.items():
        if stage not in finished:
            assert state.startswith(("not needed", "local tree")), (stage, state)


def child(tmp_path: Path, body: str) -> str:
    recipe = tmp_path / "child.yaml"
    recipe.write_text(f"extends: default\ndescription: a child of default\n{body}")
    return str(recipe)


@pytest.mark.parametrize("recipe", ["default", "qemu-test"])
def test_plan_equals_build(tmp_path: Path, recipe: str, built_default, built_qemu_test) -> None:
    before = planned(recipe)
    assert set(before) == {"source", "kconfig", "kernel", "sysroot", "cpython", "runtime", "initramfs"}
    assert_plan_matches(before, built(recipe, tmp_path / "out"))
    after = planned(recipe)
    assert all(state == "cached" or state.startswith("not needed") for state, _ in after.values()), after


def test_a_writer_only_child_shares_the_kernel_and_plan_says_so(tmp_path: Path, built_default) -> None:
    """The recipe's name and description are not kernel inputs: a child that changes only a
    writer setting finds kconfig, kernel and runtime cached; only the initramfs runs."""
    # settings no earlier run used, so the initramfs is new even in a persistent cache
    chunk, interval = 4 * random.randrange(16, 4097), random.randrange(1, 3601)
    recipe = child(tmp_path, f"writer:\n  chunk_kib: {chunk}\n  progress_interval: {interval}\n")
    default = planned("default")
    before = planned(recipe)
    for stage in ("source", "kconfig", "kernel", "runtime"):
        assert before[stage] == default[stage], stage
    assert before["initramfs"][0] == "will run"
    run = built(recipe, tmp_path / "out")
    assert_plan_matches(before, run)
    assert not {e["stage"]: e["cached"] for e in run.of("stage-finish")}["initramfs"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("writer:\n  chunk_kib: 5\n", "chunk_kib = 5 is out of range 64..16384"),
        ("writer:\n  chunk_kib: 1026\n", "out of range"),
        ("writer:\n  debug: 9\n", "debug = 9 is out of range 1..6"),
        ("writer:\n  device: sda\n", "device must be auto or a /dev/ path"),
        ("budget:\n  memory: 12 parsecs\n", "a size such as"),
    ],
)
def test_bad_values_fail_at_load_time_with_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    recipe = child(tmp_path, body)
    for verb in ("plan", "build"):
        run = (
            run_cli(verb, recipe, "--out", str(tmp_path / "out"))
            if verb == "build"
            else run_cli(verb, recipe)
        )
        assert run.code == 2, run.stderr
        error = run.error()["message"]
        assert f"{recipe}:4:" in error and message in error, error
        assert not run.of("stage-start"), "the recipe error must come before any stage"


def test_a_writer_change_relinks_a_builtin_kernel_and_plan_says_so(tmp_path: Path) -> None:
    """With the initramfs built in, the kernel follows the initramfs: plan says the kernel will
    run after it, and the build relinks the recipe's own O= tree instead of compiling it cold."""
    base = tmp_path / "base"
    base.mkdir()
    builtin = str(Path(__file__).resolve().parents[2] / "recipes" / "qemu-test-builtin.yaml")
    built("qemu-test-builtin", tmp_path / "first")
    interval = random.randrange(1, 3601)  # a value no earlier run used: the cpio is new
    recipe = base / "qemu-test-builtin.yaml"  # the same name, so the same O= workspace
    recipe.write_text(f"extends: {builtin}\nwriter:\n  progress_interval: {interval}\n")
    before = planned(str(recipe))
    order = list(before)
    assert order.index("initramfs") < order.index("kernel"), order
    assert before["initramfs"][0] == "will run" and before["kernel"] == ("will run", "-")
    run = built(str(recipe), tmp_path / "out")
    assert_plan_matches(before, run)
    log = shared_log("qemu-test-builtin")
    compiled = [line for line in log.splitlines() if line.strip().startswith("CC ")]
    assert "usr/initramfs_data.o" in log, "the built-in initramfs was not rebuilt"
    assert len(compiled) < 40, f"a writer change compiled {len(compiled)} files: {compiled[:5]}"
