"""The custom interpreter: the target's libpythonX.Y.a relinked with only the built-in modules
the writer's closure needs (runtime.interpreter: custom).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...core import elfdeps, toolchain
from ...core.errors import CompileError, SourceError
from .closure import ModuleClosure
from .spec import RuntimeSpec


@dataclass(frozen=True)
class CustomBuild:
    """An interpreter built for this rd (custom or static) in place of the packaged one."""

    binary: Path
    builtins: tuple[str, ...]
    exports: tuple[str, ...]
    how: str  # for the rd's file list: how it was made


MAIN_C = '#include "Python.h"\nint main(int argc, char **argv) { return Py_BytesMain(argc, argv); }\n'


INITTAB = re.compile(r'\{"(\w+)", (\w+)\}')


def config_dir(root: Path, spec: RuntimeSpec) -> Path:
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    path = root / "usr/lib" / spec.python / f"config-{spec.version}-{multiarch}"
    if not (path / f"lib{spec.python}.a").is_file():
        raise SourceError(
            f"/{path.relative_to(root)}/lib{spec.python}.a is missing: a custom "
            f"interpreter needs lib{spec.python}-dev for {spec.arch}"
        )
    return path


def inittab(config_c: str, keep: set[str]) -> list[tuple[str, str]]:
    """The config.c entries to keep: the core ones (after MARKER 2) and those named in *keep*."""
    head, _, core = config_c.partition("ADDMODULE MARKER 2")
    optional = [(m.group(1), m.group(2)) for m in INITTAB.finditer(head) if m.group(1) in keep]
    return optional + [(m.group(1), m.group(2)) for m in INITTAB.finditer(core)]


def bootstrap_modules(setup: Path) -> set[str]:
    """Modules CPython's Setup.bootstrap builds in: the interpreter's own start needs them."""
    names = set()
    for line in setup.read_text().splitlines():
        word = line.split("#", 1)[0].split()
        if word and not word[0].startswith("*") and "=" not in word[0]:
            names.add(word[0])
    return names


def render_config_c(entries: list[tuple[str, str]]) -> str:
    lines = ['#include "Python.h"']
    lines += [f"extern PyObject* {fn}(void);" for _, fn in entries if fn != "NULL"]
    lines += ["struct _inittab _PyImport_Inittab[] = {"]
    lines += [f'    {{"{name}", {fn}}},' for name, fn in entries] + ["    {0, 0}", "};"]
    return "\n".join(lines) + "\n"


def extension_imports(extensions: list[Path]) -> set[str]:
    """Symbols the extension modules expect the interpreter to export."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    names: set[str] = set()
    for path in extensions:
        with open(path, "rb") as handle:
            dynsym = ELFFile(handle).get_section_by_name(".dynsym")
            if not isinstance(dynsym, SymbolTableSection):
                raise SourceError(f"{path} has no .dynsym: not a shared extension module")
            names |= {s.name for s in dynsym.iter_symbols() if s.name and s["st_shndx"] == "SHN_UNDEF"}
    return names


def archive_defines(nm: str, archive: Path) -> set[str]:
    result = subprocess.run(
        [nm, "--defined-only", "-g", str(archive)], capture_output=True, text=True, check=False
    )
    return {line.split()[-1] for line in result.stdout.splitlines() if len(line.split()) == 3}


def custom_interpreter(
    root: Path, spec: RuntimeSpec, closure: ModuleClosure, extensions: list[Path], work: Path
) -> CustomBuild:
    """Link lib<python>.a with a built-in module table cut to what the closure needs.

    Kept: the core entries, Setup.bootstrap's modules and the closure's built-in modules.
    Unused built-ins (unicodedata, pyexpat, the hashes, ...) and so their libraries drop out.
    The symbols the shipped extension modules import are forced in and exported.
    """
    conf = config_dir(root, spec)
    needed = {name for name, r in closure.modules.items() if r.kind == "builtin"}
    entries = inittab((conf / "config.c").read_text(), needed | bootstrap_modules(conf / "Setup.bootstrap"))
    work.mkdir(parents=True)
    (work / "config.c").write_text(render_config_c(entries))
    (work / "main.c").write_text(MAIN_C)
    library = conf / f"lib{spec.python}.a"
    exports = sorted(
        extension_imports(extensions)
        & archive_defines(toolchain.cross_tool(spec.arch, "nm", "runtime.interpreter: custom"), library)
    )
    (work / "exports.list").write_text("{\n" + "".join(f"  {s};\n" for s in exports) + "};\n")
    (work / "link.rsp").write_text("\n".join(f"-Wl,--undefined={s}" for s in exports) + "\n")
    _compile_and_link(root, spec, work, library)
    builtins = tuple(name for name, _ in entries)
    how = f"custom build: lib{spec.python}.a with {len(builtins)} built-in modules"
    return CustomBuild(work / spec.python, builtins, tuple(exports), how)


def _compile_and_link(root: Path, spec: RuntimeSpec, work: Path, library: Path) -> None:
    cc = toolchain.cross_tool(spec.arch, "gcc", "runtime.interpreter: custom")
    include = root / "usr/include" / spec.python
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    # The sysroot's own static libz and libm, so a host cross libc (libc6-dev-s390x-cross)
    # never turns them into DT_NEEDED entries.
    static = [
        p for p in (root / "usr/lib" / multiarch / name for name in ("libz.a", "libm.a")) if p.is_file()
    ]
    steps = [
        [cc, f"--sysroot={root}", "-O2", f"-I{include}", "-c", f"{name}.c", "-o", f"{name}.o"]
        for name in ("main", "config")
    ]
    steps.append(
        [
            cc,
            f"--sysroot={root}",
            "-no-pie",
            "-fno-lto",
            "-s",
            "-Wl,-O1",
            "-Wl,--gc-sections",
            "-Wl,--dynamic-list=exports.list",
            "@link.rsp",
            "main.o",
            "config.o",
            str(library),
            *map(str, static),
            *([] if any(p.name == "libm.a" for p in static) else ["-lm"]),
            "-o",
            spec.python,
        ]
    )
    for cmd in steps:
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-8:])
            raise CompileError(
                f"linking the custom {spec.python} failed:\n{tail}", hint="use runtime.interpreter: packaged"
            )
