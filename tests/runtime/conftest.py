"""Fixtures of the runtime tests: one real s390x runtime per session, and a chroot for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import chroot
from zfcpdump_builder.cache import StageOutput, Store
from zfcpdump_builder.events import Reporter
from zfcpdump_builder.runtime import ROOT_DIR, RuntimeSpec, build_runtime

REPO = Path(__file__).resolve().parents[2]
WRITER = REPO / "src" / "zfcpdump_writer"


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("runtime-store"))


@pytest.fixture(scope="session")
def runtime_out(store: Store, cache_dir: Path) -> StageOutput:
    return build_runtime(RuntimeSpec(), WRITER, store, Reporter(), cache_dir)


@pytest.fixture(scope="session")
def qemu(cache_dir: Path) -> Path:
    reason = chroot.available()
    if reason:
        pytest.skip(reason)
    return chroot.qemu_static(cache_dir)


@pytest.fixture(scope="session")
def runtime_chroot(runtime_out: StageOutput, qemu: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chroot.make_root(runtime_out.path / ROOT_DIR, tmp_path_factory.mktemp("rt") / "root", qemu)
