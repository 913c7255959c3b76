"""`bench/run.py --only faults`: the faults table. Every fault class is a set of the suite's
own fault tests; this section runs them once through pytest (JUnit XML) and counts, per class,
the cases tried and the cases that lost data or crashed (a failed or erroring test).
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench.figures import NotMeasured, Options, figure, target
from bench.report import table

ROOT = Path(__file__).resolve().parents[1]
CLASSES: dict[str, tuple[str, ...]] = {
    "write errors below the writer, in emulation (QEMU blkdebug)": ("tests/e2e/test_e2e_faults.py",),
    "power cuts (SIGKILL of QEMU mid-dump)": (
        "tests/e2e/test_e2e_powercut.py",
        "tests/e2e/test_e2e_robustness.py::test_killed_mid_dump_leaves_an_invalid_dump_and_a_valid_superblock",
    ),
    "syscall faults on the host (strace inject)": ("tests/writer/test_strace_faults.py",),
    "bad disks, cores, signals (writer, host)": ("tests/writer/test_failures.py",),
    "bad disks end to end (refused, unchanged)": (
        "tests/e2e/test_e2e_robustness.py::test_unprepared_disk_is_refused_and_unchanged",
        "tests/e2e/test_e2e_robustness.py::test_too_small_dump_area_is_refused_and_unchanged",
    ),
    "builder killed or interrupted, full disks, killed publish, corrupt cache": (
        "tests/spine/test_store_faults.py",
        "tests/safety/test_full_disk.py",
        "tests/spine/test_kernel_build.py::test_interrupted_build_is_never_reused",
        "tests/spine/test_kernel_build.py::test_full_disk_while_unpacking",
        "tests/safety/test_publish.py",
    ),
}


def _class_of(case: ET.Element) -> str | None:
    module = (case.get("classname") or "").replace(".", "/") + ".py"
    name = (case.get("name") or "").split("[")[0]
    for label, selectors in CLASSES.items():
        for selector in selectors:
            path, _, test = selector.partition("::")
            if module.endswith(path) and (not test or test == name):
                return label
    return None


HOST_ONLY = ("syscall faults on the host (strace inject)", "bad disks, cores, signals (writer, host)")


def section_faults(opts: Options) -> dict[str, Any]:
    """In smoke mode only the host-side classes run (seconds, not the suite's ten minutes)."""
    report = opts.work / "faults.xml"
    chosen = HOST_ONLY if opts.smoke else tuple(CLASSES)
    selectors = [s for label in chosen for s in CLASSES[label]]
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    run = subprocess.run([*command, *selectors], cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if not report.is_file():
        raise NotMeasured(f"pytest wrote no report (exit {run.returncode}): {run.stderr[-500:]}")
    counts = {label: {"cases": 0, "lost": 0, "skipped": 0, "failed": []} for label in chosen}
    for case in ET.parse(report).getroot().iter("testcase"):
        label = _class_of(case)
        if label not in counts:
            continue
        row = counts[label]
        if case.find("skipped") is not None:
            row["skipped"] += 1
            continue
        row["cases"] += 1
        if case.find("failure") is not None or case.find("error") is not None:
            row["lost"] += 1
            row["failed"].append(case.get("name"))
    tried = sum(r["cases"] for r in counts.values())
    lost = sum(r["lost"] for r in counts.values())
    skipped = sum(r["skipped"] for r in counts.values())
    figs = [
        figure(
            "faults.cases", f"fault cases tried ({len(chosen)} of {len(CLASSES)} classes)", "cases", tried
        ),
        figure("faults.lost", "fault cases that lost data or crashed", "cases", lost, target("<=", 0, "0")),
        figure("faults.skipped", "fault cases skipped", "cases", skipped, target("<=", 0, "0")),
    ]
    return {"figures": figs, "raw": {"classes": counts, "seconds": round(seconds, 1), "exit": run.returncode}}


def detail_faults(raw: dict[str, Any]) -> list[str]:
    rows = [
        [label, str(r["cases"]), str(r["lost"]), str(r["skipped"]), ", ".join(r["failed"]) or "-"]
        for label, r in raw["classes"].items()
    ]
    out = table(["fault class", "cases tried", "lost data or crashed", "skipped", "which"], rows)
    return [*out, "", "Fuzzing (section 6) counts its crashes the same way, over its own cases."]
