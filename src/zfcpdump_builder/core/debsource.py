"""Upstream tarballs from Debian source packages (the orig.tar.* of `apt-get source`).

A private apt state gets its own deb-src lines, derived from the host's sources, so nothing of
the host's apt changes. Only the orig tarball is needed: the Debian patch tarball and .dsc of
the current security upload can be missing from the archive (404), so a failed `apt-get source`
is fine as long as the orig arrived. It is checked against the Checksums-Sha256 of the Sources
index.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .debpkg import SOURCES_LIST, SOURCES_PARTS, apt_options
from .errors import HostError, OfflineMissingError, SourceError
from .store import file_lock, file_sha256

SOURCE_STATE = "apt-src"


def source_lines(sources_list: str = SOURCES_LIST, sources_parts: str = SOURCES_PARTS) -> str:
    """The host's apt sources turned into deb-src entries (both the one-line and deb822 forms)."""
    chunks: list[str] = []
    paths = (
        [Path(sources_list), *sorted(Path(sources_parts).glob("*"))] if os.path.isdir(sources_parts) else []
    )
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            chunks.append(re.sub(r"(?m)^Types:\s*deb\s*$", "Types: deb-src", text))
        elif path.suffix == ".list" or path == Path(sources_list):
            lines = [
                re.sub(r"^deb(\s)", r"deb-src\1", ln) for ln in text.splitlines() if ln.startswith("deb ")
            ]
            if lines:
                chunks.append(("\n".join(lines)) + "\n")
    return "\n".join(chunks)


def _state(cache_dir: Path) -> tuple[Path, list[str]]:
    state = cache_dir / SOURCE_STATE
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    (state / "sources.list").write_text("")
    (state / "parts").mkdir(exist_ok=True)
    (state / "parts" / "src.sources").write_text(source_lines())
    options = [
        *apt_options("amd64", state),
        "-o",
        f"Dir::Etc::SourceList={state / 'sources.list'}",
        "-o",
        f"Dir::Etc::SourceParts={state / 'parts'}",
    ]
    return state, options


def _apt(tool: str, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which(tool) is None:
        raise HostError(f"{tool} is not available on this host; give the tarball as a local file instead")
    return subprocess.run([tool, *args], cwd=cwd, text=True, capture_output=True, check=False)


def index_sha256(options: list[str], package: str, filename: str) -> str | None:
    """The sha256 the Sources index lists for *filename* of source *package*."""
    shown = _apt("apt-cache", [*options, "showsrc", package])
    for line in shown.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == filename and len(fields[0]) == 64:
            return fields[0]
    return None


def orig_tarball(package: str, filename: str, cache_dir: Path, offline: bool) -> Path:
    """*filename* (an orig tarball of source *package*), downloaded once into the cache and
    checked against the Sources index."""
    dest = cache_dir / "sources"
    final = dest / filename
    if final.is_file():
        return final
    if offline:
        raise OfflineMissingError(
            f"offline build, but {filename} (from Debian source {package}) is not in {dest}",
            hint="run the build once online with the same --cache-dir",
        )
    dest.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / "apt-src.lock"):
        state, options = _state(cache_dir)
        updated = _apt("apt-get", [*options, "update"])
        if updated.returncode != 0:
            tail = "\n".join(updated.stderr.strip().splitlines()[-6:])
            raise SourceError(f"apt-get update for deb-src lines failed:\n{tail}")
        expected = index_sha256(options, package, filename)
        if expected is None:
            raise SourceError(f"the Sources index lists no {filename} for source package {package}")
        work = state / f"download.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            fetched = _apt("apt-get", [*options, "source", "--download-only", package], cwd=work)
            got = work / filename
            if not got.is_file():
                errors = [ln for ln in fetched.stderr.splitlines() if ln.startswith("E:")][-3:]
                raise SourceError(f"apt-get source {package} did not fetch {filename}: " + " ".join(errors))
            actual = file_sha256(got)
            if actual != expected:
                raise SourceError(
                    f"sha256 mismatch for {filename}: the Sources index says {expected}, got {actual}",
                    hint="the download was discarded",
                )
            os.rename(got, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final
