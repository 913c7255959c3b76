"""`build.py plan`: what a build of RECIPE would use and do, without building anything."""

from __future__ import annotations

from pathlib import Path

from .. import recipe
from ..core.errors import HostError
from ..core.store import file_sha256, hash_inputs
from . import kconfig, kernel, pipeline, source


def stock_defconfig(tree: source.SourceTree | None, loaded: recipe.Recipe) -> tuple[str, str]:
    """The kernel's own zfcpdump_defconfig, or the recipe's base copy when no tree is at hand."""
    if tree is not None:
        path = tree.path / "arch/s390/configs/zfcpdump_defconfig"
        return path.read_text(), f"linux {tree.version} arch/s390/configs/zfcpdump_defconfig"
    base = Path(loaded.get("kernel.config.base"))
    return base.read_text(), f"{base.name} (the kernel source is not unpacked yet)"


def defconfig_diff(stock: str, rendered: str) -> list[str]:
    """Symbol-level changes: '+' added, '-' dropped, '~' changed value."""
    before, after = kconfig.parse_config_text(stock), kconfig.parse_config_text(rendered)
    lines = []
    for symbol in sorted(set(before) | set(after)):
        old, new = before.get(symbol), after.get(symbol)
        if old == new:
            continue
        if old is None:
            lines.append(f"  + {symbol}={new}")
        elif new is None:
            lines.append(f"  - {symbol}={old}")
        else:
            lines.append(f"  ~ {symbol}: {old} -> {new}")
    return lines


def stage_states(
    loaded: recipe.Recipe, ctx: pipeline.BuildContext, tree: source.SourceTree | None, defconfig: str
) -> list[tuple[str, str, str]]:
    """(stage, state, key) for the kernel stages; a stage after one that must run will run."""
    spec = source.KernelSource.from_recipe(loaded.get("kernel.source"))
    if tree is None:
        return [
            ("source", f"will run ({spec.kind}: {spec.location})", "-"),
            ("kconfig", "will run", "-"),
            ("kernel", "will run", "-"),
        ]
    rows = [
        (
            "source",
            "cached" if tree.identity["kind"] != "tree" else "local tree",
            hash_inputs(tree.identity)[:16],
        )
    ]
    try:
        tools = pipeline.resolve_toolchain(loaded)
    except HostError as exc:
        return [*rows, ("kconfig", f"blocked: {exc.message}", "-"), ("kernel", "blocked", "-")]
    config_key = hash_inputs(kernel.config_inputs(tree.identity, defconfig, tools))
    config_dir = ctx.store.lookup("kconfig", config_key)
    rows.append(("kconfig", "cached" if config_dir else "will run", config_key[:16]))
    if config_dir is None:
        return [*rows, ("kernel", "will run", "-")]
    build_key = hash_inputs(
        kernel.build_inputs(
            tree.identity, file_sha256(config_dir / "config"), tools, pipeline.build_settings(loaded, ctx)
        )
    )
    cached = ctx.store.lookup("kernel", build_key) is not None
    rows.append(("kernel", "cached" if cached else "will run (incremental O= tree)", build_key[:16]))
    return rows


def describe_inputs(loaded: recipe.Recipe, spec: source.KernelSource) -> list[tuple[str, str]]:
    try:
        tools = pipeline.resolve_toolchain(loaded)
        toolchain_text = f"{tools.prefix or '(native)'}gcc: {tools.gcc_version}" + (
            " via ccache" if tools.ccache else ""
        )
    except HostError as exc:
        toolchain_text = f"missing: {exc.message}"
    runtime = loaded.get("runtime")
    return [
        ("kernel source", f"{spec.kind}: {spec.location}"),
        ("toolchain", toolchain_text),
        (
            "runtime",
            f"{runtime['kind']}: {runtime['python']}"
            + (f" from {runtime['path']}" if runtime.get("path") else ""),
        ),
        ("initramfs", f"compression {loaded.get('initramfs.compression')}"),
        ("dump memory", str(loaded.get("budget.memory"))),
    ]
