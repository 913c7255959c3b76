"""The stage table: every stage, the stages it needs, and how it is prepared from the plan.

`run` (for `build`) and `survey` (for `plan`) walk the same table and call the same prepare
functions, so what `plan` says is what `build` does. Each entry hands its stage module only
that stage's part of the resolved plan.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..core import toolchain
from ..core.errors import HostError, OfflineMissingError, SourceError
from ..core.events import Reporter
from ..core.store import StageOutput, Store, hash_inputs
from ..recipe.loader import Recipe
from . import initramfs, kconfig, kernel, placement, runtime, source
from .model import Prepared, produce

WRITER_PACKAGE = Path(__file__).resolve().parents[2] / "zfcpdump_writer"


@dataclass
class BuildContext:
    """What every stage needs besides the plan: the store, the reporter, the host's limits."""

    cache_dir: Path
    reporter: Reporter
    offline: bool = False
    jobs: int | None = None
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.cache_dir, on_corrupt=self.reporter.warning)

    def logs(self, recipe: Recipe) -> Path:
        return self.cache_dir / "logs" / recipe.name


class QuietReporter(Reporter):
    """Plan gathers facts silently: nothing it computes on the way is news to the user."""

    def info(self, text: str) -> None:
        pass


@dataclass
class StageEnv:
    recipe: Recipe
    ctx: BuildContext

    @cached_property
    def tools(self) -> toolchain.Toolchain:
        return resolve_toolchain(self.recipe)

    def surveying(self) -> StageEnv:
        """The same environment for `plan`: offline and quiet, so nothing is fetched or said."""
        return StageEnv(self.recipe, dataclasses.replace(self.ctx, reporter=QuietReporter(), offline=True))


def resolve_toolchain(recipe: Recipe) -> toolchain.Toolchain:
    return toolchain.resolve(recipe.plan.toolchain.cross_compile, recipe.plan.toolchain.ccache)


def source_date_epoch(recipe: Recipe) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(env) if env.isdigit() else recipe.plan.build.source_date_epoch


def build_settings(env: StageEnv) -> kernel.BuildSettings:
    jobs = env.ctx.jobs or env.recipe.plan.build.jobs or len(os.sched_getaffinity(0))
    return kernel.BuildSettings(jobs, source_date_epoch(env.recipe))


def runtime_spec(recipe: Recipe) -> runtime.RuntimeSpec:
    plan = recipe.plan.runtime
    return runtime.RuntimeSpec(
        kind=plan.kind,
        packages=plan.packages or runtime.DEFAULT_PACKAGES,
        path=plan.path,
        python=plan.python,
        arch=recipe.plan.arch,
        interpreter=plan.interpreter,
    )


def initramfs_spec(recipe: Recipe) -> initramfs.InitramfsSpec:
    plan = recipe.plan.initramfs
    return initramfs.InitramfsSpec(
        compression=plan.compression,
        overlays=plan.overlays,
        allow_shadow=plan.allow_shadow,
        max_compressed=plan.max_compressed,
        max_unpacked=plan.max_unpacked,
        source_date_epoch=source_date_epoch(recipe),
        writer_config=recipe.plan.writer.settings(),
        placement=plan.placement,
    )


Outputs = Mapping[str, StageOutput]


def _source(env: StageEnv, _up: Outputs) -> Prepared:
    return source.prepare_source(
        env.recipe.plan.kernel.source, env.ctx.cache_dir, env.ctx.reporter, env.ctx.offline
    )


def _kconfig(env: StageEnv, up: Outputs) -> Prepared:
    plan = env.recipe.plan.kernel
    tree = source.source_tree(up["source"])
    own = kconfig.requests(dataclasses.replace(plan, placement_symbols=()), env.recipe.name, tree.path)
    where = f"recipe {env.recipe.name}'s kernel.config"
    placement.check_requests({s: e.value for s, e in own.items()}, env.recipe.plan.initramfs.placement, where)
    wanted = kconfig.requests(plan, env.recipe.name, tree.path)
    return kernel.prepare_config(
        tree, kconfig.render_defconfig(plan, tree.path), wanted, env.tools, env.ctx.logs(env.recipe)
    )


def _kernel(env: StageEnv, up: Outputs) -> Prepared:
    where = kernel.KernelBuild(env.ctx.store, env.ctx.logs(env.recipe), env.ctx.reporter, env.recipe.name)
    tree = source.source_tree(up["source"])
    if not _builtin(env.recipe):
        return kernel.prepare_build(tree, up["kconfig"], env.tools, build_settings(env), where)
    compressor = placement.builtin_compressor(env.recipe.plan.initramfs.compression)
    return kernel.prepare_build(
        tree, up["kconfig"], env.tools, build_settings(env), where, up["initramfs"], compressor
    )


