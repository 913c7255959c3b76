"""The layout shows the architecture, and stays that way: no import cycles, a CLI no domain
module imports, no module over about 400 lines, unique class names, lint and format clean."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.buildcli import ROOT

PACKAGE = ROOT / "src" / "zfcpdump_builder"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every builder module *name* imports, anywhere in the file (lazy imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    found.add(f"{target}.{alias.name}")
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A package importing its own submodules is how packages work; any other loop is a cycle."""

    def real(a: str, b: str) -> bool:
        return not b.startswith(a + ".")

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if not real(node, nxt):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_there_are_no_import_cycles() -> None:
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"p": {"p.x"}, "p.x": {"q"}, "q": set()}) is None


def test_no_domain_module_imports_the_cli() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        if not name.startswith("zfcpdump_builder.cli")
        for target in targets
        if target.startswith("zfcpdump_builder.cli")
    ]
    assert not offenders, offenders


def test_every_module_imports() -> None:
    import zfcpdump_builder

    for info in pkgutil.walk_packages(zfcpdump_builder.__path__, "zfcpdump_builder."):
        importlib.import_module(info.name)


def test_no_module_is_over_400_lines() -> None:
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "src" / "zfcpdump_writer").rglob("*.py")]
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(files)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_class_names_are_unique() -> None:
    seen: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(name)
    assert not {k: v for k, v in seen.items() if len(v) > 1}


def test_the_writer_uses_the_standard_library_only() -> None:
    writer = ROOT / "src" / "zfcpdump_writer"
    # _zfcpdump is ours: C built into the static interpreter (stages/cpython/_zfcpdump.c),
    # imported with a ctypes fallback.
    stdlib = set(sys.stdlib_module_names) | {"_zfcpdump"}
    foreign = set()
    for path in writer.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                foreign |= {a.name.split(".")[0] for a in node.names} - stdlib
            elif isinstance(node, ast.ImportFrom) and not node.level:
                foreign |= {(node.module or "").split(".")[0]} - stdlib
    assert not foreign, foreign


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command: list[str]) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, *command, "src", "tests", "bench", "build.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_mypy_passes_over_the_builder_and_the_writer() -> None:
    mypy = shutil.which("mypy") or str(Path(sys.executable).parent / "mypy")
    result = subprocess.run([mypy], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
