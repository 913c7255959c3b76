"""The initramfs (zfcpdump.rd): a deterministic cpio "newc" archive, kernel-safe compression.

`write_cpio` is the reusable low-level writer: give it `Entry` objects (or any object with the
same attributes) for files, directories, symlinks and character devices. Every member gets
uid/gid 0, mtime = the given epoch, inode numbers 1, 2, 3... in sorted path order, and a
correct nlink (files 1, directories 2 + subdirectories). Missing parent directories are
added. Device nodes are archive members, so nothing needs root or mknod.

Compressors are configured for a kernel that unpacks in 32 MiB of memory:
gzip -9 without name or timestamp, xz with CRC32 and a 1 MiB dictionary, zstd -19 with a
1 MiB window, lz4 -12 in the legacy frame format (the only one the kernel reads), or none.

`build_initramfs` is the 'initramfs' stage: the runtime tree, /init, /etc/zfcpdump.conf,
device nodes and mount points, and the overlays, checked against the size budget.
The budget's "unpacked" figure is the RAM the unpacked rootfs takes: every file and symlink
rounded up to whole 4 KiB pages (rootfs keeps them in the page cache).
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import json
import lzma
import os
import shutil
import stat
import subprocess
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libarchive
from libarchive import ffi
from libarchive.entry import ArchiveEntry, FileType

from ..core.errors import BudgetError, HostError, RecipeError
from ..core.events import Reporter
from ..core.store import StageOutput, Store, code_digest
from . import runtime as runtime_mod

RD_NAME = "zfcpdump.rd"
CONTENTS_JSON = "contents.json"
PAGE = 4096
KIB = 1024
MIB = 1 << 20
COMPRESSIONS = ("xz", "zstd", "gzip", "lz4", "none")  # also the 'auto' tie-break order
KCONFIG = {"xz": "RD_XZ", "zstd": "RD_ZSTD", "gzip": "RD_GZIP", "lz4": "RD_LZ4", "none": None}
SUFFIX = {"xz": ".xz", "zstd": ".zst", "gzip": ".gz", "lz4": ".lz4", "none": ""}
XZ_DICT = 1 << 20
ZSTD_WLOG = 20  # 1 MiB window
CONFIG_PATH = "etc/zfcpdump.conf"
DEFAULT_MOUNTS = ("proc", "sys", "sys/kernel/debug", "dev")
# (path, major, minor, mode): the console for init's stdio, and what CPython opens at start.
DEFAULT_DEVICES = (("dev/console", 5, 1, 0o600), ("dev/null", 1, 3, 0o666),
                   ("dev/urandom", 1, 9, 0o666))
KINDS = ("file", "dir", "symlink", "chr")
FILETYPES = {"file": FileType.REGULAR_FILE, "dir": FileType.DIRECTORY,
             "symlink": FileType.SYMBOLINK_LINK, "chr": FileType.CHAR_DEVICE}


# ----------------------------------------------------------------------------- entry model


@dataclass(frozen=True)
class Entry:
    """One archive member. Give a regular file its bytes as *data* or a host file as *source*."""

    path: str
    kind: str  # file | dir | symlink | chr
    mode: int = 0o755
    data: bytes = b""
    target: str = ""
    rdev: tuple[int, int] = (0, 0)
    source: Path | None = None
    origin: str = ""

    def content(self) -> bytes:
        if self.kind == "symlink":
            return self.target.encode()
        if self.kind != "file":
            return b""
        return self.source.read_bytes() if self.source is not None else self.data


def norm_path(path: str) -> str:
    parts = [p for p in str(path).split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"bad archive path {path!r}")
    return "/".join(parts)


def as_entry(obj: Any) -> Entry:
    """Accept our Entry or any object with path/kind/mode/data/target/rdev attributes."""
    kind = getattr(obj, "kind", "")
    if kind not in KINDS:
        raise ValueError(f"{getattr(obj, 'path', obj)!r}: entry kind must be one of {KINDS}, not {kind!r}")
    return Entry(norm_path(obj.path), kind, int(getattr(obj, "mode", 0o755)) & 0o7777,
                 bytes(getattr(obj, "data", b"") or b""), str(getattr(obj, "target", "") or ""),
                 tuple(getattr(obj, "rdev", (0, 0)) or (0, 0)), getattr(obj, "source", None),
                 str(getattr(obj, "origin", "") or ""))


def sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def complete_tree(entries: Iterable[Any]) -> list[Entry]:
    """Normalised, de-duplicated, parent-complete entries in archive order."""
    found: dict[str, Entry] = {}
    for obj in entries:
        entry = as_entry(obj)
        if entry.path in found:
            raise ValueError(f"duplicate archive member {entry.path!r}")
        found[entry.path] = entry
    for path in list(found):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = found.get(parent)
            if existing is None:
                found[parent] = Entry(parent, "dir", 0o755, origin="parent directory")
            elif existing.kind != "dir":
                raise ValueError(f"{parent!r} is a {existing.kind} but {path!r} is inside it")
    return [found[p] for p in sorted(found, key=sort_key)]


def nlinks(entries: Sequence[Entry]) -> dict[str, int]:
    counts = {e.path: (2 if e.kind == "dir" else 1) for e in entries}
    for entry in entries:
        if entry.kind == "dir" and "/" in entry.path:
            counts[entry.path.rsplit("/", 1)[0]] += 1
    return counts


# ----------------------------------------------------------------------------- cpio writing


def _bind(name: str, argtypes: list[Any]) -> Any:
    func = getattr(ffi.libarchive, name)
    func.argtypes = argtypes
    func.restype = None
    return func


_set_ino = _bind("archive_entry_set_ino64", [ctypes.c_void_p, ctypes.c_int64])
_set_nlink = _bind("archive_entry_set_nlink", [ctypes.c_void_p, ctypes.c_uint])
_set_dev = _bind("archive_entry_set_dev", [ctypes.c_void_p, ctypes.c_uint64])
_set_symlink = _bind("archive_entry_copy_symlink", [ctypes.c_void_p, ctypes.c_char_p])


def cpio_bytes(entries: Iterable[Any], mtime: int = 0) -> bytes:
    """The uncompressed newc archive of *entries* (see the module docstring for the rules)."""
    tree = complete_tree(entries)
    links = nlinks(tree)
    chunks: list[bytes] = []

    def collect(data: bytes) -> int:
        chunks.append(bytes(data))
        return len(data)

    with libarchive.custom_writer(collect, "cpio_newc") as archive:
        for ino, entry in enumerate(tree, start=1):
            _write_member(archive._pointer, entry, ino, links[entry.path], mtime)
    return b"".join(chunks)


def _write_member(archive_p: Any, entry: Entry, ino: int, nlink: int, mtime: int) -> None:
    data = entry.content() if entry.kind == "file" else b""
    member = ArchiveEntry(pathname=entry.path, size=len(data), filetype=FILETYPES[entry.kind],
                          perm=entry.mode, uid=0, gid=0, mtime=mtime)
    pointer = member._entry_p
    _set_ino(pointer, ino)
    _set_nlink(pointer, nlink)
    _set_dev(pointer, 0)
    if entry.kind == "symlink":
        _set_symlink(pointer, entry.target.encode())
    if entry.kind == "chr":
        member.rdev = entry.rdev
    ffi.write_header(archive_p, pointer)
    if data:
        ffi.write_data(archive_p, data, len(data))
    ffi.write_finish_entry(archive_p)


# ----------------------------------------------------------------------------- compression


def _run_tool(cmd: list[str], data: bytes) -> bytes:
    if shutil.which(cmd[0]) is None:
        raise HostError(f"{cmd[0]} is not installed (needed for {cmd[0]} compression)",
                        hint=f"apt-get install {cmd[0]}, or choose another initramfs.compression")
    result = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise HostError(f"{' '.join(cmd)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def compress(data: bytes, method: str) -> bytes:
    """*data* compressed with kernel-safe settings for *method* (see the module docstring)."""
    if method == "none":
        return data
    if method == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if method == "xz":
        filters = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": XZ_DICT}]
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)
    if method == "zstd":
        return _run_tool(["zstd", "-q", "-c", "-19", "-T1", f"--zstd=wlog={ZSTD_WLOG}", "--no-progress"],
                         data)
    if method == "lz4":
        return _run_tool(["lz4", "-q", "-c", "-l", "-12"], data)
    raise RecipeError(f"unknown compression {method!r}; choose one of auto, {', '.join(COMPRESSIONS)}")


def tool_available(method: str) -> bool:
    return method not in ("zstd", "lz4") or shutil.which(method) is not None


def compressor_versions() -> dict[str, str]:
    """What the compressed bytes depend on besides the input (part of the cache key)."""
    versions = {"zlib": zlib.ZLIB_RUNTIME_VERSION, "liblzma": _lzma_version()}
    for tool in ("zstd", "lz4"):
        if shutil.which(tool):
            out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
            versions[tool] = (out.stdout or out.stderr).strip()
    return versions


def _lzma_version() -> str:
    try:
        lib = ctypes.CDLL("liblzma.so.5")
        lib.lzma_version_string.restype = ctypes.c_char_p
        return lib.lzma_version_string().decode()
    except OSError:
        return "unknown"


def pick_smallest(raw: bytes, methods: Sequence[str],
                  advance: Callable[[int], None] | None = None) -> tuple[str, bytes, dict[str, int]]:
    """Compress with each of *methods*; the smallest wins (ties: the earlier one).

    The candidates run side by side: lzma and zlib release the GIL and zstd/lz4 are processes,
    so 'auto' costs about the slowest method rather than the sum of all."""
    if not methods:
        raise RecipeError("no compression method is available")
    outputs: dict[str, bytes] = {}
    with ThreadPoolExecutor(max_workers=min(len(methods), len(os.sched_getaffinity(0)))) as pool:
        futures = {pool.submit(compress, raw, method): method for method in methods}
        for future in as_completed(futures):
            outputs[futures[future]] = future.result()
            if advance is not None:
                advance(1)
    sizes = {method: len(outputs[method]) for method in methods}
    best = min(methods, key=lambda method: (sizes[method], methods.index(method)))
    return best, outputs[best], sizes


@dataclass(frozen=True)
class CpioInfo:
    path: Path
    compression: str
    size: int
    cpio_size: int
    sha256: str
    candidates: dict[str, int] = field(default_factory=dict)


def write_cpio(entries: Iterable[Any], out_path: Path, compression: str = "none",
               mtime: int = 0) -> CpioInfo:
    """Write *entries* as a deterministic (compressed) newc archive at *out_path*.

    *compression* is one of xz, zstd, gzip, lz4, none, or auto (the smallest of those whose
    tool is installed).
    """
    raw = cpio_bytes(entries, mtime)
    if compression == "auto":
        methods = [m for m in COMPRESSIONS if tool_available(m)]
        method, data, sizes = pick_smallest(raw, methods)
    else:
        method, data, sizes = compression, compress(raw, compression), {}
        sizes[method] = len(data)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(data)
    return CpioInfo(out_path, method, len(data), len(raw), hashlib.sha256(data).hexdigest(), sizes)


# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class InitramfsSpec:
    """How the initramfs is put together. Sizes are bytes; None means no budget."""

    compression: str = "auto"
    overlays: tuple[Path, ...] = ()
    allow_shadow: bool = False
    max_compressed: int | None = None
    max_unpacked: int | None = None
    source_date_epoch: int = 0
    writer_config: dict[str, Any] = field(default_factory=dict)
    devices: tuple[tuple[str, int, int, int], ...] = DEFAULT_DEVICES

    def validate(self) -> None:
        if self.compression not in ("auto", *COMPRESSIONS):
            raise RecipeError(f"initramfs.compression must be one of auto, {', '.join(COMPRESSIONS)}, "
                              f"not {self.compression!r}")
        for overlay in self.overlays:
            if not Path(overlay).is_dir():
                raise RecipeError(f"initramfs overlay {overlay} is not a directory")
        if self.source_date_epoch < 0:
            raise RecipeError("source_date_epoch must not be negative")


def _config_value(kernel_config: dict[str, str], symbol: str) -> str | None:
    return kernel_config.get(symbol, kernel_config.get(f"CONFIG_{symbol}"))


def enabled_compressions(kernel_config: dict[str, str]) -> list[str]:
    return [m for m in COMPRESSIONS if KCONFIG[m] is None or _config_value(kernel_config, KCONFIG[m]) == "y"]


def choose_methods(spec: InitramfsSpec, kernel_config: dict[str, str]) -> list[str]:
    """The compression methods to try: one for an explicit choice, all safe ones for auto."""
    if _config_value(kernel_config, "BLK_DEV_INITRD") != "y":
        raise RecipeError("the kernel config has BLK_DEV_INITRD off: it cannot load any initramfs")
    if _config_value(kernel_config, "BINFMT_SCRIPT") not in ("y", None):
        raise RecipeError("the kernel config has BINFMT_SCRIPT off, but /init is a #! script",
                          hint="set CONFIG_BINFMT_SCRIPT=y")
    enabled = enabled_compressions(kernel_config)
    if spec.compression == "auto":
        return [m for m in enabled if tool_available(m)]
    if spec.compression not in enabled:
        raise RecipeError(
            f"initramfs.compression {spec.compression} needs CONFIG_{KCONFIG[spec.compression]}=y, "
            f"but the kernel config has it off",
            hint=f"choose one the kernel can unpack: {', '.join(enabled)} (or auto)")
    return [spec.compression]


# ----------------------------------------------------------------------------- contents


def init_script(python: dict[str, Any]) -> str:
    """/init: the writer's entry point, run by the kernel through binfmt_script."""
    flags = "-" + "".join(f.lstrip("-") for f in python["flags"])
    return (f"#!{python['binary']} {flags}\n"
            "# zfcpdump /init, generated by zfcpdump-build. As PID 1 it ignores the kernel's\n"
            "# leftover arguments and uses the baked /etc/zfcpdump.conf; otherwise (tests)\n"
            "# its arguments go to the writer (e.g. --root DIR).\n"
            "import os\n"
            "import sys\n"
            "from zfcpdump_writer.main import main\n"
            "sys.exit(main([] if os.getpid() == 1 else sys.argv[1:]))\n")


