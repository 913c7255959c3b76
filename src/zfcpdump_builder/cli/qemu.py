"""`qemu --image I --rd R ...`: boot a build under qemu-system-s390x, judged by console markers."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.events import Reporter
from ..deploy.qemu import BASE_APPEND, DEFAULT_FAILURES, QEMU, BootResult, BootSpec, boot
from .argtypes import finite_float, positive_int


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "qemu",
        help="boot an image + ramdisk under qemu-system-s390x and judge the console",
        description="Boot IMAGE and RD under qemu-system-s390x (s390-ccw-virtio, console "
        "ttysclp0) and judge the run by console markers, never by QEMU's exit code.",
    )
    parser.add_argument("--image", type=Path, required=True, help="kernel image (zfcpdump.image)")
    parser.add_argument("--rd", type=Path, required=True, help="initramfs (zfcpdump.rd)")
    parser.add_argument("--disk", type=Path, help="raw disk image, attached as virtio-scsi /dev/sda")
    parser.add_argument(
        "--disk-write-bps",
        type=int,
        metavar="BYTES",
        help="throttle the guest's disk writes (slow dumps for progress/kill tests)",
    )
    parser.add_argument("-m", "--memory", type=positive_int, default=32, help="guest memory in MiB (32)")
    parser.add_argument(
        "--timeout", type=finite_float(0.0, inclusive=False), default=120.0, help="hard timeout in s (120)"
    )
    parser.add_argument("--append", default="", help=f"kernel arguments after '{BASE_APPEND}'")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="TEXT",
        help="console text that must appear (repeatable)",
    )
    parser.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="TEXT",
        help=f"extra console text that fails the run (repeatable); always: {', '.join(DEFAULT_FAILURES)}",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="TEXT",
        help="a line containing TEXT is never a failure (repeatable)",
    )
    parser.add_argument("--kill-after", metavar="TEXT", help="kill the guest when TEXT appears")
    parser.add_argument("--log", type=Path, help="console log file (default: a temp file)")
    parser.add_argument("--quiet-console", action="store_true", help="do not echo the console")
    parser.add_argument("--qemu", default=QEMU, help=f"the QEMU binary ({QEMU})")
    parser.add_argument("--json", action="store_true", help="emit JSON-lines events on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the QEMU command")
    parser.set_defaults(handler=cmd_qemu)


def spec_from_args(args: argparse.Namespace) -> BootSpec:
    return BootSpec(
        image=args.image,
        initrd=args.rd,
        memory_mib=args.memory,
        append=args.append,
        disk=args.disk,
        timeout=args.timeout,
        expect=tuple(args.expect),
        failures=DEFAULT_FAILURES + tuple(args.fail_on),
        allow=tuple(args.allow),
        kill_after=args.kill_after,
        log_path=args.log,
        disk_write_bps=args.disk_write_bps,
        qemu=args.qemu,
    )


def cmd_qemu(args: argparse.Namespace, reporter: Reporter) -> int:
    """Run the boot test; raise TestBootError when it fails, else return 0."""
    result = boot(spec_from_args(args), reporter, echo=not args.quiet_console)
    report(result, reporter)
    result.check()
    return 0


def report(result: BootResult, reporter: Reporter) -> None:
    rows = [[m, f"{t:.2f}"] for m, t in sorted(result.seen.items(), key=lambda kv: kv[1])]
    if rows:
        reporter.table("console markers", ["marker", "seconds"], rows)
    state = "passed" if result.passed else "FAILED"
    reporter.info(f"qemu: {state} in {result.duration:.1f}s (console log {result.log_path})")
