"""Rendering zfcpdump_defconfig and checking the final .config, without a compiler."""

from __future__ import annotations

from pathlib import Path

import pytest

from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import ConfigError
from zfcpdump_builder.stages import kconfig

STOCK = Path(__file__).resolve().parents[2] / "configs" / "zfcpdump_defconfig-6.1"


def test_default_render_keeps_every_stock_line_except_relocatable() -> None:
    rendered = kconfig.parse_config_text(kconfig.render_defconfig(recipe.load("default").plan.kernel))
    stock = kconfig.parse_config_text(STOCK.read_text())
    changed = {s for s in stock if rendered.get(s) != stock[s]}
    assert changed == {"RELOCATABLE"}
    assert rendered["RELOCATABLE"] == "y"
    assert rendered["PROC_VMCORE"] == "y"


def test_override_is_rendered_in_place_with_its_origin(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text('extends: default\nkernel:\n  config:\n    set: {NR_CPUS: 4, LSM: "yama", HID: y}\n')
    text = kconfig.render_defconfig(recipe.load(path).plan.kernel)
    lines = text.splitlines()
    # labelled by the key it came from, not by the recipe's name (which is no kernel input)
    assert lines[lines.index("CONFIG_NR_CPUS=4") - 1] == "# overridden by kernel.config.set"
    assert "recipe r" not in text
    assert 'CONFIG_LSM="yama"' in lines
    assert "CONFIG_HID=y" in lines and "# CONFIG_HID is not set" not in lines
    assert text.count("CONFIG_NR_CPUS") == 1


def test_fragment_and_set_of_the_same_new_symbol_render_once(tmp_path: Path) -> None:
    fragment = tmp_path / "extra.config"
    fragment.write_text("CONFIG_MAGIC_SYSRQ=y\n")
    path = tmp_path / "r.yaml"
    path.write_text(
        "extends: default\nkernel:\n  config:\n    fragments: [extra.config]\n    set: {MAGIC_SYSRQ: n}\n"
    )
    text = kconfig.render_defconfig(recipe.load(path).plan.kernel)
    assert text.count("MAGIC_SYSRQ") == 1
    assert "# CONFIG_MAGIC_SYSRQ is not set" in text


def test_parse_config_reads_unset_lines_and_values() -> None:
    parsed = kconfig.parse_config_text('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n# comment\n')
    assert parsed == {"A": "y", "B": "n", "C": '"x y"'}


def entry(symbol: str, value: str) -> kconfig.KconfigEntry:
    return kconfig.KconfigEntry(symbol, value, "recipe t")


def test_drops_detect_changed_and_missing_symbols() -> None:
    wanted = {
        "A": entry("A", "y"),
        "B": entry("B", "n"),
        "C": entry("C", "0x10"),
        "D": entry("D", "y"),
        "CC_IS_GCC": entry("CC_IS_GCC", "n"),
    }
    final = {"A": "y", "C": "16", "CC_IS_GCC": "y"}
    drops = kconfig.dropped_symbols(wanted, final)
    assert [(e.symbol, actual) for e, actual in drops] == [("D", None)]


def test_verify_explains_depends_and_select() -> None:
    index = kconfig.KconfigIndex(frozenset({"A", "B", "X"}), {"A": ("B && !X",)}, {"X": ("B",)})
    wanted = {"A": entry("A", "y"), "X": entry("X", "n")}
    with pytest.raises(ConfigError) as caught:
        kconfig.verify(wanted, "CONFIG_B=y\nCONFIG_X=y\n", index)
    message = caught.value.message
    assert "A: requested y, got unset" in message
    assert "depends on B && !X   [B=y, X=y]" in message
    assert "X: requested n, got y" in message and "selected by B" in message


def test_unknown_symbol_suggests_a_near_name() -> None:
    index = kconfig.KconfigIndex(frozenset({"PROC_VMCORE"}), {}, {})
    with pytest.raises(ConfigError) as caught:
        kconfig.check_symbols_exist({"PROC_VMCOR": entry("PROC_VMCOR", "y")}, index, "linux 6.1")
    assert "PROC_VMCOR" in caught.value.message and "did you mean PROC_VMCORE" in caught.value.message


KCONFIG_WITH_BLOCKS = """\
config RD_XZ
    bool "XZ"
    help
      if you say Y here (help text: never read as an if block)
      depends on NOTHING

choice
    prompt "Built-in initramfs compression mode"
    depends on INITRAMFS_SOURCE != ""

config INITRAMFS_COMPRESSION_GZIP
    bool "Gzip"

config INITRAMFS_COMPRESSION_XZ
    bool "XZ"
    depends on RD_XZ

endchoice

if MEDIA_SUPPORT
menu "Customise tuners"
    visible if !MEDIA_HIDE_ANCILLARY

config TUNER_SIMPLE
    tristate "Simple tuner"

endmenu
endif

config OUTSIDE
    bool "after every block"
""".replace("    ", "\t")


def scanned(tmp_path: Path) -> kconfig.KconfigIndex:
    (tmp_path / "Kconfig").write_text(KCONFIG_WITH_BLOCKS)
    other = tmp_path / "arch" / "x86"
    other.mkdir(parents=True)
    (other / "Kconfig").write_text("config X86_ONLY\n\tbool\n\tdepends on PCI\n")
    return kconfig.KconfigIndex.scan(tmp_path)


def test_scan_records_choice_menu_visible_if_and_if_blocks(tmp_path: Path) -> None:
    index = scanned(tmp_path)
    assert index.depends["INITRAMFS_COMPRESSION_XZ"] == ("RD_XZ",)
    assert "RD_XZ" not in index.depends, "help text was read as attributes"
    (choice,) = index.enclosures["INITRAMFS_COMPRESSION_XZ"]
    assert choice.kind == "choice" and choice.label == "Built-in initramfs compression mode"
    assert choice.members == ("INITRAMFS_COMPRESSION_GZIP", "INITRAMFS_COMPRESSION_XZ")
    kinds = [(b.kind, b.conditions) for b in index.enclosures["TUNER_SIMPLE"]]
    assert kinds == [("if", ("if MEDIA_SUPPORT",)), ("menu", ("visible if !MEDIA_HIDE_ANCILLARY",))]
    assert "OUTSIDE" not in index.enclosures
    assert "X86_ONLY" not in index.symbols, "another architecture's Kconfig was scanned"


def test_drop_explanation_names_the_choice_its_winner_and_the_invisible_menu(tmp_path: Path) -> None:
    index = scanned(tmp_path)
    final = {"INITRAMFS_SOURCE": '"x.cpio"', "INITRAMFS_COMPRESSION_GZIP": "y", "RD_XZ": "n"}
    text = kconfig.explain_drops(
        [(entry("INITRAMFS_COMPRESSION_XZ", "y"), None), (entry("TUNER_SIMPLE", "y"), None)], index, final
    )
    assert "depends on RD_XZ   [RD_XZ=n]" in text
    assert 'in choice "Built-in initramfs compression mode" (depends on INITRAMFS_SOURCE != "")' in text
    assert "the choice took INITRAMFS_COMPRESSION_GZIP" in text
    assert "inside (if MEDIA_SUPPORT)   [MEDIA_SUPPORT=n]" in text
    assert 'in menu "Customise tuners" (visible if !MEDIA_HIDE_ANCILLARY)' in text


def test_builtin_placement_requests_its_initramfs_symbols(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("extends: default\ninitramfs:\n  placement: builtin\n  compression: zstd\n")
    text = kconfig.render_defconfig(recipe.load(path).plan.kernel)
    assert "# --- added by initramfs.placement ---" in text
    assert 'CONFIG_INITRAMFS_SOURCE="zfcpdump-initramfs.cpio"' in text
    assert "CONFIG_INITRAMFS_COMPRESSION_ZSTD=y" in text
    default = kconfig.render_defconfig(recipe.load("default").plan.kernel)
    assert "INITRAMFS_SOURCE" not in default
