"""Secure IPL: the recipe's key pair signs zfcpdump.image with the kernel tree's sign-file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from support.buildcli import BuiltRecipe, run_cli
from zfcpdump_builder.core import modsig
from zfcpdump_builder.deploy import prepare, zipl

Keys = dict[str, tuple[Path, Path]]


def signed_recipe(folder: Path, key: Path | None, cert: Path | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["extends: default", "signing:"]
    lines += [f"  key: {key}"] if key else []
    lines += [f"  cert: {cert}"] if cert else []
    recipe = folder / "signed.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


@pytest.fixture(scope="module")
def signed_build(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Path:
    folder = tmp_path_factory.mktemp("signed")
    out = folder / "out"
    run = run_cli("build", str(signed_recipe(folder, *keys["packager"])), "--out", str(out))
    assert run.code == 0, run.stderr[-3000:]
    return out


def test_image_carries_a_signature_over_the_unsigned_build(
    signed_build: Path, built_default: BuiltRecipe
) -> None:
    image = signed_build / "zfcpdump.image"
    assert image.read_bytes().endswith(modsig.MAGIC)
    payload, der = modsig.split_signature(image) or (b"", b"")
    assert payload == (built_default.out / "zfcpdump.image").read_bytes()
    assert der[:1] == b"\x30"  # a DER SEQUENCE: the PKCS#7
    manifest = json.loads((signed_build / "manifest.json").read_text())
    assert manifest["secure_ipl"]["unsigned_sha256"] == hashlib.sha256(payload).hexdigest()
    assert (signed_build / "SHA256SUMS.sig").is_file()  # the same pair signs the checksums


def test_verify_checks_the_image_signature(signed_build: Path, keys: Keys, tmp_path: Path) -> None:
    assert run_cli("verify", str(signed_build), "--cert", str(keys["packager"][1])).code == 0
    stranger = run_cli("verify", str(signed_build), "--cert", str(keys["stranger"][1]))
    assert stranger.code == 9
    copy = tmp_path / "copy"
    shutil.copytree(signed_build, copy)
    (copy / "SHA256SUMS.sig").unlink()
    image = copy / "zfcpdump.image"
    image.write_bytes(image.read_bytes()[: -len(modsig.MAGIC) - 1] + b"X" + modsig.MAGIC)
    sums = (copy / "SHA256SUMS").read_text().splitlines()
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    fixed = [f"{digest}  zfcpdump.image" if line.endswith("zfcpdump.image") else line for line in sums]
    (copy / "SHA256SUMS").write_text("\n".join(fixed) + "\n")
    run = run_cli("verify", str(copy), "--cert", str(keys["packager"][1]))
    assert run.code == 9 and "zfcpdump.image" in run.error()["message"]


def test_signed_image_is_reproducible(signed_build: Path, keys: Keys, tmp_path: Path) -> None:
    again = tmp_path / "again"
    run = run_cli("build", str(signed_recipe(tmp_path, *keys["packager"])), "--out", str(again))
    assert run.code == 0, run.stderr[-3000:]
    for name in ("zfcpdump.image", "SHA256SUMS.sig"):
        assert (again / name).read_bytes() == (signed_build / name).read_bytes(), name


def test_bad_signing_keys_publish_nothing(keys: Keys, tmp_path: Path) -> None:
    key, _cert = keys["packager"]
    half = run_cli("build", str(signed_recipe(tmp_path / "a", key, None)), "--out", str(tmp_path / "a/out"))
    assert half.code == 2 and "signing.key needs signing.cert" in half.error()["message"]
    wrong = signed_recipe(tmp_path / "b", key, keys["stranger"][1])
    mismatch = run_cli("build", str(wrong), "--out", str(tmp_path / "b/out"))
    assert mismatch.code == 9 and "not a pair" in mismatch.error()["message"]
    missing = signed_recipe(tmp_path / "c", tmp_path / "none.key", keys["packager"][1])
    assert run_cli("build", str(missing), "--out", str(tmp_path / "c/out")).code == 9
    assert not any((tmp_path / d / "out").exists() for d in "abc")


def test_prepare_secure_refuses_an_unsigned_image(
    signed_build: Path, built_default: BuiltRecipe, tmp_path: Path
) -> None:
    target = zipl.resolve(zipl.Choice(layout="2.7+", directory=str(tmp_path)))
    shutil.copy(built_default.out / "zfcpdump.image", tmp_path / "zfcpdump-image")
    (refused,) = prepare.secure_check(tmp_path, target, "1")
    assert refused.failed and "no secure-IPL signature" in refused.detail
    assert prepare.secure_check(tmp_path, target, "auto") == []
    shutil.copy(signed_build / "zfcpdump.image", tmp_path / "zfcpdump-image")
    (passed,) = prepare.secure_check(tmp_path, target, "1")
    assert not passed.failed
    assert zipl.dump_command("/dev/sda2", secure="1")[-2:] == ["--secure", "1"]
