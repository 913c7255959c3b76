"""kernel.source.debian: a Debian source package (linux-source-X.Y), fetched with apt-get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core import debpkg
from ...core.errors import SourceError
from ...core.events import Reporter
from ...core.store import cached_file_sha256
from .kinds import Acquired, KernelSource, SourceKind


def _cached_debs(source: KernelSource, cache_dir: Path) -> list[Path]:
    # Source packages are arch "all": the host's own lists carry the newest upload.
    return sorted((cache_dir / "debs" / debpkg.host_arch()).glob(f"{source.location}_*_all.deb"))


def _identity(source: KernelSource, deb: Path) -> dict[str, Any]:
    return {"kind": "debian", "package": source.location, "file": deb.name, "sha256": cached_file_sha256(deb)}


def acquire(source: KernelSource, cache_dir: Path, reporter: Reporter, offline: bool) -> Acquired:
    if offline:
        found = _cached_debs(source, cache_dir)
        if not found:
            raise SourceError(
                f"offline build, but {source.location} is not in the cache ({cache_dir / 'debs'})",
                hint="run once online, or use a tarball/tree source",
            )
        deb = found[-1]
    else:
        deb = debpkg.fetch_packages([source.location], debpkg.host_arch(), cache_dir, reporter)[0]
    return deb, _identity(source, deb)


def known(source: KernelSource, cache_dir: Path) -> dict[str, Any] | None:
    found = _cached_debs(source, cache_dir)
    return _identity(source, found[-1]) if found else None


KIND = SourceKind(
    name="debian",
    key_kind="str",
    help="Debian source package to fetch with apt-get download, e.g. linux-source-6.1.",
    acquire=acquire,
    known=known,
)
