"""The unpacked zfcpdump.rd is complete: its /init runs in a chroot of nothing but the rd
(plus a static qemu-s390x), and the writer there writes a dump that zgetdump accepts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rdhelpers import ALL_RD, WRITER, rd_spec

from support import chroot, elfmem, vmcore, zgetdump, zipldisk
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store
from zfcpdump_builder.stages.initramfs import RD_NAME, build_initramfs
from zfcpdump_builder.stages.runtime import RuntimeSpec, build_runtime

pytestmark = pytest.mark.slow
MIB = 1 << 20
HSA = 2 * MIB
LOADS = [(0, 1 * MIB + 512 * 1024), (1 * MIB + 512 * 1024 + 4 * 4096, 1 * MIB), (8 * MIB, 3 * MIB)]


@pytest.fixture(scope="module")
def rd_root(rd_out: StageOutput, qemu: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = chroot.unpack_rd(rd_out.path / RD_NAME, tmp_path_factory.mktemp("rd") / "root")
    chroot.install_qemu(root, qemu)
    return root


def test_the_unpacked_rd_has_real_device_nodes(rd_root: Path) -> None:
    for name in ("console", "null", "urandom"):
        assert chroot.is_char_device(rd_root / "dev" / name), name
    assert not (rd_root / "lib/ld64.so.1").is_symlink()


def test_init_runs_through_its_shebang(rd_root: Path) -> None:
    assert chroot.shebang(rd_root / "init") == ["/usr/bin/python3.11", "-ISB"]
    result = chroot.run_script(rd_root, "/init", ["--help"])
    assert result.returncode == 0, result.stderr
    assert "--root DIR" in result.stdout + result.stderr
    assert "Could not find" not in result.stderr and "Traceback" not in result.stderr


def test_init_refuses_a_live_system(rd_root: Path) -> None:
    """Not PID 1 and no --root: the writer's own guard answers (so main really ran)."""
    result = chroot.run_script(rd_root, "/init", [])
    assert result.returncode == 3 and "refusing to run on a live system" in result.stderr


def test_ctypes_reaches_libc_in_the_rd(rd_root: Path) -> None:
    code = "from zfcpdump_writer.system import System; print(System().native().libc.getpid() > 0)"
    result = chroot.run(rd_root, ["/usr/bin/python3.11", "-ISB", "-c", code])
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr


def make_dump_env(base: Path) -> tuple[vmcore.Vmcore, zipldisk.ZiplDisk]:
    """A --root tree: /proc/vmcore, a zipl dump disk at /dev/sda, zcore's hsa and reipl."""
    for sub in ("proc", "dev", "sys/kernel/debug/zcore", "etc"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    core = vmcore.write_vmcore(base / "proc/vmcore", LOADS, cpus=2, vmcoreinfo=True)
    disk = zipldisk.make_disk(base / "dev/sda", 32 * MIB, tail=2 * MIB)
    (base / "sys/kernel/debug/zcore/hsa").write_text(f"{HSA:x}\n")
    (base / "sys/kernel/debug/zcore/reipl").write_text("")
    return core, disk


def test_the_writer_in_the_chroot_writes_a_dump_zgetdump_accepts(rd_root: Path, tmp_path: Path) -> None:
    dump_and_judge(rd_root, tmp_path)


def test_a_custom_interpreter_rd_dumps_too(store: Store, cache_dir: Path, qemu: Path, tmp_path: Path) -> None:
    if shutil.which("s390x-linux-gnu-gcc") is None:
        pytest.skip("s390x-linux-gnu-gcc is not installed")
    runtime = build_runtime(RuntimeSpec(interpreter="custom"), WRITER, store, Reporter(), cache_dir)
    rd = build_initramfs(rd_spec(compression="gzip"), runtime, ALL_RD, store, Reporter())
    root = chroot.unpack_rd(rd.path / RD_NAME, tmp_path / "root")
    chroot.install_qemu(root, qemu)
    assert not (root / "lib/s390x-linux-gnu/libm.so.6").exists()
    dump_and_judge(root, tmp_path)


def dump_and_judge(rd_root: Path, tmp_path: Path) -> None:
    """Run /init --root /work in the chroot against a synthetic core and disk; judge the dump."""
    try:
        judge = zgetdump.ensure_root()
    except zgetdump.ZgetdumpUnavailable as exc:
        pytest.skip(f"s390x zgetdump unavailable: {exc}")
    work = rd_root / "work"
    shutil.rmtree(work, ignore_errors=True)
    core, disk = make_dump_env(work)
    result = chroot.run_script(
        rd_root, "/init", ["--root", "/work", "--config", "/etc/zfcpdump.conf"], timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Dump successful" in output
    actions = (work / ".zfcpdump-actions").read_text().splitlines()
    assert "reboot poweroff" in actions  # after = poweroff comes from the baked config
    part = disk.partition_image(tmp_path / "part.img")
    info = zgetdump.info(part, judge)
    assert info.returncode == 0, info.stderr
    converted = tmp_path / "dump.elf"
    assert zgetdump.convert(part, converted, judge).returncode == 0
    elfmem.assert_memory_matches(core, converted)
