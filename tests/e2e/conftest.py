"""Session fixtures of the end-to-end tests: one pipeline build, one crash-side rd, zgetdump.

The qemu-test image and rd are built by the project's own pipeline
(`build.py build qemu-test`, the session fixture `built_qemu_test` of tests/conftest.py), once
per session; the stage cache makes a rerun cheap. Missing host tools fail the tests (they must run in CI), never skip them.
Measurements (boot times, MemAvailable, ...) are printed at the end of the run and written to
$ZFCPDUMP_E2E_METRICS (JSON) when that is set.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario as sc  # noqa: E402
from tests.support import zgetdump  # noqa: E402

METRICS: dict[str, object] = {}
HOST_TOOLS = ("qemu-system-s390x", "qemu-s390x", "gdb-multiarch")


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e", numbered=False)


@pytest.fixture(scope="session")
def host_tools() -> None:
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"e2e tests need {', '.join(missing)} (Debian: qemu-system-s390x, qemu-user, gdb-multiarch)"
        )


@pytest.fixture(scope="session")
def art(request: pytest.FixtureRequest, e2e_dir: Path, host_tools: None) -> sc.Artifacts:
    """zfcpdump.image + zfcpdump.rd of recipes/qemu-test.yaml, built by `build.py build`.

    The build is the session's shared `built_qemu_test` (tests/conftest.py), so every test
    uses one kernel build; $ZFCPDUMP_E2E_RECIPE builds another recipe the same way instead.
    """
    recipe = os.environ.get("ZFCPDUMP_E2E_RECIPE")
    try:
        if recipe:
            built = sc.build(Path(recipe).resolve(), e2e_dir / "out", e2e_dir / "build.log")
        else:
            built = sc.artifacts_in(request.getfixturevalue("built_qemu_test").out)
    except sc.BuildFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    METRICS["zfcpdump.image (bytes)"] = built.image.stat().st_size
    METRICS["zfcpdump.rd (bytes)"] = built.rd.stat().st_size if built.rd else "none (built in)"
    return built


@pytest.fixture(scope="session")
def token() -> str:
    """A string that lives only in the crashing kernel's memory (its /init holds it)."""
    return "E2E-TOKEN-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def first_rd(art: sc.Artifacts, e2e_dir: Path, token: str) -> Path:
    return sc.crash_rd(art, e2e_dir / "crashside.rd", token)


@pytest.fixture(scope="session")
def zg_root() -> Path:
    try:
        return zgetdump.ensure_root()
    except zgetdump.ZgetdumpUnavailable as exc:
        pytest.fail(f"zgetdump (s390x, under qemu-s390x) unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def metrics() -> dict[str, object]:
    return METRICS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not METRICS:
        return
    terminalreporter.section("e2e measurements")
    for key, value in METRICS.items():
        terminalreporter.write_line(f"{key}: {value}")
    target = os.environ.get("ZFCPDUMP_E2E_METRICS")
    if target:
        Path(target).write_text(json.dumps(METRICS, indent=2) + "\n")
