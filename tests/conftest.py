"""Shared fixtures: the CLI as users run it, and one real kernel build per session."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from support import chroot  # noqa: E402
from support.buildcli import BuiltRecipe, run_cli, shared_cache_dir  # noqa: E402
from zfcpdump_builder.core.events import Reporter  # noqa: E402
from zfcpdump_builder.core.store import StageOutput, Store  # noqa: E402
from zfcpdump_builder.stages.runtime import RuntimeSpec, build_runtime  # noqa: E402


@pytest.fixture(autouse=True)
def _signal_handlers() -> Iterator[None]:
    """cli.main sets SIGINT/SIGTERM for a process of its own; an in-process call must not leave
    them to the rest of the session (its children would inherit an ignored SIGINT)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


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


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A private stage store for tests that drive stage functions directly."""
    return Store(tmp_path_factory.mktemp("stage-store"))


@pytest.fixture(scope="session")
def runtime_out(store: Store, cache_dir: Path) -> StageOutput:
    """One real s390x runtime (the default RuntimeSpec) per session."""
    return build_runtime(RuntimeSpec(), ROOT / "src" / "zfcpdump_writer", store, Reporter(), cache_dir)


@pytest.fixture(scope="session")
def qemu(cache_dir: Path) -> Path:
    """A static qemu-s390x for chroot runs (skips only where chroot cannot work)."""
    reason = chroot.available()
    if reason:
        pytest.skip(reason)
    return chroot.qemu_static(cache_dir)
