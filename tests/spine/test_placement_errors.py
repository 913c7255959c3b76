"""Bad placement and kernel-line inputs, through the CLI as users run it: each a clear error,
a non-zero exit, and nothing published. The kernel is never compiled for any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.buildcli import ROOT, BuiltRecipe, run_cli
from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import ConfigError, RecipeError
from zfcpdump_builder.stages import kconfig

pytestmark = pytest.mark.kernel


def child(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "child.yaml"
    path.write_text(f"extends: {ROOT / 'recipes' / 'default.yaml'}\n{body}")
    return path


def failed_build(tmp_path: Path, body: str) -> dict:
    out = tmp_path / "out"
    run = run_cli("build", str(child(tmp_path, body)), "--out", str(out))
    assert run.code != 0, "the build was expected to fail"
    assert "kernel" not in {e["stage"] for e in run.of("stage-start")}, "the kernel was compiled"
    assert not out.exists(), "something was published"
    assert run.of("result")[-1]["status"] == "failed"
    return run.error()


def test_builtin_with_a_compression_the_kernel_lacks(tmp_path: Path, built_default: BuiltRecipe) -> None:
    error = failed_build(
        tmp_path,
        "initramfs:\n  placement: builtin\n  compression: lz4\nkernel:\n  config:\n    set: {RD_LZ4: n}\n",
    )
    assert error["kind"] == "config"
    message = error["message"]
    assert "INITRAMFS_COMPRESSION_LZ4: requested y" in message and "(initramfs.placement)" in message
    assert "depends on RD_LZ4   [RD_LZ4=n]" in message
    assert 'in choice "Built-in initramfs compression mode"' in message
    assert "the choice took INITRAMFS_COMPRESSION_" in message


def test_initrd_over_the_ram_disk_size(tmp_path: Path, built_default: BuiltRecipe) -> None:
    body = (
        "initramfs:\n  placement: initrd\nkernel:\n  config:\n"
        "    fragments: [initrd-ext2.config]\n    set: {BLK_DEV_RAM_SIZE: 1024}\n"
    )
    error = failed_build(tmp_path, body)
    assert error["kind"] == "budget"
    assert "CONFIG_BLK_DEV_RAM_SIZE is 1024 KiB" in error["message"]
    assert "BLK_DEV_RAM_SIZE to at least" in error["hint"]


def test_initrd_without_a_file_system_in_the_kernel(tmp_path: Path, built_default: BuiltRecipe) -> None:
    error = failed_build(tmp_path, "initramfs:\n  placement: initrd\n")
    assert "neither CONFIG_EXT2_FS=y nor CONFIG_EXT4_USE_FOR_EXT2=y" in error["message"]
    assert "initrd-ext2.config" in error["hint"]


def test_a_second_initramfs_through_kernel_config(tmp_path: Path, built_default: BuiltRecipe) -> None:
    error = failed_build(tmp_path, 'kernel:\n  config:\n    set: {INITRAMFS_SOURCE: "/tmp/other.cpio"}\n')
    assert "exactly one placement" in error["message"]


def test_two_placements_in_one_recipe(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="got a list of 2: a recipe takes exactly one"):
        recipe.load(child(tmp_path, "initramfs:\n  placement: [builtin, initrd]\n"))


def test_base_source_without_a_zfcpdump_defconfig(tmp_path: Path) -> None:
    plan = recipe.load(child(tmp_path, "kernel:\n  config:\n    base: source\n")).plan.kernel
    assert plan.base is None
    tree = tmp_path / "linux"
    (tree / "arch/s390/configs").mkdir(parents=True)
    with pytest.raises(ConfigError, match="has no arch/s390/configs/zfcpdump_defconfig"):
        kconfig.render_defconfig(plan, tree)
    (tree / "arch/s390/configs/zfcpdump_defconfig").write_text("CONFIG_ZFCP=y\n")
    assert "CONFIG_ZFCP=y" in kconfig.render_defconfig(plan, tree)


def test_builtin_compressor_is_checked_before_any_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from zfcpdump_builder.core.errors import HostError
    from zfcpdump_builder.stages import placement

    found = placement.builtin_compressor("auto")
    assert found["method"] == "xz" and found["tool"] == "xz" and "xz" in found["version"].lower()
    assert placement.builtin_compressor("none") == {"method": "none"}
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HostError, match="compresses the built-in initramfs with zstd"):
        placement.builtin_compressor("zstd")


def test_max_compressed_does_not_apply_to_a_builtin_cpio() -> None:
    from zfcpdump_builder.core.errors import BudgetError
    from zfcpdump_builder.core.events import Reporter
    from zfcpdump_builder.stages.initramfs import InitramfsSpec, check_budget

    contents = {"summary": {"compressed": 9 << 20, "unpacked": 9 << 20, "compression": "none"}, "entries": []}
    check_budget(InitramfsSpec(placement="builtin", max_compressed=4 << 20), contents, Reporter())
    with pytest.raises(BudgetError, match="max_compressed"):
        check_budget(InitramfsSpec(placement="external", max_compressed=4 << 20), contents, Reporter())


@pytest.mark.parametrize("where", ["external", "builtin", "initrd"])
def test_every_stage_follows_the_stages_it_needs(tmp_path: Path, where: str) -> None:
    from zfcpdump_builder.stages import graph

    loaded = recipe.load(child(tmp_path, f"initramfs:\n  placement: {where}\n"))
    done: set[str] = set()
    for stage in graph.STAGES:
        assert set(stage.needs_for(loaded)) <= done, (stage.name, stage.needs_for(loaded), done)
        done.add(stage.name)
    kernel = next(s for s in graph.STAGES if s.name == "kernel")
    assert ("initramfs" in kernel.needs_for(loaded)) == (where == "builtin")
