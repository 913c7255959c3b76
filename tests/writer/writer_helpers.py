"""Helpers of the writer tests: a --root tree with a synthetic vmcore and a zipl dump disk."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for entry in (REPO / "src", REPO):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from tests.support import vmcore, zipldisk  # noqa: E402

from zfcpdump_writer.dump import Dump  # noqa: E402
from zfcpdump_writer.system import RootedSystem  # noqa: E402

MIB = 1 << 20
HSA = 2 * MIB
# One load below the HSA, one straddling it, one far above.
LOADS = [(0, 1 * MIB + 512 * 1024), (1 * MIB + 512 * 1024 + 4096 * 4, 1 * MIB), (8 * MIB, 3 * MIB)]


class RecordingSystem(RootedSystem):
    """A RootedSystem that logs every pwrite (path, offset, length) and sysfs write in order."""

    def __init__(self, root: str, out: object | None = None) -> None:
        super().__init__(root, out)
        self.events: list[tuple[str, str, int, int]] = []
        self.fd_paths: dict[int, str] = {}

    def open(self, p: str, flags: int) -> int:
        fd = super().open(p, flags)
        self.fd_paths[fd] = p
        return fd

    def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
        done = super().pwrite(fd, buf, offset)
        self.events.append(("pwrite", self.fd_paths.get(fd, "?"), offset, done))
        return done

    def write_text(self, p: str, text: str) -> None:
        super().write_text(p, text)
        self.events.append(("write_text", p, 0, int(text) if text.isdigit() else -1))


@dataclass
class Env:
    root: Path
    disk: zipldisk.ZiplDisk
    core: vmcore.Vmcore
    output: list[str] = field(default_factory=list)

    @property
    def sda(self) -> Path:
        return self.root / "dev" / "sda"

    def run(
        self, system_cls: type = RecordingSystem, config: str | None = None, **kwargs: object
    ) -> tuple[int, RootedSystem]:
        out = io.StringIO()
        sysm = system_cls(str(self.root), out=out, **kwargs)
        cfg_path = None
        if config is not None:
            cfg_path = str(self.root / "test.conf")
            Path(cfg_path).write_text(config)
        code = Dump(sysm, cfg_path).run()
        self.output = out.getvalue().splitlines()
        return code, sysm

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def actions(self) -> list[str]:
        path = self.root / ".zfcpdump-actions"
        return path.read_text().splitlines() if path.exists() else []

    def dump_bytes(self) -> bytes:
        return self.disk.read(self.disk.dump_start, self.core.size)

    def vmcore_bytes(self) -> bytes:
        return self.core.path.read_bytes()


def make_env(
    base: Path,
    loads: list[tuple[int, int]] | None = None,
    hsa: int | None = HSA,
    dump_size: int = 32 * MIB,
    **disk_kwargs: object,
) -> Env:
    root = base / "root"
    for sub in ("proc", "dev", "sys/kernel/debug/zcore", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    core = vmcore.write_vmcore(root / "proc" / "vmcore", loads or LOADS, cpus=2, vmcoreinfo=True)
    disk = zipldisk.make_disk(
        root / "dev" / "sda", dump_size, tail=disk_kwargs.pop("tail", 2 * MIB), **disk_kwargs
    )
    if disk.block != 512:
        (root / "sys/block/sda/queue").mkdir(parents=True)
        (root / "sys/block/sda/queue/logical_block_size").write_text(f"{disk.block}\n")
    zcore = root / "sys/kernel/debug/zcore"
    if hsa is None:
        os.rmdir(zcore)
    else:
        (zcore / "hsa").write_text(f"{hsa:x}\n")
        (zcore / "reipl").write_text("")
    return Env(root, disk, core)
