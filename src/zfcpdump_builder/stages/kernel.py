"""Kernel stages: `make zfcpdump_defconfig` + verification, then the bzImage build.

The config stage runs in a throw-away O= directory. The build stage reuses one persistent
O= workspace per (source, toolchain), so changing one symbol rebuilds incrementally; its
output object (bzImage, System.map, .config, sizes) is committed only after success.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.events import Reporter
from ..core.hostrun import run_logged
from ..core.store import StageOutput, Store, canonical_json, file_sha256
from ..core.toolchain import Toolchain
from . import kconfig
from .initramfs import RD_NAME
from .model import Prepared
from .placement import BUILTIN_CPIO
from .source import SourceTree

DEFAULT_TOTAL_STEPS = 1600
# Where the debug info and build IDs say the source and O= trees are, wherever they really are.
SOURCE_ALIAS = "/usr/src/linux"
OBJDIR_ALIAS = "/usr/src/linux-obj"


@dataclass(frozen=True)
class BuildSettings:
    jobs: int
    source_date_epoch: int

    def env(self, toolchain: Toolchain, cache_root: Path | None = None) -> dict[str, str]:
        """The build environment. ccache settings change hit rates, never output."""
        env = self.output_env()
        if toolchain.ccache:
            env["CCACHE_NOHASHDIR"] = "1"
            if cache_root is not None:
                # Paths under the cache become relative, so another cache dir still hits.
                env["CCACHE_BASEDIR"] = str(cache_root)
        return env

    def output_env(self) -> dict[str, str]:
        """The variables that shape the kernel image (part of the stage's input key)."""
        stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(self.source_date_epoch))
        return {
            "KBUILD_BUILD_TIMESTAMP": stamp,
            "KBUILD_BUILD_USER": "zfcpdump",
            "KBUILD_BUILD_HOST": "zfcpdump-build",
            "KBUILD_BUILD_VERSION": "1",
            "SOURCE_DATE_EPOCH": str(self.source_date_epoch),
            "LC_ALL": "C",
        }

    def identity(self) -> dict[str, Any]:
        return {"env": self.output_env(), "path_aliases": [SOURCE_ALIAS, OBJDIR_ALIAS]}


def make_command(
    source: SourceTree,
    objdir: Path,
    toolchain: Toolchain,
    *targets: str,
    jobs: int = 1,
    path_map: dict[Path, str] | None = None,
) -> list[str]:
    """make for the O= tree. *path_map* goes into CC rather than KCFLAGS, because
    arch/s390/boot compiles with its own flags and would keep the absolute paths."""
    compiler = f"{toolchain.prefix}gcc"
    if toolchain.ccache:
        compiler = f"ccache {compiler}"
    maps = [f"-ffile-prefix-map={path}={alias}" for path, alias in (path_map or {}).items()]
    return [
        "make",
        "-C",
        str(source.path),
        f"O={objdir}",
        "ARCH=s390",
        f"CROSS_COMPILE={toolchain.prefix}",
        f"CC={' '.join([compiler, *maps])}",
        f"-j{jobs}",
        *targets,
    ]


def final_config(kernel_output: Path) -> dict[str, str]:
    """The .config a kernel stage output was built with, as symbol -> value."""
    return kconfig.parse_config_text((kernel_output / "config").read_text())


def config_inputs(source_identity: dict[str, Any], defconfig: str, toolchain: Toolchain) -> dict[str, Any]:
    return {
        "source": source_identity,
        "defconfig_sha256": hashlib.sha256(defconfig.encode()).hexdigest(),
        "toolchain": toolchain.identity(),
    }


def build_inputs(
    source_identity: dict[str, Any], config_sha256: str, toolchain: Toolchain, settings: BuildSettings
) -> dict[str, Any]:
    return {
        "source": source_identity,
        "config_sha256": config_sha256,
        "toolchain": toolchain.identity(),
        "build": settings.identity(),
    }


def prepare_config(
    source: SourceTree,
    defconfig: str,
    wanted: dict[str, kconfig.KconfigEntry],
    toolchain: Toolchain,
    logs: Path,
) -> Prepared:
    """The 'kconfig' stage: the rendered defconfig expanded by the kernel's own Kconfig, with
    every requested symbol checked."""

    def produce(out: Path) -> dict[str, Any]:
        index = kconfig.KconfigIndex.scan(source.path)
        kconfig.check_symbols_exist(wanted, index, f"linux {source.version}")
        objdir = out / "objdir"
        (objdir / "arch/s390/configs").mkdir(parents=True)
        # Kconfig looks in the O= directory before the source tree: the source stays pristine.
        (objdir / "arch/s390/configs/zfcpdump_defconfig").write_text(defconfig)
        log = logs / "config.log"
        run_logged(
            make_command(source, objdir, toolchain, "zfcpdump_defconfig"),
            log,
            {"LC_ALL": "C"},
            "make zfcpdump_defconfig",
        )
        final = (objdir / ".config").read_text()
        kconfig.verify(wanted, final, index)
        (out / "zfcpdump_defconfig").write_text(defconfig)
        (out / "config").write_text(final)
        shutil.rmtree(objdir)
        return {"config_sha256": hashlib.sha256(final.encode()).hexdigest()}

    return Prepared(config_inputs(source.identity, defconfig, toolchain), produce)


