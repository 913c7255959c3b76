"""The SBOM of a real build, validated by the SPDX project's own spdx-tools."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from support.buildcli import BuiltRecipe, run_cli
from zfcpdump_builder.core import dep5


def test_sbom_validates_and_lists_every_input(built_default: BuiltRecipe) -> None:
    path = built_default.out / "sbom.spdx.json"
    document = parse_file(str(path))
    assert [m.validation_message for m in validate_full_spdx_document(document)] == []
    manifest = json.loads((built_default.out / "manifest.json").read_text())
    packages = {p.name: p for p in document.packages}
    kernel = packages[manifest["kernel"]["source"]["package"]]
    assert kernel.checksums[0].value == manifest["kernel"]["source"]["sha256"]
    for info in manifest["runtime"]["packages"]:
        assert packages[info["name"]].version == info["version"]
        assert packages[info["name"]].checksums[0].value == info["sha256"]
    assert str(packages["zlib1g"].license_declared) == "Zlib"  # from its DEP-5 copyright file
    assert "s390x-linux-gnu-gcc" in packages and "s390x-linux-gnu-binutils" in packages
    files = {f.name: f for f in document.files}
    for name in ("zfcpdump.image", "zfcpdump.rd"):
        digest = {c.algorithm.name: c.value for c in files[f"./{name}"].checksums}["SHA256"]
        assert digest == manifest["outputs"][name]["sha256"]
    generated = {
        (r.spdx_element_id, r.related_spdx_element_id)
        for r in document.relationships
        if r.relationship_type.name == "GENERATED_FROM"
    }
    rd_id = files["./zfcpdump.rd"].spdx_id
    assert (rd_id, "SPDXRef-Package-zfcpdump-writer") in generated
    assert (files["./zfcpdump.image"].spdx_id, "SPDXRef-Package-kernel-source") in generated
    created = document.creation_info.created.timestamp()
    assert created == manifest["source_date_epoch"], time.gmtime(created)


def test_sbom_is_reproducible(built_default: BuiltRecipe, tmp_path: Path) -> None:
    again = run_cli("build", "default", "--out", str(tmp_path / "again"))
    assert again.code == 0, again.stderr[-2000:]
    for name in ("sbom.spdx.json", "SHA256SUMS"):
        assert (tmp_path / "again" / name).read_bytes() == (built_default.out / name).read_bytes()


ZLIB = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: zlib

Files: debian/*
License: GPL-2+

Files: *
Copyright: 1995-2013 Jean-loup Gailly and Mark Adler
License: Zlib
 This software is provided 'as-is'.
"""


def test_dep5_reads_the_files_star_paragraph() -> None:
    assert dep5.dep5_license(ZLIB) == "Zlib"
    assert dep5.dep5_license(ZLIB.replace("License: Zlib", "License: MPL-1.1 or GPL-2+")) is None
    assert dep5.dep5_license(ZLIB.replace("License: Zlib", "License: Expat or GPL-2+")) == (
        "MIT OR GPL-2.0-or-later"
    )
    assert dep5.dep5_license("This is the Debian prepackaged version of glibc.\n") is None


@given(st.text(max_size=400))
def test_dep5_never_raises(text: str) -> None:
    result = dep5.dep5_license("Format: https://x/copyright-format/1.0/\n\n" + text)
    assert result is None or all(
        part in set(dep5.DEBIAN_TO_SPDX.values()) | {"OR", "AND"} for part in result.split()
    )
