"""`bench/run.py --only fuzz`: >= 100,000 structure-aware cases against the disk, core and
recipe readers, seeded from a real dump (real zipl, the real writer in the capture kernel).

The targets are the tests' own (tests/support/fuzzing.py); here they run as a seeded loop, so
every crash is counted (the tests stop at the first) and can be replayed from its seed.
"""

from __future__ import annotations

import random
import secrets
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.figures import NotMeasured, Options, figure, target
from bench.report import table

ROOT = Path(__file__).resolve().parents[1]
CASES = 100_000
SMOKE_CASES = 2_000


def _modules() -> tuple[Any, Any, Any]:
    for entry in (ROOT, ROOT / "src", ROOT / "tests", ROOT / "tests" / "e2e"):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    import scenario as sc
    from tests.support import fuzzing, realzipl

    return sc, fuzzing, realzipl


def _seed_disk(opts: Options, sc: Any, realzipl: Any, work: Path) -> Any:
    if shutil.which("qemu-system-s390x") is None:
        raise NotMeasured("qemu-system-s390x is not installed (Debian: qemu-system-s390x)")
    if opts.qemu_out:
        art = sc.artifacts_in(opts.qemu_out)
    else:
        art = sc.build(sc.QEMU_TEST_RECIPE, work / "out", work / "build.log", cache_dir=opts.cache)
    first_rd = sc.crash_rd(art, work / "crashside.rd", "BENCH-FUZZ-" + secrets.token_hex(8))
    try:
        disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    except BaseException as exc:  # pytest.skip is a BaseException: no root, no loop devices
        raise NotMeasured(f"no real-zipl seed disk here: {exc}") from exc
    sc.kdump(art, first_rd, disk.path, work / "console.log", expect=(sc.WRITER_START, sc.SUCCESS)).check()
    return disk


def _run(target: Any, cases: int, first_seed: int, fuzzing: Any) -> dict[str, Any]:
    crashes: Counter[str] = Counter()
    replay: dict[str, int] = {}
    start = time.monotonic()
    for seed in range(first_seed, first_seed + cases):
        try:
            target.one(random.Random(seed))
        except fuzzing.Crash as exc:
            head = str(exc).splitlines()[0][:300]
            crashes[head] += 1
            replay.setdefault(head, seed)
    seconds = time.monotonic() - start
    found = [{"message": m, "count": n, "seed": replay[m]} for m, n in crashes.most_common()]
    return {"target": target.name, "cases": cases, "seconds": round(seconds, 2), "crashes": found}


def section_fuzz(opts: Options) -> dict[str, Any]:
    sc, fuzzing, realzipl = _modules()
    work = opts.work / "fuzz"
    work.mkdir(parents=True)
    disk = _seed_disk(opts, sc, realzipl, work)
    targets, patched = fuzzing.disk_targets(disk, work)
    targets.append(fuzzing.recipe_target(ROOT / "recipes", work))
    total = SMOKE_CASES if opts.smoke else CASES
    share = -(-total // len(targets))
    try:
        results = [_run(t, share, i * share, fuzzing) for i, t in enumerate(targets)]
    finally:
        patched.close()
    cases = sum(r["cases"] for r in results)
    crashes = sum(c["count"] for r in results for c in r["crashes"])
    seconds = sum(r["seconds"] for r in results)
    goal = target(">=", CASES, f"≥ {CASES:,}")
    figs = [
        figure("fuzz.cases", "fuzz cases run (all targets)", "cases", cases, goal, smoke=opts.smoke),
        figure(
            "fuzz.crashes", "fuzz crashes found (undocumented errors)", "cases", crashes, target("<=", 0, "0")
        ),
        figure("fuzz.seconds", "fuzz time, all targets", "s", round(seconds, 1)),
    ]
    return {"figures": figs, "raw": {"targets": results, "seed_disk": str(disk.path)}}


def detail_fuzz(raw: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["target"],
            f"{r['cases']:,}",
            str(sum(c["count"] for c in r["crashes"])),
            f"{r['seconds']:.1f}",
            f"{r['cases'] / max(r['seconds'], 1e-9):,.0f}",
        ]
        for r in raw["targets"]
    ]
    out = table(["target", "cases", "crashes", "seconds", "cases/s"], rows) + [""]
    for r in raw["targets"]:
        for crash in r["crashes"]:
            out.append(
                f"- {r['target']}: {crash['count']} × {crash['message']} (replay: seed {crash['seed']})"
            )
    return out
