"""runtime.interpreter: static — the writer's closure decides which native modules the 'cpython'
stage builds in; then the closure is computed again against that binary, so nothing is left to
load from lib-dynload, and a writer import the binary cannot satisfy is a build error here,
never an ImportError in the dump environment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import CompileError
from ...core.events import Reporter
from ...core.store import Store
from .. import cpython
from ..model import produce
from . import freeze
from .closure import ModuleClosure, module_closure
from .interpreter import CustomBuild
from .target import TargetPython
from .tree import Bytecode, TreeWriter

NATIVE = "_zfcpdump"  # built into the static interpreter (stages/cpython/_zfcpdump.c)
INIT = "init"  # the frozen binary is the rd's /init itself


@dataclass(frozen=True)
class StaticEnv:
    """What the static path needs beyond the runtime stage: the store for the 'cpython'
    stage, the reporter, the cache dir (source tarball, logs) and the offline flag."""

    store: Store
    reporter: Reporter
    cache_dir: Path
    offline: bool


def as_static(target: TargetPython) -> TargetPython:
    """The target as the static build will be: the native helper is there (so the writer's
    ctypes fallback is not followed) and no module that needs an outside library is (so the
    fallbacks for those are)."""
    return TargetPython(
        target.version,
        target.magic,
        (target.builtins - cpython.NEEDS_LIBRARY) | {NATIVE},
        frozenset(cpython.KEPT_FROZEN.values()),
        target.ext_suffixes,
        target.source,
    )


def native_modules(closure: ModuleClosure) -> tuple[str, ...]:
    """The modules the binary must have built in: the closure's built-in and extension ones."""
    return tuple(sorted(n for n, r in closure.modules.items() if r.kind in ("builtin", "extension")))


def cpython_sources(cache_dir: Path, offline: bool, arch: str) -> dict[str, Any]:
    """What of the static build the 'runtime' stage's key holds: all the 'cpython' stage's
    inputs (source, flags, toolchain, its code) but the module set, which follows from the
    writer, which the key already holds."""
    _tarball, digest = cpython.CPythonSource().tarball(cache_dir, offline)
    inputs = cpython.cpython_inputs(digest, (), arch)
    return {key: value for key, value in inputs.items() if key != "modules"}


def static_interpreter(
    target: TargetPython,
    closure: ModuleClosure,
    arch: str,
    env: StaticEnv,
) -> tuple[CustomBuild, TargetPython]:
    """Build (or find) the static binary for *closure*, and the target it makes."""
    prepared = cpython.prepare_cpython(
        cpython.CPythonSource(), native_modules(closure), arch, env.cache_dir, env.reporter, env.offline
    )
    env.reporter.stage_start("cpython", prepared.key)
    output = produce("cpython", prepared, env.store)
    env.reporter.stage_finish("cpython", output.key, output.cached, output.seconds)
    builtins = tuple(json.loads((output.path / cpython.BUILTINS_JSON).read_text()))
    frozen = frozenset(json.loads((output.path / cpython.FROZEN_JSON).read_text()))
    size = (output.path / cpython.BINARY).stat().st_size
    how = f"static CPython {target.version} from source, {len(builtins)} built-in modules, {size} bytes"
    static = TargetPython(target.version, target.magic, frozenset(builtins), frozen, (), "static build")
    return CustomBuild(output.path / cpython.BINARY, builtins, (), how), static


def check_complete(closure: ModuleClosure, writer: str) -> None:
    """Every unguarded import of the writer is in the static binary or its bytecode."""
    lacking = closure.unguarded_writer_imports(writer)
    if lacking:
        listed = "; ".join(f"{name} (imported by {', '.join(who)})" for name, who in lacking.items())
        raise CompileError(
            f"the static interpreter lacks modules the writer imports: {listed}",
            hint="guard the import with `except ImportError`, or use runtime.interpreter: custom",
        )


def recompute(target: TargetPython, search: list[Path], roots: list[str], writer: str) -> ModuleClosure:
    closure = module_closure(target, search, roots, deep=(writer,))
    check_complete(closure, writer)
    return closure


def emit_frozen(
    tree: TreeWriter,
    interpreter: CustomBuild,
    jobs: Sequence[Bytecode],
    pycs: dict[str, bytes],
    arch: str,
    writer: str,
    work: Path,
    env: StaticEnv,
) -> dict[str, Any]:
    """Freeze the bytecode into the interpreter, check it under qemu-user, and write it as
    /init; returns what files.json's "python" says about it."""
    modules = freeze.frozen_modules(jobs, pycs)
    dev = interpreter.binary.parent / cpython.DEV_DIR
    binary = freeze.freeze(dev, modules, writer, arch, work, env.cache_dir / "logs" / "freeze")
    checked = freeze.self_check(binary, arch, [m.name for m in modules if m.origin == "writer"])
    if not checked:
        env.reporter.warning("no qemu-user for the target: the frozen writer's self-check was skipped")
    code = sum(len(m.code) for m in modules)
    why = [
        f"/init: the writer and {len(modules)} modules frozen in ({code} bytes of bytecode)",
        interpreter.how,
    ]
    tree.copy(binary, INIT, 0o755, "interpreter", "generated", why)
    return {
        "binary": "/" + INIT,
        "flags": [],
        "bytecode": "frozen",
        "zip": None,
        "frozen": {
            "modules": len(modules),
            "bytes": code,
            "self_check": checked,
            "interpreter": interpreter.binary.parent.name,  # the 'cpython' stage output
        },
    }
