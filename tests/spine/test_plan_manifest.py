"""plan, manifest.json, the memory budget gate and the --json event stream."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.buildcli import ROOT, BuiltRecipe, CliRun, run_cli
from zfcpdump_builder.core.events import EVENT_SCHEMA, SCHEMA_VERSION

pytestmark = pytest.mark.kernel


def check_schema(run: CliRun) -> None:
    assert run.events, "no JSON events on stdout"
    for event in run.events:
        assert event["v"] == SCHEMA_VERSION
        fields = EVENT_SCHEMA[event["event"]]
        for name, types in fields.items():
            assert isinstance(event[name], types), f"{event['event']}.{name} = {event[name]!r}"
    assert run.events[-1]["event"] == "result"
    assert run.events[-1]["exit_code"] == run.code


def messages(run: CliRun) -> str:
    return "\n".join(e["text"] for e in run.of("message"))


def table(run: CliRun, title: str) -> dict[str, list]:
    found = next(e for e in run.of("table") if e["title"] == title)
    return {row[0]: row for row in found["rows"]}


def test_readme_documents_every_event() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", readme, re.M))
    assert set(EVENT_SCHEMA) <= documented


def test_build_stream_follows_the_schema(built_default: BuiltRecipe) -> None:
    check_schema(built_default.run)
    names = {e["name"] for e in built_default.run.of("artifact")}
    assert names == {
        "zfcpdump.image",
        "zfcpdump.rd",
        "System.map",
        "kernel.config",
        "manifest.json",
        "sbom.spdx.json",
        "SHA256SUMS",
    }


def test_plan_of_a_built_default_says_everything_is_cached(built_default: BuiltRecipe) -> None:
    run = run_cli("plan", "default")
    assert run.code == 0, run.stderr
    check_schema(run)
    stages = table(run, "stages")
    assert {name: row[1] for name, row in stages.items()} == {
        "source": "cached",
        "kconfig": "cached",
        "kernel": "cached",
        "sysroot": "not needed (the runtime is cached)",
        "cpython": "not needed (the runtime is cached)",
        "runtime": "cached",
        "initramfs": "cached",
    }
    text = messages(run)
    assert "~ RELOCATABLE: n -> y" in text
    assert "resolved recipe" in text and "linux-source-6.1" in text


def test_plan_of_a_custom_interpreter_needs_no_cpython_stage(
    tmp_path: Path, built_default: BuiltRecipe
) -> None:
    child = tmp_path / "custom.yaml"
    child.write_text("extends: default\nruntime:\n  interpreter: custom\n")
    run = run_cli("plan", str(child))
    assert run.code == 0, run.stderr
    stages = table(run, "stages")
    runtime = stages["runtime"][1]
    if runtime.startswith("will run (after downloading"):  # not preparable offline: plan can't tell
        assert stages["cpython"][1] == runtime, stages
        return
    why = "the runtime is cached" if runtime == "cached" else "runtime.interpreter custom"
    assert stages["cpython"][1] == f"not needed ({why})", stages


def test_plan_of_a_layered_recipe_shows_its_additions(tmp_path: Path, built_default: BuiltRecipe) -> None:
    child = tmp_path / "layered.yaml"
    child.write_text(
        f"extends: {ROOT / 'recipes' / 'qemu-test.yaml'}\nkernel:\n  config:\n"
        '    set: {LOCALVERSION: "-never-built-plan"}\n'
    )
    run = run_cli("plan", str(child))
    assert run.code == 0, run.stderr
    text = messages(run)
    assert "layered.yaml <- " in text and "qemu-test.yaml" in text and "default.yaml" in text
    assert "+ SCSI_VIRTIO=y" in text and '+ LOCALVERSION="-never-built-plan"' in text
    states = {name: row[1] for name, row in table(run, "stages").items()}
    assert states["source"] == "cached"
    assert states["kconfig"] == "will run" and states["kernel"] == "will run"
    assert not (ROOT / "out" / "layered").exists()


def test_manifest_records_inputs_and_outputs(built_default: BuiltRecipe) -> None:
    manifest_path = built_default.out / "manifest.json"
    text = manifest_path.read_text()
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    for name, record in manifest["outputs"].items():
        artifact = next(e for e in built_default.run.of("artifact") if e["name"] == name)
        assert record["sha256"] == artifact["sha256"] and record["size"] == artifact["size"]
    assert manifest["kernel"]["version"].startswith("6.1.")
    assert manifest["kernel"]["source"]["package"] == "linux-source-6.1"
    assert len(manifest["kernel"]["config_sha256"]) == 64
    assert "s390x-linux-gnu-gcc" in manifest["kernel"]["toolchain"]["gcc"]
    packages = {p["name"] for p in manifest["runtime"]["packages"]}
    assert {"libc6", "python3.11-minimal"} <= packages
    paths = {e["path"] for e in manifest["initramfs"]["entries"]}
    assert {"/init", "/etc/zfcpdump.conf", "/dev/console"} <= paths
    assert manifest["source_date_epoch"] > 0
    assert manifest["memory_budget"]["total"] <= manifest["memory_budget"]["memory"]
    assert str(built_default.out) not in text and "/.cache/" not in text


def test_manifest_is_reproducible(tmp_path: Path, built_default: BuiltRecipe) -> None:
    again = run_cli("build", "default", "--out", str(tmp_path / "again"))
    assert again.code == 0, again.stderr
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (
        built_default.out / "manifest.json"
    ).read_bytes()


def test_budget_gate_fires_with_a_ranked_breakdown(tmp_path: Path, built_default: BuiltRecipe) -> None:
    small = tmp_path / "small.yaml"
    small.write_text(f"extends: {ROOT / 'recipes' / 'default.yaml'}\nbudget:\n  memory: 16MiB\n")
    out = tmp_path / "out"
    run = run_cli("build", str(small), "--out", str(out))
    assert run.code == 6
    check_schema(run)
    error = run.error()
    assert error["kind"] == "budget" and "16 MiB" in error["message"]
    rows = next(e for e in run.of("table") if e["title"] == "dump memory budget")["rows"]
    sizes = [float(r[1]) for r in rows[:-1]]
    assert sizes == sorted(sizes, reverse=True) and rows[-1][0] == "total"
    assert not out.exists()
    # The unpacked rd's row says where its bytes go (the frozen /init is the interpreter's).
    composition = json.loads((built_default.out / "manifest.json").read_text())["initramfs"]["summary"]
    note = next(r for r in rows if r[0] == "initramfs, unpacked")[3]
    interpreter_mib = composition["composition"]["interpreter"] / (1 << 20)
    assert note.startswith("rootfs for the whole dump: ") and f"interpreter {interpreter_mib:.2f} MiB" in note
