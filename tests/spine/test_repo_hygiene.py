"""A fresh clone must work on any machine: nothing tracked points at the machine it came from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.buildcli import ROOT


def tracked() -> list[tuple[str, str]]:
    """(mode, path) of every tracked file."""
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-s", "-z"], capture_output=True, check=True
    ).stdout.decode()
    return [(line.split()[0], line.split("\t", 1)[1]) for line in listing.split("\0") if line]


def test_no_tracked_symlink_leaves_the_repository() -> None:
    escaping = []
    for mode, name in tracked():
        if mode == "120000":
            target = os.readlink(ROOT / name)
            resolved = os.path.normpath(os.path.join(os.path.dirname(ROOT / name), target))
            if os.path.isabs(target) or not resolved.startswith(str(ROOT) + os.sep):
                escaping.append(f"{name} -> {target}")
    assert not escaping, f"tracked symlinks that leave the repository: {escaping}"


def test_venv_is_ignored_as_a_file_or_a_link() -> None:
    for name in (".venv", ".venv/bin/python"):
        result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", name])
        assert result.returncode == 0, f"{name} is not ignored"


def test_no_tracked_file_names_this_machines_paths() -> None:
    """The checkout's own absolute path and the home directory never appear in tracked text."""
    needles = {str(ROOT)}
    home = Path.home()
    if home != Path("/"):
        needles.add(str(home) + "/")
    found = []
    for mode, name in tracked():
        path = ROOT / name
        if mode == "120000" or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        found += [f"{name}: {needle}" for needle in needles if needle.encode() in data]
    assert not found, f"tracked files name this machine's paths: {found}"
