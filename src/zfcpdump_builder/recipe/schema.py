"""The recipe schema: every key a recipe may use, its type, default and meaning.

The README's recipe reference is generated from this table (`build.py recipe-keys`), so
the documentation and the validator cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zfcpdump_writer import config as writer_config
from zfcpdump_writer.errors import ConfigError

from ..deploy.transaction import LINK_MODES
from ..deploy.zipl import LAYOUT_CHOICES
from ..stages.initramfs.compress import COMPRESSIONS
from ..stages.placement import DEFAULT as PLACEMENT_DEFAULT
from ..stages.placement import PLACEMENTS
from ..stages.runtime.spec import INTERPRETERS
from ..stages.runtime.spec import KINDS as RUNTIME_KINDS
from ..stages.source import SOURCE_KINDS


@dataclass(frozen=True)
class Key:
    """One leaf key. *kind* is one of the names handled by `values._check_value`; *check*, when
    given, returns what is wrong with a value of the right kind (a range, say), or None."""

    kind: str
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None


def source_keys() -> Section:
    """kernel.source: each registered source kind's selecting key, then the keys it owns."""
    keys: Section = {}
    for kind in SOURCE_KINDS.values():
        keys[kind.name] = Key(kind.key_kind, None, kind.help)
        for name, (key_kind, help_text) in kind.extra_keys.items():
            keys[name] = Key(key_kind, None, help_text)
    return keys


def writer_setting(name: str) -> Callable[[Any], str | None]:
    """The writer's own rule for setting *name* (zfcpdump_writer.config): the recipe is checked
    at load time by exactly the code that reads /etc/zfcpdump.conf in the dump environment."""

    def check(value: Any) -> str | None:
        try:
            writer_config.check(name, value)
        except ConfigError as exc:
            return str(exc).removeprefix("config: ")
        return None

    return check


Section = dict[str, "Key | Section"]