@dataclass(frozen=True)
class KernelBuild:
    """Where and how the 'kernel' stage builds: not inputs, so not part of its key."""

    store: Store
    logs: Path
    reporter: Reporter
    workspace: str  # names the O= tree reused for incremental rebuilds


def prepare_build(
    source: SourceTree,
    config: StageOutput,
    toolchain: Toolchain,
    settings: BuildSettings,
    where: KernelBuild,
    builtin: StageOutput | None = None,
    compressor: dict[str, str] | None = None,
) -> Prepared:
    """The 'kernel' stage: bzImage, System.map and vmlinux from the kconfig stage's .config;
    with *builtin* (an initramfs stage output), its cpio is linked into the image, compressed
    by the host tool *compressor* describes."""
    store, logs, reporter = where.store, where.logs, where.reporter
    final_config = (config.path / "config").read_text()
    inputs = build_inputs(source.identity, file_sha256(config.path / "config"), toolchain, settings)
    cpio = builtin.path / RD_NAME if builtin is not None else None
    cpio_sha256 = file_sha256(cpio) if cpio is not None else ""  # hashed once: key and copy check
    if cpio is not None:
        inputs["builtin_initramfs"] = {"sha256": cpio_sha256, "compressor": compressor or {}}
    workspace_id = hashlib.sha256(
        canonical_json([source.identity, toolchain.identity(), where.workspace]).encode()
    )

    def produce(out: Path) -> dict[str, Any]:
        with store.workspace(f"kbuild-{workspace_id.hexdigest()[:16]}") as objdir:
            _install_config(objdir, final_config)
            if cpio is not None:
                _install_builtin_cpio(objdir, cpio, cpio_sha256)
            recorded = _recorded_steps(objdir)
            log = logs / "kernel-build.log"
            with reporter.progress(
                "kernel", f"building linux {source.version}", recorded or DEFAULT_TOTAL_STEPS, "steps"
            ) as bar:
                path_map = {source.path: SOURCE_ALIAS, objdir: OBJDIR_ALIAS}
                run_logged(
                    make_command(source, objdir, toolchain, "bzImage", jobs=settings.jobs, path_map=path_map),
                    log,
                    settings.env(toolchain, store.root),
                    "kernel build",
                    bar,
                )
                # The largest build seen, so an incremental one does not shrink the next bar.
                (objdir / ".zfcpdump-steps").write_text(str(max(bar.done, recorded, 1)))
            return _collect(objdir, out, log)

    return Prepared(inputs, produce)


def _install_config(objdir: Path, config: str) -> None:
    target = objdir / ".config"
    if not target.is_file() or target.read_text() != config:
        target.write_text(config)


def _install_builtin_cpio(objdir: Path, cpio: Path, sha256: str) -> None:
    """The cpio where CONFIG_INITRAMFS_SOURCE names it; rewritten only when it changed, so its
    mtime tells make whether to relink."""
    target = objdir / BUILTIN_CPIO
    if not target.is_file() or file_sha256(target) != sha256:
        shutil.copyfile(cpio, target)


def _recorded_steps(objdir: Path) -> int:
    """Steps of the largest build this O= tree has seen; 0 for a new tree."""
    try:
        return int((objdir / ".zfcpdump-steps").read_text())
    except (OSError, ValueError):
        return 0


def _collect(objdir: Path, out: Path, log: Path) -> dict[str, Any]:
    release = (objdir / "include/config/kernel.release").read_text().strip()
    shutil.copy2(objdir / "arch/s390/boot/bzImage", out / "bzImage")
    shutil.copy2(objdir / "System.map", out / "System.map")
    shutil.copy2(objdir / ".config", out / "config")
    shutil.copy2(objdir / "vmlinux", out / "vmlinux")
    shutil.copy2(log, out / "build.log")
    return {
        "kernel_release": release,
        "bzImage_sha256": file_sha256(out / "bzImage"),
        "bzImage_size": (out / "bzImage").stat().st_size,
    }
