"""The initrd placement's ext2 image: reproducible, complete, made without root, checked by
e2fsprogs' own e2fsck and read back with debugfs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from zfcpdump_builder.core.errors import BudgetError, RecipeError
from zfcpdump_builder.stages import placement
from zfcpdump_builder.stages.initramfs import check_ram_disk, ext2, initrd_entries
from zfcpdump_builder.stages.initramfs.cpio import RdEntry, complete_tree

EPOCH = 1_700_000_000


def entries(big: int = 300_000) -> list[RdEntry]:
    return complete_tree(
        [
            RdEntry("init", "file", 0o755, data=os.urandom(big)),
            RdEntry("etc/zfcpdump.conf", "file", 0o644, data=b"after = poweroff\n"),
            RdEntry("dev/console", "chr", 0o600, rdev=(5, 1)),
            RdEntry("proc", "dir"),
            RdEntry("lib/ld.so", "symlink", 0o777, target="../init"),
        ]
    )


def debugfs(image: Path, command: str) -> str:
    done = subprocess.run(["debugfs", "-R", command, str(image)], capture_output=True, text=True, check=True)
    return done.stdout


def test_image_is_reproducible_and_holds_every_entry(tmp_path: Path) -> None:
    tree = initrd_entries(entries())
    first, second = ext2.ext2_image(tree, EPOCH), ext2.ext2_image(tree, EPOCH)
    assert first == second
    assert ext2.ext2_image(tree, EPOCH + 1) != first
    image = tmp_path / "rd.ext2"
    image.write_bytes(first)
    assert first[1080:1082] == b"\x53\xef"
    subprocess.run(["e2fsck", "-fn", str(image)], check=True, capture_output=True)
    init = next(e for e in tree if e.path == "init")
    out = tmp_path / "init.out"
    subprocess.run(["debugfs", "-R", f"dump /init {out}", str(image)], check=True, capture_output=True)
    assert out.read_bytes() == init.content()
    stat = debugfs(image, "stat /dev/console")
    assert "Type: character special" in stat and "Mode:  0600" in stat and "User:     0" in stat
    assert "Device major/minor number: 05:01" in stat
    listing = debugfs(image, "ls -l /sbin")
    assert "init" in listing
    assert debugfs(image, "stat /sbin/init").count('Fast link dest: "../init"') == 1
    assert "Mode:  0755" in debugfs(image, "stat /init")
    assert "mtime: 0x6553f100" in debugfs(image, "stat /etc/zfcpdump.conf")


def test_image_grows_to_fit_and_stays_small(tmp_path: Path) -> None:
    tree = entries(big=3 << 20)
    image = ext2.ext2_image(tree, EPOCH)
    data = sum(len(e.content()) for e in tree)
    assert data < len(image) < data * 1.15 + (256 << 10)


def test_ram_disk_limit_and_missing_file_system_are_refused() -> None:
    with pytest.raises(BudgetError, match="BLK_DEV_RAM_SIZE is 4096 KiB"):
        check_ram_disk(5 << 20, 4096 * 1024)
    check_ram_disk(4 << 20, 4096 * 1024)
    with pytest.raises(RecipeError, match="neither CONFIG_EXT2_FS=y"):
        placement.initrd_filesystem({"BLK_DEV_RAM": "y"})
    with pytest.raises(RecipeError, match="BLK_DEV_RAM=y"):
        placement.initrd_filesystem({"EXT2_FS": "y"})
    assert placement.initrd_filesystem({"BLK_DEV_RAM": "y", "EXT2_FS": "y"}) == "ext2"
    assert placement.ram_disk_bytes({"BLK_DEV_RAM_SIZE": "16384"}) == 16 << 20


def test_the_hosts_mke2fs_config_and_environment_do_not_shape_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = initrd_entries(entries(big=20_000))
    clean = ext2.ext2_image(tree, EPOCH)
    hostile = tmp_path / "mke2fs.conf"
    hostile.write_text(
        "[defaults]\n\tbase_features = sparse_super,dir_index,ext_attr\n\tdefault_mntopts = acl\n"
    )
    monkeypatch.setenv("MKE2FS_CONFIG", str(hostile))
    monkeypatch.setenv("MKE2FS_DEVICE_SECTSIZE", "4096")
    assert ext2.ext2_image(tree, EPOCH) == clean
    assert "mke2fs.conf" in ext2.tool_versions()
