"""A .deb made from `install --destdir`, as a distro package's %install step would."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.buildcli import BuiltRecipe, run_cli
from zfcpdump_builder.deploy import zipl

CONTROL = """Package: zfcpdump-image
Version: 6.1.192-1
Architecture: s390x
Maintainer: Packager <packager@example.org>
Depends: s390-tools (>= 2.7)
Section: admin
Priority: optional
Description: zfcpdump kernel and ramdisk built by zfcpdump-build
 The stand-alone SCSI dump tool that zipl -d writes to a dump disk.
"""


def test_deb_from_destdir_holds_what_zipl_reads(built_default: BuiltRecipe, tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = run_cli(
        "install", "default", "--from", str(built_default.out), "--destdir", str(root), "--layout", "2.7+"
    )
    assert run.code == 0, run.stderr[-2000:]
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(CONTROL)
    deb = tmp_path / "zfcpdump-image_6.1.192-1_s390x.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True
    )
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], check=True, capture_output=True, text=True).stdout
    assert "Depends: s390-tools (>= 2.7)" in info and "Architecture: s390x" in info
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], check=True, capture_output=True, text=True
    ).stdout
    files = {line.split()[5].removeprefix("./") for line in listing.splitlines() if not line.startswith("d")}
    layout = zipl.LAYOUTS["2.7+"]
    read_by_zipl = {f"{zipl.DEFAULT_DIR.lstrip('/')}/{name}" for name in (layout.image, layout.rd)}
    assert read_by_zipl <= files
    assert all(f.startswith(zipl.DEFAULT_DIR.lstrip("/") + "/") for f in files), files
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}
