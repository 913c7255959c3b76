"""`dumpdisk prepare DEV`: preflight checks on real loop partitions, then the zipl command."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from install_helpers import MIB, LoopDisk, TextReporter, fake_zipl_script, write_build_manifest
from tests.support import realzipl, zgetdump

from support.buildcli import CliRun, run_cli
from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import BudgetError, InstallError
from zfcpdump_builder.core.store import file_sha256
from zfcpdump_builder.deploy import device, dumpdisk, install, prepare, transaction


@pytest.fixture
def zdir(tmp_path: Path, out: Path, default_recipe: recipe.Recipe) -> Path:
    """A zfcpdump directory holding an installed pair (>= 2.7 names, symlinks)."""
    folder = tmp_path / "zfcpdump"
    install.install_artifacts(
        out, default_recipe, TextReporter(), install.Options(directory=str(folder), layout="2.7+")
    )
    return folder


def run_prepare(device: str, zdir: Path, *extra: str, recipe_name: str = "default") -> CliRun:
    return run_cli("dumpdisk", "prepare", device, recipe_name, "--dir", str(zdir), *extra)


def messages(run: CliRun) -> list[str]:
    return [e["text"] for e in run.of("message")]


def checks(run: CliRun) -> dict[str, str]:
    table = next(e for e in run.of("table") if e["title"] == "preflight")
    return {row[0]: row[1] for row in table["rows"]}


def test_dry_run_prints_the_checks_and_the_zipl_command(loopdisk: LoopDisk, zdir: Path) -> None:
    part = loopdisk.part(1)
    run = run_prepare(part, zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == 0, run.stderr + str(run.events)
    assert f"zipl command: zipl -d {part}" in messages(run)
    assert "dry run: zipl was not run, nothing was changed" in messages(run)
    status = checks(run)
    for name in ("image", "ramdisk", "budget", "block device", "partition", "not mounted", "not in use"):
        assert status[name] == "ok", (name, run.events)
    table = next(e for e in run.of("table") if e["title"] == "preflight")
    assert [r for r in table["rows"] if r[0] == "partition"][0][2].endswith(f"of {loopdisk.dev}")


def test_a_dir_the_real_zipl_does_not_read_is_refused(
    loopdisk: LoopDisk, zdir: Path, debian_zipl: Path
) -> None:
    """zipl reads its compiled-in /lib/s390-tools/zfcpdump whatever --dir says."""
    part = loopdisk.part(2)
    for layout in ([], ["--layout", "2.7+"]):
        run = run_prepare(part, zdir, "--zipl", str(debian_zipl), "--dry-run", "--yes", *layout)
        assert run.code == InstallError.exit_code, run.stderr + str(run.events)
        assert checks(run)["zipl directory"] == "FAIL"
        assert "/lib/s390-tools/zfcpdump" in run.error()["message"] and "--force" in run.error()["hint"]
        assert not any(m.startswith("zipl command") for m in messages(run))


def test_dry_run_with_the_real_zipl_and_force(loopdisk: LoopDisk, zdir: Path, debian_zipl: Path) -> None:
    part = loopdisk.part(2)
    run = run_prepare(part, zdir, "--zipl", str(debian_zipl), "--dry-run", "--yes", "--force")
    assert run.code == 0, run.stderr + str(run.events)
    assert f"zipl command: {debian_zipl} -d {part} -n" in messages(run)
    assert checks(run)["zipl"] == "ok"
    assert checks(run)["zipl directory"] == "warn"
    table = next(e for e in run.of("table") if e["title"] == "preflight")
    assert "--force" in [r[2] for r in table["rows"] if r[0] == "zipl directory"][0]


def test_whole_disk_is_refused(loopdisk: LoopDisk, zdir: Path) -> None:
    run = run_prepare(loopdisk.dev, zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == InstallError.exit_code
    assert "is a whole disk, not a partition" in run.error()["message"]
    assert not any(m.startswith("zipl command") for m in messages(run))


def test_mounted_partition_is_refused(loopdisk: LoopDisk, zdir: Path, tmp_path: Path) -> None:
    loopdisk.mount_ext4(2, tmp_path / "mnt")
    run = run_prepare(loopdisk.part(2), zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == InstallError.exit_code
    assert f"is mounted on {tmp_path / 'mnt'}" in run.error()["message"]
    assert "umount" in run.error()["hint"]


def test_not_a_block_device_is_refused(tmp_path: Path, zdir: Path) -> None:
    run = run_prepare(str(zdir / "zfcpdump.image"), zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == InstallError.exit_code
    assert "is not a block device" in run.error()["message"]


def test_a_missing_ramdisk_is_refused(loopdisk: LoopDisk, zdir: Path) -> None:
    (zdir / "zfcpdump.rd").unlink()  # zfcpdump-initrd now dangles
    run = run_prepare(loopdisk.part(1), zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == InstallError.exit_code
    assert "SILENTLY drop" in run.error()["message"]


def test_a_half_updated_pair_is_refused(tmp_path: Path, zdir: Path, loopdisk: LoopDisk) -> None:
    (zdir / "zfcpdump-initrd").unlink()
    (zdir / "zfcpdump-initrd").write_bytes(b"some other ramdisk")
    run = run_prepare(loopdisk.part(1), zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == InstallError.exit_code
    assert "zfcpdump-initrd differs from zfcpdump.rd" in run.error()["message"]


def test_an_interrupted_install_is_refused(zdir: Path, loopdisk: LoopDisk) -> None:
    (zdir / transaction.JOURNAL).write_text('{"names": {}}\n')
    run = run_prepare(loopdisk.part(1), zdir, "--layout", "2.7+", "--dry-run")
    assert run.code == InstallError.exit_code
    assert "interrupted install" in run.error()["message"]


def test_over_budget_is_a_budget_error(tmp_path: Path, zdir: Path, loopdisk: LoopDisk) -> None:
    small = tmp_path / "small.yaml"
    small.write_text("extends: default\nbudget:\n  memory: 2MiB\n")
    run = run_prepare(loopdisk.part(1), zdir, "--layout", "2.7+", "--dry-run", recipe_name=str(small))
    assert run.code == BudgetError.exit_code
    assert "of budget.memory 2 MiB" in run.error()["message"]


def write_manifest(out: Path, memory_budget: dict[str, int]) -> None:
    outputs = {
        name: {"sha256": file_sha256(out / name), "size": (out / name).stat().st_size}
        for name in ("zfcpdump.image", "zfcpdump.rd")
    }
    write_build_manifest(out, outputs, memory_budget=memory_budget)


FIGURES = {
    "kernel image (vmlinux PT_LOAD)": 6 * MIB,
    "kernel boot allocations": 3 * MIB + 512 * 1024,
    "initramfs, compressed": 2 * MIB,
    "initramfs, unpacked": 8 * MIB,
    "writer headroom": 8 * MIB,
}


def test_the_build_manifest_gives_the_full_memory_budget(zdir: Path, out: Path, loopdisk: LoopDisk) -> None:
    part = loopdisk.part(1)
    run = run_prepare(part, zdir, "--layout", "2.7+", "--dry-run")
    assert checks(run)["memory budget"] == "warn"  # no manifest: only image + rd were checked
    write_manifest(out, FIGURES | {"total": 27 * MIB + 512 * 1024, "memory": 32 * MIB})
    run = run_prepare(part, zdir, "--layout", "2.7+", "--from", str(out), "--dry-run")
    assert run.code == 0, run.stderr + str(run.events)
    assert checks(run)["memory budget"] == "ok"
    assert any(e["title"] == "dump memory budget" for e in run.of("table"))
    write_manifest(out, FIGURES | {"initramfs, unpacked": 14 * MIB})
    run = run_prepare(part, zdir, "--layout", "2.7+", "--from", str(out), "--dry-run")
    assert run.code == BudgetError.exit_code
    assert "MiB over" in run.error()["message"]


def test_from_out_must_be_the_installed_build(zdir: Path, out: Path, out2: Path, loopdisk: LoopDisk) -> None:
    part = loopdisk.part(1)
    assert run_prepare(part, zdir, "--layout", "2.7+", "--from", str(out), "--dry-run").code == 0
    run = run_prepare(part, zdir, "--layout", "2.7+", "--from", str(out2), "--dry-run")
    assert run.code == InstallError.exit_code
    assert f"--from {out2}" in run.error()["hint"]


def test_the_real_zipl_prepares_the_partition(tmp_path: Path, zdir: Path) -> None:
    """Debian's s390x zipl 2.16, run by `dumpdisk prepare`, on a loop partition; judged by
    zgetdump -d and by `dumpdisk inspect`, and zipl took the pair from the installed dir."""
    disk = LoopDisk(tmp_path / "big.img", size=160 * MIB, table="label: dos\n,1M,L\n,,L\n")
    try:
        zipl = realzipl.launcher(tmp_path / "zipl", realzipl.ensure_root(), zfcpdump_dir=zdir)
        part = disk.part(2)
        run = run_prepare(part, zdir, "--zipl", str(zipl), "--layout", "2.7+", "--yes")
        assert run.code == 0, run.stderr + str(run.events)
        assert any(f"dumpdisk inspect {disk.dev}" in m for m in messages(run))
        tool = zgetdump.run(["-d", disk.dev], zgetdump.ensure_root())
        said = (tool.stdout + tool.stderr).decode()  # zgetdump -d reports on stderr
        assert tool.returncode == 0 and "Single-volume SCSI dump tool" in said, said
        assert re.search(r"Partition number\.*: 2\b", said), said
        inspected = run_cli("dumpdisk", "inspect", disk.dev)
        assert inspected.code == 0, inspected.stderr + str(inspected.events)
        info = dumpdisk.inspect(disk.dev)
    finally:
        disk.close()
    assert info["state"] == "empty" and info["partition"] == 2, info
    with open(tmp_path / "big.img", "rb") as handle:  # zipl copied our pair behind the dump area
        handle.seek(info["part_start"] + info["dump_size"])
        tail = handle.read(info["part_size"] - info["dump_size"])
    for name in ("zfcpdump.image", "zfcpdump.rd"):
        piece = (zdir / name).read_bytes()[MIB // 2 : MIB // 2 + 4096]
        assert piece in tail, f"the dump tool zipl wrote does not hold {name}"


def test_a_failing_zipl_is_reported(tmp_path: Path, zdir: Path, loopdisk: LoopDisk) -> None:
    """A zipl exit code is passed on (the one place a stand-in zipl is still needed)."""
    failing = fake_zipl_script(
        tmp_path / "zipl-fails", tmp_path / "zipl.log", exit_code=3, directory=str(zdir)
    )
    run = run_prepare(loopdisk.part(1), zdir, "--zipl", str(failing), "--yes")
    assert run.code == InstallError.exit_code
    assert "zipl failed with exit code 3" in run.error()["message"]
    assert (tmp_path / "zipl.log").read_text().split() == ["-d", loopdisk.part(1), "-n"]


def test_no_zipl_is_an_error_outside_dry_run(
    zdir: Path, loopdisk: LoopDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "find_zipl", lambda root=None: None)
    args = prepare.Request(str(loopdisk.part(1)), layout="2.7+", install_dir=str(zdir))
    _, found, _ = prepare.preflight(args, recipe.load("default"), TextReporter())
    assert [c for c in found if c.name == "zipl"][0].failed
    args = prepare.Request(str(loopdisk.part(1)), layout="2.7+", install_dir=str(zdir), dry_run=True)
    _, found, _ = prepare.preflight(args, recipe.load("default"), TextReporter())
    assert [c.status for c in found if c.name == "zipl"] == ["warn"]


# --- the device checks against a fake sysfs / mount table ---------------------------------


def fake_device(
    tmp_path: Path, uuid: str | None = None, partition: str | None = None, holders: tuple[str, ...] = ()
) -> device.Device:
    sysdir = tmp_path / "sys" / "block" / "dm-3"
    (sysdir / "holders").mkdir(parents=True)
    for holder in holders:
        (sysdir / "holders" / holder).touch()
    if uuid is not None:
        (sysdir / "dm").mkdir()
        (sysdir / "dm" / "uuid").write_text(uuid + "\n")
    if partition is not None:
        (sysdir / "partition").write_text(partition + "\n")
    return device.Device(Path("/dev/dm-3"), os.makedev(253, 3), sysdir)


def test_multipath_partition_counts_as_a_partition(tmp_path: Path) -> None:
    part = fake_device(tmp_path / "a", uuid="part1-mpath-36005076303ffd4c1000000000000101c")
    assert device.partition_check(part).status == "ok"
    disk = fake_device(tmp_path / "b", uuid="mpath-36005076303ffd4c1000000000000101c")
    assert device.partition_check(disk).failed


def test_mountinfo_is_matched_by_major_minor(tmp_path: Path) -> None:
    dev = fake_device(tmp_path, partition="1")
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 253:3 / /var/crash rw,relatime shared:1 - ext4 /dev/mapper/x-part1 rw\n"
        "23 1 0:21 / /proc rw shared:2 - proc proc rw\n"
    )
    assert device.mount_points(dev, info) == ["/var/crash"]
    checks = device.use_checks(dev, device.Sys(mountinfo=info, swaps=tmp_path / "none"))
    assert checks[0].failed and "/var/crash" in checks[0].detail


def test_held_device_is_refused(tmp_path: Path) -> None:
    dev = fake_device(tmp_path, partition="1", holders=("dm-7",))
    checks = device.use_checks(dev, device.Sys(mountinfo=tmp_path / "none", swaps=tmp_path / "none"))
    assert checks[0].failed and "held by dm-7" in checks[0].detail


def test_active_swap_is_refused(loopdisk: LoopDisk, tmp_path: Path) -> None:
    part = loopdisk.part(2)
    swaps = tmp_path / "swaps"
    swaps.write_text(f"Filename Type Size Used Priority\n{part} partition 16380 0 -2\n")
    checks = device.device_checks(part, device.Sys(swaps=swaps))
    assert checks[-1].failed and "active swap area" in checks[-1].detail
