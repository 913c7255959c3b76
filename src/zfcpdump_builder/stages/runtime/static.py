"""runtime.interpreter: static — the writer's closure decides which native modules the 'cpython'
stage builds in; then the closure is computed again against that binary, so nothing is left to
load from lib-dynload, and a writer import the binary cannot satisfy is a build error here,
never an ImportError in the dump environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...core.errors import CompileError
from ...core.events import Reporter
from ...core.store import Store
from .. import cpython
from ..model import produce
from .closure import ModuleClosure, module_closure
from .interpreter import CustomBuild
from .target import TargetPython

NATIVE = "_zfcpdump"  # built into the static interpreter (stages/cpython/_zfcpdump.c)


def as_static(target: TargetPython) -> TargetPython:
    """The target as the static build will be: the native helper is there (so the writer's
    ctypes fallback is not followed) and no module that needs an outside library is (so the
    fallbacks for those are)."""
    return TargetPython(
        target.version,
        target.magic,
        (target.builtins - cpython.NEEDS_LIBRARY) | {NATIVE},
        target.frozen,
        target.ext_suffixes,
        target.source,
    )


def native_modules(closure: ModuleClosure) -> tuple[str, ...]:
    """The modules the binary must have built in: the closure's built-in and extension ones."""
    return tuple(sorted(n for n, r in closure.modules.items() if r.kind in ("builtin", "extension")))


def cpython_sources(cache_dir: Path, offline: bool, arch: str) -> dict[str, Any]:
    """What of the static build the 'runtime' stage's key holds (the module set follows from
    the writer, which the key already holds)."""
    _tarball, digest = cpython.CPythonSource().tarball(cache_dir, offline)
    return {"source_sha256": digest, "toolchain": cpython.toolchain_identity(arch)}


def static_interpreter(
    target: TargetPython,
    closure: ModuleClosure,
    arch: str,
    env: tuple[Store, Reporter, Path, bool],
) -> tuple[CustomBuild, TargetPython]:
    """Build (or find) the static binary for *closure*, and the target it makes."""
    store, reporter, cache_dir, offline = env
    prepared = cpython.prepare_cpython(
        cpython.CPythonSource(), native_modules(closure), arch, cache_dir, reporter, offline
    )
    reporter.stage_start("cpython", prepared.key)
    output = produce("cpython", prepared, store)
    reporter.stage_finish("cpython", output.key, output.cached, output.seconds)
    builtins = tuple(json.loads((output.path / cpython.BUILTINS_JSON).read_text()))
    size = (output.path / cpython.BINARY).stat().st_size
    how = f"static CPython {target.version} from source, {len(builtins)} built-in modules, {size} bytes"
    static = TargetPython(
        target.version, target.magic, frozenset(builtins), target.frozen, (), "static build"
    )
    return CustomBuild(output.path / cpython.BINARY, builtins, (), how), static


def check_complete(closure: ModuleClosure, writer: str) -> None:
    """Every unguarded import of the writer is in the static binary or its bytecode."""
    lacking = {
        name: importers
        for name, importers in closure.missing.items()
        if name not in closure.guarded and any(i.split(".")[0] == writer for i in importers)
    }
    if lacking:
        listed = "; ".join(f"{name} (imported by {', '.join(who)})" for name, who in sorted(lacking.items()))
        raise CompileError(
            f"the static interpreter lacks modules the writer imports: {listed}",
            hint="guard the import with `except ImportError`, or use runtime.interpreter: custom",
        )


def recompute(target: TargetPython, search: list[Path], roots: list[str], writer: str) -> ModuleClosure:
    closure = module_closure(target, search, roots, deep=(writer,))
    check_complete(closure, writer)
    return closure