SCHEMA: Section = {
    "extends": Key(
        "str", None, "Recipe this one layers on (path relative to this file, or a name in recipes/)."
    ),
    "description": Key("str", "", "Free text shown by `plan`."),
    "arch": Key("str", "s390x", "Target architecture.", ("s390x",)),
    "kernel": {
        "source": source_keys(),
        "config": {
            "base": Key(
                "str",
                "zfcpdump_defconfig-6.1",
                "Base defconfig file, looked up beside the recipe then in configs/; `source` = "
                "the kernel tree's own arch/s390/configs/zfcpdump_defconfig.",
            ),
            "fragments": Key(
                "list[str]", [], "Extra config fragment files, applied in order after the base."
            ),
            "set": Key("symbols", {}, 'Symbol overrides: SYMBOL: y | n | m | number | "string".'),
        },
    },
    "toolchain": {
        "cross_compile": Key(
            "str",
            "auto",
            "CROSS_COMPILE prefix; 'auto' picks s390x-linux-gnu- off s390x and native on s390x.",
        ),
        "ccache": Key("auto-bool", "auto", "Use ccache: true, false, or auto (when installed)."),
    },
    "build": {
        "jobs": Key("auto-int", "auto", "Parallel make jobs; auto = number of CPUs."),
        "source_date_epoch": Key(
            "int",
            1700000000,
            "Timestamp for reproducible artifacts (SOURCE_DATE_EPOCH in the environment wins).",
        ),
    },
    "runtime": {
        "kind": Key("str", "debian", "Where the target CPython comes from.", RUNTIME_KINDS),
        "packages": Key(
            "list[str]", [], "Target packages to fetch (kind: debian); empty = the built-in list."
        ),
        "path": Key("path", None, "Directory of .deb/.rpm files (kind: debs) or a sysroot (kind: sysroot)."),
        "python": Key("str", "python3.11", "Interpreter name inside the runtime."),
        "interpreter": Key(
            "str",
            "static",
            "static = CPython built from source and linked -static, with only the native "
            "modules the writer needs built in and the writer frozen in: /init is that one "
            "binary (no loader, library, zip or .pyc in the rd); "
            "packaged = the distribution's binary; custom = relinked from libpython with "
            "only the built-in modules the writer needs.",
            INTERPRETERS,
        ),
    },
    "initramfs": {
        "placement": Key(
            "str",
            PLACEMENT_DEFAULT,
            "Where the writer's root file system lives: external = zfcpdump.rd, a cpio zipl loads "
            "as the ramdisk; builtin = linked into zfcpdump.image (CONFIG_INITRAMFS_SOURCE), no "
            "ramdisk; initrd = zfcpdump.rd is an ext2 image the kernel mounts from /dev/ram0.",
            PLACEMENTS,
        ),
        "compression": Key(
            "str",
            "auto",
            "rd compression; auto = smallest kernel-safe choice (placement builtin: the kernel's "
            "INITRAMFS_COMPRESSION_*, auto = xz).",
            ("auto", *COMPRESSIONS),
        ),
        "overlay": Key(
            "list[str]", [], "Directories merged into the initramfs (beside the recipe, else in the project)."
        ),
        "allow_shadow": Key("bool", False, "Let overlay files replace /init or runtime files."),
        "max_compressed": Key(
            "size", "4MiB", "Budget for the compressed zfcpdump.rd (not for placement builtin: no rd)."
        ),
        "max_unpacked": Key("size", "14MiB", "Budget for the unpacked initramfs."),
    },
    "writer": {
        "device": Key(
            "str",
            "auto",
            "Dump device override; auto = the IPL device from /sys/firmware/ipl.",
            check=writer_setting("device"),
        ),
        "disk_timeout": Key(
            "int", 60, "Seconds to wait for the dump disk to appear.", check=writer_setting("disk_timeout")
        ),
        "after": Key(
            "str",
            "reipl",
            "What to do when done.",
            writer_config.CHOICES["after"],
            check=writer_setting("after"),
        ),
        "debug": Key(
            "int",
            2,
            "Default dump_debug level (1..6); dump_debug= on the command line wins.",
            check=writer_setting("debug"),
        ),
        "progress_interval": Key(
            "int", 10, "Seconds between progress lines.", check=writer_setting("progress_interval")
        ),
        "source": Key(
            "str",
            "auto",
            "Dump source; auto = /proc/vmcore, else zcore/mem.",
            writer_config.CHOICES["source"],
            check=writer_setting("source"),
        ),
        "io": Key(
            "str",
            "auto",
            "Disk writes: auto (O_DIRECT, else buffered), direct, buffered.",
            writer_config.CHOICES["io"],
            check=writer_setting("io"),
        ),
        "verify": Key(
            "str",
            "sample",
            "After copying, re-read a sample and compare.",
            writer_config.CHOICES["verify"],
            check=writer_setting("verify"),
        ),
        "chunk_kib": Key(
            "auto-int",
            "auto",
            "Copy buffer size in KiB: auto (MemAvailable / 32 at start, 256..4096), or 64..16384, "
            "a multiple of 4. The writer holds two.",
            check=writer_setting("chunk_kib"),
        ),
    },
    "budget": {
        "memory": Key("size", "32MiB", "Dump memory (HSA size): kernel + unpacked rd + writer must fit."),
        "writer_headroom": Key("size", "8MiB", "Memory reserved for the running writer and page cache."),
    },
    "signing": {
        "key": Key(
            "path",
            None,
            "Private key (PEM): signs zfcpdump.image for secure IPL (the kernel's sign-file) "
            "and SHA256SUMS (CMS). Relative to the recipe.",
        ),
        "cert": Key("path", None, "The key's X.509 certificate (PEM). Relative to the recipe."),
    },
    "install": {
        "dir": Key("str", "/lib/s390-tools/zfcpdump", "The zfcpdump directory zipl reads."),
        "zipl_layout": Key(
            "str",
            "auto",
            "Names zipl expects; auto = detect from the installed zipl.",
            LAYOUT_CHOICES,
        ),
        "link": Key("str", "symlink", "How the zipl names refer to zfcpdump.image/.rd.", LINK_MODES),
    },
}


def walk(section: Section, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Key]]:
    """Every leaf key with its path, in schema order."""
    leaves: list[tuple[tuple[str, ...], Key]] = []
    for name, item in section.items():
        if isinstance(item, Key):
            leaves.append(((*prefix, name), item))
        else:
            leaves.extend(walk(item, (*prefix, name)))
    return leaves


def _shown(key: Key) -> str:
    text = "" if key.default is None else str(key.default)
    return text.replace("'", "")


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    for path, key in walk(SCHEMA):
        kind = " \\| ".join(map(str, key.choices)) if key.choices else key.kind
        out.append((".".join(path), kind, _shown(key), key.help))
    return out


def markdown_table() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {f'`{d}`' if d else ''} | {h} |" for k, t, d, h in rows()]
    return "\n".join(lines)