def render_writer_config(settings: dict[str, Any]) -> str:
    try:
        from zfcpdump_writer import config as writer_config
    except ImportError as exc:
        raise HostError(f"the writer package is not importable: {exc}") from exc
    try:
        return writer_config.render(dict(settings))
    except Exception as exc:  # the writer's own ConfigError
        raise RecipeError(f"writer settings: {exc}") from exc


def mount_points() -> tuple[str, ...]:
    """The directories the writer mounts file systems on (from its MOUNTS table)."""
    try:
        from zfcpdump_writer.dump import MOUNTS
    except ImportError:
        return DEFAULT_MOUNTS
    return tuple(norm_path(target) for _source, target, _fstype in MOUNTS)


def runtime_entries(runtime_dir: Path) -> list[Entry]:
    manifest = runtime_mod.load_manifest(runtime_dir)
    root = runtime_dir / runtime_mod.ROOT_DIR
    entries = []
    for record in manifest["files"]:
        path = norm_path(record["path"])
        origin = f"runtime:{record.get('origin') or 'generated'}"
        if record["type"] == "dir":
            entries.append(Entry(path, "dir", record["mode"], origin=origin))
        elif record["type"] == "symlink":
            entries.append(Entry(path, "symlink", 0o777, target=record["target"], origin=origin))
        else:
            entries.append(Entry(path, "file", record["mode"], source=root / path, origin=origin))
    return entries


