"""Shared fixtures: the CLI as users run it, and one real kernel build per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from support.buildcli import BuiltRecipe, run_cli, shared_cache_dir  # noqa: E402


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return shared_cache_dir()


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
