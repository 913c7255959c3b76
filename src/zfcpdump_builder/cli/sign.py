"""`sign OUT` and `verify OUT`: SHA256SUMS's detached signature, and checking all of it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import signing
from ..core.events import Reporter
from .common import EPILOG, common_options


def signature_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert", type=Path, default=None, help="the signer's X.509 certificate (PEM)")
    parser.add_argument(
        "--require-signature",
        action="store_true",
        help="refuse an output without a valid SHA256SUMS.sig (needs --cert)",
    )


def add_arguments(sub: argparse._SubParsersAction) -> None:
    sign = sub.add_parser(
        "sign",
        help="sign a build's SHA256SUMS with a key and certificate",
        description="Verify OUT (every file against SHA256SUMS), then write OUT/SHA256SUMS.sig: "
        "a detached openssl CMS signature, DER, without signed attributes (no signing time).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sign.add_argument("out", type=Path, metavar="OUT", help="a build output directory")
    sign.add_argument("--key", type=Path, required=True, help="the private key (PEM)")
    sign.add_argument("--cert", type=Path, required=True, help="its X.509 certificate (PEM)")
    common_options(sign)
    sign.set_defaults(handler=cmd_sign)
    verify = sub.add_parser(
        "verify",
        help="re-hash a build's files and check its signature",
        description="Re-hash every file OUT/SHA256SUMS lists and check OUT/SHA256SUMS.sig when "
        "present: against --cert when given, else only that it is intact.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("out", type=Path, metavar="OUT", help="a build output directory")
    signature_arguments(verify)
    common_options(verify)
    verify.set_defaults(handler=cmd_verify)


def cmd_sign(args: argparse.Namespace, reporter: Reporter) -> int:
    target = signing.sign_output(args.out.resolve(), args.key, args.cert)
    reporter.artifact(target.name, str(target), signing.file_sha256(target), target.stat().st_size)
    return 0


def cmd_verify(args: argparse.Namespace, reporter: Reporter) -> int:
    verified = signing.verify_output(args.out.resolve(), args.cert, args.require_signature)
    rows = [[name, digest[:16] + "…", "ok"] for name, digest in sorted(verified.files.items())]
    reporter.table(f"{args.out / signing.SUMS}", ["file", "sha256", "status"], rows)
    if not verified.signed:
        reporter.info(f"{len(rows)} files match; not signed (no {signing.SIGNATURE})")
    elif verified.trusted:
        reporter.info(f"{len(rows)} files match; signed by {verified.signer}, checked against {args.cert}")
    else:
        reporter.info(
            f"{len(rows)} files match; signature intact, by {verified.signer} (pass --cert to trust it)"
        )
    return 0
