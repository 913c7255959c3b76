"""Layout detection from zipl binaries: Debian's real s390x zipl, and synthetic older ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from install_helpers import compile_fake_zipl

from zfcpdump_builder.core.errors import InstallError
from zfcpdump_builder.deploy import zipl


def test_real_debian_zipl_reads_the_2_7_names(debian_zipl: Path) -> None:
    with open(debian_zipl, "rb") as handle:
        elf = ELFFile(handle)
        assert elf["e_machine"] == "EM_S390" and not elf.little_endian
    found = zipl.detect(debian_zipl)
    assert found.layout.name == "2.7+"
    assert found.image_path == "/lib/s390-tools/zfcpdump/zfcpdump-image"
    assert found.rd_path == "/lib/s390-tools/zfcpdump/zfcpdump-initrd"
    assert found.directory == "/lib/s390-tools/zfcpdump"
    assert found.version is not None and found.version.startswith("2.16.")


def test_real_zipl_strings_come_from_its_data_sections(debian_zipl: Path) -> None:
    data = zipl.binary_data(debian_zipl)
    with open(debian_zipl, "rb") as handle:
        text = ELFFile(handle).get_section_by_name(".text").data()
    assert len(data) < debian_zipl.stat().st_size
    assert text[len(text) // 2 : len(text) // 2 + 64] not in data  # code is not scanned
    assert b"/lib/s390-tools/zfcpdump/zfcpdump-image\0" in data
    assert "Usage: zipl [OPTIONS] [SECTION]" in zipl.read_strings(debian_zipl)


LAYOUT_CASES = [
    ("/lib/s390-tools/zfcpdump", "zfcpdump-image", "zfcpdump-initrd", "2.7+"),
    ("/usr/lib/s390-tools/zfcpdump", "zfcpdump-image", "zfcpdump-initrd", "2.7+"),  # SUSE
    ("/lib/s390-tools/zfcpdump", "zfcpdump_part.image", "zfcpdump_part.rd", "2.0-2.6"),
    ("/usr/share/zfcpdump", "zfcpdump.image", "zfcpdump.rd", "pre-2.0"),
]


@pytest.mark.parametrize(("directory", "image", "rd", "layout"), LAYOUT_CASES)
def test_synthetic_elf_zipl(tmp_path: Path, directory: str, image: str, rd: str, layout: str) -> None:
    binary = compile_fake_zipl(tmp_path / "zipl", directory, image, rd)
    found = zipl.detect(binary)
    assert (found.layout.name, found.directory) == (layout, directory)
    assert (found.image_path, found.rd_path) == (f"{directory}/{image}", f"{directory}/{rd}")
    assert found.version == "1.8.2"  # an s390-tools release string is reported as well


def test_2_x_zipl_that_also_names_the_old_fs_dump_image_is_2_0(tmp_path: Path) -> None:
    binary = compile_fake_zipl(
        tmp_path / "zipl",
        "/lib/s390-tools/zfcpdump",
        "zfcpdump_part.image",
        "zfcpdump_part.rd",
        extra="zfcpdump.image",
    )
    assert zipl.detect(binary).layout.name == "2.0-2.6"


def test_directory_and_names_compiled_in_separately(tmp_path: Path) -> None:
    binary = compile_fake_zipl(
        tmp_path / "zipl", "/usr/lib/s390-tools/zfcpdump", "zfcpdump.image", "zfcpdump.rd", separate=True
    )
    found = zipl.detect(binary)
    assert (found.layout.name, found.image_path) == ("pre-2.0", "zfcpdump.image")
    assert found.directory == "/usr/lib/s390-tools/zfcpdump"


def test_non_elf_file_is_scanned_whole(tmp_path: Path) -> None:
    blob = tmp_path / "zipl"
    blob.write_bytes(b"\x01\x02junk\0/opt/zfcp/zfcpdump_part.image\0/opt/zfcp/zfcpdump_part.rd\0\xff")
    found = zipl.detect(blob)
    assert (found.layout.name, found.directory) == ("2.0-2.6", "/opt/zfcp")


def test_a_binary_without_zfcpdump_names_is_refused(tmp_path: Path) -> None:
    binary = compile_fake_zipl(tmp_path / "zipl", "/lib/x", "vmlinuz", "initrd.img")
    with pytest.raises(InstallError, match="names no zfcpdump image") as info:
        zipl.detect(binary)
    assert "--layout" in (info.value.hint or "")
    with pytest.raises(InstallError, match="does not exist"):
        zipl.detect(tmp_path / "missing")


def test_find_zipl_in_a_target_root_stays_inside_it(tmp_path: Path, debian_zipl: Path) -> None:
    root = tmp_path / "root"
    (root / "sbin").mkdir(parents=True)
    os.symlink(str(debian_zipl), root / "sbin" / "zipl")  # absolute: leads out of the root
    assert zipl.find_zipl(root) is None
    (root / "usr" / "sbin").mkdir(parents=True)
    (root / "usr" / "sbin" / "zipl").write_bytes(debian_zipl.read_bytes())
    assert zipl.find_zipl(root) == root / "usr" / "sbin" / "zipl"


def test_resolve_prefers_explicit_choices(debian_zipl: Path) -> None:
    cross = zipl.Choice(host_detection=False, why_no_host="this is a cross build")
    with pytest.raises(InstallError, match="cross build") as info:
        zipl.resolve(cross)
    assert "--layout 2.7+" in (info.value.hint or "")
    assert zipl.resolve(zipl.Choice(recipe_layout="2.0-2.6", host_detection=False)).layout.name == "2.0-2.6"
    both = zipl.Choice(layout="pre-2.0", recipe_layout="2.0-2.6", zipl=debian_zipl)
    assert zipl.resolve(both).layout.name == "pre-2.0"
    assert any("will not find the image" in note for note in zipl.resolve(both).notes)
    assert zipl.resolve(zipl.Choice(layout="2.7+", zipl=debian_zipl)).notes == ()
    assert zipl.resolve(zipl.Choice(zipl=debian_zipl, host_detection=False)).layout.name == "2.7+"


def test_resolve_follows_the_compiled_in_directory(tmp_path: Path) -> None:
    suse = compile_fake_zipl(
        tmp_path / "zipl", "/usr/lib/s390-tools/zfcpdump", "zfcpdump-image", "zfcpdump-initrd"
    )
    target = zipl.resolve(zipl.Choice(zipl=suse))
    assert target.directory == "/usr/lib/s390-tools/zfcpdump"
    assert any("not the recipe's install.dir" in note for note in target.notes)
    forced = zipl.resolve(zipl.Choice(zipl=suse, directory="/srv/zfcpdump"))
    assert forced.directory == "/srv/zfcpdump"
    assert any("will not find" in note for note in forced.notes)
