"""Fixtures of the runtime tests: one real s390x runtime per session, and a chroot for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import chroot
from zfcpdump_builder.core.store import StageOutput
from zfcpdump_builder.stages.runtime import ROOT_DIR

REPO = Path(__file__).resolve().parents[2]
WRITER = REPO / "src" / "zfcpdump_writer"


@pytest.fixture(scope="session")
def runtime_chroot(runtime_out: StageOutput, qemu: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chroot.make_root(runtime_out.path / ROOT_DIR, tmp_path_factory.mktemp("rt") / "root", qemu)
