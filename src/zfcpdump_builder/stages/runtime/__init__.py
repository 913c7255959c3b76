"""The target CPython for the initramfs: acquisition, import closure and ELF closure.

`build_runtime` turns Debian packages (or a directory of .deb/.rpm files, or an unpacked
sysroot) plus the writer package into a minimal file tree:

    root/usr/bin/python3.11                 the interpreter (started with -I -S -B)
    root/lib/ld64.so.1                      PT_INTERP, a real file (the deb has a symlink)
    root/lib/s390x-linux-gnu/...            the DT_NEEDED closure, as real files
    root/usr/lib/python311.zip              bytecode, ZIP_STORED (bytecode='zip'), or
    root/usr/lib/python3.11/*.pyc           sourceless bytecode files (bytecode='files')
    root/usr/lib/python3.11/lib-dynload/    extension modules (also the exec_prefix landmark)
    files.json                              every file with size, sha256, origin and why

The module closure is computed, not listed: the writer's modules and the interpreter's
start-up modules are scanned with `modulefinder` against the *target's* stdlib. Imports
anywhere in the writer count (it imports ctypes lazily); in the stdlib only imports that run
at import time count (so `os.popen`'s lazy `import subprocess` does not drag in half the
stdlib). Imports under `if TYPE_CHECKING:` never count.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import elfdeps, toolchain
from ...core.errors import CompileError, SourceError
from ...core.events import Reporter
from ...core.store import StageOutput, Store, code_digest
from .. import pycompile
from ..model import InnerStage, Prepared, produce
from . import freeze, static
from .closure import module_closure, writer_modules
from .interpreter import custom_interpreter
from .listing import landmark_modules, runtime_manifest, warn_missing
from .packages import Staged, acquire, package_digests, sysroot_inputs, unpacked_packages
from .spec import (
    DEFAULT_PACKAGES,
    FILES_JSON,
    ROOT_DIR,
    STARTUP_MODULES,
    RootLayout,
    RuntimeSpec,
)
from .target import TargetPython, check_magic, describe_target, find_python, qemu_command
from .tree import (
    TreeWriter,
    _emit_bytecode,
    _emit_native,
    _in_root,
    bytecode_jobs,
    compile_bytecode,
    image_name,
)

# Fallback when the target cannot be run: bytecode magic per CPython minor version.


# ----------------------------------------------------------------------------- the spec


# ----------------------------------------------------------------------------- acquisition


# ----------------------------------------------------------------------------- the target


# ----------------------------------------------------------------------------- module closure


# ----------------------------------------------------------------------------- the output tree


# ----------------------------------------------------------------------------- custom interpreter


# ----------------------------------------------------------------------------- the stage


__all__ = [
    "DEFAULT_PACKAGES",
    "FILES_JSON",
    "ROOT_DIR",
    "RuntimeSpec",
    "TargetPython",
    "build_runtime",
    "prepare_runtime",
    "load_manifest",
    "module_closure",
    "runtime_stage_inputs",
    "sysroot_inputs",
    "writer_modules",
]


@dataclass(frozen=True)
class WriterPackage:
    path: Path
    name: str
    digest: str

    @classmethod
    def load(cls, path: Path) -> WriterPackage:
        path = Path(path).resolve()
        if not (path / "__init__.py").is_file() or not (path / "main.py").is_file():
            raise SourceError(f"{path} is not the writer package (needs __init__.py and main.py)")
        return cls(path, path.name, _source_digest(path))


def _source_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*.py")):
        rel = file.relative_to(path).as_posix()
        if "__pycache__" not in rel:
            digest.update(f"{rel}\0".encode() + file.read_bytes() + b"\0")
    return digest.hexdigest()


def builder_digest() -> str:
    """Hash of the code that shapes this stage's output, so code changes miss the cache."""
    package = sorted(Path(__file__).parent.glob("*.[pc]*"))  # every module of this stage, launcher.c
    return code_digest(*package, Path(elfdeps.__file__ or ""), Path(pycompile.__file__ or ""))


