"""Reproducibility: two clean builds of the default recipe, compared byte for byte.

Each build runs from its own copy of the checkout, in its own directory (different path
lengths on purpose), with its own stage cache and its own empty ccache (CCACHE_DIR), so every
stage runs cold in both: source unpack, kconfig, kernel, runtime, initramfs. Only the downloaded
packages are shared: the `debs/` and `downloads/` folders of the warm cache are copied (hard
links where possible) into both caches, nothing else. Both builds' events are checked: a stage
reported as cached makes the comparison invalid.

zfcpdump.rd, zfcpdump.image and manifest.json are compared. For a difference the first differing
offset is given with the bytes around it (hex and ASCII) and what it is:
- image: the section of arch/s390/boot/vmlinux holding the offset; inside the compressed
  kernel, the payload is decompressed and the offset in vmlinux.bin is mapped to a vmlinux
  section and the nearest System.map symbol;
- rd: the cpio member (and header field, or zip member) that differs after decompression;
- manifest: the first differing JSON key path.

Smoke mode links the warm cache's source, kconfig and kernel objects instead (so only runtime
and initramfs run cold, and the image is identical by construction): it exercises the code,
it does not measure the kernel's reproducibility.

    python bench/reproducibility.py [--smoke] [--work DIR] [--keep] [--cache-dir WARM]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _entry in (REPO / "src", REPO):
    if str(_entry) not in sys.path:
        sys.path.insert(0, str(_entry))

from zfcpdump_builder.core.ownership import tag_cache_dir  # noqa: E402

FILES = ("zfcpdump.rd", "zfcpdump.image", "manifest.json")
STAGES = ("source", "kconfig", "kernel", "runtime", "initramfs")
SMOKE_LINKED = ("source", "kconfig", "kernel")
COPY_IGNORE = (
    ".venv",
    "venv",
    "out",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    "bench-work",
    "bench-smoke",
    "*.egg-info",
    "build",
)
CONTEXT = 32


def warm_cache_dir() -> Path:
    """The cache the tests warm ($ZFCPDUMP_TEST_CACHE, else the builder's default)."""
    env = os.environ.get("ZFCPDUMP_TEST_CACHE")
    if env:
        return Path(env)
    from zfcpdump_builder.core.store import default_cache_dir

    return default_cache_dir()


# --- preparing the two builds ------------------------------------------------------------


def copy_checkout(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    return dest


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def seed_cache(warm: Path, cache: Path, link_objects: tuple[str, ...] = ()) -> list[str]:
    """Copy warm/debs and warm/downloads into *cache* (hard links when possible); symlink the
    named objects (smoke only). Returns what was seeded."""
    seeded = []
    tag_cache_dir(cache)  # a seeded cache is still one the builder may write into
    for name in ("debs", "downloads"):
        if (warm / name).is_dir():
            shutil.copytree(
                warm / name,
                cache / name,
                copy_function=_link_or_copy,
                ignore=shutil.ignore_patterns("*.part.*", "partial", "lock"),
            )
            seeded.append(name)
    if link_objects:
        (cache / "objects").mkdir(exist_ok=True)
        for obj in link_objects:
            (cache / "objects" / obj).symlink_to(warm / "objects" / obj)
            seeded.append(f"objects/{obj} (symlink)")
    return seeded


@dataclass
class Build:
    label: str
    root: Path
    repo: Path
    cache: Path
    out: Path
    events: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    seeded: list[str] = field(default_factory=list)

    def stages(self) -> dict[str, dict[str, Any]]:
        return {
            e["stage"]: {"cached": e["cached"], "seconds": e["seconds"], "key": e["key"]}
            for e in self.events
            if e.get("event") == "stage-finish"
        }

    def object(self, stage: str) -> Path | None:
        info = self.stages().get(stage)
        return self.cache / "objects" / f"{stage}-{info['key'][:32]}" if info else None

    def boot_elf(self) -> Path | None:
        found = sorted(self.cache.glob("workspaces/kbuild-*/arch/s390/boot/vmlinux"))
        return found[0] if found else None

    def vmlinux(self) -> Path | None:
        obj = self.object("kernel")
        return obj / "vmlinux" if obj and (obj / "vmlinux").is_file() else None

    def summary(self) -> dict[str, Any]:
        return {
            "dir": str(self.root),
            "repo": str(self.repo),
            "cache": str(self.cache),
            "out": str(self.out),
            "seconds": round(self.seconds, 1),
            "seeded": self.seeded,
            "stages": self.stages(),
        }


def run_build(build: Build, recipe: str = "default", env: dict[str, str] | None = None) -> None:
    command = [
        sys.executable,
        str(build.repo / "build.py"),
        "build",
        recipe,
        "--out",
        str(build.out),
        "--cache-dir",
        str(build.cache),
        "--json",
    ]
    log = build.root / "build.log"
    started = time.monotonic()
    with open(log, "w") as stderr:
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=build.root,
            check=False,
        )
    build.seconds = time.monotonic() - started
    build.events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (build.root / "events.json").write_text(json.dumps(build.events, indent=1) + "\n")
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"build {build.label} exited {result.returncode} (log {log}):\n{tail}")


