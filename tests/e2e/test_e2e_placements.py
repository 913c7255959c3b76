"""The kdump cycle of test_e2e_kdump for the other placements of the writer's root file system.

Each placement recipe `extends:` qemu-test and is built by `build.py build`. The first kernel
boots the crash-side rd, loads the same image as the capture kernel the way zipl would hand it
over (builtin: no ramdisk at all; initrd: the ext2 zfcpdump.rd with root=/dev/ram0), and
crashes. Judges: the console, zgetdump -i, the ELF from `zgetdump PART`, the sentinels and the
first kernel's token in the dump.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass
from pathlib import Path

import dumpcheck as dc
import pytest
import scenario as sc
from tests.support import crashside, realzipl, zgetdump, zipldisk

from zfcpdump_builder.deploy.qemu import BootResult

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]

# variant -> (placement, recipe, the capture kernel's command line as zipl's dump IPL gives it)
PLACEMENTS = {
    "builtin": ("builtin", "qemu-test-builtin", crashside.CAPTURE_APPEND),
    "initrd": ("initrd", "qemu-test-initrd", f"root=/dev/ram0 {crashside.CAPTURE_APPEND}"),
    "6.12": ("external", "qemu-test-6.12", crashside.CAPTURE_APPEND),  # the second kernel line
}


@dataclass
class PlacementRun:
    variant: str
    placement: str
    art: sc.Artifacts
    disk: zipldisk.ZiplDisk
    result: BootResult
    info: object
    elf: Path
    convert: object


@pytest.fixture(scope="module", params=sorted(PLACEMENTS))
def run(
    request: pytest.FixtureRequest,
    e2e_dir: Path,
    zg_root: Path,
    token: str,
    host_tools: None,
    metrics: dict[str, object],
) -> PlacementRun:
    variant = str(request.param)
    placement, recipe, append = PLACEMENTS[variant]
    work = e2e_dir / f"placement-{variant}"
    work.mkdir(exist_ok=True)
    try:
        art = sc.build(sc.ROOT / "recipes" / f"{recipe}.yaml", work / "out", work / "build.log")
    except sc.BuildFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    first_rd = sc.crash_rd(art, work / "crashside.rd", token, append=append)
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    result = sc.kdump(art, first_rd, disk.path, work / "console.log", expect=(sc.WRITER_START, sc.SUCCESS))
    part = disk.partition_image(work / "part.img")
    info = zgetdump.info(part, zg_root)
    elf = work / "dump.elf"
    converted = zgetdump.convert(part, elf, zg_root)
    metrics[f"variant {variant}: zfcpdump.image (bytes)"] = art.image.stat().st_size
    metrics[f"variant {variant}: kdump cycle (s)"] = result.duration
    low = sc.mem_available_low_kib(result.console)
    if low is not None:
        metrics[f"variant {variant}: MemAvailable low point (kB)"] = low
    return PlacementRun(variant, placement, art, disk, result, info, elf, converted)


def test_build_publishes_what_zipl_loads_for_the_placement(run: PlacementRun) -> None:
    manifest = run.art.manifest
    assert manifest["placement"]["name"] == run.placement
    outputs = manifest["outputs"]
    if run.placement == "builtin":
        assert run.art.rd is None and "zfcpdump.rd" not in outputs
        assert not (run.art.out / "zfcpdump.rd").exists()
        assert manifest["placement"]["kernel_compression"] == "xz"
        config = run.art.config.read_text()
        assert 'CONFIG_INITRAMFS_SOURCE="zfcpdump-initramfs.cpio"' in config
        assert "CONFIG_INITRAMFS_COMPRESSION_XZ=y" in config
        assert manifest["memory_budget"]["initramfs, compressed"] == 0
    elif run.placement == "external":
        assert manifest["kernel"]["version"].startswith(run.variant), manifest["kernel"]["version"]
        assert run.art.rd is not None and outputs["zfcpdump.rd"]["size"] == run.art.rd.stat().st_size
        assert manifest["initramfs"]["summary"]["placement"] == "external"
    else:
        assert run.art.rd is not None and outputs["zfcpdump.rd"]["size"] == run.art.rd.stat().st_size
        summary = manifest["initramfs"]["summary"]
        assert summary["placement"] == "initrd"
        raw = run.art.rd.read_bytes()
        if summary["compression"] == "xz":
            raw = lzma.decompress(raw)
            assert len(raw) == summary["image"]
            assert raw[1080:1082] == b"\x53\xef", "zfcpdump.rd is not an ext2 image"
        config = run.art.config.read_text()
        assert "CONFIG_EXT2_FS=y" in config and "CONFIG_BLK_DEV_RAM=y" in config
        # the RAM disk holds the whole image for the whole dump: the budget counts it
        assert manifest["memory_budget"]["initramfs, unpacked"] >= summary["image"]


def test_writer_runs_in_kdump_mode_and_succeeds(run: PlacementRun) -> None:
    result = run.result
    sc.kdump_success_lines(result)
    kib = sc.capture_memory_kib(result.console)
    assert kib is not None and kib <= 32 * 1024
    capture = sc.after_crash(result.console)
    if run.placement == "builtin":  # no ramdisk handed over: the kernel's own initramfs runs
        assert "Trying to unpack rootfs image" not in capture and "Run /init as init process" in capture
    elif run.placement == "external":
        assert "Linux version " + run.variant in capture, "the capture kernel is not the 6.12 one"
        assert "Run /init as init process" in capture
    else:  # the image went to /dev/ram0 and was mounted as root
        assert "looks like an initrd" in capture
        assert "VFS: Mounted root (ext2 filesystem) readonly on device 1:0" in capture
        assert "Run /sbin/init as init process" in capture


def test_zgetdump_accepts_the_dump_and_it_holds_the_token(run: PlacementRun, token: str) -> None:
    assert run.result.passed, "no dump to judge: " + "; ".join(run.result.problems())
    assert run.info.returncode == 0, run.info.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    assert run.convert.returncode == 0, run.convert.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    assert run.elf.stat().st_size > 0
    assert dc.contains(run.elf, token.encode()), "the first kernel's /init token is not in the dump"
    info = dc.vmcoreinfo(run.elf)
    offset = int(info.get("KERNELOFFSET", "0"), 16)  # 6.12 maps the kernel high, with KASLR
    assert int(info["SYMBOL(_stext)"], 16) - offset == dc.system_map(run.art.system_map)["_stext"]


def test_sentinels_intact(run: PlacementRun) -> None:
    assert run.disk.check_sentinels() == []
