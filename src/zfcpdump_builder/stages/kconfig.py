"""Kernel configuration: render zfcpdump_defconfig from a recipe, and verify the final .config.

Every symbol the recipe requests (base defconfig, fragments, `set`) must end up with the
requested value after `make zfcpdump_defconfig`. Kconfig silently drops symbols whose
dependencies are unmet; we list each one with its `depends on` line instead.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ..core import paths
from ..core.errors import ConfigError, RecipeError
from ..recipe.resolved import KernelPlan

LINE_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
LINE_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")
KCONFIG_DEF = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")
KCONFIG_DEPENDS = re.compile(r"^\s*depends\s+on\s+(.+?)\s*$")
KCONFIG_SELECT = re.compile(r"^\s*select\s+([A-Za-z0-9_]+)")
KCONFIG_ATTR_END = re.compile(
    r"^\s*(?:(?:menu)?config|choice|endchoice|menu|endmenu|if|endif|source|comment)\b"
)
# Symbols whose value follows from the compiler and tools, not from a request.
TOOLCHAIN_PREFIXES = ("CC_", "LD_", "AS_", "PAHOLE_", "RUSTC_", "BINDGEN_", "TOOLS_", "GCC_", "CLANG_")


@dataclass(frozen=True)
class KconfigEntry:
    symbol: str
    value: str  # .config spelling: y, n, m, number, 0x..., or "quoted"
    origin: str


def parse_config_text(text: str) -> dict[str, str]:
    """Symbols of a .config or defconfig; `# CONFIG_X is not set` reads as 'n'."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = LINE_SET.match(line)
        if match:
            values[match.group(1)] = match.group(2)
            continue
        match = LINE_UNSET.match(line)
        if match:
            values[match.group(1)] = "n"
    return values


def _read_entries(path: Path, origin: str) -> list[KconfigEntry]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"cannot read kernel config file {path}: {exc.strerror}") from None
    return [KconfigEntry(s, v, origin) for s, v in parse_config_text(text).items()]


STOCK_DEFCONFIG = "arch/s390/configs/zfcpdump_defconfig"


def base_defconfig(plan: KernelPlan, tree: Path | None) -> Path:
    """The recipe's base file, or with `base: source` the kernel tree's own zfcpdump_defconfig."""
    if plan.base is not None:
        return plan.base
    if tree is None:
        raise ConfigError("kernel.config.base is `source`, but the kernel tree is not unpacked yet")
    stock = tree / STOCK_DEFCONFIG
    if not stock.is_file():
        raise ConfigError(
            f"kernel.config.base is `source`, but {tree} has no {STOCK_DEFCONFIG}",
            hint="name a base defconfig file in the recipe (kernel.config.base: FILE), or use a "
            "kernel tree that ships zfcpdump_defconfig",
        )
    return stock


def requested_entries(
    plan: KernelPlan, set_label: str = "kernel.config.set", tree: Path | None = None
) -> tuple[list[KconfigEntry], list[tuple[str, list[KconfigEntry]]]]:
    """The base entries (with overrides applied in place) and the additions by origin."""
    base = _read_entries(base_defconfig(plan, tree), "base")
    layers = [(f"fragment {f.name}", _read_entries(f, f"fragment {f.name}")) for f in plan.fragments]
    overrides = [KconfigEntry(s, value, set_label) for s, value in plan.symbols]
    layers.append((set_label, overrides))
    if plan.placement_symbols:
        label = "initramfs.placement"
        layers.append((label, [KconfigEntry(s, value, label) for s, value in plan.placement_symbols]))
    positions = {e.symbol: i for i, e in enumerate(base)}
    additions: dict[str, list[KconfigEntry]] = {}
    placed: dict[str, tuple[str, int]] = {}
    for origin, entries in layers:
        for entry in entries:
            if entry.symbol in positions:
                base[positions[entry.symbol]] = entry
            elif entry.symbol in placed:
                where, index = placed[entry.symbol]
                additions[where][index] = entry
            else:
                additions.setdefault(origin, []).append(entry)
                placed[entry.symbol] = (origin, len(additions[origin]) - 1)
    return base, list(additions.items())


def requests(plan: KernelPlan, recipe_name: str, tree: Path | None = None) -> dict[str, KconfigEntry]:
    """Every symbol the recipe asks for; those from kernel.config.set name the recipe, for errors."""
    base, additions = requested_entries(plan, f"recipe {recipe_name}", tree)
    merged = {e.symbol: e for e in base}
    for _, entries in additions:
        merged.update({e.symbol: e for e in entries})
    return merged


def _kconfig_line(entry: KconfigEntry) -> str:
    if entry.value == "n":
        return f"# CONFIG_{entry.symbol} is not set"
    return f"CONFIG_{entry.symbol}={entry.value}"