def warm_keys(warm: Path, work: Path) -> dict[str, str]:
    """The default recipe's stage keys in the warm cache (a cached build, seconds)."""
    probe = Build("warm", work, REPO, warm, work / "warm-out")
    run_build(probe)
    cold = [s for s, info in probe.stages().items() if not info["cached"]]
    if cold:
        print(f"reproducibility: warm cache was missing {', '.join(cold)} (built now)", file=sys.stderr)
    return {s: info["key"] for s, info in probe.stages().items()}


# --- comparing ---------------------------------------------------------------------------


def first_difference(a: bytes, b: bytes) -> int | None:
    """Offset of the first differing byte (the shorter length when one is a prefix)."""
    if a == b:
        return None
    limit = min(len(a), len(b))
    lo = 0
    step = 1 << 16
    while lo < limit and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    for i in range(lo, min(lo + step, limit)):
        if a[i] != b[i]:
            return i
    return limit


def hexdump(data: bytes, offset: int, mark: int | None = None, context: int = CONTEXT) -> str:
    """16-byte lines around *offset*: address, hex, ASCII; '>' marks the line holding *mark*."""
    start = max(0, (offset - context) // 16 * 16)
    end = min(len(data), offset + context + 1)
    lines = []
    for pos in range(start, end, 16):
        chunk = data[pos : pos + 16]
        hexes = " ".join(f"{c:02x}" for c in chunk)
        text = "".join(chr(c) if 32 <= c < 127 else "." for c in chunk)
        flag = ">" if mark is not None and pos <= mark < pos + 16 else " "
        lines.append(f"{flag} {pos:08x}  {hexes:<47}  |{text}|")
    return "\n".join(lines) if lines else f"  (no bytes at offset {offset}: end of data at {len(data)})"


def printable_run(data: bytes, offset: int, span: int = 64) -> str:
    """The printable string around *offset*, if the offset sits in one."""
    if offset >= len(data) or not 32 <= data[offset] < 127:
        return ""
    lo = offset
    while lo > 0 and offset - lo < span and 32 <= data[lo - 1] < 127:
        lo -= 1
    hi = offset
    while hi < len(data) and hi - offset < span and 32 <= data[hi] < 127:
        hi += 1
    return data[lo:hi].decode("ascii")


def byte_diff(a: bytes, b: bytes, offset: int | None = None) -> dict[str, Any]:
    off = first_difference(a, b) if offset is None else offset
    if off is None:
        return {"identical": True}
    count = sum(1 for x, y in zip(a, b, strict=False) if x != y) + abs(len(a) - len(b))
    return {
        "identical": False,
        "first_offset": off,
        "first_offset_hex": f"0x{off:x}",
        "size_a": len(a),
        "size_b": len(b),
        "differing_bytes": count,
        "hex_a": hexdump(a, off, off),
        "hex_b": hexdump(b, off, off),
        "string_a": printable_run(a, off),
        "string_b": printable_run(b, off),
    }


# image ------------------------------------------------------------------------------------


@dataclass
class ElfLayout:
    """An ELF as `objcopy -O binary` lays it out: loaded sections (name, address, size), base,
    symbols (address, name) sorted, byte order."""

    sections: list[tuple[str, int, int]]
    symbols: list[tuple[int, str]]
    big: bool

    @classmethod
    def read(cls, elf_path: Path) -> ElfLayout:
        from elftools.elf.constants import SH_FLAGS
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection

        with open(elf_path, "rb") as handle:
            elf = ELFFile(handle)
            sections = sorted(
                (
                    (s.name, s["sh_addr"], s["sh_size"])
                    for s in elf.iter_sections()
                    if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_type"] != "SHT_NOBITS" and s["sh_size"]
                ),
                key=lambda x: x[1],
            )
            symbols = sorted(
                (sym["st_value"], sym.name)
                for table in elf.iter_sections()
                if isinstance(table, SymbolTableSection)
                for sym in table.iter_symbols()
                if sym.name and sym["st_info"]["type"] in ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC")
            )
            return cls(sections, symbols, not elf.little_endian)

    @property
    def base(self) -> int:
        return self.sections[0][1] if self.sections else 0

    def section(self, name: str) -> tuple[int, int] | None:
        """(offset in the binary image, size) of section *name*."""
        for sec, addr, size in self.sections:
            if sec == name:
                return addr - self.base, size
        return None

    def where(self, offset: int) -> dict[str, Any]:
        """The section and nearest symbol at *offset* of the binary image."""
        address = offset + self.base
        found: dict[str, Any] = {"address": f"0x{address:x}", "section": None}
        for name, addr, size in self.sections:
            if addr <= address < addr + size:
                found.update(section=name, section_offset=address - addr)
        found["symbol"] = self.symbol(address)
        return found

    def symbol(self, address: int) -> str | None:
        best = None
        for addr, name in self.symbols:
            if addr > address:
                break
            best = (addr, name)
        return f"{best[1]}+0x{address - best[0]:x}" if best else None

    def exact(self, address: int) -> list[str]:
        return [name for addr, name in self.symbols if addr == address][:3]


def decompress_kernel(payload: bytes) -> tuple[str, bytes] | None:
    """Decompress the kernel payload inside .rodata.compressed (trailing bytes ignored)."""
    if payload[:2] == b"\x1f\x8b":
        return "gzip", zlib.decompressobj(31).decompress(payload)
    if payload[:6] == b"\xfd7zXZ\x00":
        return "xz", lzma.LZMADecompressor().decompress(payload)
    for magic, method, tool in (
        (b"\x28\xb5\x2f\xfd", "zstd", ["zstd", "-dcq"]),
        (b"\x02\x21\x4c\x18", "lz4", ["lz4", "-dcq"]),
        (b"BZh", "bzip2", ["bzip2", "-dcq"]),
    ):
        if payload.startswith(magic) and shutil.which(tool[0]):
            result = subprocess.run(tool, input=payload, capture_output=True, check=False)
            return method, result.stdout
    return None


def build_id_offsets(data: bytes, big: bool = True) -> list[int]:
    """Offsets of the 20-byte descriptors of every GNU build-id ELF note in *data* (the image's
    own .notes, and those of ELF files embedded in it, such as the vDSO)."""
    header = struct.pack(">III" if big else "<III", 4, 20, 3) + b"GNU\x00"
    found, pos = [], data.find(header)
    while pos >= 0:
        found.append(pos + len(header))
        pos = data.find(header, pos + 1)
    return found


def mask(data: bytes, offsets: list[int], width: int = 20) -> bytes:
    out = bytearray(data)
    for off in offsets:
        out[off : off + width] = bytes(width)
    return bytes(out)


def regions(a: bytes, b: bytes, limit: int = 12, gap: int = 16) -> list[tuple[int, int]]:
    """(offset, length) of the differing byte runs (runs closer than *gap* merged)."""
    runs: list[tuple[int, int]] = []
    pos = 0
    while len(runs) < limit:
        off = first_difference(a[pos:], b[pos:])
        if off is None:
            break
        start = end = pos + off
        while end < min(len(a), len(b)) and (a[end] != b[end] or a[end : end + gap] != b[end : end + gap]):
            end += 1
        runs.append((start, max(end - start, 1)))
        pos = end
        if pos >= min(len(a), len(b)):
            break
    return runs


def describe_regions(a: bytes, b: bytes, layout: ElfLayout, ids_a: list[int]) -> list[dict[str, Any]]:
    """Each differing run: where it is, and whether it is a build-id (in A's build-id notes)."""
    out = []
    for off, length in regions(a, b):
        item = {"offset": off, "length": length, **layout.where(off)}
        if any(i <= off < i + 20 for i in ids_a):
            item["is"] = "GNU build-id"
        out.append(item)
    return out


def got_entries_differing(a: bytes, b: bytes, la: ElfLayout, lb: ElfLayout) -> list[dict[str, Any]]:
    """8-byte .got entries that differ, with the symbols their values point at."""
    place = la.section(".got")
    if place is None:
        return []
    start, size = place
    order = ">Q" if la.big else "<Q"
    out = []
    for off in range(start, start + size - 7, 8):
        va, vb = struct.unpack_from(order, a, off)[0], struct.unpack_from(order, b, off)[0]
        if va != vb:
            out.append(
                {
                    "offset": off,
                    "a": f"0x{va:x}",
                    "b": f"0x{vb:x}",
                    "a_symbol": la.exact(va) or la.symbol(va),
                    "b_symbol": lb.exact(vb) or lb.symbol(vb),
                }
            )
    return out


def explain_image(a: bytes, b: bytes, off: int, build_a: Build, build_b: Build) -> dict[str, Any]:
    """Map the image's differences to decompressor sections, then into the kernel payload."""
    boot_a, boot_b = build_a.boot_elf(), build_b.boot_elf()
    if boot_a is None or boot_b is None:
        return {"note": "arch/s390/boot/vmlinux not found in a workspace: no section mapping"}
    la, lb = ElfLayout.read(boot_a), ElfLayout.read(boot_b)
    what: dict[str, Any] = {"first": la.where(off)}
    sizes = [
        {"section": n, "a": s, "b": dict((x, z) for x, _, z in lb.sections).get(n)}
        for n, _, s in la.sections
        if dict((x, z) for x, _, z in lb.sections).get(n) != s
    ]
    what["section_sizes_differing"] = sizes
    payload_name = next((n for n, _, _ in la.sections if "compressed" in n), None)
    rest_a, rest_b = a, b
    if payload_name:
        (pa, sa), (pb, sb) = la.section(payload_name), lb.section(payload_name)  # type: ignore[misc]
        ua, ub = decompress_kernel(a[pa : pa + sa]), decompress_kernel(b[pb : pb + sb])
        rest_a = a[:pa] + bytes(sa) + a[pa + sa :]
        rest_b = b[:pb] + bytes(sb) + b[pb + sb :]
        what["payload"] = payload = {
            "section": payload_name,
            "compressed_size_a": sa,
            "compressed_size_b": sb,
            "compressed_identical": a[pa : pa + sa] == b[pb : pb + sb],
        }
        if payload["compressed_identical"]:
            payload["note"] = "the compressed kernel is identical"
        elif ua is None or ub is None:
            payload["note"] = "unknown compression: not decompressed"
        else:
            payload.update(compression=ua[0], size_a=len(ua[1]), size_b=len(ub[1]))
            payload.update(explain_vmlinux_bin(ua[1], ub[1], build_a))
    ids_a, ids_b = build_id_offsets(rest_a, la.big), build_id_offsets(rest_b, lb.big)
    outside = describe_regions(rest_a, rest_b, la, ids_a)
    what["decompressor_regions_differing"] = outside
    got = got_entries_differing(a, b, la, lb)
    if payload_name:
        ends = [
            sum(next((addr, size) for n, addr, size in lay.sections if n == payload_name)) for lay in (la, lb)
        ]
        for entry in got:
            entry["payload_end"] = [int(entry["a"], 16), int(entry["b"], 16)] == ends
    what["got_entries_differing"] = got
    masked_equal = ids_a == ids_b and mask(rest_a, ids_a) == mask(rest_b, ids_b)
    what["decompressor_identical_without_build_ids"] = masked_equal
    elfs = {"arch/s390/boot/vmlinux": (boot_a, boot_b), "vmlinux": (build_a.vmlinux(), build_b.vmlinux())}
    what["elf_sections_differing"] = {name: elf_section_diff(*pair) for name, pair in elfs.items()}
    what["build_paths"] = {name: path_hits(pair[0], build_a.cache) for name, pair in elfs.items()}
    what["cause"] = image_cause(what)
    return what


def explain_vmlinux_bin(ua: bytes, ub: bytes, build_a: Build) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ua == ub:
        out["note"] = "decompressed vmlinux.bin identical: only the compressed stream differs"
        return out
    vmlinux = build_a.vmlinux()
    layout = ElfLayout.read(vmlinux) if vmlinux else ElfLayout([], [], True)
    ids_a, ids_b = build_id_offsets(ua, layout.big), build_id_offsets(ub, layout.big)
    out["first"] = layout.where(first_difference(ua, ub) or 0)
    out["regions_differing"] = describe_regions(ua, ub, layout, ids_a)
    out["build_id_notes"] = len(ids_a)
    out["identical_without_build_ids"] = ids_a == ids_b and mask(ua, ids_a) == mask(ub, ids_b)
    off = first_difference(ua, ub) or 0
    out["hex_a"], out["hex_b"] = hexdump(ua, off, off), hexdump(ub, off, off)
    return out


def image_cause(what: dict[str, Any]) -> str:
    """What the differences are, stated only as far as the comparisons above prove it."""
    payload = what.get("payload", {})
    got = what.get("got_entries_differing", [])
    build_id_only_outside = all(
        r.get("is") == "GNU build-id" or r.get("section") == ".got"
        for r in what.get("decompressor_regions_differing", [])
    )
    if not build_id_only_outside or not all(g.get("payload_end") for g in got):
        return ""
    if payload.get("compressed_identical"):
        kernel = "The compressed kernel inside the image is identical"
    elif payload.get("identical_without_build_ids"):
        shorter = payload.get("compressed_size_a", 0) - payload.get("compressed_size_b", 0)
        size = (
            f"; compressed from different build-id bytes it is {abs(shorter)} byte(s) "
            f"{'shorter' if shorter > 0 else 'longer'} in B"
            if shorter
            else ""
        )
        kernel = (
            f"With its {payload.get('build_id_notes', '?')} GNU build-id notes masked, the decompressed "
            f"kernel (vmlinux.bin) is identical{size}"
        )
    else:
        return ""
    decompressor = "the decompressor differs only in its own GNU build-id"
    if got:
        decompressor += " and in the .got entry holding the compressed kernel's end address"
    parts = [f"{kernel}; {decompressor}."]
    explained = {  # loaded sections whose differences were shown above to be build-id effects
        "arch/s390/boot/vmlinux": {r.get("section") for r in what.get("decompressor_regions_differing", [])}
        | {payload.get("section")},
        "vmlinux": {r.get("section") for r in payload.get("regions_differing", [])} | {".notes"},
    }
    for name, sections in (what.get("elf_sections_differing") or {}).items():
        others = [n for n in sections or [] if n not in explained.get(name, set())]
        if not others:
            continue
        hits = (what.get("build_paths") or {}).get(name) or {}
        text = f"In {name} (ELF), besides the build-id carriers, only {', '.join(others)} differ"
        if hits.get("occurrences"):
            text += (
                f", and A's copy contains A's cache path {hits['occurrences']} time(s) "
                f"(`{hits.get('example')}`)"
            )
            units = [u for u in hits.get("compile_units", []) if u.get("holds_path")]
            if units:
                text += "; compile units holding it: " + ", ".join(
                    f"{u['name']} ({u['holds_path']})" for u in units
                )
        if all(n.startswith(".debug") for n in others):
            text += (
                "; the linker's build-id hashes the whole ELF, so the absolute path recorded "
                "in the DWARF debug info changes the build-id"
            )
        parts.append(text + ".")
    return " ".join(parts)


def path_hits(elf: Path | None, cache: Path) -> dict[str, Any]:
    """How often *cache* (where the source and O= trees of that build live) occurs in *elf*,
    with the first string holding it."""
    if elf is None:
        return {"path": str(cache), "occurrences": None}
    data, needle = elf.read_bytes(), str(cache).encode()
    pos = data.find(needle)
    example = printable_run(data, pos, span=200) if pos >= 0 else ""
    hits: dict[str, Any] = {"path": str(cache), "occurrences": data.count(needle), "example": example}
    if pos >= 0:
        hits["compile_units"] = dwarf_units_with(elf, str(cache))
    return hits


def dwarf_units_with(elf_path: Path, needle: str, limit: int = 5) -> list[dict[str, str]]:
    """DWARF compile units whose name or comp_dir attribute holds *needle* (the first few)."""
    from elftools.elf.elffile import ELFFile

    found: list[dict[str, str]] = []
    try:
        with open(elf_path, "rb") as handle:
            elf = ELFFile(handle)
            if not elf.has_dwarf_info():
                return found
            for cu in elf.get_dwarf_info().iter_CUs():
                top = cu.get_top_DIE()
                attrs = {
                    k: top.attributes[k].value
                    for k in ("DW_AT_name", "DW_AT_comp_dir")
                    if k in top.attributes
                }
                attrs = {
                    k: v.decode(errors="replace") if isinstance(v, bytes) else str(v)
                    for k, v in attrs.items()
                }
                if any(needle in v for v in attrs.values()):
                    found.append(
                        {
                            "name": attrs.get("DW_AT_name", "?"),
                            "holds_path": ", ".join(k for k, v in attrs.items() if needle in v),
                        }
                    )
                    if len(found) >= limit:
                        break
    except Exception as exc:  # noqa: BLE001 - a detail; the byte counts stand without it
        found.append({"name": f"(DWARF not read: {type(exc).__name__})", "holds_path": ""})
    return found


def elf_section_diff(path_a: Path | None, path_b: Path | None) -> list[str] | None:
    """Names of the ELF sections whose bytes differ between the two builds' copies."""
    if path_a is None or path_b is None:
        return None
    from elftools.elf.elffile import ELFFile

    def contents(path: Path) -> dict[str, str]:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            return {
                s.name: hashlib.sha256(s.data()).hexdigest()
                for s in elf.iter_sections()
                if s["sh_type"] != "SHT_NOBITS"
            }

    ca, cb = contents(path_a), contents(path_b)
    return sorted(n for n in set(ca) | set(cb) if ca.get(n) != cb.get(n))


# rd ---------------------------------------------------------------------------------------


def decompress_rd(data: bytes) -> tuple[str, bytes]:
    if data[:6] in (b"070701", b"070702"):
        return "none", data
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz", lzma.LZMADecompressor().decompress(data)
    if data[:2] == b"\x1f\x8b":
        return "gzip", zlib.decompressobj(31).decompress(data)
    for magic, method in ((b"\x28\xb5\x2f\xfd", "zstd"), (b"\x02\x21\x4c\x18", "lz4")):
        if data.startswith(magic):
            result = subprocess.run([method, "-dcq"], input=data, capture_output=True, check=True)
            return method, result.stdout
    raise ValueError(f"unknown rd compression (magic {data[:6].hex()})")


NEWC_FIELDS = (
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
)


def cpio_members(data: bytes) -> list[dict[str, Any]]:
    """newc members: header fields, name, data offset in the archive, data."""
    members, pos = [], 0
    while pos + 110 <= len(data):
        if data[pos : pos + 6] not in (b"070701", b"070702"):
            if data[pos : pos + 1] == b"\x00":  # padding between concatenated archives
                pos += 1
                continue
            raise ValueError(f"bad cpio magic at {pos}")
        fields = {n: int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i, n in enumerate(NEWC_FIELDS)}
        name_at = pos + 110
        name = data[name_at : name_at + fields["namesize"] - 1].decode(errors="replace")
        data_at = (name_at + fields["namesize"] + 3) // 4 * 4
        body = data[data_at : data_at + fields["filesize"]]
        members.append(
            {"header_offset": pos, "data_offset": data_at, "name": name, "fields": fields, "data": body}
        )
        pos = (data_at + fields["filesize"] + 3) // 4 * 4
    return members


def zip_member_diff(a: bytes, b: bytes) -> dict[str, Any] | None:
    try:
        za, zb = zipfile.ZipFile(BytesIO(a)), zipfile.ZipFile(BytesIO(b))
    except zipfile.BadZipFile:
        return None
    names_a, names_b = za.namelist(), zb.namelist()
    if names_a != names_b:
        return {"zip_names_differ": sorted(set(names_a) ^ set(names_b))[:10] or "order differs"}
    for name in names_a:
        ia, ib = za.getinfo(name), zb.getinfo(name)
        if ia.date_time != ib.date_time:
            return {"zip_member": name, "zip_field": "date_time", "a": ia.date_time, "b": ib.date_time}
        da, db = za.read(name), zb.read(name)
        off = first_difference(da, db)
        if off is not None:
            return {
                "zip_member": name,
                "zip_member_offset": off,
                "hex_a": hexdump(da, off, off),
                "hex_b": hexdump(db, off, off),
            }
    return {"zip_note": "members identical; the zip's own headers or order differ"}


def explain_rd(a: bytes, b: bytes) -> dict[str, Any]:
    (method_a, ca), (method_b, cb) = decompress_rd(a), decompress_rd(b)
    what: dict[str, Any] = {"compression_a": method_a, "compression_b": method_b}
    off = first_difference(ca, cb)
    if off is None:
        what["note"] = "the decompressed cpio archives are identical: only the compressed stream differs"
        return what
    what["cpio_first_offset"] = off
    ma, mb = cpio_members(ca), cpio_members(cb)
    for xa, xb in zip(ma, mb, strict=False):
        if xa["name"] != xb["name"]:
            what.update(member=xa["name"], member_b=xb["name"], field="name (member order/set differs)")
            return what
        changed = [f for f in NEWC_FIELDS if f != "ino" and xa["fields"][f] != xb["fields"][f]]
        if xa["data"] != xb["data"] or changed:
            what["member"] = xa["name"]
            what["header_fields_differing"] = {f: [xa["fields"][f], xb["fields"][f]] for f in changed}
            doff = first_difference(xa["data"], xb["data"])
            if doff is not None:
                what["member_offset"] = doff
                what["hex_a"] = hexdump(xa["data"], doff, doff)
                what["hex_b"] = hexdump(xb["data"], doff, doff)
                inner = zip_member_diff(xa["data"], xb["data"])
                if inner:
                    what["zip"] = inner
            return what
        if xa["fields"]["ino"] != xb["fields"]["ino"]:
            what.setdefault("ino_differs_first_at", xa["name"])
    if len(ma) != len(mb):
        what["member_count"] = [len(ma), len(mb)]
    return what


# manifest ---------------------------------------------------------------------------------


def json_paths_differing(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += json_paths_differing(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += json_paths_differing(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [(path, a, b)]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


RESOLVE = (
    "import json, sys; sys.path.insert(0, sys.argv[1]); "
    "from zfcpdump_builder.recipe import load; "
    "print(json.dumps(load(sys.argv[2]).data, sort_keys=True, default=str))"
)


def resolved_recipe(build: Build, recipe: str = "default") -> Any:
    """The resolved recipe data as *build*'s checkout sees it (what resolved_sha256 hashes)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RESOLVE,
            str(build.repo / "src"),
            str(build.repo / "recipes" / f"{recipe}.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=build.root,
    )
    return json.loads(result.stdout)


def explain_manifest(
    a: bytes, b: bytes, build_a: Build | None = None, build_b: Build | None = None
) -> dict[str, Any]:
    try:
        paths = json_paths_differing(json.loads(a), json.loads(b))
    except ValueError as exc:
        return {"note": f"not JSON: {exc}"}
    what: dict[str, Any] = {
        "keys_differing": [{"key": p, "a": _short(x), "b": _short(y)} for p, x, y in paths[:20]],
        "keys_differing_count": len(paths),
    }
    if build_a and build_b and any(p.startswith("recipe.resolved") for p, _, _ in paths):
        try:
            inner = json_paths_differing(resolved_recipe(build_a), resolved_recipe(build_b))
            what["resolved_recipe_differing"] = [
                {"key": p, "a": _short(x), "b": _short(y)} for p, x, y in inner[:20]
            ]
        except (subprocess.CalledProcessError, ValueError) as exc:
            what["resolved_recipe_differing"] = f"could not resolve the recipes: {exc}"
    return what


# -----------------------------------------------------------------------------------------


def compare(name: str, build_a: Build, build_b: Build) -> dict[str, Any]:
    pa, pb = build_a.out / name, build_b.out / name
    a, b = pa.read_bytes(), pb.read_bytes()
    result: dict[str, Any] = {
        "file": name,
        "sha256_a": hashlib.sha256(a).hexdigest(),
        "sha256_b": hashlib.sha256(b).hexdigest(),
    }
    result.update(byte_diff(a, b))
    if result["identical"]:
        return result
    try:
        if name == "zfcpdump.image":
            result["what"] = explain_image(a, b, result["first_offset"], build_a, build_b)
        elif name == "zfcpdump.rd":
            result["what"] = explain_rd(a, b)
        elif name == "manifest.json":
            result["what"] = explain_manifest(a, b, build_a, build_b)
    except Exception as exc:  # noqa: BLE001 - the byte offset and hex are still reported
        result["what"] = {"note": f"could not analyse further: {type(exc).__name__}: {exc}"}
    return result


def run(smoke: bool, work: Path, warm: Path | None = None) -> dict[str, Any]:
    """Two builds in *work* (kept), compared. Raises RuntimeError when a build fails."""
    warm = warm or warm_cache_dir()
    work.mkdir(parents=True, exist_ok=True)
    link: tuple[str, ...] = ()
    if smoke:
        keys = warm_keys(warm, work)
        link = tuple(f"{stage}-{keys[stage][:32]}" for stage in SMOKE_LINKED)
    builds = [
        Build("A", work / "a", work / "a" / "repo", work / "a" / "cache", work / "a" / "out"),
        Build(
            "B",
            work / "second-build",
            work / "second-build" / "checkout-b",
            work / "second-build" / "stage-cache-b",
            work / "second-build" / "output-b",
        ),
    ]
    for build in builds:
        build.root.mkdir(parents=True)
        build.seeded = seed_cache(warm, build.cache, link)
    copy_checkout(REPO, builds[0].repo)
    copy_checkout(builds[0].repo, builds[1].repo)  # the same inputs even if the tree moves on
    for build in builds:
        run_build(build, env={"CCACHE_DIR": str(build.root / "ccache")})
    expected_cold = [s for s in STAGES if not (smoke and s in SMOKE_LINKED)]
    problems = [
        f"build {b.label}: stage {s} was {'cached' if b.stages().get(s, {}).get('cached') else 'missing'}"
        for b in builds
        for s in expected_cold
        if b.stages().get(s, {}).get("cached", True)
    ]
    files = [compare(name, *builds) for name in FILES]
    return {
        "smoke": smoke,
        "cold_stages": expected_cold,
        "valid": not problems,
        "problems": problems,
        "builds": [b.summary() for b in builds],
        "files": files,
        "all_identical": all(f["identical"] for f in files),
        "seeded_from": _home_relative(warm),
        "ccache": "a fresh CCACHE_DIR per build",
    }


def _home_relative(path: Path) -> str:
    """*path* with the home directory written as ~, so the report names no machine's paths."""
    home = Path.home()
    return "~/" + str(path.relative_to(home)) if path.is_relative_to(home) else path.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--cache-dir", type=Path, help="warm cache to take debs/ and downloads/ from")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-repro-"))
    try:
        result = run(args.smoke, work / "repro" if args.work else work, args.cache_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0 if result["all_identical"] and result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
