"""The writer itself on big-endian s390x: Debian's python3.11:s390x under qemu-s390x."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from tests.support import zgetdump
from writer_helpers import REPO

pytestmark = pytest.mark.slow

PROBE = (
    "import sys; sys.path.insert(0, sys.argv[1]); from zfcpdump_writer.main import main; "
    "code = main(sys.argv[2:]); print('BYTEORDER', sys.byteorder); "
    "print('MODULES', ' '.join(sorted(sys.modules))); sys.exit(code)"
)


@pytest.fixture(scope="module")
def py_root():  # noqa: ANN201
    if shutil.which("qemu-s390x") is None:
        pytest.skip("qemu-s390x not installed")
    try:
        return zgetdump.ensure_python_root()
    except zgetdump.ZgetdumpUnavailable as exc:
        pytest.skip(f"s390x python unavailable: {exc}")


def test_writer_runs_big_endian(env, py_root, zg_root) -> None:  # noqa: ANN001
    python = py_root / "usr/bin/python3.11"
    res = subprocess.run(
        [
            "qemu-s390x",
            "-L",
            str(py_root),
            str(python),
            "-I",
            "-S",
            "-B",
            "-c",
            PROBE,
            str(REPO / "src"),
            "--root",
            str(env.root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "BYTEORDER big" in res.stdout and "Dump successful" in res.stdout
    assert env.dump_bytes() == env.vmcore_bytes()
    assert env.disk.check_sentinels() == [] and env.disk.csum_matches()
    part = env.disk.partition_image(env.root.parent / "part.img")
    assert zgetdump.info(part, zg_root).returncode == 0
