"""Where the project's data (recipes, templates, configs, overlay) lives.

From a source checkout it is the checkout itself; from `pip install .` it is
`<prefix>/share/zfcpdump-build`, where pyproject.toml installs the same directories.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import RecipeError

DATA_DIRS = ("recipes", "templates", "configs", "overlay")


def project_root() -> Path:
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "templates").is_dir() and (checkout / "recipes").is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "zfcpdump-build"


def data_dir(name: str) -> Path:
    return project_root() / name


def _find(name: str, base: Path, folder: str, what: str) -> Path:
    raw = Path(name)
    candidates = [raw] if raw.is_absolute() else [base / raw, data_dir(folder) / raw]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    raise RecipeError(f"{what} {name!r} not found (looked in: {', '.join(str(c) for c in candidates)})")


def find_config(name: str, base: Path) -> Path:
    """A base defconfig or fragment: beside the recipe, else in configs/."""
    return _find(name, base, "configs", "kernel config file")


def find_overlay(name: str, base: Path) -> Path:
    """An overlay directory: beside the recipe, else in the project root."""
    raw = Path(name)
    if not raw.is_absolute() and not (base / raw).exists():
        candidate = project_root() / raw
        if candidate.is_dir():
            return candidate.resolve()
    return _find(name, base, "overlay", "overlay directory")
