"""recipe → resolved plan → stages → artifacts + manifest.

`build_all` runs graph.py's stage table and checks the memory budget; `finish` publishes the
artifacts and the manifest in one step.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import signing, toolchain
from ..core.events import Reporter
from ..core.ownership import DERIVED_FILES
from ..core.store import StageOutput, file_sha256
from ..recipe.loader import Recipe
from . import budget, graph, initramfs, manifest, placement, runtime, sbom, secureipl, source
from . import publish as publish_step
from .graph import BuildContext, StageEnv

REPO = Path(__file__).resolve().parents[3]  # the checkout, for the writer's git commit


@dataclass
class BuildResult:
    recipe: Recipe
    source: source.SourceTree
    toolchain: toolchain.Toolchain
    stages: dict[str, StageOutput] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    budget: dict[str, int] = field(default_factory=dict)


def build_all(recipe: Recipe, ctx: BuildContext) -> BuildResult:
    """Every stage of *recipe*, in dependency order, then the memory budget gate."""
    env = StageEnv(recipe, ctx)
    outputs = graph.run(env)
    # The manifest records the source by its identity (kernel.source), not among the stage keys.
    result = BuildResult(recipe, source.source_tree(outputs.pop("source")), env.tools, outputs)
    result.budget = memory_budget(recipe, result, ctx.reporter)
    return result


def artifact_files(result: BuildResult) -> dict[str, Path]:
    """Published name → file in the object store (publish.ARTIFACTS); a built-in initramfs
    is inside the image, so no zfcpdump.rd is published beside it."""
    with_rd = placement.publishes_rd(result.recipe.plan.initramfs.placement)
    return {
        name: result.stages[stage].path / rel
        for name, (stage, rel) in publish_step.ARTIFACTS.items()
        if with_rd or name != initramfs.RD_NAME
    }


@dataclass(frozen=True)
class Signer:
    """Signs the staged image for secure IPL and SHA256SUMS, with the recipe's key pair."""

    tool: Path
    key: Path
    cert: Path


def publish(
    result: BuildResult,
    out_dir: Path,
    manifest_extra: dict[str, Any],
    reporter: Reporter,
    signer: Signer | None = None,
) -> None:
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
        if signer is not None:
            unsigned = file_sha256(staged["zfcpdump.image"])
            secureipl.sign_image(signer.tool, staged["zfcpdump.image"], signer.key, signer.cert)
            manifest_extra = manifest_extra | {
                "secure_ipl": {"cert_sha256": file_sha256(signer.cert), "unsigned_sha256": unsigned}
            }
        record = manifest.build_manifest(
            result, staged, graph.source_date_epoch(result.recipe), manifest_extra
        )
        manifest.write(record, staging / "manifest.json")
        runtime_inputs = result.stages["runtime"].inputs
        sbom.write(sbom.build_sbom(record, runtime_inputs, staging, REPO), staging / sbom.SBOM_FILE)
        signing.write_sums(staging, [*files, "manifest.json", sbom.SBOM_FILE])
        if signer is not None:
            signing.sign_sums(staging, signer.key, signer.cert)
        publish_step.swap_in(staging, out_dir, reporter.warning)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    outputs = record["outputs"] | {
        name: manifest.output_record(out_dir / name)
        for name in ("manifest.json", *DERIVED_FILES)
        if (out_dir / name).exists()
    }
    for name, facts in outputs.items():
        result.artifacts[name] = out_dir / name
        reporter.artifact(name, str(out_dir / name), facts["sha256"], facts["size"])


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
        budget.rd_note(_rd_composition(result)),
        recipe.plan.initramfs.placement,
    )
    return budget.check(entries, memory, reporter)


def _rd_contents(result: BuildResult) -> dict[str, Any]:
    return dict(json.loads((result.stages["initramfs"].path / initramfs.CONTENTS_JSON).read_text()))


def _rd_composition(result: BuildResult) -> dict[str, int]:
    return dict(_rd_contents(result)["summary"].get("composition", {}))


def _rd_section(result: BuildResult) -> dict[str, Any]:
    contents = _rd_contents(result)
    files = json.loads((result.stages["runtime"].path / runtime.FILES_JSON).read_text())
    entries = [
        {k: e.get(k) for k in ("path", "mode", "size", "sha256", "origin")} for e in contents["entries"]
    ]
    rd_placement = result.recipe.plan.initramfs.placement
    return {
        "placement": placement.describe(
            rd_placement, graph.kernel.final_config(result.stages["kconfig"].path)
        ),
        "initramfs": {"summary": contents["summary"], "entries": entries},
        "runtime": {"packages": files.get("packages", []), "spec": files.get("spec")},
    }


def finish(result: BuildResult, out_dir: Path, ctx: BuildContext) -> None:
    extra = _rd_section(result) | {"memory_budget": result.budget}
    publish(result, out_dir, extra, ctx.reporter, _signer(result, ctx))


def _signer(result: BuildResult, ctx: BuildContext) -> Signer | None:
    key, cert = result.recipe.plan.signing.key, result.recipe.plan.signing.cert
    if key is None or cert is None:
        return None
    signing.check_key_pair(key, cert)
    tool = secureipl.sign_file_tool(
        result.source, result.stages["kconfig"], result.toolchain, ctx.store, ctx.logs(result.recipe)
    )
    return Signer(tool, key, cert)
