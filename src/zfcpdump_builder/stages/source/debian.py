"""kernel.source.debian: a Debian source package (linux-source-X.Y), fetched with apt-get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core import debpkg
from ...core.events import Reporter
from ...core.store import cached_file_sha256
from .kinds import Acquired, KernelSource, SourceKind


def _identity(source: KernelSource, deb: Path) -> dict[str, Any]:
    return {"kind": "debian", "package": source.location, "file": deb.name, "sha256": cached_file_sha256(deb)}


# Source packages are arch "all": the host's own lists carry the newest upload.
def acquire(source: KernelSource, cache_dir: Path, reporter: Reporter, offline: bool) -> Acquired:
    deb = debpkg.fetch_packages([source.location], debpkg.host_arch(), cache_dir, reporter, offline)[0]
    return deb, _identity(source, deb)


KIND = SourceKind(
    name="debian",
    key_kind="str",
    help="Debian source package to fetch with apt-get download, e.g. linux-source-6.1.",
    acquire=acquire,
)
