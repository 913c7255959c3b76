"""Every failure keeps the contract: a typed exit code, no traceback, and a final result event."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.buildcli import ROOT, run_cli
from zfcpdump_builder import cli
from zfcpdump_builder.cli import plan as plan_verb


def test_a_bug_exits_1_with_its_traceback_in_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object, reporter: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(plan_verb, "cmd_plan", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert cli.main(["plan", "--json", "--cache-dir", str(tmp_path / "cache")]) == 1
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [e["event"] for e in events] == ["error", "result"]
    error = events[0]
    assert error["kind"] == "internal" and "please report" in error["hint"]
    assert "Traceback" not in captured.out + captured.err
    log = Path(error["log"])
    assert "ZeroDivisionError: a bug" in log.read_text() and "Traceback" in log.read_text()


def test_usage_errors_end_with_a_result_event() -> None:
    for argv in (
        ["build", "--jobs", "0"],
        ["build", "--jobs", "-3"],
        ["cache", "prune", "--older-than", "nan"],
        ["cache", "prune", "--older-than", "-1"],
        ["qemu", "--image", "i", "--rd", "r", "--timeout", "-5"],
        ["no-such-verb"],
    ):
        run = run_cli(*argv)
        assert run.code == 2, (argv, run.stderr)
        assert run.events[-1] == {"v": 1, "event": "result", "status": "failed", "exit_code": 2}
        assert run.error()["kind"] == "usage" and "Traceback" not in run.stderr


def _default_sigint() -> None:
    # A shell's background job starts with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the child the disposition a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _plan(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "build.py"), "plan", "--json", "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


@pytest.mark.parametrize("fraction", [0.2, 0.3, 0.45, 0.55])
def test_ctrl_c_while_starting_up_exits_130(tmp_path: Path, fraction: float) -> None:
    """SIGINT at a fraction of the time a whole `plan` takes: imports, parsing, or the run."""
    started = time.monotonic()
    assert _plan(tmp_path).wait(timeout=60) == 0
    whole = time.monotonic() - started
    proc = _plan(tmp_path)
    time.sleep(whole * fraction)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads(out.splitlines()[-1]) == {
        "v": 1,
        "event": "result",
        "status": "failed",
        "exit_code": 130,
    }


BAD_RECIPES = {
    "empty file": (b"", None),
    "a list at the top level": (b"- a\n- b\n", "holds a YAML list"),
    "non-UTF-8 bytes": (b"kernel:\n  config: \xff\xfe\n", "not UTF-8"),
    "NUL bytes": (b"kernel: {}\n\0\0", "NUL"),
    "an alias bomb": (
        b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + b"".join(
            f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n".encode()
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "aliases",
    ),
    "a huge file": (b"# padding\n" * 40000, "too large"),
    "a bad size": (b"extends: default\nbudget:\n  memory: 12 parsecs\n", "a size such as"),
    "an unhashable key": (b"? [a, b]\n: 1\n", "a key must be a plain word"),
    "deep nesting": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
}


@pytest.mark.parametrize("case", list(BAD_RECIPES))
def test_bad_recipes_fail_fast_with_their_file(tmp_path: Path, case: str) -> None:
    text, expected = BAD_RECIPES[case]
    recipe = tmp_path / "bad.yaml"
    recipe.write_bytes(text)
    started = time.monotonic()
    run = run_cli("plan", str(recipe), cache=tmp_path / "cache", timeout=30)
    assert time.monotonic() - started < 10
    if expected is None:  # an empty recipe is a valid one: all defaults, no kernel source
        assert run.code == 2 and "kernel.source" in run.error()["message"]
        return
    assert run.code == 2, run.stderr
    assert str(recipe) in run.error()["message"] and expected in run.error()["message"]
    assert run.events[-1]["event"] == "result" and "Traceback" not in run.stderr


def test_a_foreign_file_is_described_not_quoted(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secrethash:19000:0:99999:7:::\n")
    run = run_cli("plan", str(secret), cache=tmp_path / "cache")
    assert run.code == 2
    assert "secrethash" not in run.stderr + json.dumps(run.events)
    assert "not a recipe" in run.error()["message"] and "byte" in run.error()["message"]
    renamed = tmp_path / "shadow.yaml"
    secret.rename(renamed)
    run = run_cli("plan", str(renamed), cache=tmp_path / "cache")
    assert run.code == 2 and "secrethash" not in run.stderr + json.dumps(run.events)


def test_a_cache_path_the_os_rejects_still_ends_with_a_result(tmp_path: Path) -> None:
    run = run_cli("plan", "default", cache=tmp_path / ("a" * 300))
    assert run.code in (4, 7), run.stderr
    assert run.events and run.events[-1]["event"] == "result" and "Traceback" not in run.stderr


def test_extends_outside_the_recipe_search_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "parent.yaml").write_text("description: not on the search path\n")
    (tmp_path / "here").mkdir()
    child = tmp_path / "here" / "child.yaml"
    child.write_text("extends: ../elsewhere/parent.yaml\n")
    run = run_cli("plan", str(child), cache=tmp_path / "cache")
    assert run.code == 2, run.stderr
    assert "outside the recipe search path" in run.error()["message"] and str(child) in run.error()["message"]
    (tmp_path / "here" / "sub").mkdir()
    (tmp_path / "here" / "sub" / "ok.yaml").write_text("extends: default\n")
    child.write_text("extends: sub/ok.yaml\n")
    assert run_cli("plan", str(child), cache=tmp_path / "cache").code == 0
