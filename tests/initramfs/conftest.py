"""Fixtures of the initramfs tests: a real runtime and one built zfcpdump.rd per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdhelpers import ALL_RD, WRITER, rd_spec

from support import chroot
from zfcpdump_builder.cache import StageOutput, Store
from zfcpdump_builder.events import Reporter
from zfcpdump_builder.initramfs import build_initramfs
from zfcpdump_builder.runtime import RuntimeSpec, build_runtime


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("rd-store"))


@pytest.fixture(scope="session")
def runtime_out(store: Store, cache_dir: Path) -> StageOutput:
    return build_runtime(RuntimeSpec(), WRITER, store, Reporter(), cache_dir)


@pytest.fixture(scope="session")
def rd_out(runtime_out: StageOutput, store: Store) -> StageOutput:
    return build_initramfs(rd_spec(), runtime_out, ALL_RD, store, Reporter())


@pytest.fixture(scope="session")
def qemu(cache_dir: Path) -> Path:
    reason = chroot.available()
    if reason:
        pytest.skip(reason)
    return chroot.qemu_static(cache_dir)
