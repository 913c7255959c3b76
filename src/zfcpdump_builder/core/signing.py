"""SHA256SUMS over a build's output, its detached CMS signature, and their verification.

Signatures are openssl CMS (PKCS#7) with an X.509 certificate: the same key pair that signs
the kernel for secure IPL (the kernel's sign-file writes PKCS#7 too), and the format distro
signing services for boot artifacts (secure boot, kernel modules) already handle. GPG would
need a second key type for one file. `-noattr` keeps the signing time out, so an RSA
signature of the same SHA256SUMS is the same bytes every time.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import modsig
from .errors import HostError, SignatureError
from .ownership import publish_siblings, read_manifest
from .store import file_sha256, pid_alive

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
REQUIRED = ("zfcpdump.image", "manifest.json")  # and every artifact the manifest lists


def write_sums(folder: Path, names: list[str]) -> None:
    lines = [f"{file_sha256(folder / name)}  {name}\n" for name in sorted(names)]
    (folder / SUMS).write_text("".join(lines))


def read_sums(folder: Path) -> dict[str, str]:
    path = folder / SUMS
    if not path.is_file():
        raise SignatureError(
            f"{folder} has no {SUMS}: nothing to verify",
            hint="rebuild with this version of ./build.py build, which writes SHA256SUMS",
        )
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = re.fullmatch(r"([0-9a-f]{64})  ([A-Za-z0-9._-]+)", line)
        if not match:
            raise SignatureError(f"{path}:{number}: not a 'SHA256  NAME' line: {line[:80]!r}")
        sums[match.group(2)] = match.group(1)
    missing = [name for name in REQUIRED if name not in sums]
    if missing:
        raise SignatureError(f"{path} does not list {', '.join(missing)}", hint="rebuild the output")
    return sums


@dataclass(frozen=True)
class Verified:
    files: dict[str, str]
    signed: bool
    signer: str | None = None
    trusted: bool = False  # checked against a certificate the user gave


def verify_output(folder: Path, cert: Path | None = None, require_signature: bool = False) -> Verified:
    """Re-hash every file SHA256SUMS lists and check SHA256SUMS.sig when there is one (against
    *cert* when given). SignatureError names the first file that does not match."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise SignatureError(f"{folder} has no build manifest.json of ours", hint="build it first")
    sums = read_sums(folder)
    unlisted = sorted(set(manifest.get("outputs", {})) - set(sums))
    if unlisted:
        raise SignatureError(
            f"{folder / SUMS} does not list {', '.join(unlisted)}, which the build's manifest names",
            hint="rebuild the output",
        )
    for name, digest in sums.items():
        path = folder / name
        if path.is_symlink() or not path.is_file():
            raise SignatureError(f"{path} is listed in {SUMS} but missing", hint="rebuild the output")
        if file_sha256(path) != digest:
            raise SignatureError(
                f"{path} does not match its sha256 in {folder / SUMS}: it changed after the build",
                hint="rebuild, or find out who changed it",
            )
    secure_ipl = manifest.get("secure_ipl")
    if isinstance(secure_ipl, dict):
        _check_secure_ipl(folder / "zfcpdump.image", secure_ipl, cert)
    signature = folder / SIGNATURE
    if not signature.is_file():
        if require_signature:
            raise SignatureError(
                f"{folder} is not signed (no {SIGNATURE}) and a signature is required",
                hint=f"sign it: ./build.py sign {folder} --key KEY --cert CERT",
            )
        return Verified(sums, False)
    if require_signature and cert is None:
        raise SignatureError(
            "a signature is required but no certificate was given to check it against",
            hint="pass --cert CERT (the signer's certificate)",
        )
    signer = _cms_verify(signature, folder / SUMS, cert)
    return Verified(sums, True, signer, cert is not None)


def _check_secure_ipl(image: Path, record: dict[str, str], cert: Path | None) -> None:
    """The image carries its secure-IPL signature, over the image the build made."""
    if modsig.unsigned_sha256(image) != record.get("unsigned_sha256"):
        raise SignatureError(
            f"{image}'s secure-IPL signature is missing or covers another image",
            hint="rebuild: the recipe's signing key signs the image at publish",
        )
    if cert is not None:
        _verify_image(image, cert)


