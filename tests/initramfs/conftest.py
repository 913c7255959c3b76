"""Fixtures of the initramfs tests: a real runtime and one built zfcpdump.rd per session."""

from __future__ import annotations

import pytest
from rdhelpers import ALL_RD, rd_spec

from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store
from zfcpdump_builder.stages.initramfs import build_initramfs


@pytest.fixture(scope="session")
def rd_out(runtime_out: StageOutput, store: Store) -> StageOutput:
    return build_initramfs(rd_spec(), runtime_out, ALL_RD, store, Reporter())
