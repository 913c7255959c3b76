"""What the tool may write, replace or delete: only what it made.

- An output directory may be replaced when it does not exist, is empty, or holds exactly
  what an earlier build published there: our `manifest.json` (with `manifest_version` and
  `outputs`) and files named in its `outputs`. A user's file dropped beside them makes the
  directory foreign again, because replacing it would delete that file.
- A cache directory is ours when it does not exist, is empty, carries our `CACHEDIR.TAG`, or
  holds the store's own sub-directories (caches made before the tag existed).
- `/`, `$HOME`, the checkout, and every ancestor of those or of the cache are never replaced.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import suppress
from pathlib import Path
from typing import Any

from . import paths
from .errors import OwnershipError, RecipeError

MANIFEST = "manifest.json"
# Written beside the manifest, after it: the SBOM, the checksums and their signature.
DERIVED_FILES = ("sbom.spdx.json", "SHA256SUMS", "SHA256SUMS.sig")
MANIFEST_MAX = 16 << 20  # a manifest is a few hundred KiB; larger is not ours
CACHE_TAG = "CACHEDIR.TAG"
# The Cache Directory Tagging Specification's signature: backup tools skip such a directory.
CACHE_TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This directory is the stage cache of zfcpdump-build; it may be deleted.\n"
)
CACHE_SUBDIRS = ("objects", "workspaces", "debs", "locks", "tmp", "logs", "downloads")
STAGE_OBJECT = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{32}")  # objects/<stage>-<key>
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
OUT_HINT = "choose a new or empty directory with --out, or move that one aside yourself"


def safe_name(name: str, what: str) -> str:
    """*name* as a single path component: no separators, no `..`, no leading dot."""
    if SAFE_NAME.fullmatch(name) and name not in (".", ".."):
        return name
    raise RecipeError(
        f"{what} {name!r} cannot name a directory (it must start with a letter or "
        "digit and hold only letters, digits and . _ + -)",
        hint="rename the recipe file, e.g. to my-recipe.yaml",
    )


def _protected() -> dict[Path, str]:
    found = {Path("/"): "the root directory"}
    home = os.environ.get("HOME")
    if home:
        found[Path(home).resolve()] = "your home directory ($HOME)"
    found[paths.project_root().resolve()] = "the zfcpdump-build checkout"
    return found


def _guard_special(path: Path, role: str, also: dict[Path, str]) -> None:
    """Refuse *path* when it is a protected directory, or an ancestor of one."""
    for special, what in {**_protected(), **also}.items():
        if path == special:
            raise OwnershipError(f"{role} {path} is {what}: refusing to replace it", hint=OUT_HINT)
        if special.is_relative_to(path):
            raise OwnershipError(
                f"{role} {path} contains {what} ({special}): refusing to replace it", hint=OUT_HINT
            )


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """*folder*/manifest.json when it is a build manifest of ours, else None."""
    path = folder / MANIFEST
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MANIFEST_MAX:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("manifest_version"), int)
        and isinstance(data.get("outputs"), dict)
    )
    return data if ok else None


def foreign_entries(folder: Path) -> list[str] | None:
    """The entries of *folder* that no build of ours put there (None: no manifest of ours)."""
    names = sorted(os.listdir(folder))
    if not names:
        return []
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    ours = {MANIFEST, *DERIVED_FILES, *manifest["outputs"]}
    return [n for n in names if n not in ours or not (folder / n).is_file() or (folder / n).is_symlink()]


def check_output_dir(out: Path, cache_dir: Path) -> None:
    """Raise OwnershipError unless *out* may be replaced by a new build (module docstring)."""
    out = Path(os.path.abspath(out))
    cache = Path(os.path.abspath(cache_dir))
    _guard_special(out, "--out", {cache: "the stage cache (--cache-dir)"})
    if out.is_relative_to(cache):
        raise OwnershipError(f"--out {out} is inside the stage cache {cache}", hint=OUT_HINT)
    if not os.path.lexists(out):
        return
    if out.is_symlink() or not out.is_dir():
        kind = "a symlink" if out.is_symlink() else "a file, not a directory"
        raise OwnershipError(f"--out {out} is {kind}: refusing to replace it", hint=OUT_HINT)
    foreign = foreign_entries(out)
    if foreign is None:
        raise OwnershipError(
            f"--out {out} is a non-empty directory this tool did not make "
            f"(it has no {MANIFEST} of ours): nothing was changed",
            hint=OUT_HINT,
        )
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise OwnershipError(
            f"--out {out} holds files no build put there ({shown}): replacing it "
            "would delete them; nothing was changed",
            hint=OUT_HINT,
        )


def check_cache_dir(cache_dir: Path) -> None:
    """Raise OwnershipError unless *cache_dir* is (or may become) our stage cache."""
    cache = Path(os.path.abspath(cache_dir))
    hint = "choose a new or empty directory with --cache-dir"
    _guard_special(cache, "--cache-dir", {})
    if not os.path.lexists(cache):
        return
    if not cache.is_dir():
        raise OwnershipError(f"--cache-dir {cache} is a file, not a directory", hint=hint)
    if is_our_cache(cache):
        return
    if os.listdir(cache):
        raise OwnershipError(
            f"--cache-dir {cache} is a non-empty directory that is not a "
            f"zfcpdump-build cache (no {CACHE_TAG}): nothing was changed",
            hint=hint,
        )


def is_our_cache(cache: Path) -> bool:
    """*cache* carries our tag, or is a cache of ours from before the tag."""
    return _our_tag(cache) or _made_before_the_tag(cache)


def _our_tag(cache: Path) -> bool:
    """A CACHEDIR.TAG with exactly our text (other tools write the same signature)."""
    try:
        return (cache / CACHE_TAG).read_text() == CACHE_TAG_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def _made_before_the_tag(cache: Path) -> bool:
    """A cache of ours from before the tag existed: a committed stage object is the evidence
    (an objects/ directory alone is not: every git repository has one)."""
    objects = cache / "objects"
    try:
        return objects.is_dir() and any(
            STAGE_OBJECT.fullmatch(p.name) and (p / ".stage.json").is_file() for p in objects.iterdir()
        )
    except OSError:
        return False


def tag_cache_dir(cache_dir: Path) -> None:
    """Create the cache directory (if needed) and its CACHEDIR.TAG; on failure, undo both."""
    tag = cache_dir / CACHE_TAG
    if _our_tag(cache_dir):
        return
    missing = [p for p in (cache_dir, *cache_dir.parents) if not os.path.lexists(p)]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tag.write_text(CACHE_TAG_TEXT)
    except OSError:
        with suppress(OSError):
            tag.unlink(missing_ok=True)
        for made in missing:  # innermost first: only the directories made just now
            with suppress(OSError):
                made.rmdir()
        raise


def publish_siblings(target: Path) -> list[tuple[Path, str, int]]:
    """The `.NAME.new-PID` / `.NAME.old-PID` directories a publish of *target* makes beside it,
    as (path, "new" or "old", pid): a live pid's is a publish under way, a dead one's debris."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(new|old)-(\d+)")
    found = []
    for entry in target.parent.iterdir() if target.parent.is_dir() else []:
        match = pattern.fullmatch(entry.name)
        if match and not entry.is_symlink() and entry.is_dir():
            found.append((entry, match.group(1), int(match.group(2))))
    return found
