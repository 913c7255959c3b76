"""`build.py plan`: what a build of RECIPE would use and do, without building anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import recipe
from ..core.errors import HostError, OfflineMissingError, SourceError
from ..core.events import Reporter
from ..core.store import StageOutput, Store, file_sha256, hash_inputs
from . import initramfs, kconfig, kernel, pipeline, runtime, source


def stock_defconfig(tree: source.SourceTree | None, loaded: recipe.Recipe) -> tuple[str, str]:
    """The kernel's own zfcpdump_defconfig, or the recipe's base copy when no tree is at hand."""
    if tree is not None:
        path = tree.path / "arch/s390/configs/zfcpdump_defconfig"
        return path.read_text(), f"linux {tree.version} arch/s390/configs/zfcpdump_defconfig"
    base = loaded.plan.kernel.base
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


@dataclass(frozen=True)
class StageState:
    """One stage as `plan` sees it: cached, will run, or not needed, and its key when known."""

    stage: str
    state: str
    key: str | None = None

    def row(self) -> tuple[str, str, str]:
        return (self.stage, self.state, self.key[:32] if self.key else "-")


def _state(store: Store, stage: str, inputs: dict[str, Any]) -> tuple[StageState, Path | None]:
    key = hash_inputs(inputs)
    found = store.peek(stage, key)
    return StageState(stage, "cached" if found else "will run", key), found


def stage_states(loaded: recipe.Recipe, ctx: pipeline.BuildContext) -> list[StageState]:
    """Every stage, with the keys `build` would compute: the same input functions, called
    without downloading or building. A stage whose inputs come from one that must run first
    will run, with its key not yet known."""
    states, kernel_dir = kernel_states(loaded, ctx)
    return states + rd_states(loaded, ctx, kernel_dir)


def kernel_states(loaded: recipe.Recipe, ctx: pipeline.BuildContext) -> tuple[list[StageState], Path | None]:
    """The kernel stages, and the kernel's cached output when there is one."""
    spec = loaded.plan.kernel.source
    tree = source.peek(spec, ctx.store, ctx.cache_dir)
    if tree is None:
        return [
            StageState("source", f"will run ({spec.kind}: {spec.location})"),
            StageState("kconfig", "will run"),
            StageState("kernel", "will run"),
        ], None
    states = [
        StageState("source", "local tree")
        if tree.output is None and spec.kind == "tree"
        else StageState("source", "cached", hash_inputs(tree.identity))
    ]
    try:
        tools = pipeline.resolve_toolchain(loaded)
    except HostError as exc:
        return [
            *states,
            StageState("kconfig", f"blocked: {exc.message}"),
            StageState("kernel", "blocked"),
        ], None
    defconfig = kconfig.render_defconfig(loaded.plan.kernel)
    config_state, config_dir = _state(
        ctx.store, "kconfig", kernel.config_inputs(tree.identity, defconfig, tools)
    )
    if config_dir is None:
        return [*states, config_state, StageState("kernel", "will run")], None
    inputs = kernel.build_inputs(
        tree.identity, file_sha256(config_dir / "config"), tools, pipeline.build_settings(loaded, ctx)
    )
    kernel_state, kernel_dir = _state(ctx.store, "kernel", inputs)
    return [*states, config_state, kernel_state], kernel_dir


def rd_states(loaded: recipe.Recipe, ctx: pipeline.BuildContext, kernel_dir: Path | None) -> list[StageState]:
    rspec = pipeline.runtime_spec(loaded)
    try:
        _, _, packages, inputs = runtime.runtime_stage_inputs(
            rspec, pipeline.WRITER_PACKAGE, ctx.cache_dir, QuietReporter(), offline=True
        )
    except OfflineMissingError:
        return [
            StageState("sysroot", "will run (after downloading its packages)"),
            StageState("runtime", "will run"),
            StageState("initramfs", "will run"),
        ]
    except (SourceError, HostError) as exc:
        return [
            StageState("sysroot", f"blocked: {exc.message}"),
            StageState("runtime", "will run"),
            StageState("initramfs", "will run"),
        ]
    runtime_state, runtime_dir = _state(ctx.store, "runtime", inputs)
    if runtime_dir is not None:
        sysroot = StageState("sysroot", "not needed (the runtime is cached)")
    elif rspec.kind == "sysroot":
        sysroot = StageState("sysroot", "not needed (runtime.kind sysroot)")
    else:
        sysroot = _state(ctx.store, "sysroot", runtime.sysroot_inputs(packages, rspec))[0]
    if runtime_dir is None or kernel_dir is None:
        return [sysroot, runtime_state, StageState("initramfs", "will run")]
    runtime_out = StageOutput("runtime", runtime_state.key or "", runtime_dir, True, 0.0)
    _, _, rd_inputs = initramfs.initramfs_stage_inputs(
        pipeline.initramfs_spec(loaded), runtime_out, kernel.final_config(kernel_dir)
    )
    return [sysroot, runtime_state, _state(ctx.store, "initramfs", rd_inputs)[0]]


class QuietReporter(Reporter):
    """Plan gathers facts silently: nothing it computes on the way is news to the user."""

    def info(self, text: str) -> None:
        pass


def describe_inputs(loaded: recipe.Recipe, spec: source.KernelSource) -> list[tuple[str, str]]:
    try:
        tools = pipeline.resolve_toolchain(loaded)
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