def base_entries(spec: InitramfsSpec, runtime_dir: Path, config_text: str) -> dict[str, Entry]:
    manifest = runtime_mod.load_manifest(runtime_dir)
    found = {e.path: e for e in runtime_entries(runtime_dir)}
    found["init"] = Entry("init", "file", 0o755, init_script(manifest["python"]).encode(),
                          origin="generated:/init")
    found[CONFIG_PATH] = Entry(CONFIG_PATH, "file", 0o644, config_text.encode(),
                               origin="generated:writer config")
    for path in mount_points():
        found.setdefault(path, Entry(path, "dir", 0o755, origin="mount point"))
    for path, major, minor, mode in spec.devices:
        found[norm_path(path)] = Entry(norm_path(path), "chr", mode, rdev=(major, minor),
                                       origin="device node")
    return found


README = "README"


def overlay_entries(overlay: Path) -> list[Entry]:
    """The members of one overlay directory (its top-level README is documentation)."""
    overlay = Path(overlay)
    entries = []
    for dirpath, dirs, files in os.walk(overlay):
        dirs.sort()
        for name in sorted(dirs + files):
            host = Path(dirpath) / name
            rel = host.relative_to(overlay).as_posix()
            if rel == README and host.is_file():
                continue
            entries.append(_overlay_entry(host, rel, f"overlay:{overlay.name}"))
    return entries