def _sysroot_fingerprint(root: Path, spec: RuntimeSpec) -> str:
    layout = RootLayout(spec.python, spec.version)
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    digest = hashlib.sha256()
    for sub in (layout.binary, layout.stdlib, f"lib/{multiarch}", f"usr/lib/{multiarch}", "lib"):
        for path in sorted(_walk(root / sub)):
            stat = path.lstat()
            digest.update(f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file() or path.is_symlink():
        yield path
    elif path.is_dir():
        for dirpath, _dirs, files in os.walk(path):
            yield from (Path(dirpath) / f for f in files)


def runtime_inputs(spec: RuntimeSpec, packages: list[list[str]], writer: WriterPackage) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "spec": spec.cache_inputs(),
        "packages": packages,
        "writer": writer.digest,
        "builder": builder_digest(),
        "host_magic": pycompile.host_magic(),
        "host_python": sys.version.split()[0],
        "qemu": qemu_command(spec.arch) is not None and spec.probe,
    }
    if spec.interpreter == "custom":
        inputs["toolchain"] = toolchain.cross_gcc_version(spec.arch)
    if spec.kind == "sysroot":
        inputs["spec"]["path"] = None
        inputs["sysroot"] = _sysroot_fingerprint(Path(spec.path or "."), spec)
    return inputs


def runtime_stage_inputs(
    spec: RuntimeSpec, writer_package_dir: Path, cache_dir: Path, reporter: Reporter, offline: bool
) -> tuple[WriterPackage, list[Path], list[list[str]], dict[str, Any]]:
    """The writer, the package files and digests, and the 'runtime' stage's inputs: what both
    `build` and `plan` compute (plan with *offline*, so it never downloads)."""
    spec.validate()
    writer = WriterPackage.load(writer_package_dir)
    pkgs = acquire(spec, cache_dir, reporter, offline)
    packages = package_digests(pkgs)
    inputs = runtime_inputs(spec, packages, writer)
    if spec.interpreter == "static":
        inputs["cpython"] = static.cpython_sources(cache_dir, offline, spec.arch)
    return writer, pkgs, packages, inputs


def prepare_runtime(
    spec: RuntimeSpec,
    writer_package_dir: Path,
    store: Store,
    reporter: Reporter,
    cache_dir: Path,
    offline: bool,
) -> Prepared:
    """The 'runtime' stage: output dir holds root/ (the file tree) and files.json. Its packages
    are unpacked by an inner 'sysroot' stage, and a static interpreter is built by an inner
    'cpython' stage, only when the runtime itself must be made."""
    writer, pkgs, packages, inputs = runtime_stage_inputs(
        spec, writer_package_dir, cache_dir, reporter, offline
    )

    def producer(out: Path) -> dict[str, Any]:
        staged = (
            Staged(Path(spec.path or ".").resolve())
            if spec.kind == "sysroot"
            else unpacked_packages(pkgs, packages, spec, store, reporter)
        )
        return produce_runtime(spec, staged, writer, out, reporter, static_env)

    static_env = static.StaticEnv(store, reporter, cache_dir, offline)
    sysroot = (
        InnerStage("sysroot", None, "runtime.kind sysroot")
        if spec.kind == "sysroot"
        else InnerStage("sysroot", sysroot_inputs(packages, spec))
    )
    cpython_stage = (
        InnerStage("cpython", None, keyed_by="the writer's import closure")
        if spec.interpreter == "static"
        else InnerStage("cpython", None, f"runtime.interpreter {spec.interpreter}")
    )
    return Prepared(inputs, producer, inner=(sysroot, cpython_stage))


