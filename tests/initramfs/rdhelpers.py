"""Shared constants and helpers of the initramfs tests."""

from __future__ import annotations

from pathlib import Path

from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.stages.initramfs import InitramfsSpec

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"
EPOCH = 1_700_000_000
ALL_RD = {
    s: "y"
    for s in (
        "BLK_DEV_INITRD",
        "BINFMT_SCRIPT",
        "RD_GZIP",
        "RD_XZ",
        "RD_ZSTD",
        "RD_LZ4",
        "RD_BZIP2",
        "RD_LZMA",
        "RD_LZO",
    )
}
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
