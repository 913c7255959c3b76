"""A full disk in the middle of a build: during the kernel compile (a small tmpfs cache) and
while publishing (a small tmpfs out dir). A clear error names the place; nothing partial is
kept, and an earlier out/ is left whole."""

from __future__ import annotations

from pathlib import Path

from support.buildcli import BuiltRecipe, run_cli, shared_cache_dir
from support.guard import tmpfs
from zfcpdump_builder.core.store import file_sha256

ROOT = Path(__file__).resolve().parents[2]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())}


def test_a_full_out_dir_keeps_the_old_build_whole(tmp_path: Path, built_default: BuiltRecipe) -> None:
    """The old out/ (4.3 MB) fits in 6 MiB, a second copy beside it for the swap does not."""
    with tmpfs(tmp_path / "small", "6m") as small:
        out = small / "out"
        first = run_cli("build", "default", "--out", str(out))
        assert first.code == 0, first.stderr
        before = digests(out)
        child = tmp_path / "gzip.yaml"
        child.write_text(f"extends: {ROOT / 'recipes' / 'default.yaml'}\ninitramfs:\n  compression: gzip\n")
        run = run_cli("build", str(child), "--out", str(out))
        assert run.code == 4, run.stderr + str(run.events)
        error = run.error()
        assert "no space left" in error["message"].lower() and str(small) in error["message"], error
        assert "free some space" in error["hint"]
        assert digests(out) == before
        assert sorted(p.name for p in small.iterdir()) == ["out"], "publishing left debris behind"


def test_a_full_cache_during_the_kernel_compile(tmp_path: Path, built_default: BuiltRecipe) -> None:
    """The kernel tree is used in place (a local tree), so only the O= tree fills the cache."""
    tree = next((shared_cache_dir() / "objects").glob("source-*/tree"))
    recipe = tmp_path / "local.yaml"
    recipe.write_text(f"extends: {ROOT / 'recipes' / 'default.yaml'}\nkernel:\n  source: {{tree: {tree}}}\n")
    with tmpfs(tmp_path / "cache", "20m") as cache:
        run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), cache=cache)
        assert run.code != 0
        error = run.error()
        text = error["message"] + " " + (error.get("hint") or "") + " " + str(error.get("log") or "")
        assert "no space left" in text.lower(), error
        assert not (tmp_path / "out").exists()
        assert not list((cache / "objects").glob("kernel-*")) if (cache / "objects").exists() else True