def build_runtime(
    spec: RuntimeSpec,
    writer_package_dir: Path,
    store: Store,
    reporter: Reporter,
    cache_dir: Path,
    offline: bool = False,
) -> StageOutput:
    """The 'runtime' stage on its own, outside a build's stage table."""
    return produce(
        "runtime", prepare_runtime(spec, writer_package_dir, store, reporter, cache_dir, offline), store
    )


def produce_runtime(
    spec: RuntimeSpec,
    staged: Staged,
    writer: WriterPackage,
    out: Path,
    reporter: Reporter,
    static_env: static.StaticEnv | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="runtime-work-", suffix=f".{os.getpid()}", dir=out.parent) as tmp:
        manifest = assemble(spec, staged, writer, out, Path(tmp), reporter, static_env)
    (out / FILES_JSON).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    totals = manifest["totals"]
    return {"files": totals["files"], "bytes": totals["bytes"], "modules": len(manifest["modules"])}


def assemble(
    spec: RuntimeSpec,
    staged: Staged,
    writer: WriterPackage,
    out: Path,
    work: Path,
    reporter: Reporter,
    static_env: static.StaticEnv | None = None,
) -> dict[str, Any]:
    layout = RootLayout(spec.python, spec.version)
    binary = find_python(staged, spec)
    target = describe_target(staged, spec, binary, reporter)
    check_magic(target, spec.python)
    (work / "writer").mkdir()
    shutil.copytree(
        writer.path,
        work / "writer" / writer.name,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"),
    )
    search = [work / "writer", staged.root / layout.stdlib, staged.root / layout.dynload]
    roots = [*STARTUP_MODULES, *writer_modules(work / "writer" / writer.name), *spec.extra_modules]
    custom = None
    if spec.interpreter == "static":
        if static_env is None:
            raise CompileError(
                "runtime.interpreter static needs the cpython stage (build it through prepare_runtime)"
            )
        first = module_closure(static.as_static(target), search, roots, deep=(writer.name,))
        custom, target = static.static_interpreter(target, first, spec.arch, static_env)
        closure = static.recompute(target, search, roots, writer.name)
    else:
        closure = module_closure(target, search, roots, deep=(writer.name,))
    warn_missing(closure, writer.name, reporter)
    tree = TreeWriter(out / ROOT_DIR)
    if spec.interpreter == "custom":
        extensions = [
            staged.root / _in_root(staged.root, r.file)
            for r in closure.modules.values()
            if r.kind == "extension"
        ]
        custom = custom_interpreter(staged.root, spec, closure, extensions, work / "custom")
        target = TargetPython(
            target.version,
            target.magic,
            frozenset(custom.builtins),
            target.frozen,
            target.ext_suffixes,
            target.source,
        )
    if spec.interpreter == "static" and custom is not None and static_env is not None:
        jobs = bytecode_jobs(closure, writer.name, staged, ())
        pycs = freeze.marshalled(compile_bytecode(jobs, spec.optimize, work / "pyc", freeze.frozen_name))
        python = static.emit_frozen(
            tree, custom, jobs, pycs, spec.arch, writer.name, work / "freeze", static_env
        )
    else:
        _emit_native(tree, staged, spec, layout, closure, custom)
        jobs = bytecode_jobs(closure, writer.name, staged, landmark_modules(spec))
        pycs = compile_bytecode(jobs, spec.optimize, work / "pyc", image_name(layout, spec))
        _emit_bytecode(tree, spec, layout, jobs, pycs)
        python = {}
    manifest = runtime_manifest(spec, staged, target, layout, tree, closure, jobs, pycs)
    manifest["python"].update(python)
    if custom is not None:
        manifest["python"][spec.interpreter] = {
            "builtins": sorted(custom.builtins),
            "exported_symbols": len(custom.exports),
        }
    return manifest


def load_manifest(output: StageOutput | Path) -> dict[str, Any]:
    path = output.path if isinstance(output, StageOutput) else Path(output)
    return json.loads((path / FILES_JSON).read_text())
