"""The resolved plan: a loaded recipe as one immutable, typed value, section by section.

`resolve` runs when a recipe is loaded, after every value was checked against the schema, so
a plan is always valid: sizes are bytes, `auto` is None where a number is meant, paths are
absolute. Each stage takes only its own section (the kernel stages `kernel`, `toolchain` and
`build`; the runtime `runtime`; the initramfs `initramfs` and `writer`; the budget `budget`;
install and prepare `install`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..stages import placement
from ..stages.source import SOURCE_KINDS, KernelSource
from .values import normalise_symbol_value, parse_size

BASE_FROM_SOURCE = "source"  # kernel.config.base: the tree's arch/s390/configs/zfcpdump_defconfig


@dataclass(frozen=True)
class KernelPlan:
    source: KernelSource
    base: Path | None  # None: the kernel tree's own zfcpdump_defconfig (`base: source`)
    fragments: tuple[Path, ...]
    symbols: tuple[tuple[str, str], ...]  # (SYMBOL, its .config spelling), in recipe order
    placement_symbols: tuple[tuple[str, str], ...] = ()  # what initramfs.placement needs


@dataclass(frozen=True)
class ToolchainPlan:
    cross_compile: str  # a prefix, or auto
    ccache: bool | None  # None: auto (when installed)


@dataclass(frozen=True)
class BuildOptions:
    jobs: int | None  # None: one per CPU
    source_date_epoch: int  # SOURCE_DATE_EPOCH in the environment still wins


@dataclass(frozen=True)
class RuntimePlan:
    kind: str
    packages: tuple[str, ...]  # empty: the built-in list
    path: Path | None
    python: str
    interpreter: str


@dataclass(frozen=True)
class InitramfsPlan:
    placement: str
    compression: str
    overlays: tuple[Path, ...]
    allow_shadow: bool
    max_compressed: int
    max_unpacked: int


@dataclass(frozen=True)
class WriterPlan:
    """The settings baked into /etc/zfcpdump.conf (checked by the writer's own rules)."""

    device: str
    disk_timeout: int
    after: str
    debug: int
    progress_interval: int
    source: str
    io: str
    verify: str
    chunk_kib: int | str  # "auto" or KiB

    def settings(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InstallSettings:
    directory: str
    zipl_layout: str
    link: str


@dataclass(frozen=True)
class BudgetPlan:
    memory: int
    writer_headroom: int


@dataclass(frozen=True)
class SigningPlan:
    key: Path | None
    cert: Path | None


@dataclass(frozen=True)
class BuildPlan:
    """Every section of a resolved recipe."""

    arch: str
    description: str
    kernel: KernelPlan
    toolchain: ToolchainPlan
    build: BuildOptions
    runtime: RuntimePlan
    initramfs: InitramfsPlan
    writer: WriterPlan
    install: InstallSettings
    budget: BudgetPlan
    signing: SigningPlan


def _source(section: dict[str, Any]) -> KernelSource:
    """The one registered kind whose key is set (the loader has checked there is exactly one)."""
    kind = next(k for k in SOURCE_KINDS if section.get(k))
    sha256 = section.get("sha256")
    return KernelSource(kind, section[kind], str(sha256).lower() if sha256 else None)


def _auto(value: Any) -> Any:
    return None if value == "auto" else value


def resolve(data: dict[str, Any]) -> BuildPlan:
    """The typed plan of the resolved, already validated recipe *data*."""
    kernel, runtime, rd, install = data["kernel"], data["runtime"], data["initramfs"], data["install"]
    symbols = tuple((s, normalise_symbol_value(v) or "") for s, v in kernel["config"]["set"].items())
    return BuildPlan(
        arch=data["arch"],
        description=data["description"],
        kernel=KernelPlan(
            _source(kernel["source"]),
            None if kernel["config"]["base"] == BASE_FROM_SOURCE else Path(kernel["config"]["base"]),
            tuple(Path(f) for f in kernel["config"]["fragments"]),
            symbols,
            placement.kernel_symbols(rd["placement"], rd["compression"]),
        ),
        toolchain=ToolchainPlan(data["toolchain"]["cross_compile"], _auto(data["toolchain"]["ccache"])),
        build=BuildOptions(_auto(data["build"]["jobs"]), int(data["build"]["source_date_epoch"])),
        runtime=RuntimePlan(
            runtime["kind"],
            tuple(runtime["packages"]),
            Path(runtime["path"]) if runtime["path"] else None,
            runtime["python"],
            runtime["interpreter"],
        ),
        initramfs=InitramfsPlan(
            rd["placement"],
            rd["compression"],
            tuple(Path(o) for o in rd["overlay"]),
            rd["allow_shadow"],
            parse_size(rd["max_compressed"]),
            parse_size(rd["max_unpacked"]),
        ),
        writer=WriterPlan(**data["writer"]),
        install=InstallSettings(install["dir"], install["zipl_layout"], install["link"]),
        budget=BudgetPlan(
            parse_size(data["budget"]["memory"]), parse_size(data["budget"]["writer_headroom"])
        ),
        signing=SigningPlan(
            *(Path(data["signing"][k]) if data["signing"][k] else None for k in ("key", "cert"))
        ),
    )
