"""Fixtures for the install, zipl-detection and dumpdisk-prepare tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for entry in (REPO / "src", REPO, Path(__file__).resolve().parent):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from install_helpers import LoopDisk, TextReporter, make_out, real_zipl  # noqa: E402

from zfcpdump_builder import recipe  # noqa: E402


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A fake build output with zfcpdump.image and zfcpdump.rd (version v1)."""
    return make_out(tmp_path / "out", "v1")


@pytest.fixture
def out2(tmp_path: Path) -> Path:
    """A second, different build output (version v2)."""
    return make_out(tmp_path / "out2", "v2", image_size=2_000_001, rd_size=700_003)


@pytest.fixture
def reporter() -> TextReporter:
    return TextReporter()


@pytest.fixture(scope="session")
def default_recipe() -> recipe.Recipe:
    return recipe.load("default")


@pytest.fixture(scope="session")
def debian_zipl() -> Path:
    """Debian 12's s390x zipl binary (s390-tools 2.16), unpacked from the real package."""
    return real_zipl()


@pytest.fixture
def loopdisk(tmp_path: Path) -> Iterator[LoopDisk]:
    disk = LoopDisk(tmp_path / "disk.img")
    try:
        yield disk
    finally:
        disk.close()
