"""What each `=y` kconfig symbol of a built kernel costs in resident memory.

The kernel image stays in memory after boot, except its `.init*`/`.exit*` sections. This tool
attributes the linked objects of a finished build (the stage's O= directory) to the symbols
that gate them in the Kbuild makefiles (`obj-$(CONFIG_X) += a.o dir/`, and composite
`name-$(CONFIG_X) += part.o`), and sums each object's allocated sections without the init
ones. A directory counts every linked object below it, so nested symbols overlap: dropping
the outer one saves the whole figure.

What it cannot see: code under `#ifdef CONFIG_X` inside an object shared with others, the
`lib.a` objects (`lib-y`, linked only when referenced), and memory that a feature allocates
at run time (slab caches, hash tables, per-cpu areas).

    python bench/kernel_cost.py KBUILD_DIR SOURCE_DIR [--top N] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

GATED = re.compile(r"^\s*([\w.-]+)-\$\(CONFIG_(\w+)\)\s*[+:]?=\s*(.*)$")
COMPOSITE = re.compile(r"^\s*([\w.-]+)-(?:objs|y|\$\(CONFIG_\w+\))\s*[+:]?=\s*(.*)$")
FREED_AFTER_BOOT = (".init", ".exit", ".discard")
AR = "s390x-linux-gnu-ar"
KALLSYMS_TABLES = (
    "kallsyms_addresses",
    "kallsyms_offsets",
    "kallsyms_relative_base",
    "kallsyms_num_syms",
    "kallsyms_names",
    "kallsyms_markers",
    "kallsyms_seqs_of_names",
    "kallsyms_token_table",
    "kallsyms_token_index",
)


def resident(elf: ELFFile) -> int:
    """Bytes of the allocated sections that stay after boot."""
    return sum(
        sec["sh_size"]
        for sec in elf.iter_sections()
        if sec["sh_flags"] & SH_FLAGS.SHF_ALLOC and not sec.name.startswith(FREED_AFTER_BOOT)
    )


def resident_bytes(obj: Path) -> int:
    with obj.open("rb") as handle:
        return resident(ELFFile(handle))


def archive_members(archive: Path, build: Path) -> list[str]:
    """Object paths (relative to *build*) in a thin archive, nested archives flattened."""
    out = subprocess.run([AR, "t", str(archive)], capture_output=True, text=True, check=True).stdout
    members: list[str] = []
    for name in out.split():
        path = (archive.parent / name) if not (build / name).exists() else build / name
        rel = str(path.resolve().relative_to(build.resolve()))
        members += archive_members(path, build) if rel.endswith(".a") else [rel]
    return members


def makefile_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").replace("\\\n", " ").splitlines()


def _words(text: str) -> list[str]:
    return [w for w in text.split("#", 1)[0].split() if w.endswith((".o", "/"))]


def gated_targets(source: Path, build: Path) -> dict[str, set[str]]:
    """symbol -> build-relative targets (`dir/` or `file.o`) that it gates, composite objects
    (`zfcp.o` from `zfcp-objs := ...`) expanded into their parts."""
    gates: dict[str, set[str]] = defaultdict(set)
    parts: dict[str, set[str]] = defaultdict(set)
    for makefile in [*source.rglob("Makefile"), *source.rglob("Kbuild")]:
        rel_dir = makefile.parent.relative_to(source)
        if not (build / rel_dir).is_dir():
            continue  # nothing of this directory was built
        for line in makefile_lines(makefile):
            match = COMPOSITE.match(line)
            if match and match.group(1) not in ("obj", "lib", "subdir", "always", "targets"):
                parts[str(rel_dir / match.group(1)) + ".o"].update(
                    str(rel_dir / w) for w in _words(match.group(2))
                )
            if match := GATED.match(line):
                for word in _words(match.group(3)):
                    gates[match.group(2)].add(str(rel_dir / word) + ("/" if word.endswith("/") else ""))

    def expand(target: str, depth: int = 0) -> set[str]:
        if target in parts and depth < 8:
            return {leaf for part in parts[target] for leaf in expand(part, depth + 1)}
        return {target}

    return {symbol: {leaf for t in targets for leaf in expand(t)} for symbol, targets in gates.items()}


def enabled(config: Path) -> set[str]:
    return {
        line[7:].split("=", 1)[0]
        for line in config.read_text().splitlines()
        if line.startswith("CONFIG_") and line.endswith("=y")
    }


def costs(build: Path, source: Path) -> dict[str, object]:
    linked = archive_members(build / "vmlinux.a", build)
    size = {obj: resident_bytes(build / obj) for obj in linked}
    on = enabled(build / ".config")
    table = []
    for symbol, targets in gated_targets(source, build).items():
        if symbol not in on:
            continue
        objs = {
            obj
            for target in targets
            for obj in linked
            if (obj.startswith(target) if target.endswith("/") else obj == target)
        }
        if objs:
            table.append({"symbol": symbol, "bytes": sum(size[o] for o in objs), "objects": len(objs)})
    table.sort(key=lambda row: -int(row["bytes"]))
    vmlinux = image_figures(build / "vmlinux")
    return {
        "linked_objects": len(linked),
        "objects_bytes": sum(size.values()),
        **vmlinux,
        "table": table,
    }


def image_figures(vmlinux: Path, largest: int = 12) -> dict[str, object]:
    """Resident bytes of the linked image, its kallsyms tables (generated at link time, so in no
    object: the KALLSYMS cost) and its largest data symbols (static buffers sized by config)."""
    with vmlinux.open("rb") as handle:
        elf = ELFFile(handle)
        image = resident(elf)
        symtab = elf.get_section_by_name(".symtab")
        syms = list(symtab.iter_symbols()) if symtab is not None else []
    where = {sym.name: sym["st_value"] for sym in syms}
    # scripts/kallsyms emits these tables back to back; their order differs between kernel
    # lines, so span them all (the last is at most token_index's 256 u16 entries long).
    tables = [where[name] for name in KALLSYMS_TABLES if where.get(name)]
    kallsyms = max(tables) + 512 - min(tables) if tables else 0
    data = sorted(
        (sym for sym in syms if sym["st_info"]["type"] == "STT_OBJECT"),
        key=lambda sym: -int(sym["st_size"]),
    )
    return {
        "vmlinux_bytes": image,
        "kallsyms_bytes": kallsyms,
        "largest_data": [{"symbol": sym.name, "bytes": int(sym["st_size"])} for sym in data[:largest]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", type=Path, help="the kernel's O= directory (holds vmlinux.a, .config)")
    parser.add_argument("source", type=Path, help="the kernel source tree")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    res = costs(args.build, args.source)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    mib = 1 << 20
    print(
        f"{res['linked_objects']} linked objects, {int(res['objects_bytes']) / mib:.2f} MiB resident "
        f"(vmlinux after boot: {int(res['vmlinux_bytes']) / mib:.2f} MiB)"
    )
    print(f"  {'KALLSYMS (link-time tables)':32s} {int(res['kallsyms_bytes']) / mib:7.3f} MiB")
    for row in res["table"][: args.top]:  # type: ignore[index]
        print(f"  {row['symbol']:32s} {row['bytes'] / mib:7.3f} MiB  {row['objects']:5d} objects")
    print("largest data symbols:")
    for row in res["largest_data"]:  # type: ignore[union-attr]
        print(f"  {row['symbol']:32s} {row['bytes'] / 1024:7.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