def render_defconfig(plan: KernelPlan, tree: Path | None = None) -> str:
    """zfcpdump_defconfig text for the kernel section *plan*, through templates/zfcpdump_defconfig.j2."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["kconfig_line"] = _kconfig_line
    # Only what shapes the config goes in: overrides are labelled by their key, not by the
    # recipe's name, so two recipes with the same kernel share kconfig and kernel objects.
    base, additions = requested_entries(plan, tree=tree)
    template = env.get_template("zfcpdump_defconfig.j2")
    return template.render(base=base, additions=additions)


@dataclass(frozen=True)
class Enclosure:
    """A block around a symbol's definition that can keep a requested value out: a `choice`
    (one member wins), a `menu` with `visible if`, or an `if` block."""

    kind: str  # choice, menu, if
    label: str  # the choice's prompt or the menu's title
    conditions: tuple[str, ...]  # "depends on X", "visible if Y", "if Z"
    members: tuple[str, ...] = ()  # a choice's symbols

    def describe(self) -> str:
        where = {"choice": "in choice", "menu": "in menu", "if": "inside"}[self.kind]
        label = f' "{self.label}"' if self.label else ""
        return f"{where}{label}" + (f" ({'; '.join(self.conditions)})" if self.conditions else "")


@dataclass(frozen=True)
class KconfigIndex:
    """Which symbols this kernel tree defines, their `depends on` lines, their selectors and the
    blocks (choice, menu with `visible if`, if) they are defined in."""

    symbols: frozenset[str]
    depends: dict[str, tuple[str, ...]]
    selected_by: dict[str, tuple[str, ...]]
    enclosures: dict[str, tuple[Enclosure, ...]] = field(default_factory=dict)

    @classmethod
    def scan(cls, tree: Path, arch: str = "s390") -> KconfigIndex:
        """Every Kconfig file of *tree*, except other architectures' (their `depends on`
        lines would explain nothing about an s390 build)."""
        scan = _Scan()
        for kconfig in tree.rglob("Kconfig*"):
            parts = kconfig.relative_to(tree).parts
            if kconfig.is_file() and not (len(parts) > 2 and parts[0] == "arch" and parts[1] != arch):
                scan.file(kconfig.read_text(errors="replace"))
        enclosures = {
            k: tuple({b.freeze().describe(): b.freeze() for b in v}.values())
            for k, v in scan.enclosures.items()
        }
        return cls(
            frozenset(scan.symbols),
            {k: tuple(dict.fromkeys(v)) for k, v in scan.depends.items()},
            {k: tuple(v) for k, v in scan.selected_by.items()},
            enclosures,
        )


@dataclass
class _Block:
    kind: str
    label: str = ""
    conditions: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)

    def freeze(self) -> Enclosure:
        return Enclosure(self.kind, self.label, tuple(self.conditions), tuple(self.members))


KCONFIG_CHOICE = re.compile(r"^\s*choice\b")
KCONFIG_MENU = re.compile(r'^\s*menu\s+"(.*)"')
KCONFIG_IF = re.compile(r"^\s*if\s+(.+?)\s*$")
KCONFIG_END = re.compile(r"^\s*(endchoice|endmenu|endif)\b")
KCONFIG_PROMPT = re.compile(r'^\s*prompt\s+"(.*)"')
KCONFIG_VISIBLE = re.compile(r"^\s*visible\s+if\s+(.+?)\s*$")
KCONFIG_HELP = re.compile(r"^(\s*)(?:help|---help---)\s*$")


def _open_or_close(line: str, stack: list[_Block]) -> str | None:
    """Open or close a choice, menu or if block on *stack*: "opened", "closed" or None."""
    menu, cond, end = KCONFIG_MENU.match(line), KCONFIG_IF.match(line), KCONFIG_END.match(line)
    if KCONFIG_CHOICE.match(line):
        stack.append(_Block("choice"))
    elif menu:
        stack.append(_Block("menu", menu.group(1)))
    elif cond:
        stack.append(_Block("if", conditions=[f"if {cond.group(1)}"]))
    elif end:
        kind = {"endchoice": "choice", "endmenu": "menu", "endif": "if"}[end.group(1)]
        if stack and stack[-1].kind == kind:
            stack.pop()
        return "closed"
    else:
        return None
    return "opened"


@dataclass
class _Scan:
    """One pass over Kconfig files. Blocks are tracked per file: an `if` around a `source`
    line is not carried into the sourced file."""

    symbols: set[str] = field(default_factory=set)
    depends: dict[str, list[str]] = field(default_factory=dict)
    selected_by: dict[str, list[str]] = field(default_factory=dict)
    enclosures: dict[str, list[_Block]] = field(default_factory=dict)

    def file(self, text: str) -> None:
        stack: list[_Block] = []
        current: str | None = None  # the symbol whose attributes follow
        describing: _Block | None = None  # the choice or menu whose attributes follow
        help_indent: int | None = None
        for line in text.splitlines():
            if help_indent is not None:
                if not line.strip() or len(line.expandtabs()) - len(line.expandtabs().lstrip()) > help_indent:
                    continue
                help_indent = None
            helped = KCONFIG_HELP.match(line)
            if helped:
                help_indent = len(helped.group(1).expandtabs())
                continue
            match = KCONFIG_DEF.match(line)
            if match:
                current, describing = match.group(1), None
                self.symbols.add(current)
                if stack:
                    known = self.enclosures.setdefault(current, [])
                    known += [b for b in stack if all(b is not k for k in known)]
                    if stack[-1].kind == "choice":
                        stack[-1].members.append(current)
                continue
            change = _open_or_close(line, stack)
            if change is not None:
                current = None
                describing = stack[-1] if change == "opened" and stack[-1].kind != "if" else None
                continue
            if KCONFIG_ATTR_END.match(line):
                current = describing = None
                continue
            if describing is not None:
                self._describe(line, describing)
            elif current:
                dep = KCONFIG_DEPENDS.match(line)
                if dep:
                    self.depends.setdefault(current, []).append(dep.group(1))
                select = KCONFIG_SELECT.match(line)
                if select:
                    self.selected_by.setdefault(select.group(1), []).append(current)

    @staticmethod
    def _describe(line: str, block: _Block) -> None:
        prompt = KCONFIG_PROMPT.match(line)
        if prompt and not block.label:
            block.label = prompt.group(1)
        dep = KCONFIG_DEPENDS.match(line)
        if dep:
            block.conditions.append(f"depends on {dep.group(1)}")
        visible = KCONFIG_VISIBLE.match(line)
        if visible:
            block.conditions.append(f"visible if {visible.group(1)}")


def check_symbols_exist(wanted: dict[str, KconfigEntry], index: KconfigIndex, kernel: str) -> None:
    unknown = sorted(s for s in wanted if s not in index.symbols)
    if not unknown:
        return
    lines = []
    for symbol in unknown:
        close = difflib.get_close_matches(symbol, index.symbols, n=1, cutoff=0.8)
        tip = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"  {symbol} from {wanted[symbol].origin}{tip}")
    raise ConfigError(f"{len(unknown)} symbol(s) do not exist in {kernel}'s Kconfig:\n" + "\n".join(lines))


def _same(requested: str, actual: str | None) -> bool:
    if actual is None:
        return requested == "n"
    if requested == actual:
        return True
    try:
        return int(requested, 0) == int(actual, 0)
    except ValueError:
        return False


def dropped_symbols(
    wanted: dict[str, KconfigEntry], final: dict[str, str]
) -> list[tuple[KconfigEntry, str | None]]:
    """Requested symbols whose final value differs (toolchain-dependent ones excepted)."""
    return [
        (entry, final.get(symbol))
        for symbol, entry in sorted(wanted.items())
        if not symbol.startswith(TOOLCHAIN_PREFIXES) and not _same(entry.value, final.get(symbol))
    ]


def explain_drops(
    drops: list[tuple[KconfigEntry, str | None]], index: KconfigIndex, final: dict[str, str]
) -> str:
    lines = []
    for entry, actual in drops:
        shown = "unset" if actual is None else actual
        lines.append(f"  {entry.symbol}: requested {entry.value}, got {shown} ({entry.origin})")
        for dep in index.depends.get(entry.symbol, ()):
            state = ", ".join(f"{s}={final.get(s, 'n')}" for s in _dep_symbols(dep))
            lines.append(f"      depends on {dep}" + (f"   [{state}]" if state else ""))
        selectors = [s for s in index.selected_by.get(entry.symbol, ()) if final.get(s) in ("y", "m")]
        if selectors and actual in ("y", "m"):
            lines.append(f"      selected by {', '.join(sorted(set(selectors)))}")
        for block in index.enclosures.get(entry.symbol, ()):
            lines.append("      " + block.describe() + _state(block.conditions, final))
            chosen = [m for m in block.members if m != entry.symbol and final.get(m) == "y"]
            if block.kind == "choice":
                lines.append(
                    f"      the choice took {', '.join(chosen)}"
                    if chosen
                    else "      the choice took no member"
                )
    return "\n".join(lines)


def _state(conditions: tuple[str, ...], final: dict[str, str]) -> str:
    names = _dep_symbols(" ".join(conditions))  # the keywords are lower case: never matched
    return ("   [" + ", ".join(f"{n}={final.get(n, 'n')}" for n in names) + "]") if names else ""


def _dep_symbols(expression: str) -> list[str]:
    names = re.findall(r"\b[A-Z][A-Z0-9_]*\b", expression)
    return [n for n in dict.fromkeys(names) if n not in ("if",)]


def verify(wanted: dict[str, KconfigEntry], final_text: str, index: KconfigIndex) -> None:
    final = parse_config_text(final_text)
    drops = dropped_symbols(wanted, final)
    if drops:
        raise ConfigError(
            f"{len(drops)} requested symbol(s) did not survive "
            f"`make zfcpdump_defconfig`:\n" + explain_drops(drops, index, final),
            hint="fix the recipe's kernel.config (enable the dependency, or "
            "request the value the kernel can build)",
        )
