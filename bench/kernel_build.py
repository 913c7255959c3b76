"""Kernel build figures: our pipeline vs plain make, no-op rerun, one-symbol and writer-only rebuilds.

- cold: `build.py build default` with an empty stage cache (the unpacked source object is
  shared, ccache off) vs `make zfcpdump_defconfig bzImage` of the same source and the same
  rendered defconfig in a fresh O= directory, also without ccache. Paired A B A B.
- no-op: the whole pipeline again with everything cached.
- one symbol: flip PRINTK_TIME in a recipe sharing the default's O= tree (incremental).
- writer only: touch the writer package (a comment line), rebuild (kernel cached, rd redone).

    python bench/kernel_build.py [--runs N] [--smoke] [--json]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from bench.harness import Series, paired, python_cmd  # noqa: E402


def checkout_copy(dest: Path) -> Path:
    """A private copy of the project, so a bench may edit the writer without touching ours."""
    ignore = shutil.ignore_patterns(".venv", "out", ".git", "__pycache__", ".pytest_cache", ".hypothesis")
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def build_cmd(repo: Path) -> list[str]:
    return [*python_cmd(), str(repo / "build.py"), "build"]


def _run(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    started = time.monotonic()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return time.monotonic() - started


def _recipe(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(f"extends: default\n{body}")  # the copy's own recipes/default.yaml
    return path


def _source_tree(build: list[str], cache: Path, work: Path) -> Path:
    """Warm the shared source object once; return the unpacked tree."""
    _run([*build, "default", "--cache-dir", str(cache), "--out", str(work / "warm-out")])
    trees = sorted((cache / "objects").glob("source-*/tree"))
    return trees[0]


def cold_pair(build: list[str], cache: Path, tree: Path, work: Path) -> tuple[float, float]:
    """(ours, plain make): both cold, ccache off, same source object and defconfig."""
    recipe = _recipe(work, "cold", "toolchain:\n  ccache: false\n")
    for stage in ("kconfig", "kernel"):
        for obj in (cache / "objects").glob(f"{stage}-*"):
            shutil.rmtree(obj)
    shutil.rmtree(cache / "workspaces", ignore_errors=True)
    ours = _run([*build, str(recipe), "--cache-dir", str(cache), "--out", str(work / "out")])
    objdir = work / "plain"
    shutil.rmtree(objdir, ignore_errors=True)
    (objdir / "arch/s390/configs").mkdir(parents=True)
    shutil.copy(work / "out" / "kernel.config", work / "final.config")
    defconfig = next((cache / "objects").glob("kconfig-*")) / "zfcpdump_defconfig"
    shutil.copy(defconfig, objdir / "arch/s390/configs/zfcpdump_defconfig")
    jobs = f"-j{len(os.sched_getaffinity(0))}"
    make = ["make", "-C", str(tree), f"O={objdir}", "ARCH=s390", "CROSS_COMPILE=s390x-linux-gnu-", jobs]
    plain = _run([*make, "zfcpdump_defconfig"]) + _run([*make, "bzImage"])
    return ours, plain


def run(runs: int, smoke: bool, cache: Path | None = None) -> dict[str, object]:
    """Kernel figures. *cache* (smoke only) reuses a warm stage cache instead of a private one."""
    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as tmp:
        work = Path(tmp)
        repo = checkout_copy(work / "repo")
        build = build_cmd(repo)
        cache = cache if (cache and smoke) else work / "cache"
        tree = _source_tree(build, cache, work)
        results: dict[str, object] = {}
        if not smoke:
            results["cold_vs_make"] = paired(lambda: cold_pair(build, cache, tree, work), runs).as_dict()
        default = [*build, "default", "--cache-dir", str(cache), "--out", str(work / "out-default")]
        _run(default)
        results["noop"] = Series.of([_run(default) for _ in range(max(runs, 1) * 2)]).as_dict()
        if not smoke:
            results["one_symbol"] = _one_symbol(build, cache, work, runs).as_dict()
            _run(default)  # the default's kernel object again, so writer-only finds it cached
        results["writer_only"] = _writer_only(repo, default, runs).as_dict()
        return results


def _one_symbol(build: list[str], cache: Path, work: Path, runs: int) -> Series:
    """PRINTK_TIME flipped back and forth in the default's O= tree. The kernel objects go
    first, so a flip back is compiled again rather than found in the cache."""
    times = []
    for flip in range(runs * 2):
        value = "n" if flip % 2 == 0 else "y"
        recipe = _recipe(work, "default", f"kernel:\n  config:\n    set: {{PRINTK_TIME: {value}}}\n")
        for obj in (cache / "objects").glob("kernel-*"):
            shutil.rmtree(obj)
        times.append(_run([*build, str(recipe), "--cache-dir", str(cache), "--out", str(work / "o1")]))
    return Series.of(times)


def _writer_only(repo: Path, default: list[str], runs: int) -> Series:
    """Change the writer's bytes (a new comment line) in the private copy, and rebuild."""
    target = repo / "src" / "zfcpdump_writer" / "__init__.py"
    original = target.read_text()
    times = []
    for i in range(max(runs, 1)):
        target.write_text(original + f"# bench {time.monotonic_ns()} {i}\n")
        times.append(_run(default))
    return Series.of(times)


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else (1 if smoke else 3)
    results = run(runs, smoke)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
