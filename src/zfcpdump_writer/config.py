"""The baked configuration file, /etc/zfcpdump.conf in the initramfs.

Format: one `key = value` per line; `#` starts a comment line; blank lines are ignored; values
are bare words (no quotes). Unknown keys, duplicates and bad values are errors. The builder
writes the file with `render()`, the writer reads it with `parse()`: same code, same rules.

    device = auto            # auto (the IPL FCP disk) or a /dev/... path
    disk_timeout = 60        # seconds to wait for the dump disk
    after = reipl            # reipl | poweroff | halt
    progress_interval = 10   # seconds between progress lines
    debug = 2                # 1..6; dump_debug=N on the kernel command line wins
    source = auto            # auto | /proc/vmcore | zcore/mem
    io = auto                # auto | direct (O_DIRECT) | buffered
    verify = sample          # sample (re-read a sample and compare) | off
    chunk_kib = auto         # copy buffer KiB: auto (from MemAvailable) or 64..16384, multiple of 4
"""

from __future__ import annotations

from .errors import ConfigError

PATH = "/etc/zfcpdump.conf"
DEFAULTS: dict[str, int | str] = {
    "device": "auto",
    "disk_timeout": 60,
    "after": "reipl",
    "progress_interval": 10,
    "debug": 2,
    "source": "auto",
    "io": "auto",
    "verify": "sample",
    # auto: 256 KiB in a 32 MiB dump environment (2 x 1 MiB cost it 1.5 MiB), up to 4 MiB where
    # memory allows (256 KiB halves O_DIRECT throughput on a fast disk): see copier.auto_chunk_kib.
    "chunk_kib": "auto",
}
CHOICES = {
    "after": ("reipl", "poweroff", "halt"),
    "source": ("auto", "/proc/vmcore", "zcore/mem"),
    "io": ("auto", "direct", "buffered"),
    "verify": ("sample", "off"),
}
RANGES = {
    "disk_timeout": (0, 86400),
    "progress_interval": (1, 3600),
    "debug": (1, 6),
    "chunk_kib": (64, 16384),
}


def _int(key: str, text: str) -> int:
    low, high = RANGES[key]
    if not text.isdigit():
        raise ConfigError(f"config: {key} must be a whole number, not {text!r}")
    value = int(text)
    if not low <= value <= high or (key == "chunk_kib" and value % 4):
        raise ConfigError(f"config: {key} = {value} is out of range {low}..{high}")
    return value


def check(key: str, value: object) -> int | str:
    """The validated, typed value of one setting."""
    text = str(value).strip()
    if key not in DEFAULTS:
        raise ConfigError(f"config: unknown key {key!r}")
    if key == "chunk_kib" and text == "auto":
        return text
    if key in RANGES:
        return _int(key, text)
    if key in CHOICES and text not in CHOICES[key]:
        raise ConfigError(f"config: {key} must be one of {'|'.join(CHOICES[key])}, not {text!r}")
    if key == "device" and text != "auto" and not text.startswith("/dev/"):
        raise ConfigError(f"config: device must be auto or a /dev/ path, not {text!r}")
    return text


def parse(text: str) -> dict[str, int | str]:
    """Settings from the file's *text*, defaults filled in."""
    out = dict(DEFAULTS)
    seen = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"config line {number}: expected key = value, got {line[:40]!r}")
        if key in seen:
            raise ConfigError(f"config line {number}: duplicate key {key!r}")
        seen.add(key)
        out[key] = check(key, value.split("#", 1)[0].strip())
    return out


def render(settings: dict[str, object]) -> str:
    """The file text for *settings* (missing keys get their defaults)."""
    merged = dict(DEFAULTS)
    for key, value in settings.items():
        merged[key] = check(key, value)
    lines = ["# zfcpdump writer configuration (written by the builder)"]
    lines += [f"{key} = {merged[key]}" for key in DEFAULTS]
    return "\n".join(lines) + "\n"
