"""SHA256SUMS, `sign`, `verify` and `install`'s signature check, on a copy of a real build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.buildcli import run_cli

Keys = dict[str, tuple[Path, Path]]


def sign(out: Path, key: Path, cert: Path) -> int:
    return run_cli("sign", str(out), "--key", str(key), "--cert", str(cert)).code


def test_unsigned_output_verifies_and_tampering_names_the_file(signed_out: Path) -> None:
    assert run_cli("verify", str(signed_out)).code == 0
    with open(signed_out / "zfcpdump.rd", "r+b") as rd:
        rd.seek(4096)
        byte = rd.read(1)
        rd.seek(4096)
        rd.write(bytes([byte[0] ^ 1]))
    run = run_cli("verify", str(signed_out))
    assert run.code == 9
    assert "zfcpdump.rd" in run.error()["message"]


def test_sign_then_verify_against_the_certificate(signed_out: Path, keys: Keys) -> None:
    key, cert = keys["packager"]
    assert sign(signed_out, key, cert) == 0
    first = (signed_out / "SHA256SUMS.sig").read_bytes()
    assert sign(signed_out, key, cert) == 0
    assert (signed_out / "SHA256SUMS.sig").read_bytes() == first  # no signing time inside
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signed_out / "SHA256SUMS.sig")]
        + ["-content", str(signed_out / "SHA256SUMS"), "-CAfile", str(cert), "-purpose", "any"]
        + ["-out", os.devnull],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr  # openssl itself agrees
    assert run_cli("verify", str(signed_out), "--cert", str(cert), "--require-signature").code == 0
    stranger = run_cli("verify", str(signed_out), "--cert", str(keys["stranger"][1]))
    assert stranger.code == 9 and "does not verify" in stranger.error()["message"]


def test_signature_of_other_content_is_refused(signed_out: Path, keys: Keys) -> None:
    key, cert = keys["packager"]
    assert sign(signed_out, key, cert) == 0
    sums = (signed_out / "SHA256SUMS").read_text()
    lines = sums.splitlines(keepends=True)
    # the SBOM is not a manifest output, so only the signature can tell that its line is gone
    (signed_out / "SHA256SUMS").write_text("".join(line for line in lines if "sbom.spdx.json" not in line))
    run = run_cli("verify", str(signed_out), "--cert", str(cert))
    assert run.code == 9 and "SHA256SUMS.sig does not verify" in run.error()["message"]
    # an artifact the manifest names must be listed at all
    (signed_out / "SHA256SUMS").write_text("".join(line for line in lines if "System.map" not in line))
    unlisted = run_cli("verify", str(signed_out), "--cert", str(cert))
    assert unlisted.code == 9 and "does not list System.map" in unlisted.error()["message"]


def test_bad_keys_are_refused_and_nothing_is_signed(signed_out: Path, keys: Keys, tmp_path: Path) -> None:
    key, cert = keys["packager"]
    mismatch = run_cli("sign", str(signed_out), "--key", str(key), "--cert", str(keys["stranger"][1]))
    assert mismatch.code == 9 and "not a pair" in mismatch.error()["message"]
    missing = run_cli("sign", str(signed_out), "--key", str(tmp_path / "nope.key"), "--cert", str(cert))
    assert missing.code == 9 and "does not exist" in missing.error()["message"]
    assert not (signed_out / "SHA256SUMS.sig").exists()


def test_sign_refuses_an_output_still_being_published(signed_out: Path, keys: Keys) -> None:
    publisher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    staging = signed_out.with_name(f".{signed_out.name}.new-{publisher.pid}")
    staging.mkdir()
    try:
        run = run_cli(
            "sign", str(signed_out), "--key", str(keys["packager"][0]), "--cert", str(keys["packager"][1])
        )
    finally:
        publisher.kill()
        publisher.wait()
    assert run.code == 9 and "still publishing" in run.error()["message"]
    assert not (signed_out / "SHA256SUMS.sig").exists()


def test_verify_without_a_manifest(signed_out: Path) -> None:
    (signed_out / "manifest.json").unlink()
    run = run_cli("verify", str(signed_out))
    assert run.code == 9 and "manifest" in run.error()["message"]


def _install(out: Path, dest: Path, *extra: str) -> int:
    return run_cli(
        "install", "default", "--from", str(out), "--destdir", str(dest), "--layout", "2.7+", *extra
    ).code


def test_install_checks_signatures_first(signed_out: Path, keys: Keys, tmp_path: Path) -> None:
    key, cert = keys["packager"]
    assert _install(signed_out, tmp_path / "unsigned", "--require-signature", "--cert", str(cert)) == 9
    assert not (tmp_path / "unsigned").exists()
    assert sign(signed_out, key, cert) == 0
    assert _install(signed_out, tmp_path / "signed", "--require-signature", "--cert", str(cert)) == 0
    assert (tmp_path / "signed/lib/s390-tools/zfcpdump/zfcpdump.rd").is_file()
    (signed_out / "SHA256SUMS").write_text((signed_out / "SHA256SUMS").read_text().replace("a", "b", 1))
    assert _install(signed_out, tmp_path / "tampered") == 9  # signed: verified even when not asked
    assert not (tmp_path / "tampered").exists()
