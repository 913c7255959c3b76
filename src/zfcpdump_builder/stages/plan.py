"""`build.py plan`: what a build of RECIPE would use and do, without building anything."""

from __future__ import annotations

from .. import recipe
from ..core.errors import HostError
from . import graph, kconfig, source


def stock_defconfig(tree: source.SourceTree | None, loaded: recipe.Recipe) -> tuple[str, str]:
    """The kernel's own zfcpdump_defconfig, or the recipe's base copy when no tree is at hand."""
    if tree is not None:
        path = tree.path / "arch/s390/configs/zfcpdump_defconfig"
        return path.read_text(), f"linux {tree.version} arch/s390/configs/zfcpdump_defconfig"
    base = loaded.plan.kernel.base
    if base is None:
        return "", "nothing (base: source, and the kernel source is not unpacked yet)"
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


def describe_inputs(loaded: recipe.Recipe, spec: source.KernelSource) -> list[tuple[str, str]]:
    try:
        tools = graph.resolve_toolchain(loaded)
        toolchain_text = f"{tools.prefix or '(native)'}gcc: {tools.gcc_version}" + (
            " via ccache" if tools.ccache else ""
        )
    except HostError as exc:
        toolchain_text = f"missing: {exc.message}"
    plan = loaded.plan
    where = f" from {plan.runtime.path}" if plan.runtime.path else ""
    return [
        ("kernel source", f"{spec.kind}: {spec.location}"),
        ("toolchain", toolchain_text),
        ("runtime", f"{plan.runtime.kind}: {plan.runtime.python}{where}"),
        ("initramfs", f"compression {plan.initramfs.compression}"),
        ("dump memory", f"{plan.budget.memory / (1 << 20):g} MiB"),
    ]
