"""A crash-side (first-stage) initramfs for the kdump test: test scaffolding, never shipped.

It holds Debian s390x busybox-static (the shell /init), kexec from kexec-tools with its
DT_NEEDED closure (ld64.so.1 as a real file), the capture kernel image and the UNMODIFIED
zfcpdump.rd. Its /init mounts proc, sysfs and devtmpfs, prints the kernel version and
markers, loads the capture kernel with `kexec -s -p` (kexec_file_load) and crashes the
kernel with sysrq `c`. The crashed kernel then boots the capture kernel into the crash
region, where /proc/vmcore exists and our writer runs in kdump mode.

Console markers printed by /init, in order:
    CRASHSIDE-START
    CRASHSIDE-VERSION <contents of /proc/version>
    CRASHSIDE-TOKEN <token>         (a string that lives in the first kernel's memory)
    CRASHSIDE-LOADED                (kexec -p succeeded)  or  CRASHSIDE-KEXEC-FAILED
    CRASHSIDE-CRASH                 (just before echo c > /proc/sysrq-trigger)
    CRASHSIDE-STILL-ALIVE           (only if the crash did not happen)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import libarchive
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from zfcpdump_builder.core import debpkg
from zfcpdump_builder.core.store import default_cache_dir
from zfcpdump_builder.stages import initramfs

ARCH = "s390x"
BASE_PACKAGES = ("busybox-static", "kexec-tools", "libc6")
LIB_DIRS = ("lib/s390x-linux-gnu", "usr/lib/s390x-linux-gnu", "lib", "usr/lib", "lib64")
CAPTURE_APPEND = "console=ttysclp0 scsi_mod.scan=async"

MARK_START = "CRASHSIDE-START"
MARK_VERSION = "CRASHSIDE-VERSION"
MARK_TOKEN = "CRASHSIDE-TOKEN"
MARK_LOADED = "CRASHSIDE-LOADED"
MARK_KEXEC_FAILED = "CRASHSIDE-KEXEC-FAILED"
MARK_CRASH = "CRASHSIDE-CRASH"
MARK_ALIVE = "CRASHSIDE-STILL-ALIVE"

INIT_TEMPLATE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "{start}"
echo -n "{version} "; cat /proc/version
TOKEN="{token}"
echo "{token_mark} $TOKEN"
if kexec -s -p /capture.image {initrd}--append="{append}"; then
    echo "{loaded} crash_loaded=$(cat /sys/kernel/kexec_crash_loaded)"
else
    echo "{failed}"
    poweroff -f
fi
echo "{crash}"
echo c > /proc/sysrq-trigger
sleep 5
echo "{alive}"
poweroff -f
"""


Entry = initramfs.RdEntry  # path, kind (dir|file|symlink|chr), mode, data, target, rdev


def init_script(token: str, append: str = CAPTURE_APPEND, with_rd: bool = True) -> str:
    """The crash side's /init; without an rd the capture kernel runs its built-in initramfs."""
    return INIT_TEMPLATE.format(
        initrd="--initrd=/capture.rd " if with_rd else "",
        start=MARK_START,
        version=MARK_VERSION,
        token_mark=MARK_TOKEN,
        token=token,
        append=append,
        loaded=MARK_LOADED,
        failed=MARK_KEXEC_FAILED,
        crash=MARK_CRASH,
        alive=MARK_ALIVE,
    )


def _control_depends(deb: Path) -> list[str]:
    """First alternative of each Depends/Pre-Depends entry in a .deb's control file."""
    with libarchive.file_reader(str(deb)) as outer:
        for member in outer:
            if member.pathname.startswith("control.tar"):
                data = b"".join(member.get_blocks())
                return _parse_depends(_control_text(data))
    return []


def _control_text(data: bytes) -> str:
    with libarchive.memory_reader(data) as inner:
        for entry in inner:
            if entry.pathname.lstrip("./") == "control":
                return b"".join(entry.get_blocks()).decode()
    return ""


def _parse_depends(control: str) -> list[str]:
    names: list[str] = []
    for line in control.splitlines():
        key, _, value = line.partition(":")
        if key in ("Depends", "Pre-Depends"):
            for item in value.split(","):
                first = item.split("|")[0].strip().split(" ")[0].split(":")[0]
                if first:
                    names.append(first)
    return names


def fetch_root(stage: Path, cache_dir: Path | None = None) -> Path:
    """Download and unpack busybox-static, kexec-tools and their library packages into *stage*."""
    cache_dir = cache_dir or default_cache_dir()
    debs = debpkg.fetch_packages(list(BASE_PACKAGES), ARCH, cache_dir)
    kexec_deb = next(d for d in debs if d.name.startswith("kexec-tools_"))
    libs = [n for n in _control_depends(kexec_deb) if n.startswith("lib") and n not in BASE_PACKAGES]
    if libs:
        debs += debpkg.fetch_packages(libs, ARCH, cache_dir)
    for deb in debs:
        debpkg.unpack_package(deb, stage)
    return stage


