"""Fixtures for the writer tests (helpers live in writer_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for entry in (REPO / "src", REPO, Path(__file__).resolve().parent):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from tests.support import zgetdump  # noqa: E402
from writer_helpers import Env, make_env  # noqa: E402


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture
def env_factory(tmp_path: Path):  # noqa: ANN201 - returns a factory
    counter = iter(range(100))

    def factory(**kwargs: object) -> Env:
        return make_env(tmp_path / f"env{next(counter)}", **kwargs)

    return factory


@pytest.fixture(scope="session")
def zg_root() -> Path:
    """The s390x root holding zgetdump; the test is skipped only when it cannot be had."""
    try:
        return zgetdump.ensure_root()
    except zgetdump.ZgetdumpUnavailable as exc:
        pytest.skip(f"s390x zgetdump unavailable: {exc}")
