"""The writer's import closure, computed against the target's stdlib with modulefinder.

Imports anywhere in the writer count (it imports ctypes lazily); in the stdlib only imports
that run at import time count, so `os.popen`'s lazy `import subprocess` does not drag in half
the stdlib. Imports under `if TYPE_CHECKING:` never count.
"""

from __future__ import annotations

import ast
import modulefinder
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import SourceError
from .target import TargetPython

# ModuleFinder's kinds of module (private constants, stable since Python 2; typeshed omits them).
_FINDER: Any = modulefinder
C_BUILTIN, PKG_DIRECTORY, PY_SOURCE, C_EXTENSION = (
    _FINDER._C_BUILTIN,
    _FINDER._PKG_DIRECTORY,
    _FINDER._PY_SOURCE,
    _FINDER._C_EXTENSION,
)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def _is_import_fallback(handler: ast.excepthandler) -> bool:
    """An `except ImportError:` (or a tuple naming it): runs only when an import failed."""
    kind = getattr(handler, "type", None)
    names = kind.elts if isinstance(kind, ast.Tuple) else [kind]
    return any(isinstance(n, ast.Name) and n.id in IMPORT_ERRORS for n in names)


FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


BLOCK_NODES = (ast.stmt, ast.excepthandler, ast.match_case)


def top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for target in ast.walk(node):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    names.add(target.id)
    return names


class ClosureFinder(modulefinder.ModuleFinder):
    """ModuleFinder resolving against the target's tables and scanning import statements."""

    _safe_import_hook: Callable[..., None]  # ModuleFinder's own hook, which typeshed omits

    def __init__(self, path: list[str], target: TargetPython, deep: tuple[str, ...]) -> None:
        super().__init__(path=path)
        self.target = target
        self.deep = tuple(deep)
        self.importers: dict[str, set[str]] = defaultdict(set)
        self.guarded: set[str] = set()  # imports that failed where an ImportError fallback ran
        self._scanning: list[str] = []

    def find_module(self, name: str, path: Any, parent: Any = None) -> tuple:
        fullname = f"{parent.__name__}.{name}" if parent else name
        if fullname in self.excludes:
            raise ImportError(name)
        if path is None:
            if name in self.target.builtins:
                return None, None, ("", "", C_BUILTIN)
            path = self.path
        for entry in path:
            found = self._find_in(entry, name)
            if found is not None:
                return found
        raise ImportError(f"No module named {fullname}")

    def _find_in(self, entry: str, name: str) -> tuple | None:
        base = os.path.join(entry, name)
        if os.path.isfile(os.path.join(base, "__init__.py")):
            return None, base, ("", "", PKG_DIRECTORY)
        if os.path.isfile(base + ".py"):
            return open(base + ".py", "rb"), base + ".py", (".py", "rb", PY_SOURCE)
        for suffix in self.target.ext_suffixes:
            if os.path.isfile(base + suffix):
                return None, base + suffix, (suffix, "rb", C_EXTENSION)
        return None

    def import_module(self, partname: str, fqname: str, parent: Any) -> Any:
        importer = self._scanning[-1] if self._scanning else "(root)"
        if importer != fqname:
            self.importers[fqname].add(importer)
        return super().import_module(partname, fqname, parent)

    def scan_code(self, co: Any, m: Any) -> None:  # noqa: ARG002 - ModuleFinder's signature
        with open(m.__file__, "rb") as handle:
            tree = ast.parse(handle.read(), m.__file__)
        m.globalnames.update(dict.fromkeys(top_level_names(tree), 1))
        deep = m.__name__ in self.deep or m.__name__.startswith(tuple(d + "." for d in self.deep))
        self._scanning.append(m.__name__)
        try:
            self._scan_nodes(tree.body, m, deep)
        finally:
            self._scanning.pop()

    def _scan_nodes(self, nodes: Iterable[ast.AST], m: Any, deep: bool) -> None:
        """Follow the import statements that can run (see the module docstring)."""
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._scan_import(node, m)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                self._scan_nodes(node.orelse, m, deep)
            elif isinstance(node, ast.Try) and any(_is_import_fallback(h) for h in node.handlers):
                self._scan_try(node, m, deep)
            elif isinstance(node, FUNCTION_NODES) and not deep:
                continue
            elif deep or isinstance(node, BLOCK_NODES):
                self._scan_nodes(ast.iter_child_nodes(node), m, deep)

    def _scan_try(self, node: ast.Try, m: Any, deep: bool) -> None:
        """`try: import a / except ImportError: import b` needs b only when a is missing."""
        before = self._failures(m)
        self._scan_nodes(node.body, m, deep)
        failed = self._failures(m) != before
        self.guarded |= self._failures(m) - before
        for handler in node.handlers:
            if failed or not _is_import_fallback(handler):
                self._scan_nodes(handler.body, m, deep)
        self._scan_nodes(node.orelse + node.finalbody, m, deep)

    def _failures(self, m: Any) -> set[str]:
        return {name for name, callers in self.badmodules.items() if m.__name__ in callers}

    def _scan_import(self, node: ast.Import | ast.ImportFrom, m: Any) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._safe_import_hook(alias.name, m, None, level=0)
            return
        fromlist = [a.name for a in node.names if a.name != "*"] or None
        if node.level == 0:
            self._safe_import_hook(node.module or "", m, fromlist, level=0)
        elif node.module:
            self._safe_import_hook(node.module, m, fromlist, level=node.level)
        else:
            parent: Any = self.determine_parent(m, level=node.level)  # a modulefinder.Module
            if parent is not None:
                self._safe_import_hook(parent.__name__, m, fromlist, level=0)


@dataclass(frozen=True)
class ModuleRecord:
    name: str
    kind: str  # source | package | extension | builtin | frozen
    file: str | None
    importers: tuple[str, ...]


@dataclass
class ModuleClosure:
    modules: dict[str, ModuleRecord]
    missing: dict[str, list[str]]
    guarded: frozenset[str] = frozenset()  # missing, but an `except ImportError` covers it

    def unguarded_writer_imports(self, writer: str) -> dict[str, list[str]]:
        """Missing modules the *writer* package imports without an ImportError fallback."""
        return {
            name: importers
            for name, importers in sorted(self.missing.items())
            if name not in self.guarded and any(i.split(".")[0] == writer for i in importers)
        }


def writer_modules(package_dir: Path) -> list[str]:
    """Dotted names of the writer package's modules (not __main__: /init imports main)."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts or "tests" in parts or parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def module_closure(
    target: TargetPython, search: list[Path], roots: list[str], deep: tuple[str, ...]
) -> ModuleClosure:
    finder = ClosureFinder([str(p) for p in search], target, deep)
    for name in roots:
        try:
            finder.import_hook(name)
        except ImportError as exc:
            raise SourceError(f"module {name} is not in the target runtime: {exc}") from exc
    modules = {}
    for name, module in sorted(finder.modules.items()):
        modules[name] = ModuleRecord(
            name,
            _kind(module, target),
            getattr(module, "__file__", None),
            tuple(sorted(finder.importers.get(name, {"(root)"}))),
        )
    missing, maybe = finder.any_missing_maybe()
    gone = {name: sorted(c for c in finder.badmodules.get(name, {}) if c != "-") for name in missing}
    return ModuleClosure(modules, gone, frozenset(finder.guarded))


def _kind(module: Any, target: TargetPython) -> str:
    if module.__name__ in target.frozen:
        return "frozen"
    if module.__file__ is None:
        return "builtin"
    if module.__path__:
        return "package"
    return "extension" if not module.__file__.endswith(".py") else "source"
