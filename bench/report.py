"""Render the harness's JSON (bench/run.py) as docs/benchmarks.md.

    python bench/report.py docs/benchmarks.json [docs/benchmarks.md]

Only what the JSON holds is printed: a section that was not run says so, with its reason.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ORDER = ("kernel", "writer", "initramfs", "memory", "reproducibility", "fuzz", "faults", "placements")


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and unit in ("", "bytes", "MiB"):
        return f"{value:,}".replace(",", " ")
    digits = {"×": 3, "s": 2, "MiB/s": 0, "MB": 3, "MiB": 2}.get(unit, 3)
    if unit == "s" and abs(value) >= 100:
        digits = 0
    elif unit == "s" and abs(value) >= 10:
        digits = 1
    return f"{value:.{digits}f}"


def with_unit(value: Any, unit: str) -> str:
    text = fmt(value, unit)
    if text == "—" or not unit or isinstance(value, str):
        return text
    return f"{text}×" if unit == "×" else f"{text} {unit}"


def met_text(fig: dict[str, Any], mode: str) -> str:
    if fig.get("not_measured"):
        return "not measured"
    if fig.get("target") is None:
        return "—"
    if fig.get("met") is None:
        return "n/a (smoke)" if mode == "smoke" else "—"
    return "**yes**" if fig["met"] else "**NO**"


def figure_row(fig: dict[str, Any], mode: str) -> list[str]:
    unit = fig.get("unit", "")
    goal = (fig.get("target") or {}).get("text", "—")
    if fig.get("not_measured"):
        return [fig["label"], f"not measured: {fig['not_measured']}", "", "", "0", goal, "not measured"]
    if "median" in fig:
        return [
            fig["label"],
            with_unit(fig["median"], unit),
            fmt(fig["min"], unit),
            fmt(fig["max"], unit),
            str(fig["n"]),
            goal,
            met_text(fig, mode),
        ]
    value = with_unit(fig.get("value"), unit)
    if fig.get("note"):
        value += f" ({fig['note']})"
    return [fig["label"], value, "", "", str(fig.get("n", 1)), goal, met_text(fig, mode)]


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def runs_text(values: list[float], unit: str) -> str:
    return ", ".join(fmt(v, unit) for v in values)


# --- section details ----------------------------------------------------------------------


def detail_kernel(raw: dict[str, Any]) -> list[str]:
    out: list[str] = []
    cold = raw.get("cold_vs_make")
    if cold:
        rows = [
            [str(i + 1), fmt(a, "s"), fmt(b, "s"), fmt(r, "×")]
            for i, (a, b, r) in enumerate(
                zip(cold["a"]["runs"], cold["b"]["runs"], cold["ratio_a_over_b"]["runs"], strict=True)
            )
        ]
        out += ["Cold builds, run alternately (ours, then plain make, per pair):", ""]
        out += table(["pair", "ours (s)", "plain make (s)", "ratio"], rows) + [""]
    for key, label in (
        ("noop", "no-op reruns"),
        ("one_symbol", "one-symbol rebuilds"),
        ("writer_only", "writer-only rebuilds"),
    ):
        if key in raw:
            out.append(f"- {label}: {runs_text(raw[key]['runs'], 's')} s")
    return out


def detail_writer(raw: dict[str, Any]) -> list[str]:
    res = raw["results"]
    rows = [
        [
            m,
            fmt(r["mb_s"], "MiB/s"),
            runs_text(r["seconds"], "s"),
            fmt(r["peak_private_kib"] / 1024, "MiB"),
            fmt(r["maxrss_kib"] / 1024, "MiB"),
            fmt(r["peak_dirty_writeback_kib"] / 1024, "MiB"),
        ]
        for m, r in res.items()
    ]
    out = [
        f"Synthetic vmcore: {raw['size_bytes']} bytes; {raw['runs']} round(s), methods alternated "
        f"within each round. Best writer mode here: {raw['best_writer_mode']}.",
        "",
    ]
    out += table(
        [
            "method",
            "MiB/s (median)",
            "seconds per round",
            "peak private RSS (MiB)",
            "VmHWM (MiB)",
            "peak Dirty+Writeback (MiB)",
        ],
        rows,
    )
    return out


def detail_initramfs(raw: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for variant, runs in raw["variants"].items():
        first = runs[0]
        rows = [
            [
                m,
                fmt(r["compressed"], "bytes"),
                fmt(r["compressed"] / 1e6, "MB"),
                fmt(r["cpio"], "bytes"),
                fmt(r["unpacked_ram"], "bytes"),
                runs_text([x["rd"][m]["cold_s"] for x in runs], "s"),
            ]
            for m, r in first["rd"].items()
        ]
        out += [
            f"**{variant}** (bytecode layout : interpreter), {len(runs)} run(s); runtime stage cold "
            f"{runs_text([x['runtime_cold_s'] for x in runs], 's')} s, warm "
            f"{runs_text([x['runtime_warm_s'] for x in runs], 's')} s; `auto` picks "
            f"{first['auto']['choice']}.",
            "",
        ]
        out += table(["compression", "bytes", "MB", "cpio bytes", "unpacked RAM", "cold s"], rows) + [""]
        total = sum(first["composition"].values())
        comp = [
            [c, fmt(b, "bytes"), f"{100 * b / total:.1f}%"]
            for c, b in sorted(first["composition"].items(), key=lambda kv: -kv[1])
        ]
        out += [f"Composition of the unpacked rd, {variant}:", ""]
        out += table(["category", "bytes", "share"], comp) + [""]
    return out


def detail_memory(raw: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if raw.get("runs"):
        rows = [
            [
                str(r["crash_mib"]),
                "ok" if r["ok"] else "FAIL",
                fmt(r["seconds"], "s"),
                fmt(r.get("capture_kib"), ""),
                r["why"] or "",
            ]
            for r in raw["runs"]
        ]
        out += ["Bisection (in run order):", ""]
        out += table(["crashkernel= (MiB)", "result", "seconds", "capture kernel memory (KiB)", "why"], rows)
        out.append("")
    readings = [raw.get("mem_available_at_32MiB"), *raw.get("mem_available_at_32MiB_repeats", [])]
    for i, r in enumerate(x for x in readings if x):
        cost = f", probe rootfs {r['probe_rootfs_bytes']} bytes" if "probe_rootfs_bytes" in r else ""
        out.append(
            f"- MemAvailable reading {i + 1} at 32 MiB: low {fmt(r.get('low_kib'), '')} KiB "
            f"(source: {r.get('source')}{cost})"
        )
    for key, r in raw.items():
        if key.startswith("mem_available_at_floor_") and isinstance(r, dict):
            at = key.removeprefix("mem_available_at_floor_")
            ok = (r.get("run") or {}).get("ok")
            out.append(
                f"- at the floor ({at}): MemAvailable low {fmt(r.get('low_kib'), '')} KiB "
                f"(source: {r.get('source')}; that run {'succeeded' if ok else 'failed'})"
            )
    return out


def _hex_block(label: str, text: str) -> list[str]:
    return [f"{label}:", "", "```", text, "```", ""]


def _where(item: dict[str, Any]) -> str:
    sec = item.get("section") or "between sections"
    off = f" +0x{item['section_offset']:x}" if "section_offset" in item else ""
    sym = f", symbol `{item['symbol']}`" if item.get("symbol") else ""
    return f"`{sec}`{off} (address {item.get('address')}{sym})"


def _region_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [[str(r["offset"]), str(r["length"]), _where(r), r.get("is", "")] for r in items]


def _symbols(value: Any) -> str:
    names = value if isinstance(value, list) else [value]
    return ", ".join(f"`{n}`" for n in names if n) or "no symbol"


def _image_lines(what: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if what.get("cause"):
        out += [f"**What it is:** {what['cause']}", ""]
    if what.get("first"):
        out.append(f"- first differing byte: decompressor (arch/s390/boot/vmlinux) {_where(what['first'])}")
    for size in what.get("section_sizes_differing", []):
        out.append(f"- section `{size['section']}` size: A {size['a']}, B {size['b']}")
    for got in what.get("got_entries_differing", []):
        out.append(
            f"- `.got` entry at image offset {got['offset']}: A {got['a']} ({_symbols(got['a_symbol'])}), "
            f"B {got['b']} ({_symbols(got['b_symbol'])})"
        )
    payload = what.get("payload") or {}
    if payload.get("compressed_identical"):
        out.append(f"- compressed kernel in `{payload.get('section')}`: identical")
    elif payload:
        out.append(
            f"- compressed kernel in `{payload.get('section')}` ({payload.get('compression', '?')}), "
            f"decompressed {payload.get('size_a')} / {payload.get('size_b')} bytes: "
            + (
                payload.get("note")
                or (
                    "identical once the build-id notes are masked"
                    if payload.get("identical_without_build_ids")
                    else "differs beyond the build-ids"
                )
            )
        )
    for name, names in (what.get("elf_sections_differing") or {}).items():
        if names is None:
            continue
        hits = (what.get("build_paths") or {}).get(name) or {}
        count = (
            f"; A's cache path occurs {hits['occurrences']} time(s) in A's copy"
            if hits.get("occurrences") is not None
            else ""
        )
        out.append(
            f"- `{name}` ELF sections differing: " + (", ".join(f"`{n}`" for n in names) or "none") + count
        )
    out.append("")
    if what.get("decompressor_regions_differing"):
        out += ["Differing byte runs of the image outside the compressed kernel:", ""]
        out += table(
            ["image offset", "bytes", "where", "is"], _region_rows(what["decompressor_regions_differing"])
        )
        out.append("")
    if payload.get("regions_differing"):
        out += ["Differing byte runs of the decompressed kernel (vmlinux.bin):", ""]
        out += table(["offset", "bytes", "where (vmlinux)", "is"], _region_rows(payload["regions_differing"]))
        out.append("")
    if what.get("note"):
        out.append(f"- {what['note']}")
    return out


def _what_lines(what: dict[str, Any]) -> list[str]:
    if "first" in what or "payload" in what:
        return _image_lines(what)
    out: list[str] = []
    if what.get("member"):
        fields = what.get("header_fields_differing") or {}
        extra = f"; header fields {fields}" if fields else ""
        off = f" at member offset {what['member_offset']}" if "member_offset" in what else ""
        out.append(f"- cpio member `{what['member']}`{off}{extra}")
        if what.get("zip"):
            out.append(
                f"- inside the zip: {json.dumps({k: v for k, v in what['zip'].items() if not k.startswith('hex')})}"
            )
    for item in what.get("keys_differing", []):
        out.append(f"- key `{item['key']}`: {item['a']} vs {item['b']}")
    resolved = what.get("resolved_recipe_differing")
    if isinstance(resolved, list):
        out.append("- `recipe.resolved_sha256` hashes the resolved recipe; what differs in it:")
        out += [f"  - `{r['key']}`: {r['a']} vs {r['b']}" for r in resolved]
    elif resolved:
        out.append(f"- {resolved}")
    if what.get("note"):
        out.append(f"- {what['note']}")
    return out


def detail_reproducibility(raw: dict[str, Any]) -> list[str]:
    rows = [
        [
            b["dir"],
            b["cache"],
            fmt(b["seconds"], "s"),
            ", ".join(
                f"{s} {'cached' if i['cached'] else fmt(i['seconds'], 's') + ' s'}"
                for s, i in b["stages"].items()
            ),
        ]
        for b in raw["builds"]
    ]
    out = table(["build directory", "cache directory", "total (s)", "stages"], rows) + [""]
    out.append(
        f"Seeded into both caches from `{raw['seeded_from']}`: "
        f"{', '.join(raw['builds'][0]['seeded']) or 'nothing'}; ccache: {raw['ccache']}."
    )
    if raw["problems"]:
        out.append("**Invalid comparison:** " + "; ".join(raw["problems"]))
    out.append("")
    rows = [
        [
            f["file"],
            "yes" if f["identical"] else "**no**",
            f["sha256_a"][:16],
            f["sha256_b"][:16],
            "—"
            if f["identical"]
            else f"{f['first_offset']} ({f['first_offset_hex']}), {f['differing_bytes']} bytes differ",
        ]
        for f in raw["files"]
    ]
    out += table(["file", "bit-identical", "sha256 A", "sha256 B", "first differing offset"], rows) + [""]
    for f in raw["files"]:
        if f["identical"]:
            continue
        out += [
            f"#### {f['file']}: first difference at offset {f['first_offset']} ({f['first_offset_hex']})",
            "",
        ]
        if f.get("string_a") or f.get("string_b"):
            out += [f"- string there: A `{f.get('string_a')}` / B `{f.get('string_b')}`", ""]
        out += _what_lines(f.get("what") or {}) + [""]
        out += _hex_block("A", f["hex_a"]) + _hex_block("B", f["hex_b"])
        payload = (f.get("what") or {}).get("payload") or {}
        if payload.get("hex_a"):
            out += _hex_block("decompressed vmlinux.bin, A", payload["hex_a"])
            out += _hex_block("decompressed vmlinux.bin, B", payload["hex_b"])
        what = f.get("what") or {}
        if what.get("hex_a"):
            out += _hex_block(f"cpio member {what.get('member')}, A", what["hex_a"])
            out += _hex_block(f"cpio member {what.get('member')}, B", what["hex_b"])
    return out


DETAILS = {
    "kernel": detail_kernel,
    "writer": detail_writer,
    "initramfs": detail_initramfs,
    "memory": detail_memory,
    "reproducibility": detail_reproducibility,
}


def _machine_line(m: dict[str, Any]) -> str:
    load = ""
    if "loadavg_start" in m:
        load = (
            f"; load average {' '.join(map(str, m['loadavg_start']))} at start, "
            f"{' '.join(map(str, m.get('loadavg_end', [])))} at end"
        )
    return (
        f"{m.get('cpu')}, {m.get('cores')} cores ({m.get('machine')}), Linux {m.get('kernel')}, "
        f"Python {m.get('python')}{load}"
    )


def _revision(rev: dict[str, Any]) -> str:
    changed = f" + {rev['changed_files']} uncommitted file(s)" if rev.get("changed_files") else ""
    return f"{rev.get('commit', 'unknown')}{changed}"


def _window(sec: dict[str, Any]) -> tuple[float, float] | None:
    try:
        start = dt.datetime.strptime(sec["date"], "%Y-%m-%d %H:%M:%S UTC").timestamp()
        return start, start + float(sec["seconds"])
    except (KeyError, TypeError, ValueError):
        return None


def overlaps(sections: dict[str, Any]) -> dict[str, list[str]]:
    """Sections that ran at the same time as others (separate commands): contended timings."""
    found: dict[str, list[str]] = {}
    items = [(n, _window(s)) for n, s in sections.items() if s.get("status") == "measured"]
    for name, win in items:
        for other, other_win in items:
            if other == name or win is None or other_win is None:
                continue
            if sections[name].get("command") == sections[other].get("command"):
                continue  # one invocation runs its sections one after the other
            shared = min(win[1], other_win[1]) - max(win[0], other_win[0])
            if shared >= 1:
                found.setdefault(name, []).append(f"{sections[other]['title']} ({shared:.0f} s)")
    return found


def render(doc: dict[str, Any]) -> str:
    sections = doc["sections"]
    contended = overlaps(sections)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py` (the harness; not a test, never run by CI). Do not edit by hand:",
        "re-run the command below. Raw runs: [benchmarks.json](benchmarks.json).",
        "",
        f"- date: {doc['generated']}",
        f"- machine: {_machine_line(doc['machine'])}",
        f"- revision (at the start): {_revision(doc.get('revision', {}))}",
        f"- command: `{doc['command']}`",
        "",
        "Timed figures are the median, min and max over the runs (n). A/B comparisons run",
        "alternately (A B A B …) and the ratio is taken per pair, then summarised. In smoke mode",
        "(tiny sizes, one run) targets are shown but not judged. A section that was not run in",
        "full says so.",
        "",
        "## Summary",
        "",
    ]
    rows = []
    for name in ORDER:
        sec = sections.get(name)
        if sec is None:
            continue
        mode = sec.get("mode", doc.get("mode", ""))
        if sec["status"] != "measured":
            rows.append(
                [f"**{sec['title']}**", f"{sec['status']}: {sec.get('reason', '')}", "", "", "", "", ""]
            )
            continue
        rows.append([f"**{sec['title']}** ({mode}, {sec['date']})", "", "", "", "", "", ""])
        rows += [figure_row(fig, mode) for fig in sec["figures"]]
    lines += table(["figure", "median", "min", "max", "n", "target", "met"], rows) + [""]
    for number, name in enumerate(ORDER, 1):
        sec = sections.get(name)
        if sec is None:
            continue
        lines += [f"## {number}. {sec['title']}", ""]
        if sec["status"] != "measured":
            lines += [f"**{sec['status'].capitalize()}**: {sec.get('reason', '')}", ""]
            if sec.get("traceback"):
                lines += ["```", sec["traceback"].strip()[-1500:], "```", ""]
            continue
        carried = " (carried over from an earlier run)" if sec.get("carried_over") else ""
        runs = "two builds compared" if name == "reproducibility" else f"{sec['runs']} run(s)"
        lines += [
            f"Mode: {sec['mode']}, {runs}, measured {sec['date']} in {fmt(sec['seconds'], 's')} s{carried}.",
            "",
        ]
        if sec.get("command") and sec["command"] != doc["command"]:
            lines += [f"Command: `{sec['command']}`", ""]
        if sec.get("revision") and sec["revision"] != doc.get("revision"):
            lines += [f"Revision at the start of this section: {_revision(sec['revision'])}", ""]
        if contended.get(name):
            lines += [
                f"**Contended:** ran at the same time as {', '.join(contended[name])} from another "
                "invocation, on the same cores; its timings are not clean.",
                "",
            ]
        ident = ("cpu", "cores", "machine", "kernel", "python")
        if sec.get("machine") and any(sec["machine"].get(k) != doc["machine"].get(k) for k in ident):
            lines += [f"Machine for this section: {_machine_line(sec['machine'])}", ""]
        elif (sec.get("machine") or {}).get("loadavg_start"):
            lines += [f"Load average at the start: {' '.join(map(str, sec['machine']['loadavg_start']))}", ""]
        lines += [f"- {note}" for note in sec.get("notes", [])]
        if sec.get("notes"):
            lines.append("")
        try:
            lines += DETAILS[name](sec["raw"])
        except (KeyError, TypeError, ValueError) as exc:
            lines.append(f"(details not rendered: {type(exc).__name__}: {exc})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    doc = json.loads(Path(argv[0]).read_text())
    text = render(doc)
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