def _verify_image(image: Path, cert: Path) -> None:
    """The appended PKCS#7 verifies against *cert* (sign-file puts no certificate in it)."""
    payload, der = modsig.split_signature(image) or (b"", b"")
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "payload").write_bytes(payload)
        (Path(scratch) / "signature.der").write_bytes(der)
        args = ["cms", "-verify", "-binary", "-inform", "DER", "-in", f"{scratch}/signature.der"]
        args += ["-content", f"{scratch}/payload", "-certfile", str(cert), "-CAfile", str(cert)]
        done = _openssl([*args, "-purpose", "any", "-out", os.devnull], "verify signatures")
    if done.returncode != 0:
        raise SignatureError(
            f"{image}'s secure-IPL signature does not verify against {cert}",
            hint="the image changed after signing, or another key signed it",
        )


def _openssl(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise HostError(f"openssl is needed to {what}", hint="apt-get install openssl") from None


def _cms_verify(signature: Path, content: Path, cert: Path | None) -> str:
    trust = ["-CAfile", str(cert), "-purpose", "any"] if cert else ["-noverify"]
    if cert is not None and not cert.is_file():
        raise SignatureError(f"certificate {cert} does not exist", hint="name the signer's certificate")
    with tempfile.TemporaryDirectory() as scratch:
        signer_file = Path(scratch) / "signer.pem"
        args = [
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(signature),
            "-content",
            str(content),
        ]
        done = _openssl([*args, *trust, "-signer", str(signer_file), "-out", os.devnull], "verify signatures")
        if done.returncode != 0:
            detail = done.stderr.strip().splitlines()[-1:] or ["no detail"]
            against = f" against {cert}" if cert else ""
            raise SignatureError(
                f"{signature} does not verify{against}: {detail[0]}",
                hint="the signature is of other content, or by another key; sign again",
            )
        subject = _openssl(["x509", "-in", str(signer_file), "-noout", "-subject"], "read the signer")
    return subject.stdout.strip().removeprefix("subject=").strip()


def check_key_pair(key: Path, cert: Path) -> None:
    """SignatureError unless *key* is a readable private key whose public half is *cert*'s."""
    for path, what in ((key, "signing key"), (cert, "certificate")):
        if not path.is_file():
            raise SignatureError(f"{what} {path} does not exist", hint=f"name an existing {what} file")
    key_pub = _openssl(["pkey", "-in", str(key), "-pubout"], "read keys")
    cert_pub = _openssl(["x509", "-in", str(cert), "-noout", "-pubkey"], "read certificates")
    if key_pub.returncode != 0:
        raise SignatureError(f"{key} is not a private key openssl can read", hint="use a PEM private key")
    if cert_pub.returncode != 0:
        raise SignatureError(
            f"{cert} is not an X.509 certificate openssl can read", hint="use a PEM certificate"
        )
    if key_pub.stdout.strip() != cert_pub.stdout.strip():
        raise SignatureError(
            f"{key} and {cert} are not a pair: the certificate is for another key",
            hint="pass the certificate that was issued for this key",
        )


def publishing_in_progress(folder: Path) -> int | None:
    """The pid of a live build that is publishing into *folder* (its staging dir exists)."""
    for _entry, kind, pid in publish_siblings(folder):
        if kind == "new" and pid != os.getpid() and pid_alive(pid):
            return pid
    return None


def sign_output(folder: Path, key: Path, cert: Path) -> Path:
    """Verify *folder*, then write SHA256SUMS.sig (atomically) with *key* and *cert*."""
    busy = publishing_in_progress(folder)
    if busy is not None:
        raise SignatureError(
            f"a build (pid {busy}) is still publishing {folder}: nothing was signed",
            hint="wait for the build to finish, then sign",
        )
    check_key_pair(key, cert)
    verify_output(folder)
    return sign_sums(folder, key, cert)


def sign_sums(folder: Path, key: Path, cert: Path) -> Path:
    """Write *folder*/SHA256SUMS.sig (atomically) over its SHA256SUMS."""
    target = folder / SIGNATURE
    partial = folder / f".{SIGNATURE}.tmp-{os.getpid()}"
    args = ["cms", "-sign", "-binary", "-noattr", "-nosmimecap", "-md", "sha256", "-outform", "DER"]
    done = _openssl(
        [*args, "-in", str(folder / SUMS), "-signer", str(cert), "-inkey", str(key), "-out", str(partial)],
        "sign",
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SignatureError(f"openssl could not sign with {key}: {done.stderr.strip()[-300:]}")
    os.chmod(partial, 0o644)
    os.replace(partial, target)
    return target
