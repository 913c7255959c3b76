"""The crash-side scaffolding rd: contents and ELF closure (no boot; Debian packages cached)."""

from __future__ import annotations

from pathlib import Path

import libarchive
import pytest
from tests.support import crashside

pytestmark = pytest.mark.slow


def _members(rd: Path) -> dict[str, tuple[int, str | None, bytes]]:
    found = {}
    with libarchive.file_reader(str(rd)) as archive:
        for entry in archive:
            data = b"".join(entry.get_blocks())
            found[entry.pathname] = (entry.filetype, entry.linkpath, data)
    return found


def test_crashside_rd_holds_kexec_closure_capture_pair_and_init(tmp_path: Path) -> None:
    image, rd = tmp_path / "image", tmp_path / "rd"
    image.write_bytes(b"IMAGE" * 100)
    rd.write_bytes(b"RD" * 100)
    out = crashside.build_crashside_rd(image, rd, tmp_path / "crash.rd", "TOKEN-1")
    members = _members(out)
    assert members["capture.image"][2] == image.read_bytes()
    assert members["capture.rd"][2] == rd.read_bytes()
    for path in ("sbin/kexec", "bin/busybox", "lib/ld64.so.1", "lib/s390x-linux-gnu/libc.so.6"):
        ftype, link, data = members[path]
        assert data[:4] == b"\x7fELF" and not link, f"{path} is not a real ELF file"
    assert members["dev/console"][0] == 0o020000
    init = members["init"][2].decode()
    assert "kexec -s -p /capture.image --initrd=/capture.rd" in init
    assert 'append="console=ttysclp0 scsi_mod.scan=async"' in init
    assert "echo c > /proc/sysrq-trigger" in init and "TOKEN-1" in init


def test_elf_closure_follows_dt_needed_and_interp(tmp_path: Path) -> None:
    root = crashside.fetch_root(tmp_path / "stage")
    closure = crashside.elf_closure(root, "sbin/kexec")
    assert "lib/ld64.so.1" in closure
    assert any(p.endswith("/libc.so.6") for p in closure)
    assert all(not real.is_symlink() for real in closure.values())
