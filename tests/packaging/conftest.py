"""Fixtures for the packaging tests: a private copy of a real build, and throwaway keys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support.buildcli import BuiltRecipe


@pytest.fixture
def signed_out(built_default: BuiltRecipe, tmp_path: Path) -> Path:
    """A copy of the default build's output, which a test may sign or tamper with."""
    out = tmp_path / "out"
    shutil.copytree(built_default.out, out)
    return out


def make_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A throwaway RSA key and self-signed certificate made with openssl."""
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "30", "-subj", f"/CN={name}"],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("packager", "stranger")}