def _resolve(root: Path, path: str) -> Path:
    """Follow symlinks (absolute ones relative to *root*) to a real file inside *root*."""
    current = root / path.lstrip("/")
    for _ in range(40):
        if not current.is_symlink():
            return current
        target = os.readlink(current)
        current = (root / target.lstrip("/")) if target.startswith("/") else current.parent / target
    raise RuntimeError(f"symlink loop at {path}")


def _elf_deps(binary: Path) -> tuple[list[str], str | None]:
    with open(binary, "rb") as handle:
        elf = ELFFile(handle)
        interp = None
        for seg in elf.iter_segments():
            if seg.header.p_type == "PT_INTERP":
                interp = seg.get_interp_name()
        needed: list[str] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                needed += [t.needed for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
    return needed, interp


def _find_lib(root: Path, soname: str) -> str:
    for directory in LIB_DIRS:
        candidate = root / directory / soname
        if candidate.exists() or candidate.is_symlink():
            return f"{directory}/{soname}"
    raise FileNotFoundError(f"{soname} (DT_NEEDED) is in none of the unpacked packages")


def elf_closure(root: Path, binary: str) -> dict[str, Path]:
    """Map in-image path -> real host file for *binary*, its interpreter and DT_NEEDED closure."""
    result: dict[str, Path] = {}
    todo = [binary]
    while todo:
        path = todo.pop()
        if path in result:
            continue
        real = _resolve(root, path)
        result[path] = real
        needed, interp = _elf_deps(real)
        if interp:
            todo.append(interp.lstrip("/"))
        todo += [_find_lib(root, name) for name in needed]
    return result


def _dirs_for(paths: list[str]) -> list[str]:
    dirs: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(dirs)


def crashside_entries(
    stage: Path, capture_image: Path, capture_rd: Path | None, token: str, append: str = CAPTURE_APPEND
) -> list[Entry]:
    """All cpio members of the crash-side initramfs (no capture.rd for a built-in initramfs)."""
    files: dict[str, tuple[bytes, int]] = {
        "init": (init_script(token, append, capture_rd is not None).encode(), 0o755),
        "bin/busybox": (_resolve(stage, "bin/busybox").read_bytes(), 0o755),
        "capture.image": (capture_image.read_bytes(), 0o644),
    }
    if capture_rd is not None:
        files["capture.rd"] = (capture_rd.read_bytes(), 0o644)
    for path, real in elf_closure(stage, "sbin/kexec").items():
        files[path] = (real.read_bytes(), 0o755)
    dirs = sorted(set(_dirs_for(list(files))) | {"dev", "proc", "sys", "bin", "sbin", "tmp"})
    entries = [Entry(d, "dir") for d in dirs]
    entries += [Entry("dev/console", "chr", 0o600, rdev=(5, 1)), Entry("dev/null", "chr", 0o666, rdev=(1, 3))]
    entries += [Entry("bin/sh", "symlink", 0o777, target="busybox")]
    entries += [Entry(p, "file", mode, data) for p, (data, mode) in sorted(files.items())]
    return entries


def write_rd(entries: list[Entry], out_path: Path, compression: str = "gzip") -> Path:
    """Write *entries* as a cpio newc archive with the project's initramfs.write_cpio."""
    initramfs.write_cpio(entries, out_path, compression)
    return out_path


def build_crashside_rd(
    capture_image: Path,
    capture_rd: Path | None,
    out_path: Path,
    token: str,
    cache_dir: Path | None = None,
    append: str = CAPTURE_APPEND,
) -> Path:
    """Build the crash-side initramfs at *out_path* (gzip cpio) and return its path.

    *append* is the capture kernel's command line (kexec --append).
    """
    stage = Path(tempfile.mkdtemp(prefix="crashside-"))
    try:
        fetch_root(stage, cache_dir)
        entries = crashside_entries(stage, capture_image, capture_rd, token, append)
        return write_rd(entries, out_path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


PROBE_RDINIT = "rdinit=/probe/init"
PROBE_CC = "s390x-linux-gnu-gcc"
PROBE_C = r"""/* MemAvailable sampler for the bench: freestanding, static, raw s390x syscalls. */
#define MNT "/proc"
static long sys(long n, long a, long b, long c, long d, long e) {
    register long r1 __asm__("1") = n;
    register long r2 __asm__("2") = a;
    register long r3 __asm__("3") = b;
    register long r4 __asm__("4") = c;
    register long r5 __asm__("5") = d;
    register long r6 __asm__("6") = e;
    __asm__ volatile("svc 0" : "+d"(r2) : "d"(r1), "d"(r3), "d"(r4), "d"(r5), "d"(r6) : "memory", "cc");
    return r2;
}
static void out(const char *s, long n) { sys(4, 1, (long)s, n, 0, 0); }
static void sample(void) {
    static char buf[4096];
    static const char key[] = "MemAvailable:";
    long fd = sys(5, (long)"/proc/meminfo", 0, 0, 0, 0), n, i, j;
    if (fd < 0) return;
    n = sys(3, fd, (long)buf, sizeof(buf) - 1, 0, 0);
    sys(6, fd, 0, 0, 0, 0);
    for (i = 0; i + 13 < n; i++) {
        for (j = 0; j < 13 && buf[i + j] == key[j]; j++) ;
        if (j == 13) {
            for (j = i; j < n && buf[j] != '\n'; j++) ;
            out("probe: ", 7); out(buf + i, j - i + 1);
            return;
        }
    }
}
void _start(void) {
    static char *argv[] = {"/init", 0};
    static char *envp[] = {0};
    static const long ts[2] = {0, PERIOD_NS};
    sys(39, (long)MNT, 0555, 0, 0, 0);
    sys(21, (long)"proc", (long)MNT, (long)"proc", 0, 0);
    if (sys(2, 0, 0, 0, 0, 0) != 0) {      /* parent (pid 1) or fork failure: become /init */
        sys(11, (long)"/init", (long)argv, (long)envp, 0, 0);
        sys(1, 127, 0, 0, 0, 0);
    }
    for (;;) { sample(); sys(162, (long)ts, 0, 0, 0, 0); }
}
"""
PROBE_SH = """#!/probe/busybox sh
/probe/busybox mkdir -p /proc
/probe/busybox mount -t proc proc /proc
(
    while :; do
        while read -r key value unit; do
            case "$key" in MemAvailable:) echo "probe: MemAvailable: $value kB" ;; esac
        done < /proc/meminfo
        /probe/busybox sleep {interval}
    done
) &
exec /init
"""


def _c_probe(work: Path, period_ms: int) -> bytes | None:
    """A 5 KB freestanding static sampler (raw syscalls), or None without the cross compiler."""
    compiler = shutil.which(PROBE_CC)
    if compiler is None:
        return None
    (work / "probe.c").write_text(PROBE_C)
    subprocess.run(
        [
            compiler,
            "-Os",
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            f"-DPERIOD_NS={period_ms * 1_000_000}L",
            "-Wl,--build-id=none",
            "-s",
            "-o",
            str(work / "probe"),
            str(work / "probe.c"),
        ],
        check=True,
        capture_output=True,
    )
    return (work / "probe").read_bytes()


def _busybox_probe(work: Path, period_ms: int, cache_dir: Path | None) -> list[Entry]:
    debs = debpkg.fetch_packages(["busybox-static"], ARCH, cache_dir or default_cache_dir())
    debpkg.unpack_package(debs[0], work)
    script = PROBE_SH.format(interval=period_ms / 1000).encode()
    return [
        Entry("probe/busybox", "file", 0o755, _resolve(work, "bin/busybox").read_bytes()),
        Entry("probe/init", "file", 0o755, script),
    ]


def probe_entries(period_ms: int = 100, cache_dir: Path | None = None) -> list[Entry]:
    """/probe/init: mounts proc, forks a MemAvailable sampler (a line every *period_ms* on the
    console: `probe: MemAvailable: N kB`), and execs /init as PID 1."""
    work = Path(tempfile.mkdtemp(prefix="probe-"))
    try:
        binary = _c_probe(work, period_ms)
        if binary is not None:
            return [Entry("probe", "dir"), Entry("probe/init", "file", 0o755, binary)]
        return [Entry("probe", "dir"), *_busybox_probe(work, period_ms, cache_dir)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def probed_rd(
    capture_rd: Path, out_path: Path, period_ms: int = 100, cache_dir: Path | None = None
) -> tuple[Path, int]:
    """*capture_rd* byte for byte, followed by a second cpio holding the MemAvailable probe.

    The kernel unpacks concatenated archives in turn, so the original rd stays intact; boot it
    with `rdinit=/probe/init` (PROBE_RDINIT). Returns the path and the probe's own rootfs
    cost in bytes (to correct the readings).
    """
    entries = probe_entries(period_ms, cache_dir)
    extra = write_rd(entries, out_path.with_suffix(".probe.cpio"))
    with open(out_path, "wb") as out:
        out.write(capture_rd.read_bytes())
        out.write(b"\0" * (-capture_rd.stat().st_size % 4))
        out.write(extra.read_bytes())
    extra.unlink()
    return out_path, sum(len(e.data) for e in entries)


def list_rd(path: Path) -> list[str]:
    """Member names of an initramfs (for tests of this module)."""
    with libarchive.file_reader(str(path)) as archive:
        return [entry.pathname for entry in archive]
