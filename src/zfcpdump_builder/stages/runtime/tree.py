"""The runtime's output tree: every file with its size, sha256, origin and reason, the bytecode
(one ZIP_STORED zip, or sourceless .pyc files) and the native closure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...core import elfdeps
from ...core.errors import CompileError
from ...core.store import file_sha256
from .. import pycompile
from .closure import ModuleClosure, ModuleRecord
from .interpreter import CustomBuild
from .packages import Staged
from .spec import INTERPRETER_FLAGS, ZIP_DATE, RootLayout, RuntimeSpec


@dataclass
class FileRecord:
    path: str
    type: str
    mode: int
    size: int = 0
    sha256: str = ""
    category: str = ""
    origin: str = ""
    why: list[str] = field(default_factory=list)
    target: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = "/" + self.path
        if self.type != "symlink":
            data.pop("target")
        return data


class TreeWriter:
    """Writes the output tree and remembers a FileRecord for everything it writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records: dict[str, FileRecord] = {}

    def copy(self, src: Path, path: str, mode: int, category: str, origin: str, why: Iterable[str]) -> None:
        dest = self.root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        self._record(path, mode, category, origin, why)

    def write(
        self, data: bytes, path: str, mode: int, category: str, origin: str, why: Iterable[str]
    ) -> None:
        dest = self.root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        self._record(path, mode, category, origin, why)

    def mkdir(self, path: str, why: str) -> None:
        (self.root / path).mkdir(parents=True, exist_ok=True)
        self.records[path] = FileRecord(path, "dir", 0o755, why=[why], category="directory")

    def _record(self, path: str, mode: int, category: str, origin: str, why: Iterable[str]) -> None:
        dest = self.root / path
        os.chmod(dest, mode)
        self.records[path] = FileRecord(
            path, "file", mode, dest.stat().st_size, file_sha256(dest), category, origin, list(why)
        )


@dataclass(frozen=True)
class Bytecode:
    module: str
    member: str  # path relative to the bytecode root: "zfcpdump_writer/main.pyc"
    source: Path
    origin: str
    why: tuple[str, ...]


def bytecode_jobs(
    closure: ModuleClosure, writer_prefix: str, staged: Staged, keep_frozen: tuple[str, ...]
) -> list[Bytecode]:
    """One .pyc per source module that is neither frozen (unless kept) nor built in."""
    jobs = []
    for record in closure.modules.values():
        wanted = record.kind in ("source", "package") or record.name in keep_frozen
        if not wanted or record.file is None or not record.file.endswith(".py"):
            continue
        package = os.path.basename(record.file) == "__init__.py"
        member = record.name.replace(".", "/") + ("/__init__.pyc" if package else ".pyc")
        if record.name.split(".")[0] == writer_prefix:
            origin = "writer"
        else:
            origin = staged.origin_of(os.path.relpath(record.file, staged.root))
        jobs.append(Bytecode(record.name, member, Path(record.file), origin, tuple(_import_reasons(record))))
    return jobs


def _import_reasons(record: ModuleRecord) -> list[str]:
    return [f"imported by {name}" if name != "(root)" else "closure root" for name in record.importers]


def image_name(layout: RootLayout, spec: RuntimeSpec) -> Callable[[Bytecode], str]:
    """co_filename of a module in the rd: its source path inside the zip or the stdlib dir."""
    prefix = layout.zip if spec.bytecode == "zip" else layout.stdlib
    return lambda job: "/" + prefix + "/" + job.member.removesuffix("c")


def compile_bytecode(
    jobs: list[Bytecode], optimize: int, work: Path, name: Callable[[Bytecode], str]
) -> dict[str, bytes]:
    """member -> .pyc bytes, compiled in a seeded child interpreter (the writer at level 0:
    its asserts stay; the stdlib at *optimize*)."""
    groups: dict[int, list[pycompile.Job]] = defaultdict(list)
    for job in jobs:
        level = 0 if job.origin == "writer" else optimize
        groups[level].append(pycompile.Job(job.source, name(job), work / job.member))
    for level, group in sorted(groups.items()):
        try:
            pycompile.compile_jobs(group, level)
        except pycompile.CompileFailure as exc:
            raise CompileError(f"cannot compile the runtime's bytecode: {exc}") from exc
    return {job.member: (work / job.member).read_bytes() for job in jobs}


def stored_zip(members: dict[str, bytes]) -> bytes:
    """A deterministic ZIP_STORED archive of *members* (sorted, fixed dates and modes)."""
    with tempfile.SpooledTemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, ZIP_DATE)
                info.external_attr = 0o100644 << 16
                info.create_system = 3
                archive.writestr(info, members[name], zipfile.ZIP_STORED)
        handle.seek(0)
        return handle.read()


def _emit_native(
    tree: TreeWriter,
    staged: Staged,
    spec: RuntimeSpec,
    layout: RootLayout,
    closure: ModuleClosure,
    custom: CustomBuild | None,
) -> None:
    extensions = {
        f"{layout.dynload}/{os.path.basename(r.file or '')}": r
        for r in closure.modules.values()
        if r.kind == "extension"
    }
    start = [layout.binary] + sorted(_in_root(staged.root, r.file) for r in extensions.values())
    override = {layout.binary: custom.binary} if custom is not None else None
    elf = elfdeps.elf_closure(staged.root, start, spec.arch, override)
    for image_path, real in elf.objects.items():
        category = _native_category(image_path, layout, elf.interp)
        why = list(elf.why[image_path])
        record = extensions.get(image_path)
        if record is not None:
            why = [f"extension module {record.name}"] + _import_reasons(record) + why[1:]
        elif image_path == layout.binary:
            why = [f"the interpreter, started by /init with {' '.join(INTERPRETER_FLAGS)}"]
        origin = staged.origin_of(real)
        if custom is not None and image_path == layout.binary:
            why.append(custom.how)
            origin = "generated"
        tree.copy(staged.root / real, image_path, 0o755, category, origin, why)
    tree.mkdir(layout.dynload, "exec_prefix landmark (lib-dynload must be a directory)")


def _in_root(root: Path, file: str | None) -> str:
    return os.path.relpath(file or "", root)


def _native_category(path: str, layout: RootLayout, interp: str | None) -> str:
    if path == layout.binary:
        return "interpreter"
    if path == interp:
        return "loader"
    if path.startswith(layout.dynload + "/"):
        return "extension"
    return "library"


def _emit_bytecode(
    tree: TreeWriter, spec: RuntimeSpec, layout: RootLayout, jobs: list[Bytecode], pycs: dict[str, bytes]
) -> None:
    if spec.bytecode == "zip":
        why = ["all bytecode (ZIP_STORED); also the prefix landmark lib/python3X.zip"]
        tree.write(stored_zip(pycs), layout.zip, 0o644, "bytecode", "generated", why)
        return
    for job in jobs:
        why = list(job.why)
        if job.module == "os":
            why.append("prefix landmark (lib/python3.X/os.pyc)")
        category = "writer" if job.origin == "writer" else "bytecode"
        tree.write(pycs[job.member], f"{layout.stdlib}/{job.member}", 0o644, category, job.origin, why)
