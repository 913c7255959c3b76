"""The initramfs (zfcpdump.rd): a deterministic cpio "newc" archive, kernel-safe compression.

The entry model and cpio writer are in cpio.py, the compressors in compress.py, what goes
in in contents.py.

`build_initramfs` is the 'initramfs' stage: the runtime tree, /init, /etc/zfcpdump.conf,
device nodes and mount points, and the overlays, checked against the size budget.
The budget's "unpacked" figure is the RAM the unpacked rootfs takes: every file and symlink
rounded up to whole 4 KiB pages (rootfs keeps them in the page cache).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ...core.errors import BudgetError, HostError, RecipeError
from ...core.events import Reporter
from ...core.store import StageOutput, Store, code_digest
from .. import placement
from .. import runtime as runtime_mod
from ..model import Prepared, produce
from . import ext2
from .compress import COMPRESSIONS, compressor_versions, pick_smallest, write_cpio
from .contents import (
    MIB,
    InitramfsSpec,
    all_entries,
    choose_methods,
    contents_records,
    frozen_init,
    mount_points,
    overlay_entries,
    ram_bytes,
    render_writer_config,
)
from .cpio import RdEntry, complete_tree, cpio_bytes, norm_path

RD_NAME = "zfcpdump.rd"
UNCOMPRESSED = "none"
CONTENTS_JSON = "contents.json"
__all__ = [
    "COMPRESSIONS",
    "CONTENTS_JSON",
    "RD_NAME",
    "InitramfsSpec",
    "RdEntry",
    "build_initramfs",
    "prepare_initramfs",
    "cpio_bytes",
    "write_cpio",
]


# ----------------------------------------------------------------------------- cpio writing


# ----------------------------------------------------------------------------- the spec


# ----------------------------------------------------------------------------- the stage


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for entry in overlay_entries(root):
        digest.update(f"{entry.kind} {entry.path} {entry.mode:o} {entry.target}\n".encode())
        if entry.kind == "file":
            digest.update(hashlib.sha256(entry.content()).digest())
    return digest.hexdigest()


def stage_inputs(
    spec: InitramfsSpec, runtime_output: StageOutput, methods: list[str], config_text: str
) -> dict[str, Any]:
    return {
        "runtime": runtime_output.key,
        "methods": methods,
        "overlays": [[Path(o).name, _tree_digest(Path(o))] for o in spec.overlays],
        "allow_shadow": spec.allow_shadow,
        "source_date_epoch": spec.source_date_epoch,
        "placement": spec.placement,
        "config": config_text,
        "devices": [list(d) for d in spec.devices],
        "mounts": list(mount_points()),
        # every module of this stage, and placement.py, which shapes the initrd's contents
        "builder": code_digest(*sorted(Path(__file__).parent.glob("*.py")), Path(placement.__file__)),
        "tools": compressor_versions() | (ext2.tool_versions() if spec.placement == "initrd" else {}),
    }


def initramfs_stage_inputs(
    spec: InitramfsSpec, runtime_output: StageOutput, kernel_config: dict[str, str]
) -> tuple[list[str], str, dict[str, Any]]:
    """The compression candidates, the writer's config text and the 'initramfs' stage's
    inputs: what both `build` and `plan` compute."""
    spec.validate()
    python = runtime_mod.load_manifest(runtime_output)["python"]
    methods = choose_methods(spec, kernel_config, script_init=not frozen_init(python))
    if spec.placement == "builtin":
        methods = [UNCOMPRESSED]  # the kernel compresses it (INITRAMFS_COMPRESSION_*)
    if spec.placement == "initrd":
        placement.initrd_filesystem(kernel_config)  # the kernel can mount it, or RecipeError
    if not methods:
        raise HostError("none of the compressors the kernel can unpack is available")
    config_text = render_writer_config(spec.writer_config)
    return methods, config_text, stage_inputs(spec, runtime_output, methods, config_text)


def prepare_initramfs(
    spec: InitramfsSpec, runtime_output: StageOutput, kernel_config: dict[str, str], reporter: Reporter
) -> Prepared:
    """The 'initramfs' stage: output dir holds zfcpdump.rd and contents.json; the size limits
    are checked on a cached rd as on a new one."""
    methods, config_text, inputs = initramfs_stage_inputs(spec, runtime_output, kernel_config)
    ram_disk = placement.ram_disk_bytes(kernel_config)

    def producer(out: Path) -> dict[str, Any]:
        return produce_initramfs(spec, runtime_output.path, methods, config_text, out, reporter)

    def check(output: StageOutput) -> None:
        contents = json.loads((output.path / CONTENTS_JSON).read_text())
        if spec.placement == "initrd":
            check_ram_disk(contents["summary"]["image"], ram_disk)
        check_budget(spec, contents, reporter)

    return Prepared(inputs, producer, check=check)


def build_initramfs(
    spec: InitramfsSpec,
    runtime_output: StageOutput,
    kernel_config: dict[str, str],
    store: Store,
    reporter: Reporter,
) -> StageOutput:
    """The 'initramfs' stage on its own, outside a build's stage table."""
    return produce("initramfs", prepare_initramfs(spec, runtime_output, kernel_config, reporter), store)


