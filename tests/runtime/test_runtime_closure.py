"""The module-closure rules, on a synthetic stdlib and writer (no packages needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zfcpdump_builder.core.errors import SourceError
from zfcpdump_builder.stages.runtime import TargetPython, module_closure, writer_modules

STDLIB = {
    "topdep.py": "X = 1\n",
    "lazydep.py": "Y = 2\n",
    "fallback.py": "Z = 3\n",
    "needed_fallback.py": "W = 4\n",
    "typing_only.py": "T = 5\n",
    "classdep.py": "C = 6\n",
    "frozenmod.py": "import topdep\n",
    "stdmod.py": (
        "import topdep\n"
        "try:\n    import _fast\nexcept ImportError:\n    import fallback\n"
        "try:\n    import _absent\nexcept ImportError:\n    import needed_fallback\n"
        "class K:\n    import classdep\n"
        "def f():\n    import lazydep\n"
    ),
    "pkg/__init__.py": "from . import sub\n",
    "pkg/sub.py": "import sys\n",
}
WRITER = {
    "__init__.py": "",
    "main.py": (
        "from __future__ import annotations\n"
        "import stdmod\n"
        "TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n    import typing_only\n"
        "def run():\n    import pkg\n    import frozenmod\n"
    ),
    "extra.py": "import ext_mod\n",
}


def write_tree(base: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    return base


@pytest.fixture
def closure(tmp_path: Path):  # noqa: ANN201
    stdlib = write_tree(tmp_path / "lib", {**STDLIB, "__future__.py": ""})
    (tmp_path / "dyn").mkdir()
    (tmp_path / "dyn" / "ext_mod.cpython-311-s390x-linux-gnu.so").write_bytes(b"\x7fELF")
    write_tree(tmp_path / "w" / "fakewriter", WRITER)
    target = TargetPython(
        "3.11.2",
        3495,
        frozenset({"sys", "_fast"}),
        frozenset({"frozenmod"}),
        (".cpython-311-s390x-linux-gnu.so", ".so"),
        "test",
    )
    roots = writer_modules(tmp_path / "w" / "fakewriter")
    assert roots == ["fakewriter", "fakewriter.extra", "fakewriter.main"]
    return module_closure(target, [tmp_path / "w", stdlib, tmp_path / "dyn"], roots, ("fakewriter",))


def test_import_time_imports_of_the_stdlib_count(closure) -> None:  # noqa: ANN001
    assert {"stdmod", "topdep", "classdep", "needed_fallback"} <= set(closure.modules)


def test_function_level_imports_count_only_in_the_writer(closure) -> None:  # noqa: ANN001
    assert "lazydep" not in closure.modules
    assert {"pkg", "pkg.sub"} <= set(closure.modules)
    assert "fakewriter.main" in closure.modules["pkg"].importers


def test_type_checking_imports_and_satisfied_fallbacks_do_not_count(closure) -> None:  # noqa: ANN001
    assert "typing_only" not in closure.modules
    assert "fallback" not in closure.modules
    assert closure.modules["_fast"].kind == "builtin"


def test_kinds_follow_the_target_tables(closure) -> None:  # noqa: ANN001
    kinds = {name: m.kind for name, m in closure.modules.items()}
    assert kinds["frozenmod"] == "frozen"
    assert kinds["topdep"] == "source" and kinds["pkg"] == "package"
    assert kinds["ext_mod"] == "extension" and kinds["sys"] == "builtin"
    assert "_absent" in closure.missing and closure.missing["_absent"] == ["stdmod"]


def test_a_missing_root_module_is_named(tmp_path: Path) -> None:
    target = TargetPython("3.11.2", 3495, frozenset(), frozenset(), (".so",), "test")
    with pytest.raises(SourceError, match="encodings"):
        module_closure(target, [tmp_path], ["encodings"], ())
