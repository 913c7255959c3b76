"""Loop devices over disk images, with partition nodes made from sysfs where udev does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


class LoopDevice:
    """A loop device over *image* with its partitions registered (partx), or a pytest skip."""

    def __init__(self, image: Path, tools: tuple[str, ...] = ("losetup", "partx")) -> None:
        for tool in tools:
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed")
        res = subprocess.run(["losetup", "-f", "--show", "-P", str(image)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"losetup not permitted: {res.stderr.strip()}")
        self.dev = res.stdout.strip()
        self.name = Path(self.dev).name
        self.made: list[Path] = []
        if not Path(f"/sys/block/{self.name}/{self.name}p1").exists():
            subprocess.run(["partx", "-a", self.dev], capture_output=True, check=False)

    def part(self, number: int) -> Path:
        """The partition's device node, made with mknod when only sysfs knows it."""
        node = Path(f"{self.dev}p{number}")
        sys_dev = Path(f"/sys/block/{self.name}/{self.name}p{number}/dev")
        if not node.exists() and sys_dev.exists():
            major, minor = sys_dev.read_text().strip().split(":")
            subprocess.run(["mknod", str(node), "b", major, minor], check=True)
            self.made.append(node)
        if not node.exists():
            self.close()
            pytest.skip(f"no partition node {node}")
        return node

    def close(self) -> None:
        subprocess.run(["partx", "-d", self.dev], capture_output=True, check=False)
        for node in self.made:
            node.unlink(missing_ok=True)
        self.made = []
        subprocess.run(["losetup", "-d", self.dev], capture_output=True, check=False)
