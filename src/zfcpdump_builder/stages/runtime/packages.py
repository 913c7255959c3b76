"""The runtime's packages: fetched (kind debian), found (debs) or given (sysroot), and unpacked
once into a cached root of their own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import libarchive

from ...core import debpkg, dep5
from ...core.errors import SourceError
from ...core.events import Reporter
from ...core.store import Store, code_digest, file_sha256, hash_inputs
from .spec import DEFAULT_PACKAGES, RuntimeSpec, dev_packages


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    arch: str
    file: str
    sha256: str
    license: str | None = None  # SPDX, from a machine-readable usr/share/doc/NAME/copyright


@dataclass
class Staged:
    """An unpacked root and where each of its files came from."""

    root: Path
    packages: list[PackageInfo] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)

    def origin_of(self, path: str) -> str:
        return self.origin.get(path, "sysroot" if not self.packages else "unknown")


def acquire(spec: RuntimeSpec, cache_dir: Path, reporter: Reporter, offline: bool = False) -> list[Path]:
    """The package files the runtime is made of (downloaded for kind 'debian', unless *offline*)."""
    if spec.kind == "sysroot":
        return []
    if spec.kind == "debian":
        names = list(spec.packages) + (list(dev_packages(spec)) if spec.interpreter == "custom" else [])
        reporter.detail(f"runtime: fetching {' '.join(names)} ({spec.arch})")
        return debpkg.fetch_packages(names, spec.arch, cache_dir, reporter, offline)
    return _packages_in_dir(Path(spec.path or "."), spec)


def _packages_in_dir(directory: Path, spec: RuntimeSpec) -> list[Path]:
    found = sorted(p for p in directory.iterdir() if p.suffix in (".deb", ".rpm"))
    if not found:
        raise SourceError(f"runtime.path {directory} holds no .deb or .rpm files")
    if spec.packages == DEFAULT_PACKAGES or not spec.packages:
        return found
    chosen = []
    for name in spec.packages:
        match = [p for p in found if _package_name(p) == name]
        if not match:
            raise SourceError(f"package {name!r} is not among the files in {directory}")
        chosen.append(match[-1])
    return chosen


def _package_name(pkg: Path) -> str:
    return pkg.name.split("_", 1)[0] if pkg.suffix == ".deb" else pkg.name.rsplit("-", 2)[0]


def package_info(pkg: Path) -> PackageInfo:
    """Name, version and architecture of a .deb (from its control file) or an .rpm (its name)."""
    if pkg.suffix == ".deb":
        control = _deb_control(pkg)
        name, version, arch = control.get("Package"), control.get("Version"), control.get("Architecture")
    else:
        stem = pkg.name.removesuffix(".rpm")
        rest, _, arch = stem.rpartition(".")
        name, version, release = rest.rsplit("-", 2) if rest.count("-") >= 2 else (rest, "", "")
        version = f"{version}-{release}" if release else version
    if not name or not arch:
        raise SourceError(f"{pkg} is not a package this builder can read (no name/architecture)")
    return PackageInfo(name, version or "", arch, pkg.name, file_sha256(pkg))


def _deb_control(pkg: Path) -> dict[str, str]:
    try:
        with libarchive.file_reader(str(pkg)) as outer:
            for member in outer:
                if member.pathname.startswith("control.tar"):
                    return _control_fields(b"".join(member.get_blocks()))
    except libarchive.ArchiveError as exc:
        raise SourceError(f"cannot read package {pkg}: {exc}") from exc
    raise SourceError(f"{pkg} has no control.tar member: not a Debian package?")


def _control_fields(data: bytes) -> dict[str, str]:
    with libarchive.memory_reader(data) as inner:
        for entry in inner:
            if entry.pathname.lstrip("./") == "control":
                text = b"".join(entry.get_blocks()).decode("utf-8", "replace")
                return dict(pair for pair in map(_field, text.splitlines()) if pair is not None)
    return {}


def _field(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(":")
    return (key.strip(), value.strip()) if sep and not line.startswith(" ") else None


def check_package_arch(info: PackageInfo, arch: str) -> None:
    if info.arch not in (arch, "all", "noarch"):
        raise SourceError(
            f"package {info.file} is for architecture {info.arch}, not {arch}",
            hint=f"use the {arch} build of {info.name}",
        )


def stage_packages(pkgs: list[Path], spec: RuntimeSpec, dest: Path) -> Staged:
    staged = Staged(dest)
    for pkg in pkgs:
        info = package_info(pkg)
        check_package_arch(info, spec.arch)
        for member in debpkg.unpack_package(pkg, dest):
            staged.origin[member] = info.name
        staged.packages.append(replace(info, license=_package_license(dest, info.name)))
    return staged


def _package_license(root: Path, name: str) -> str | None:
    copyright_file = root / "usr/share/doc" / name / "copyright"
    if copyright_file.is_symlink() or not copyright_file.is_file():
        return None
    return dep5.dep5_license(copyright_file.read_text(errors="replace"))


def package_digests(pkgs: list[Path]) -> list[list[str]]:
    return [[p.name, file_sha256(p)] for p in pkgs]


def sysroot_inputs(packages: list[list[str]], spec: RuntimeSpec) -> dict[str, Any]:
    """The 'sysroot' stage's inputs: the package digests, the architecture, the unpacking code."""
    unpacker = code_digest(Path(debpkg.__file__ or ""), Path(dep5.__file__ or ""), Path(__file__))
    return {"packages": packages, "arch": spec.arch, "unpacker": unpacker}


def unpacked_packages(
    pkgs: list[Path], packages: list[list[str]], spec: RuntimeSpec, store: Store, reporter: Reporter
) -> Staged:
    """The packages unpacked into one root, kept as its own object: a writer change then
    reuses it instead of unpacking libc and libpython again. Read-only once made.
    *packages* are the package digests (package_digests)."""
    inputs = sysroot_inputs(packages, spec)

    def producer(out: Path) -> dict[str, Any]:
        staged = stage_packages(pkgs, spec, out / "root")
        (out / "origin.json").write_text(
            json.dumps(
                {"packages": [asdict(info) for info in staged.packages], "origin": staged.origin},
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
        return {"packages": len(staged.packages), "files": len(staged.origin)}

    reporter.stage_start("sysroot", hash_inputs(inputs))
    output = store.produce("sysroot", inputs, producer)
    reporter.stage_finish("sysroot", output.key, output.cached, output.seconds)
    recorded = json.loads((output.path / "origin.json").read_text())
    return Staged(
        output.path / "root", [PackageInfo(**info) for info in recorded["packages"]], recorded["origin"]
    )
