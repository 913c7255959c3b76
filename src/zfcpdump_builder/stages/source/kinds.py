"""What a kernel source kind is: its recipe keys, and how a tree is fetched and recognised.

Each kind lives in a module of its own (debian.py, tarball.py, tree.py) and is registered
once, in this package's SOURCE_KINDS. The recipe schema, its checks, the resolved plan and
this stage all read that registry, so a new kind is one module and one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.events import Reporter


@dataclass(frozen=True)
class KernelSource:
    """Where the kernel comes from (a resolved recipe's kernel.source)."""

    kind: str  # a SOURCE_KINDS name
    location: str
    sha256: str | None = None


# (archive to unpack, or None for a tree used in place; the identity that keys the stage)
Acquired = tuple[Path | None, dict[str, Any]]


@dataclass(frozen=True)
class SourceKind:
    """One way to get a kernel tree."""

    name: str  # kernel.source.<name> selects this kind; its value is KernelSource.location
    key_kind: str  # the schema kind of that value: str or path
    help: str
    # (source, cache, reporter, offline); offline, it only looks in the cache (OfflineMissingError)
    acquire: Callable[[KernelSource, Path, Reporter, bool], Acquired]
    extra_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (schema kind, help)
    required: tuple[str, ...] = ()  # extra keys this kind cannot do without
    local_path: bool = False  # the value is a path, made absolute against the recipe (not a URL)
