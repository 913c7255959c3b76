"""The dump-memory budget: kernel + initramfs + writer must fit the HSA (32 MiB by default).

The estimate, item by item:
- kernel image in memory: the memsz of vmlinux's PT_LOAD segments (text, data, bss);
- kernel allocations at boot: the struct page array (64 bytes per 4 KiB page of dump memory)
  plus a fixed 3 MiB for slab, per-cpu areas, page tables and the console — the remainder
  QEMU shows at -m 32 (MemTotal 23.2 MB) after the image and the page array;
- the compressed rd: held in memory until it has been unpacked;
- the unpacked rd: it lives in the rootfs (ramfs) for the whole dump;
- the writer's headroom: its resident set plus bounded page cache (recipe: budget.writer_headroom).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BudgetError
from ..core.events import Reporter

PAGE = 4096
STRUCT_PAGE = 64
KERNEL_BOOT_FIXED = 3 << 20
MIB = 1 << 20


@dataclass(frozen=True)
class BudgetItem:
    name: str
    size: int
    note: str


def kernel_static_size(vmlinux: Path) -> int:
    """Bytes the loaded kernel occupies: the sum of its PT_LOAD memory sizes."""
    from elftools.elf.elffile import ELFFile  # imported here: only builds need it

    with open(vmlinux, "rb") as handle:
        elf = ELFFile(handle)
        return sum(seg["p_memsz"] for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD")


def rd_note(composition: dict[str, int]) -> str:
    """Where the unpacked rd's bytes go: the interpreter (with the frozen writer, when it is
    frozen in), the bytecode and the writer's own files."""
    parts = [f"{name} {size / MIB:.2f} MiB" for name, size in composition.items() if size >= MIB // 100]
    return "rootfs for the whole dump" + (f": {', '.join(parts)}" if parts else "")


def items(
    vmlinux: Path,
    rd_compressed: int,
    rd_unpacked: int,
    memory: int,
    headroom: int,
    unpacked_note: str = "rootfs for the whole dump",
    placement: str = "external",
) -> list[BudgetItem]:
    page_array = memory // PAGE * STRUCT_PAGE
    if placement == "builtin":  # in vmlinux's init section, so already in the image's PT_LOAD
        compressed = BudgetItem("initramfs, compressed", 0, "built into the kernel image, counted there")
    elif placement == "initrd":
        compressed = BudgetItem(
            "initramfs, compressed", rd_compressed, "initrd image, freed once in /dev/ram0"
        )
    else:
        compressed = BudgetItem("initramfs, compressed", rd_compressed, "freed after unpacking")
    return [
        BudgetItem("kernel image (vmlinux PT_LOAD)", kernel_static_size(vmlinux), "text+data+bss"),
        BudgetItem(
            "kernel boot allocations",
            page_array + KERNEL_BOOT_FIXED,
            "struct pages + 3 MiB slab/percpu/page tables",
        ),
        compressed,
        BudgetItem("initramfs, unpacked", rd_unpacked, unpacked_note),
        BudgetItem("writer headroom", headroom, "RSS + bounded page cache (recipe)"),
    ]


def check(entries: list[BudgetItem], memory: int, reporter: Reporter) -> dict[str, int]:
    """Print the ranked breakdown; raise BudgetError when the total exceeds *memory*."""
    total = sum(e.size for e in entries)
    ranked = sorted(entries, key=lambda e: e.size, reverse=True)
    rows = [(e.name, f"{e.size / MIB:.2f}", f"{100 * e.size / memory:.0f}%", e.note) for e in ranked]
    rows.append(
        (
            "total",
            f"{total / MIB:.2f}",
            f"{100 * total / memory:.0f}%",
            f"of {memory / MIB:.0f} MiB dump memory",
        )
    )
    reporter.table("dump memory budget", ["item", "MiB", "share", "note"], rows)
    if total > memory:
        over = (total - memory) / MIB
        raise BudgetError(
            f"the dump environment needs {total / MIB:.2f} MiB but has "
            f"{memory / MIB:.0f} MiB ({over:.2f} MiB over); largest item: "
            f"{ranked[0].name} ({ranked[0].size / MIB:.2f} MiB)",
            hint="shrink the kernel config or the initramfs, or raise "
            "budget.memory for machines with a larger HSA (z15 and newer)",
        )
    return {e.name: e.size for e in entries} | {"total": total, "memory": memory}
