"""The initramfs stage: contents, reproducibility, compression choice, budget, overlays."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import libarchive
import pytest
from rdhelpers import ALL_RD, EPOCH, WRITER, WRITER_CONFIG, RecordingReporter, rd_spec

from support import chroot
from zfcpdump_builder.core.errors import BudgetError, RecipeError
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store
from zfcpdump_builder.stages.initramfs import CONTENTS_JSON, RD_NAME, build_initramfs
from zfcpdump_builder.stages.runtime import RuntimeSpec, build_runtime
from zfcpdump_writer import config as writer_config


def contents(out: StageOutput) -> dict:
    return json.loads((out.path / CONTENTS_JSON).read_text())


def gnu_list(rd: Path) -> dict[str, list[str]]:
    raw = chroot.decompress(rd.read_bytes())
    text = subprocess.run(
        ["cpio", "-itv", "--numeric-uid-gid", "--quiet"], input=raw, capture_output=True, check=True
    ).stdout.decode()
    rows = [line.split() for line in text.splitlines()]
    return {(r[r.index("->") - 1] if "->" in r else r[-1]): r for r in rows}


def archive_members(rd: Path) -> dict[str, dict]:
    members = {}
    with libarchive.file_reader(str(rd)) as archive:
        for entry in archive:
            members[entry.pathname] = {
                "mode": entry.mode,
                "uid": entry.uid,
                "gid": entry.gid,
                "mtime": entry.mtime,
                "rdev": (entry.rdevmajor, entry.rdevminor),
                "data": b"".join(entry.get_blocks()) if entry.isreg else b"",
            }
    return members


def test_gnu_cpio_lists_init_devices_and_mount_points(rd_out: StageOutput) -> None:
    rows = gnu_list(rd_out.path / RD_NAME)
    assert rows["init"][0] == "-rwxr-xr-x"
    assert rows["dev/console"][0] == "crw-------" and rows["dev/console"][4:6] == ["5,", "1"]
    assert rows["dev/null"][0] == "crw-rw-rw-" and rows["dev/null"][4:6] == ["1,", "3"]
    assert rows["dev/urandom"][4:6] == ["1,", "9"]
    for mount in ("proc", "sys", "sys/kernel/debug", "dev"):
        assert rows[mount][0].startswith("d"), mount
    assert all(r[2] == "0" and r[3] == "0" for r in rows.values())
    assert rows["usr/bin/python3.11"][0] == "-rwxr-xr-x"
    assert rows["lib/ld64.so.1"][0] == "-rwxr-xr-x"  # a real file, not a symlink


def test_libarchive_agrees_with_contents_json(rd_out: StageOutput) -> None:
    members = archive_members(rd_out.path / RD_NAME)
    records = {r["path"].lstrip("/"): r for r in contents(rd_out)["entries"]}
    assert set(members) == set(records)
    for path, member in members.items():
        record = records[path]
        assert (member["uid"], member["gid"], member["mtime"]) == (0, 0, EPOCH), path
        assert f"{member['mode'] & 0o7777:04o}" == record["mode"], path
        if record["type"] == "file":
            assert hashlib.sha256(member["data"]).hexdigest() == record["sha256"], path
            assert len(member["data"]) == record["size"], path
        if record["type"] == "chr":
            assert list(member["rdev"]) == record["rdev"]
        assert record["origin"], path


def test_init_starts_the_writer_isolated(rd_out: StageOutput) -> None:
    init = archive_members(rd_out.path / RD_NAME)["init"]["data"].decode()
    first = init.splitlines()[0]
    assert first == "#!/usr/bin/python3.11 -ISB"
    assert "from zfcpdump_writer.main import main" in init


def test_the_baked_config_is_the_writers_rendering(rd_out: StageOutput) -> None:
    text = archive_members(rd_out.path / RD_NAME)["etc/zfcpdump.conf"]["data"].decode()
    assert text == writer_config.render(WRITER_CONFIG)
    assert writer_config.parse(text)["after"] == "poweroff"


def test_two_builds_in_different_dirs_are_identical(
    rd_out: StageOutput, tmp_path: Path, cache_dir: Path
) -> None:
    store = Store(tmp_path / "elsewhere" / "store")
    runtime = build_runtime(RuntimeSpec(), WRITER, store, Reporter(), cache_dir)
    again = build_initramfs(rd_spec(), runtime, ALL_RD, store, Reporter())
    assert not again.cached and again.path != rd_out.path
    first, second = (o.path / RD_NAME for o in (rd_out, again))
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(second.read_bytes()).hexdigest()
    assert contents(rd_out) == contents(again)


def test_source_date_epoch_is_the_only_time(runtime_out: StageOutput, store: Store) -> None:
    out = build_initramfs(rd_spec(source_date_epoch=EPOCH + 86400), runtime_out, ALL_RD, store, Reporter())
    assert {m["mtime"] for m in archive_members(out.path / RD_NAME).values()} == {EPOCH + 86400}


def test_compression_off_in_the_kernel_is_refused(runtime_out: StageOutput, store: Store) -> None:
    config = {**ALL_RD, "RD_XZ": "n"}
    with pytest.raises(RecipeError, match="CONFIG_RD_XZ") as info:
        build_initramfs(rd_spec(compression="xz"), runtime_out, config, store, Reporter())
    assert "gzip" in (info.value.hint or "")


def test_auto_chooses_the_smallest_the_kernel_can_unpack(runtime_out: StageOutput, store: Store) -> None:
    reporter = RecordingReporter()
    out = build_initramfs(rd_spec(compression="auto"), runtime_out, ALL_RD, store, reporter)
    summary = contents(out)["summary"]
    assert set(summary["candidates"]) == {"xz", "zstd", "gzip", "lz4", "none"}
    assert summary["compression"] == min(summary["candidates"], key=summary["candidates"].get)
    assert (out.path / RD_NAME).stat().st_size == summary["compressed"]
    only_gzip = {"BLK_DEV_INITRD": "y", "RD_GZIP": "y"}
    out = build_initramfs(rd_spec(compression="auto"), runtime_out, only_gzip, store, Reporter())
    assert contents(out)["summary"]["compression"] == "gzip"
    assert (out.path / RD_NAME).read_bytes()[:2] == b"\x1f\x8b"


def test_over_budget_shows_a_ranked_table(runtime_out: StageOutput, store: Store) -> None:
    reporter = RecordingReporter()
    with pytest.raises(BudgetError, match=r"max_compressed 1\.00 MiB.*usr/bin/python3\.11"):
        build_initramfs(rd_spec(max_compressed=1 << 20), runtime_out, ALL_RD, store, reporter)
    title, columns, rows = reporter.tables[-1]
    assert "budget" in title and columns[:3] == ["rank", "path", "bytes"]
    sizes = [row[2] for row in rows]
    assert sizes == sorted(sizes, reverse=True) and rows[0][1] == "/usr/bin/python3.11"
    with pytest.raises(BudgetError, match="max_unpacked"):
        build_initramfs(
            rd_spec(max_unpacked=4 << 20, compression="gzip"), runtime_out, ALL_RD, store, RecordingReporter()
        )
    summary = contents(build_initramfs(rd_spec(), runtime_out, ALL_RD, store, Reporter()))["summary"]
    build_initramfs(
        rd_spec(max_compressed=summary["compressed"], max_unpacked=summary["unpacked"]),
        runtime_out,
        ALL_RD,
        store,
        Reporter(),
    )  # exactly at the budget is fine


def overlay(tmp_path: Path, files: dict[str, str], name: str = "overlay") -> Path:
    base = tmp_path / name
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)
    return base


def test_an_overlay_is_merged(runtime_out: StageOutput, store: Store, tmp_path: Path) -> None:
    extra = overlay(tmp_path, {"README": "docs", "etc/motd": "hello\n", "usr/share/x/y": "z"})
    (extra / "etc/motd").chmod(0o600)
    (extra / "bin").mkdir()
    (extra / "bin/sh").symlink_to("/usr/bin/python3.11")
    out = build_initramfs(
        rd_spec(overlays=(extra,), compression="gzip"), runtime_out, ALL_RD, store, Reporter()
    )
    members = archive_members(out.path / RD_NAME)
    assert members["etc/motd"]["data"] == b"hello\n" and members["etc/motd"]["mode"] & 0o777 == 0o600
    assert "README" not in members and "usr/share/x/y" in members
    records = {r["path"]: r for r in contents(out)["entries"]}
    assert records["/bin/sh"]["target"] == "/usr/bin/python3.11"
    assert records["/etc/motd"]["origin"] == "overlay:overlay"


@pytest.mark.parametrize("path", ["init", "usr/bin/python3.11", "etc/zfcpdump.conf"])
def test_an_overlay_may_not_shadow(runtime_out: StageOutput, store: Store, tmp_path: Path, path: str) -> None:
    extra = overlay(tmp_path, {path: "#!/bin/sh\n"})
    with pytest.raises(RecipeError, match=f"/{path} would shadow"):
        build_initramfs(rd_spec(overlays=(extra,)), runtime_out, ALL_RD, store, Reporter())


def test_shadowing_is_allowed_when_asked(runtime_out: StageOutput, store: Store, tmp_path: Path) -> None:
    extra = overlay(tmp_path, {"init": "#!/bin/sh\n"})
    reporter = RecordingReporter()
    out = build_initramfs(
        rd_spec(overlays=(extra,), allow_shadow=True, compression="gzip"),
        runtime_out,
        ALL_RD,
        store,
        reporter,
    )
    assert archive_members(out.path / RD_NAME)["init"]["data"] == b"#!/bin/sh\n"
    assert any("/init" in w for w in reporter.warnings)


def test_an_overlay_file_over_a_directory_is_refused(
    runtime_out: StageOutput, store: Store, tmp_path: Path
) -> None:
    extra = overlay(tmp_path, {"usr/lib": "not a dir"})
    with pytest.raises(RecipeError, match="already has a dir"):
        build_initramfs(rd_spec(overlays=(extra,), allow_shadow=True), runtime_out, ALL_RD, store, Reporter())


def test_the_stage_is_cached(runtime_out: StageOutput, store: Store) -> None:
    first = build_initramfs(rd_spec(), runtime_out, ALL_RD, store, Reporter())
    second = build_initramfs(rd_spec(), runtime_out, ALL_RD, store, Reporter())
    assert second.cached and second.path == first.path
