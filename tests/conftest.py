"""Shared fixtures: the CLI as users run it, and one real kernel build per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def test_cache_dir() -> Path:
    """Stage cache shared by the tests (and, by default, with the user's own builds)."""
    configured = os.environ.get("ZFCPDUMP_TEST_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zfcpdump-build"


@dataclass
class CliRun:
    code: int
    events: list[dict]
    stderr: str

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def error(self) -> dict:
        errors = self.of("error")
        assert errors, f"no error event; stderr:\n{self.stderr}"
        return errors[0]


def run_cli(*args: str, cache: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 1800) -> CliRun:
    """Run `build.py ARGS --json` in a subprocess, as CI would, and parse its events."""
    command = [sys.executable, str(ROOT / "build.py"), *args, "--json",
               "--cache-dir", str(cache or test_cache_dir())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return CliRun(result.returncode, events, result.stderr)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return test_cache_dir()


@dataclass
class BuiltRecipe:
    out: Path
    run: CliRun


def _build(recipe: str, tmp_path_factory: pytest.TempPathFactory) -> BuiltRecipe:
    out = tmp_path_factory.mktemp(f"out-{recipe}")
    run = run_cli("build", recipe, "--out", str(out))
    assert run.code == 0, f"build of {recipe} failed:\n{run.stderr[-4000:]}\n{run.events[-5:]}"
    return BuiltRecipe(out, run)


@pytest.fixture(scope="session")
def built_default(tmp_path_factory: pytest.TempPathFactory) -> BuiltRecipe:
    """The default recipe built through the CLI (a real cross-compiled kernel)."""
    return _build("default", tmp_path_factory)


@pytest.fixture(scope="session")
def built_qemu_test(tmp_path_factory: pytest.TempPathFactory) -> BuiltRecipe:
    """recipes/qemu-test.yaml built through the CLI: the image and rd the QEMU tests boot."""
    return _build("qemu-test", tmp_path_factory)
