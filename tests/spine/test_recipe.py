"""Recipe loading, layering and validation errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support import fuzzing

from zfcpdump_builder import recipe
from zfcpdump_builder.core.errors import RecipeError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_default_recipe_resolves_with_defaults() -> None:
    loaded = recipe.load("default")
    plan = loaded.plan
    assert plan.arch == "s390x"
    assert (plan.kernel.source.kind, plan.kernel.source.location) == ("debian", "linux-source-6.1")
    assert plan.kernel.base.name == "zfcpdump_defconfig-6.1" and plan.kernel.base.is_absolute()
    assert ("RELOCATABLE", "y") in plan.kernel.symbols
    assert plan.writer.after == "reipl" and plan.writer.chunk_kib == "auto"
    assert plan.budget.memory == 32 << 20  # a size, parsed once, at load time
    assert plan.build.jobs is None and plan.toolchain.ccache is None  # auto


def test_qemu_test_layers_fragments_and_keeps_parent(tmp_path: Path) -> None:
    loaded = recipe.load("qemu-test")
    assert [p.stem for p in loaded.chain] == ["qemu-test", "default"]
    fragments = [f.name for f in loaded.plan.kernel.fragments]
    assert fragments == ["qemu-virtio.config", "qemu-kdump.config"]
    assert ("RELOCATABLE", "y") in loaded.plan.kernel.symbols  # inherited
    assert loaded.plan.writer.after == "poweroff"  # overridden


def test_child_set_merges_symbol_by_symbol(tmp_path: Path) -> None:
    parent = write(
        tmp_path / "parent.yaml",
        "kernel:\n  source: {debian: linux-source-6.1}\n  config:\n    set: {A_ONE: y, B_TWO: n}\n",
    )
    child = write(
        tmp_path / "child.yaml",
        f"extends: {parent.name}\nkernel:\n  config:\n    set: {{B_TWO: y, C_THREE: 12}}\n",
    )
    loaded = recipe.load(child)
    assert loaded.data["kernel"]["config"]["set"] == {"A_ONE": "y", "B_TWO": "y", "C_THREE": 12}
    assert loaded.plan.kernel.symbols == (("A_ONE", "y"), ("B_TWO", "y"), ("C_THREE", "12"))


def error_of(path: Path) -> str:
    with pytest.raises(RecipeError) as caught:
        recipe.load(path)
    return caught.value.message


def test_unknown_key_names_file_line_path_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "kernel:\n  source: {debian: x}\n  config:\n    sett: {}\n")
    message = error_of(path)
    assert f"{path}:4" in message
    assert "kernel.config.sett" in message
    assert "did you mean 'set'" in message


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "build:\n  jobs: many\n")
    message = error_of(path)
    assert "build.jobs" in message and "positive integer or auto" in message and ":2" in message


def test_bad_choice_suggests_closest(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "initramfs:\n  compression: xzz\n")
    assert "did you mean 'xz'" in error_of(path)


@pytest.mark.parametrize(
    "symbol, fragment",
    [
        ("CONFIG_ZFCP", "without the CONFIG_ prefix"),
        ("zfcp", "bad name 'zfcp'"),
    ],
)
def test_bad_symbol_name(tmp_path: Path, symbol: str, fragment: str) -> None:
    path = write(tmp_path / "r.yaml", f"kernel:\n  config:\n    set: {{{symbol}: y}}\n")
    assert fragment in error_of(path)


def test_malformed_yaml_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "kernel:\n  source: [unclosed\n")
    message = error_of(path)
    assert "malformed YAML" in message
    assert f"{path}:3:1" in message or f"{path}:2:" in message


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "arch: s390x\narch: s390x\n")
    assert "duplicate key 'arch'" in error_of(path)


def test_extends_cycle_is_detected(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    message = error_of(tmp_path / "a.yaml")
    assert "extends cycle" in message and "a.yaml" in message and "b.yaml" in message


def test_tarball_needs_sha256(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "kernel:\n  source: {tarball: linux.tar.xz}\n")
    assert "needs kernel.source.sha256" in error_of(path)


def test_two_source_kinds_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", f"kernel:\n  source: {{debian: x, tree: {tmp_path}}}\n")
    assert "exactly one of debian, tarball, tree (found: debian, tree)" in error_of(path)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "kernel:\n  config:\n    fragments: [nope.config]\n")
    assert "'nope.config' not found" in error_of(path)


def test_missing_recipe_lists_available() -> None:
    with pytest.raises(RecipeError) as caught:
        recipe.load("no-such-recipe")
    assert "default" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("32MiB", 32 << 20),
        ("2.5MiB", int(2.5 * (1 << 20))),
        ("4096", 4096),
        (12, 12),
        ("1G", 1 << 30),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert recipe.parse_size(text) == expected


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3)
)
yaml_trees = st.recursive(
    yaml_scalars,
    lambda inner: st.dictionaries(
        st.sampled_from(
            [
                "kernel",
                "source",
                "config",
                "set",
                "arch",
                "build",
                "jobs",
                "writer",
                "after",
                "debian",
                "ZFCP",
                "fragments",
                "initramfs",
                "bogus",
            ]
        ),
        inner,
        max_size=4,
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(tree=yaml_trees)
def test_validator_only_raises_recipe_errors(tree: object, tmp_path_factory: pytest.TempPathFactory) -> None:
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text(yaml.safe_dump(tree))
    try:
        loaded = recipe.load(path)
    except RecipeError as exc:
        assert exc.message
    else:
        assert loaded.plan.arch == "s390x"


def test_child_source_replaces_the_parent_source(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", f"extends: default\nkernel:\n  source: {{tree: {tmp_path}}}\n")
    loaded = recipe.load(path)
    assert loaded.data["kernel"]["source"] == {
        "debian": None,
        "tarball": None,
        "sha256": None,
        "tree": str(tmp_path),
    }
    assert (loaded.plan.kernel.source.kind, loaded.plan.kernel.source.location) == ("tree", str(tmp_path))


def test_null_clears_an_optional_key(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "extends: default\nruntime:\n  path: null\n")
    assert recipe.load(path).plan.runtime.path is None


@pytest.fixture(scope="module")
def fuzzed_recipes(tmp_path_factory: pytest.TempPathFactory) -> fuzzing.Target:
    return fuzzing.recipe_target(
        Path(__file__).resolve().parents[2] / "recipes", tmp_path_factory.mktemp("fuzz")
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(rng=st.randoms(use_true_random=False))
def test_mutated_real_recipes_never_give_a_traceback(
    fuzzed_recipes: fuzzing.Target, rng: random.Random
) -> None:
    """Line- and value-level mutations of recipes/*.yaml: only the builder's own errors."""
    fuzzed_recipes.one(rng)