def _overlay_entry(host: Path, rel: str, origin: str) -> Entry:
    info = host.lstat()
    mode = info.st_mode & 0o7777
    if stat.S_ISLNK(info.st_mode):
        return Entry(rel, "symlink", 0o777, target=os.readlink(host), origin=origin)
    if stat.S_ISDIR(info.st_mode):
        return Entry(rel, "dir", mode, origin=origin)
    if stat.S_ISREG(info.st_mode):
        return Entry(rel, "file", mode, source=host, origin=origin)
    raise RecipeError(f"overlay file {host} is not a regular file, directory or symlink",
                      hint="device nodes belong in the initramfs spec's devices, not in overlays")


def merge_overlay(found: dict[str, Entry], overlay: list[Entry], allow_shadow: bool,
                  reporter: Reporter) -> None:
    for entry in overlay:
        existing = found.get(entry.path)
        if existing is None:
            found[entry.path] = entry
        elif existing.kind == "dir" and entry.kind == "dir":
            continue
        elif existing.kind == "dir" or entry.kind == "dir":
            raise RecipeError(f"{entry.origin} has {entry.kind} /{entry.path}, but the initramfs "
                              f"already has a {existing.kind} there ({existing.origin})")
        elif not allow_shadow:
            raise RecipeError(f"{entry.origin} file /{entry.path} would shadow the {existing.origin} "
                              "one", hint="remove it from the overlay, or set "
                              "initramfs.allow_shadow: true if replacing it is intended")
        else:
            reporter.warning(f"{entry.origin} replaces /{entry.path} ({existing.origin})")
            found[entry.path] = entry


