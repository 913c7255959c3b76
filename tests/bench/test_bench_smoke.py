"""The benchmark harness must not rot: `bench/run.py --smoke` yields every section.

The smoke run (tiny sizes, one run, no cold kernel builds, no memory bisection) reuses the
warm stage cache the session fixtures fill (`built_default`, `built_qemu_test`); with those
stages cached it takes about a minute and a half. It writes to tmp_path, never to docs/.
The other tests here feed the report and the difference explainers synthetic data (no builds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, reproducibility  # noqa: E402
from bench import run as harness  # noqa: E402

# Sections that need nothing beyond what the test suite already requires.
MUST_MEASURE = ("kernel", "writer", "initramfs", "reproducibility")


def _has_number(fig: dict) -> bool:
    if "median" in fig:
        return all(isinstance(fig[k], int | float) for k in ("median", "min", "max"))
    return isinstance(fig.get("value"), int | float | str) and fig.get("value") != ""


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.qemu
def test_smoke_report_has_every_section(
    built_default, built_qemu_test, cache_dir: Path, tmp_path: Path
) -> None:
    md, js = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--smoke",
        "--out",
        str(md),
        "--json",
        str(js),
        "--cache-dir",
        str(cache_dir),
        "--qemu-out",
        str(built_qemu_test.out),
        "--work",
        str(tmp_path / "work"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    doc = json.loads(js.read_text())
    assert doc["mode"] == "smoke" and doc["machine"]["cores"] >= 1 and doc["machine"]["cpu"]
    text = md.read_text()
    for name in harness.SECTIONS:
        section = doc["sections"][name]
        assert section["status"] in ("measured", "not measured"), f"{name}: {section.get('reason')}"
        assert harness.TITLES[name] in text
        if section["status"] == "not measured":
            assert name not in MUST_MEASURE, f"{name} not measured: {section['reason']}"
            assert section["reason"].strip() and section["reason"] in text
            continue
        figures = section["figures"]
        assert figures, name
        assert any(_has_number(f) for f in figures), name
        for fig in figures:
            assert _has_number(fig) or fig.get("not_measured", "").strip(), (name, fig)
            assert fig["label"] in text, fig["label"]
    repro = doc["sections"]["reproducibility"]["raw"]
    assert repro["valid"], repro["problems"]
    assert {f["file"] for f in repro["files"]} == {"zfcpdump.rd", "zfcpdump.image", "manifest.json"}


def test_difference_explainers() -> None:
    a = b"\x00" * 40 + b"hello world" + b"\x00" * 40
    b = a.replace(b"world", b"wor1d")
    diff = reproducibility.byte_diff(a, b)
    assert diff["first_offset"] == 49 and diff["differing_bytes"] == 1
    assert diff["string_a"] == "hello world" and "> 00000030" in diff["hex_a"]
    assert reproducibility.first_difference(b"abc", b"abcd") == 3
    assert reproducibility.byte_diff(a, a) == {"identical": True}

    def newc(name: str, data: bytes, mtime: int) -> bytes:
        fields = [1, 0o100644, 0, 0, 1, mtime, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        head = b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + name.encode() + b"\x00"
        head += b"\x00" * (-len(head) % 4)
        return head + data + b"\x00" * (-len(data) % 4)

    trailer = newc("TRAILER!!!", b"", 0)
    rd_a = newc("init", b"#!/bin/sh\n", 0) + newc("etc/x", b"same", 0) + trailer
    rd_b = newc("init", b"#!/bin/sh\n", 0) + newc("etc/x", b"same", 5) + trailer
    what = reproducibility.explain_rd(rd_a, rd_b)
    assert what["member"] == "etc/x" and what["header_fields_differing"] == {"mtime": [0, 5]}

    manifest = reproducibility.explain_manifest(b'{"a": {"b": 1, "c": 2}}', b'{"a": {"b": 1, "c": 3}}')
    assert [k["key"] for k in manifest["keys_differing"]] == ["a.c"]


def test_report_renders_every_status() -> None:
    fig = {
        "id": "x",
        "label": "no-op rerun",
        "unit": "s",
        "median": 0.5,
        "min": 0.4,
        "max": 0.7,
        "n": 3,
        "runs": [0.4, 0.5, 0.7],
        "target": {"op": "<=", "value": 2, "text": "≤ 2 s"},
        "met": True,
    }
    doc = {
        "generated": "now",
        "command": "python bench/run.py",
        "mode": "full",
        "machine": {"cpu": "cpu", "cores": 2},
        "revision": {"commit": "abc"},
        "sections": {
            "kernel": {
                "title": "Kernel build",
                "status": "measured",
                "mode": "full",
                "runs": 3,
                "date": "now",
                "seconds": 1.0,
                "figures": [fig],
                "raw": {"noop": {"runs": [0.4, 0.5, 0.7]}},
            },
            "memory": {
                "title": "Dump environment memory floor",
                "status": "not measured",
                "reason": "qemu-system-s390x not installed",
                "figures": [],
            },
            "writer": {
                "title": "Writer throughput and memory",
                "status": "failed",
                "reason": "RuntimeError: boom",
                "figures": [],
            },
        },
    }
    text = report.render(doc)
    assert "| no-op rerun | 0.50 s | 0.40 | 0.70 | 3 | ≤ 2 s | **yes** |" in text
    assert "not measured: qemu-system-s390x not installed" in text
    assert "failed: RuntimeError: boom" in text
