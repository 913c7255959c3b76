"""recipe → resolved plan → stages → artifacts + manifest.

`BuildContext` carries what every stage needs (store, reporter, cache and log dirs);
`build()` runs the stages in dependency order and publishes the artifacts atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import toolchain
from ..core.events import Reporter
from ..core.store import StageOutput, Store
from ..recipe.loader import Recipe
from . import budget, initramfs, kconfig, kernel, manifest, runtime, source
from . import publish as publish_step


@dataclass
class BuildContext:
    cache_dir: Path
    reporter: Reporter
    offline: bool = False
    jobs: int | None = None
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.cache_dir)

    def logs(self, recipe: Recipe) -> Path:
        return self.cache_dir / "logs" / recipe.name


@dataclass
class BuildResult:
    recipe: Recipe
    source: source.SourceTree
    toolchain: toolchain.Toolchain
    stages: dict[str, StageOutput] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    budget: dict[str, int] = field(default_factory=dict)


def source_date_epoch(recipe: Recipe) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(env) if env.isdigit() else recipe.plan.build.source_date_epoch


def build_settings(recipe: Recipe, ctx: BuildContext) -> kernel.BuildSettings:
    jobs = ctx.jobs or recipe.plan.build.jobs or len(os.sched_getaffinity(0))
    return kernel.BuildSettings(jobs, source_date_epoch(recipe))


def resolve_toolchain(recipe: Recipe) -> toolchain.Toolchain:
    return toolchain.resolve(recipe.plan.toolchain.cross_compile, recipe.plan.toolchain.ccache)


def run_stage(ctx: BuildContext, name: str, produce: Any, *args: Any) -> StageOutput:
    """Run one stage function, reporting start/finish and cache hits."""
    ctx.reporter.stage_start(name, "")
    output: StageOutput = produce(*args)
    ctx.reporter.stage_finish(name, output.key, output.cached, output.seconds)
    return output


def build_kernel(recipe: Recipe, ctx: BuildContext) -> BuildResult:
    tools = resolve_toolchain(recipe)
    spec = recipe.plan.kernel.source
    ctx.reporter.stage_start("source", "")
    tree = source.prepare(spec, ctx.store, ctx.cache_dir, ctx.reporter, ctx.offline)
    if tree.output is not None:
        ctx.reporter.stage_finish("source", tree.output.key, tree.output.cached, tree.output.seconds)
    result = BuildResult(recipe, tree, tools)
    defconfig = kconfig.render_defconfig(recipe.plan.kernel)
    wanted = kconfig.requests(recipe.plan.kernel, recipe.name)
    logs = ctx.logs(recipe)
    result.stages["kconfig"] = run_stage(
        ctx, "kconfig", kernel.configure, tree, defconfig, wanted, tools, ctx.store, logs
    )
    result.stages["kernel"] = run_stage(
        ctx,
        "kernel",
        kernel.build,
        tree,
        result.stages["kconfig"],
        tools,
        build_settings(recipe, ctx),
        ctx.store,
        logs,
        ctx.reporter,
        recipe.name,
    )
    return result


KERNEL_ARTIFACTS = {
    "zfcpdump.image": "bzImage",
    "System.map": "System.map",
    "kernel.config": "config",
}


def artifact_files(result: BuildResult) -> dict[str, Path]:
    """Published name → file in the object store, for every stage that publishes."""
    kernel_out = result.stages["kernel"].path
    files = {name: kernel_out / rel for name, rel in KERNEL_ARTIFACTS.items()}
    if "initramfs" in result.stages:
        files["zfcpdump.rd"] = result.stages["initramfs"].path / initramfs.RD_NAME
    return files


def publish(result: BuildResult, out_dir: Path, manifest_extra: dict[str, Any], reporter: Reporter) -> None:
    """Replace *out_dir* with the artifacts and manifest in one step: never half-written."""
    files = artifact_files(result)
    publish_step.clean_debris(out_dir)
    staging = publish_step.staging_dir(out_dir)
    staging.mkdir(parents=True)
    try:
        for name, path in files.items():
            shutil.copy2(path, staging / name)
            os.chmod(staging / name, 0o644)
        staged = {name: staging / name for name in files}
        record = manifest.build_manifest(result, staged, source_date_epoch(result.recipe), manifest_extra)
        manifest.write(record, staging / "manifest.json")
        publish_step.swap_in(staging, out_dir, reporter.warning)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    outputs = record["outputs"] | {"manifest.json": manifest.output_record(out_dir / "manifest.json")}
    for name, facts in outputs.items():
        result.artifacts[name] = out_dir / name
        reporter.artifact(name, str(out_dir / name), facts["sha256"], facts["size"])


WRITER_PACKAGE = Path(__file__).resolve().parents[2] / "zfcpdump_writer"


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
    )


def build_rd(recipe: Recipe, ctx: BuildContext, result: BuildResult) -> None:
    result.stages["runtime"] = run_stage(
        ctx,
        "runtime",
        runtime.build_runtime,
        runtime_spec(recipe),
        WRITER_PACKAGE,
        ctx.store,
        ctx.reporter,
        ctx.cache_dir,
        ctx.offline,
    )
    final_config = kernel.final_config(result.stages["kernel"].path)
    result.stages["initramfs"] = run_stage(
        ctx,
        "initramfs",
        initramfs.build_initramfs,
        initramfs_spec(recipe),
        result.stages["runtime"],
        final_config,
        ctx.store,
        ctx.reporter,
    )


def memory_budget(recipe: Recipe, result: BuildResult, reporter: Reporter) -> dict[str, int]:
    """The dump-memory breakdown, printed on every build; BudgetError when over."""
    summary = result.stages["initramfs"].meta()["outputs"]
    memory = recipe.plan.budget.memory
    entries = budget.items(
        result.stages["kernel"].path / "vmlinux",
        summary["compressed"],
        summary["unpacked"],
        memory,
        recipe.plan.budget.writer_headroom,
    )
    return budget.check(entries, memory, reporter)


def build_all(recipe: Recipe, ctx: BuildContext) -> BuildResult:
    """Every stage of *recipe*, in dependency order, then the memory budget gate."""
    result = build_kernel(recipe, ctx)
    build_rd(recipe, ctx, result)
    result.budget = memory_budget(recipe, result, ctx.reporter)
    return result


def _rd_section(result: BuildResult) -> dict[str, Any]:
    contents = json.loads((result.stages["initramfs"].path / initramfs.CONTENTS_JSON).read_text())
    files = json.loads((result.stages["runtime"].path / runtime.FILES_JSON).read_text())
    entries = [
        {k: e.get(k) for k in ("path", "mode", "size", "sha256", "origin")} for e in contents["entries"]
    ]
    return {
        "initramfs": {"summary": contents["summary"], "entries": entries},
        "runtime": {"packages": files.get("packages", []), "spec": files.get("spec")},
    }


def finish(result: BuildResult, out_dir: Path, ctx: BuildContext) -> None:
    extra = _rd_section(result) | {"memory_budget": result.budget}
    publish(result, out_dir, extra, ctx.reporter)