def all_entries(spec: InitramfsSpec, runtime_dir: Path, config_text: str,
                reporter: Reporter) -> list[Entry]:
    found = {e.path: e for e in complete_tree(base_entries(spec, runtime_dir, config_text).values())}
    for overlay in spec.overlays:
        merge_overlay(found, overlay_entries(Path(overlay)), spec.allow_shadow, reporter)
    try:
        return complete_tree(found.values())
    except ValueError as exc:
        raise RecipeError(f"initramfs contents conflict: {exc}") from exc


def contents_records(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    links = nlinks(entries)
    records = []
    for ino, entry in enumerate(entries, start=1):
        data = entry.content()
        record: dict[str, Any] = {"path": "/" + entry.path, "type": entry.kind,
                                  "mode": f"{entry.mode:04o}", "ino": ino, "nlink": links[entry.path],
                                  "size": len(data), "origin": entry.origin}
        if entry.kind == "file":
            record["sha256"] = hashlib.sha256(data).hexdigest()
        if entry.kind == "symlink":
            record["target"] = entry.target
        if entry.kind == "chr":
            record["rdev"] = list(entry.rdev)
        records.append(record)
    return records


def ram_bytes(records: Iterable[dict[str, Any]]) -> int:
    """Page-rounded size of files and symlink targets: what the unpacked rootfs costs in RAM."""
    return sum(-(-r["size"] // PAGE) * PAGE for r in records if r["type"] in ("file", "symlink"))


# ----------------------------------------------------------------------------- the stage


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for entry in overlay_entries(root):
        digest.update(f"{entry.kind} {entry.path} {entry.mode:o} {entry.target}\n".encode())
        if entry.kind == "file":
            digest.update(hashlib.sha256(entry.content()).digest())
    return digest.hexdigest()


def stage_inputs(spec: InitramfsSpec, runtime_output: StageOutput, methods: list[str],
                 config_text: str) -> dict[str, Any]:
    return {
        "runtime": runtime_output.key,
        "methods": methods,
        "overlays": [[Path(o).name, _tree_digest(Path(o))] for o in spec.overlays],
        "allow_shadow": spec.allow_shadow,
        "source_date_epoch": spec.source_date_epoch,
        "config": config_text,
        "devices": [list(d) for d in spec.devices],
        "mounts": list(mount_points()),
        "builder": code_digest(Path(__file__)),
        "tools": compressor_versions(),
    }


def build_initramfs(spec: InitramfsSpec, runtime_output: StageOutput, kernel_config: dict[str, str],
                    store: Store, reporter: Reporter) -> StageOutput:
    """The 'initramfs' stage: output dir holds zfcpdump.rd and contents.json."""
    spec.validate()
    methods = choose_methods(spec, kernel_config)
    if not methods:
        raise HostError("none of the compressors the kernel can unpack is available")
    config_text = render_writer_config(spec.writer_config)

    def producer(out: Path) -> dict[str, Any]:
        return produce_initramfs(spec, runtime_output.path, methods, config_text, out, reporter)

    output = store.produce("initramfs", stage_inputs(spec, runtime_output, methods, config_text),
                           producer)
    check_budget(spec, json.loads((output.path / CONTENTS_JSON).read_text()), reporter)
    return output


def produce_initramfs(spec: InitramfsSpec, runtime_dir: Path, methods: list[str], config_text: str,
                      out: Path, reporter: Reporter) -> dict[str, Any]:
    entries = all_entries(spec, runtime_dir, config_text, reporter)
    raw = cpio_bytes(entries, spec.source_date_epoch)
    with reporter.progress("initramfs", "compressing", len(methods), "methods") as bar:
        method, data, sizes = pick_smallest(raw, methods, bar.advance)
    (out / RD_NAME).write_bytes(data)
    records = contents_records(entries)
    summary = {"compression": method, "compressed": len(data), "cpio": len(raw),
               "unpacked": ram_bytes(records), "file_bytes": sum(r["size"] for r in records),
               "sha256": hashlib.sha256(data).hexdigest(), "candidates": sizes,
               "source_date_epoch": spec.source_date_epoch,
               "composition": composition(records, runtime_mod.load_manifest(runtime_dir))}
    contents = {"rd": RD_NAME, "summary": summary, "entries": records}
    (out / CONTENTS_JSON).write_text(json.dumps(contents, indent=1, sort_keys=True) + "\n")
    if len(sizes) > 1:
        reporter.table("initramfs compression candidates", ["method", "bytes"],
                       [[m, s] for m, s in sorted(sizes.items(), key=lambda kv: kv[1])])
    return {k: summary[k] for k in ("compression", "compressed", "cpio", "unpacked", "sha256")}


def composition(records: list[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, int]:
    """Bytes per category: interpreter, loader, library, extension, bytecode, writer, other."""
    categories = {"/" + norm_path(f["path"]): f.get("category", "") for f in manifest["files"]}
    zip_path = manifest["python"].get("zip")
    totals: dict[str, int] = {}
    for record in records:
        if record["type"] != "file":
            continue
        category = categories.get(record["path"]) or "other"
        if record["path"] == zip_path:
            continue
        totals[category] = totals.get(category, 0) + record["size"]
    if zip_path:
        for module in manifest["modules"]:
            if "size" in module:
                totals[module["category"]] = totals.get(module["category"], 0) + module["size"]
        members = sum(m.get("size", 0) for m in manifest["modules"])
        zipped = next((r["size"] for r in records if r["path"] == zip_path), members)
        totals["zip overhead"] = zipped - members
    return dict(sorted(totals.items()))


# ----------------------------------------------------------------------------- the budget


def check_budget(spec: InitramfsSpec, contents: dict[str, Any], reporter: Reporter) -> None:
    summary = contents["summary"]
    over = []
    if spec.max_compressed is not None and summary["compressed"] > spec.max_compressed:
        over.append(f"compressed ({summary['compression']}) {_mb(summary['compressed'])} > "
                    f"max_compressed {_mb(spec.max_compressed)}")
    if spec.max_unpacked is not None and summary["unpacked"] > spec.max_unpacked:
        over.append(f"unpacked {_mb(summary['unpacked'])} > max_unpacked {_mb(spec.max_unpacked)}")
    if not over:
        return
    ranked = ranked_files(contents["entries"])
    reporter.table("initramfs: largest files (budget exceeded)",
                   ["rank", "path", "bytes", "share", "origin"], ranked[:25])
    top = ", ".join(f"{row[1]} {_mb(row[2])}" for row in ranked[:3])
    raise BudgetError(f"{RD_NAME} is over budget: {'; '.join(over)}. Largest: {top}",
                      hint="drop overlay files, use a smaller compression or runtime, or raise "
                      "initramfs.max_compressed / max_unpacked")


def ranked_files(records: list[dict[str, Any]]) -> list[list[Any]]:
    files = sorted((r for r in records if r["type"] == "file"), key=lambda r: (-r["size"], r["path"]))
    total = sum(r["size"] for r in files) or 1
    return [[i, r["path"], r["size"], f"{100 * r['size'] / total:.1f}%", r["origin"]]
            for i, r in enumerate(files, start=1)]


def _mb(size: int) -> str:
    return f"{size / MIB:.2f} MiB"