def _runtime(env: StageEnv, _up: Outputs) -> Prepared:
    ctx = env.ctx
    return runtime.prepare_runtime(
        runtime_spec(env.recipe), WRITER_PACKAGE, ctx.store, ctx.reporter, ctx.cache_dir, ctx.offline
    )


def _initramfs(env: StageEnv, up: Outputs) -> Prepared:
    config = kernel.final_config(up["kconfig"].path)
    return initramfs.prepare_initramfs(initramfs_spec(env.recipe), up["runtime"], config, env.ctx.reporter)


def _builtin(recipe: Recipe) -> bool:
    return recipe.plan.initramfs.placement == "builtin"


def _kernel_needs(recipe: Recipe) -> tuple[str, ...]:
    """The kernel links a built-in initramfs, so it waits for it; otherwise a writer change
    never touches the kernel."""
    return ("source", "kconfig", "initramfs") if _builtin(recipe) else ("source", "kconfig")


@dataclass(frozen=True)
class Stage:
    name: str
    needs: tuple[str, ...] | Callable[[Recipe], tuple[str, ...]]
    prepare: Callable[[StageEnv, Outputs], Prepared]
    inner: tuple[str, ...] = ()  # stages its producer runs itself (see model.InnerStage)

    def needs_for(self, recipe: Recipe) -> tuple[str, ...]:
        return self.needs(recipe) if callable(self.needs) else self.needs


STAGES = (
    Stage("source", (), _source),
    Stage("kconfig", ("source",), _kconfig),
    # The rd before the kernel: its checks (sizes, the RAM disk) fail in seconds, not after a
    # kernel build, and a built-in initramfs must exist before the kernel links it.
    Stage("runtime", (), _runtime, inner=("sysroot", "cpython")),
    Stage("initramfs", ("runtime", "kconfig"), _initramfs),
    Stage("kernel", _kernel_needs, _kernel),
)


def run(env: StageEnv) -> dict[str, StageOutput]:
    """Every stage in order: each found in the store or produced."""
    outputs: dict[str, StageOutput] = {}
    for stage in STAGES:
        prepared = stage.prepare(env, outputs)
        if prepared.in_place is not None:
            env.ctx.reporter.info(f"[{stage.name}] {prepared.in_place}, used in place")
        else:
            env.ctx.reporter.stage_start(stage.name, prepared.key)
        output = produce(stage.name, prepared, env.ctx.store)
        if not output.in_place:
            env.ctx.reporter.stage_finish(stage.name, output.key, output.cached, output.seconds)
        outputs[stage.name] = output
    return outputs


@dataclass(frozen=True)
class StageState:
    """One stage as `plan` sees it: cached, will run, or not needed, and its key when known."""

    stage: str
    state: str
    key: str | None = None

    def row(self) -> tuple[str, str, str]:
        return (self.stage, self.state, self.key[:32] if self.key else "-")


def survey(build_env: StageEnv) -> tuple[list[StageState], dict[str, StageOutput]]:
    """Every stage with the key `run` would compute, and whether the store has it, without
    fetching or building; and the outputs already there. A stage that needs one that must
    run first will run, its key not yet known."""
    env = build_env.surveying()
    outputs: dict[str, StageOutput] = {}
    states: list[StageState] = []
    for stage in STAGES:
        names = (*stage.inner, stage.name)
        if not all(need in outputs for need in stage.needs_for(env.recipe)):
            states += [StageState(name, "will run") for name in names]
            continue
        try:
            prepared = stage.prepare(env, outputs)
        except OfflineMissingError:
            states += [StageState(name, "will run (after downloading its inputs)") for name in names]
            continue
        except (SourceError, HostError) as exc:
            states += [StageState(name, "will run") for name in stage.inner]
            states.append(StageState(stage.name, f"blocked: {exc.message}"))
            continue
        if prepared.in_place is not None:
            states.append(StageState(stage.name, "local tree"))
            outputs[stage.name] = produce(stage.name, prepared, env.ctx.store)
            continue
        found = env.ctx.store.peek(stage.name, prepared.key)
        for inner in prepared.inner:
            if found is not None:
                states.append(StageState(inner.name, f"not needed (the {stage.name} is cached)"))
            elif inner.keyed_by:
                states.append(StageState(inner.name, f"found or built (keyed by {inner.keyed_by})"))
            elif inner.inputs is None:
                states.append(StageState(inner.name, f"not needed ({inner.reason})"))
            else:
                key = hash_inputs(inner.inputs)
                cached = env.ctx.store.peek(inner.name, key) is not None
                states.append(StageState(inner.name, "cached" if cached else "will run", key))
        states.append(StageState(stage.name, "cached" if found else "will run", prepared.key))
        if found is not None:
            outputs[stage.name] = StageOutput(stage.name, prepared.key, found, True, 0.0, prepared.inputs)
    return states, outputs