def produce_initramfs(
    spec: InitramfsSpec,
    runtime_dir: Path,
    methods: list[str],
    config_text: str,
    out: Path,
    reporter: Reporter,
) -> dict[str, Any]:
    entries = all_entries(spec, runtime_dir, config_text, reporter)
    if spec.placement == "initrd":
        entries = initrd_entries(entries)
        raw = ext2.ext2_image(entries, spec.source_date_epoch)
    else:
        raw = cpio_bytes(entries, spec.source_date_epoch)
    if methods == [UNCOMPRESSED]:
        method, data, sizes = UNCOMPRESSED, raw, {UNCOMPRESSED: len(raw)}
    else:
        with reporter.progress("initramfs", "compressing", len(methods), "methods") as bar:
            method, data, sizes = pick_smallest(raw, methods, bar.advance)
    (out / RD_NAME).write_bytes(data)
    records = contents_records(entries)
    summary = {
        "compression": method,
        "compressed": len(data),
        "cpio": len(raw),
        # an initrd costs its whole image in /dev/ram0 plus the page cache of what is read
        "unpacked": ram_bytes(records) + (len(raw) if spec.placement == "initrd" else 0),
        "image": len(raw),
        "placement": spec.placement,
        "file_bytes": sum(r["size"] for r in records),
        "sha256": hashlib.sha256(data).hexdigest(),
        "candidates": sizes,
        "source_date_epoch": spec.source_date_epoch,
        "composition": composition(records, runtime_mod.load_manifest(runtime_dir)),
    }
    contents = {"rd": RD_NAME, "summary": summary, "entries": records}
    (out / CONTENTS_JSON).write_text(json.dumps(contents, indent=1, sort_keys=True) + "\n")
    if len(sizes) > 1:
        reporter.table(
            "initramfs compression candidates",
            ["method", "bytes"],
            [[m, s] for m, s in sorted(sizes.items(), key=lambda kv: kv[1])],
        )
    return {k: summary[k] for k in ("compression", "compressed", "cpio", "unpacked", "sha256")}


def initrd_entries(entries: list[RdEntry]) -> list[RdEntry]:
    """The rd's entries for a mounted root: the kernel runs /sbin/init there, not /init."""
    if any(e.path == placement.INITRD_INIT for e in entries):
        return entries
    link = RdEntry(placement.INITRD_INIT, "symlink", 0o777, target="../init", origin="initrd placement")
    try:
        return complete_tree([*entries, link])
    except ValueError as exc:
        raise RecipeError(
            f"the initrd placement needs /{placement.INITRD_INIT} -> /init, but the rd's contents conflict: {exc}",
            hint="an overlay must not make sbin a file or symlink",
        ) from exc


def check_ram_disk(image_bytes: int, ram_disk_bytes: int) -> None:
    """The kernel's RAM disk must hold the whole initrd image."""
    if image_bytes > ram_disk_bytes:
        raise BudgetError(
            f"the initrd image is {image_bytes // 1024} KiB, but CONFIG_BLK_DEV_RAM_SIZE is "
            f"{ram_disk_bytes // 1024} KiB: the kernel could not load it into /dev/ram0",
            hint=f"set BLK_DEV_RAM_SIZE to at least {-(-image_bytes // 1024)} in kernel.config.set, "
            "or shrink the rd",
        )


def composition(records: list[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, int]:
    """Bytes per category: interpreter, loader, library, extension, bytecode, writer, other."""
    categories = {"/" + norm_path(f["path"]): f.get("category", "") for f in manifest["files"]}
    zip_path = manifest["python"].get("zip")
    frozen = frozen_init(manifest["python"])
    totals: dict[str, int] = {}
    for record in records:
        if record["type"] != "file":
            continue
        category = categories.get(record["path"]) or "other"
        if record["path"] == zip_path:
            continue
        totals[category] = totals.get(category, 0) + record["size"]
    if zip_path or frozen:
        for module in manifest["modules"]:
            if "size" in module:
                totals[module["category"]] = totals.get(module["category"], 0) + module["size"]
        members = sum(m.get("size", 0) for m in manifest["modules"])
    if frozen:  # the bytecode is inside /init: count it as bytecode, not as interpreter
        totals["interpreter"] = totals.get("interpreter", 0) - members
    elif zip_path:
        zipped = next((r["size"] for r in records if r["path"] == zip_path), members)
        totals["zip overhead"] = zipped - members
    return dict(sorted(totals.items()))


# ----------------------------------------------------------------------------- the budget


def check_budget(spec: InitramfsSpec, contents: dict[str, Any], reporter: Reporter) -> None:
    summary = contents["summary"]
    over = []
    # built in, the cpio is compressed by the kernel, inside the image: no rd to budget
    limit = spec.max_compressed if spec.placement != "builtin" else None
    if limit is not None and summary["compressed"] > limit:
        over.append(
            f"compressed ({summary['compression']}) {_mb(summary['compressed'])} > "
            f"max_compressed {_mb(limit)}"
        )
    if spec.max_unpacked is not None and summary["unpacked"] > spec.max_unpacked:
        over.append(f"unpacked {_mb(summary['unpacked'])} > max_unpacked {_mb(spec.max_unpacked)}")
    if not over:
        return
    ranked = ranked_files(contents["entries"])
    reporter.table(
        "initramfs: largest files (budget exceeded)",
        ["rank", "path", "bytes", "share", "origin"],
        ranked[:25],
    )
    top = ", ".join(f"{row[1]} {_mb(row[2])}" for row in ranked[:3])
    raise BudgetError(
        f"{RD_NAME} is over budget: {'; '.join(over)}. Largest: {top}",
        hint="drop overlay files, use a smaller compression or runtime, or raise "
        "initramfs.max_compressed / max_unpacked",
    )


def ranked_files(records: list[dict[str, Any]]) -> list[list[Any]]:
    files = sorted((r for r in records if r["type"] == "file"), key=lambda r: (-r["size"], r["path"]))
    total = sum(r["size"] for r in files) or 1
    return [
        [i, r["path"], r["size"], f"{100 * r['size'] / total:.1f}%", r["origin"]]
        for i, r in enumerate(files, start=1)
    ]


def _mb(size: int) -> str:
    return f"{size / MIB:.2f} MiB"
