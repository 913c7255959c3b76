"""Fixtures of the initramfs tests: a real runtime and one built zfcpdump.rd per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import chroot
from zfcpdump_builder.cache import StageOutput, Store
from zfcpdump_builder.events import Reporter
from zfcpdump_builder.initramfs import InitramfsSpec, build_initramfs
from zfcpdump_builder.runtime import RuntimeSpec, build_runtime

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"
EPOCH = 1_700_000_000
ALL_RD = {s: "y" for s in ("BLK_DEV_INITRD", "BINFMT_SCRIPT", "RD_GZIP", "RD_XZ", "RD_ZSTD",
                           "RD_LZ4", "RD_BZIP2", "RD_LZMA", "RD_LZO")}
WRITER_CONFIG = {"after": "poweroff", "disk_timeout": 5, "progress_interval": 1}


class RecordingReporter(Reporter):
    """Keeps tables and warnings for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[str], list[list[object]]]] = []
        self.warnings: list[str] = []

    def table(self, title, columns, rows) -> None:  # noqa: ANN001
        self.tables.append((title, list(columns), [list(r) for r in rows]))

    def warning(self, text: str) -> None:
        self.warnings.append(text)


def rd_spec(**changes: object) -> InitramfsSpec:
    base = {"compression": "xz", "source_date_epoch": EPOCH, "writer_config": WRITER_CONFIG}
    return InitramfsSpec(**{**base, **changes})


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("rd-store"))


@pytest.fixture(scope="session")
def runtime_out(store: Store, cache_dir: Path) -> StageOutput:
    return build_runtime(RuntimeSpec(), WRITER, store, Reporter(), cache_dir)


@pytest.fixture(scope="session")
def rd_out(runtime_out: StageOutput, store: Store) -> StageOutput:
    return build_initramfs(rd_spec(), runtime_out, ALL_RD, store, Reporter())


@pytest.fixture(scope="session")
def qemu(cache_dir: Path) -> Path:
    reason = chroot.available()
    if reason:
        pytest.skip(reason)
    return chroot.qemu_static(cache_dir)
