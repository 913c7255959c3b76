"""kernel.source.tarball: a kernel tarball, local or http(s), pinned by its sha256."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ...core.errors import OfflineMissingError, SourceError
from ...core.events import Reporter
from ...core.store import file_sha256
from .kinds import Acquired, KernelSource, SourceKind


def acquire(source: KernelSource, cache_dir: Path, reporter: Reporter, offline: bool) -> Acquired:
    expected = source.sha256 or ""
    if "://" in source.location:
        path = _download(source.location, expected, cache_dir, reporter, offline)
    else:
        path = Path(source.location)
        if not path.is_file():
            raise SourceError(f"kernel tarball {path} does not exist")
        actual = file_sha256(path)
        if actual != expected:
            raise SourceError(
                f"sha256 mismatch for {path}: expected {expected}, got {actual}",
                hint="nothing was unpacked; fix kernel.source.sha256 or the file",
            )
    return path, {"kind": "tarball", "sha256": expected}


def _download(url: str, expected: str, cache_dir: Path, reporter: Reporter, offline: bool) -> Path:
    downloads = cache_dir / "downloads"
    final = downloads / f"{expected}.tar"
    if final.is_file():
        return final
    if offline:
        raise OfflineMissingError(f"offline build, but {url} is not in the download cache")
    downloads.mkdir(parents=True, exist_ok=True)
    partial = downloads / f"{expected}.part.{os.getpid()}"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with reporter.progress("source", f"downloading {url}", total, "bytes") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.advance(len(block))
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise SourceError(f"cannot download {url}: {exc}") from None
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise SourceError(
            f"sha256 mismatch for {url}: expected {expected}, got {digest.hexdigest()}",
            hint="the download was discarded",
        )
    os.rename(partial, final)
    return final


KIND = SourceKind(
    name="tarball",
    key_kind="str",
    help="Path or http(s) URL of a kernel tarball; needs sha256.",
    acquire=acquire,
    extra_keys={"sha256": ("sha256", "Expected sha256 of the tarball (mandatory with tarball).")},
    required=("sha256",),
    local_path=True,
)
