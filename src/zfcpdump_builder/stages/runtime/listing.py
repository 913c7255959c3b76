"""files.json: every file of the runtime tree and every module of the closure, with reasons."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

from ...core.events import Reporter
from .closure import ModuleClosure
from .packages import Staged
from .spec import INTERPRETER_FLAGS, RootLayout, RuntimeSpec
from .target import TargetPython
from .tree import Bytecode, TreeWriter, _import_reasons


def warn_missing(closure: ModuleClosure, writer: str, reporter: Reporter) -> None:
    for name, importers in closure.unguarded_writer_imports(writer).items():
        reporter.warning(
            f"runtime: {name} (imported by {', '.join(importers)}) is not in the "
            "target runtime; the writer must guard that import"
        )


def landmark_modules(spec: RuntimeSpec) -> tuple[str, ...]:
    """Frozen modules that must still exist as files: os.pyc marks the prefix for 'files'."""
    return ("os",) if spec.bytecode == "files" else ()


def runtime_manifest(
    spec: RuntimeSpec,
    staged: Staged,
    target: TargetPython,
    layout: RootLayout,
    tree: TreeWriter,
    closure: ModuleClosure,
    jobs: list[Bytecode],
    pycs: dict[str, bytes],
) -> dict[str, Any]:
    files = [tree.records[p].as_json() for p in sorted(tree.records)]
    by_member = {j.member: j for j in jobs}
    modules = []
    for record in closure.modules.values():
        entry: dict[str, Any] = {"name": record.name, "kind": record.kind, "why": _import_reasons(record)}
        member = next((m for m, j in by_member.items() if j.module == record.name), None)
        if member is not None:
            job = by_member[member]
            entry.update(
                member=member,
                size=len(pycs[member]),
                origin=job.origin,
                sha256=hashlib.sha256(pycs[member]).hexdigest(),
                category="writer" if job.origin == "writer" else "bytecode",
            )
        modules.append(entry)
    regular = [f for f in files if f["type"] == "file"]
    return {
        "python": {
            "name": spec.python,
            "version": target.version,
            "magic": target.magic,
            "binary": "/" + layout.binary,
            "flags": list(INTERPRETER_FLAGS),
            "bytecode": spec.bytecode,
            "optimize": spec.optimize,
            "zip": "/" + layout.zip if spec.bytecode == "zip" else None,
            "tables": target.source,
        },
        "arch": spec.arch,
        "kind": spec.kind,
        "packages": [asdict(p) for p in staged.packages],
        "files": files,
        "modules": modules,
        "missing_modules": {k: v for k, v in sorted(closure.missing.items())},
        "totals": {"files": len(regular), "bytes": sum(f["size"] for f in regular)},
    }
