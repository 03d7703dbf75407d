"""Diagnostics as people read them: position, code, message, the source line with a caret, a hint."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

from kompile.errors import Diagnostic
from kompile.safefs import Refused, Root

COLOURS = {
    "error": "\033[1;31m",
    "warning": "\033[1;33m",
    "caret": "\033[1;31m",
    "hint": "\033[36m",
    "where": "\033[1m",
}
RESET = "\033[0m"


def use_colour(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return (
        hasattr(stream, "isatty")
        and stream.isatty()
        and "NO_COLOR" not in os.environ
        and os.environ.get("TERM") != "dumb"
    )


def format_diagnostic(
    diagnostic: Diagnostic, root: Path, colour: bool = False, sources: dict | None = None
) -> str:
    """sources: each file's lines, read once for every diagnostic printed with the same dict (thousands
    of problems in one file must not read and split it thousands of times)."""

    def paint(kind: str, text: str) -> str:
        return f"{COLOURS[kind]}{text}{RESET}" if colour else text

    span = diagnostic.span
    where = paint("where", f"{_printable(str(span))}:") + " " if span and span.path else ""
    severity = diagnostic.severity.value
    message = _printable(diagnostic.message, keep="\n")
    lines = [f"{where}{paint(severity, f'{severity}[{diagnostic.code.value}]')}: {message}"]
    source = _source_line(root, span.path, span.line, sources) if span and span.line else None
    if source is not None:
        gutter = len(str(span.line))
        lines.append(f"   {span.line} | {source}")
        lines.append(f"   {' ' * gutter} | {' ' * _display_column(source, span.col)}{paint('caret', '^')}")
    if diagnostic.hint:
        lines.append(paint("hint", "hint:") + " " + _printable(diagnostic.hint, keep="\n"))
    return "\n".join(lines)


def _printable(text: str, keep: str = "") -> str:
    """text with every control character (and every byte of a name that was not UTF-8) escaped: a file
    name or a value in a message never reaches the terminal as an escape code or a line of its own."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch in keep else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def format_json(diagnostics) -> str:
    return json.dumps([d.as_dict() for d in diagnostics], indent=2)


def _source_line(root: Path, path: str, line: int, sources: dict | None = None) -> str | None:
    sources = {} if sources is None else sources
    if path not in sources:
        sources[path] = _source_rows(root, path)
    rows = sources[path]
    if rows is None or not 1 <= line <= len(rows):
        return None
    row = rows[line - 1].replace("\t", " ")
    # Keep control characters out of the terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in row)[:200]


def _source_rows(root: Path, path: str) -> list[str] | None:
    try:
        with Root(root) as disk:
            text = disk.read(path, 1 << 20).decode("utf-8").lstrip("\ufeff")
    except (OSError, Refused, UnicodeDecodeError):  # a link, not UTF-8 (K102), gone: no line worth showing
        return None
    return text.splitlines()


def _display_column(source: str, col: int) -> int:
    """Where the caret goes: wide characters (CJK, emoji) take two terminal cells."""
    before = source[: max(0, col - 1)]
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in before)


# ---------------------------------------------------------------------------------------------
# kompile diff


def _value(value, limit: int = 120) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), sort_keys=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pair(change) -> tuple[str, str]:
    old, new = change.old, change.new
    if change.path.endswith("image") and isinstance(old, str) and isinstance(new, str):
        from kompile.k8s.transformers import image_name

        if image_name(old) == image_name(new):  # show what differs: the tag or digest
            cut = len(image_name(old))
            old, new = old[cut:].lstrip(":@"), new[cut:].lstrip(":@")
    return _value(old), _value(new)


def format_changes_text(changes) -> str:
    if not changes:
        return "no changes"
    rows = []
    for change in changes:
        if not change.path:
            rows.append((change.environment, change.object, change.kind.value, ""))
        elif change.kind.value == "changed":
            old, new = _pair(change)
            rows.append((change.environment, change.object, change.path, f"{old} -> {new}"))
        else:
            old, new = _pair(change)
            rows.append(
                (
                    change.environment,
                    change.object,
                    change.path,
                    f"{change.kind.value} {new if change.new is not None else old}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows
    )


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else ""


def format_changes_markdown(changes, environments: list[str]) -> str:
    by_env: dict[str, list] = {env: [] for env in environments}
    for change in changes:
        by_env.setdefault(change.environment, []).append(change)
    touched = [env for env, items in by_env.items() if items]
    whole = {c.environment: c.kind.value for c in changes if c.object == "(the whole environment)"}
    lines = [
        f"## kompile diff: {len(touched)} of {len(by_env)} environment{'s' if len(by_env) != 1 else ''} change",
        "",
    ]
    gone = sorted(env for env, kind in whole.items() if kind == "removed")
    if gone:
        lines += [
            f"> **Removed environment{'s' if len(gone) != 1 else ''}: {', '.join(gone)}.** Every object of "
            f"{'them' if len(gone) != 1 else 'it'} leaves the repo; a GitOps tool that prunes removes it from the cluster.",
            "",
        ]
    lines += [
        "| Environment | Objects added | Objects removed | Settings changed |",
        "| --- | ---: | ---: | ---: |",
    ]
    for env, items in by_env.items():
        items = [c for c in items if c.object != "(the whole environment)"]
        added = sum(1 for c in items if not c.path and c.kind.value == "added")
        removed = sum(1 for c in items if not c.path and c.kind.value == "removed")
        label = f"{env} (**{whole[env]}**)" if env in whole else env
        lines.append(f"| {label} | {added} | {removed} | {len(items) - added - removed} |")
    for env in touched:
        items = by_env[env]
        lines += [
            "",
            f"<details><summary><b>{env}</b>: {len(items)} change{'s' if len(items) != 1 else ''}</summary>",
            "",
            "| Object | Setting | Before | After |",
            "| --- | --- | --- | --- |",
        ]
        for change in items:
            if change.path:
                old, new = _pair(change)
            else:
                old, new = ("absent", "present") if change.kind.value == "added" else ("present", "absent")
            lines.append(
                f"| {_cell(change.object)} | {_cell(change.path or '(whole object)')} | {_cell(old)} | {_cell(new)} |"
            )
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def format_changes_json(changes) -> str:
    return json.dumps([c.as_dict() for c in changes], indent=2)


# ---------------------------------------------------------------------------------------------
# kompile build


def summary_rows(names: tuple[str, ...], object_counts: dict[str, int], base_count: int, plan) -> list[dict]:
    """One row per environment (and the shared base and GitOps files): objects, and files by fate."""
    groups: dict[str, dict] = {"(base)": {"environment": "(base)", "objects": base_count}}
    for name in names:
        groups[name] = {"environment": name, "objects": object_counts.get(name, 0)}
    groups["(gitops)"] = {"environment": "(gitops)", "objects": None}
    for row in groups.values():
        row.update(added=0, changed=0, unchanged=0, removed=0)
    changed = set(plan.changed)
    for fate, paths in (
        ("added", plan.added),
        ("changed", changed),
        ("unchanged", plan.unchanged),
        ("removed", plan.deletes),
    ):
        for path in paths:
            parts = path.split("/")
            key = {"bases": "(base)", "gitops": "(gitops)"}.get(
                parts[0], parts[1] if len(parts) > 2 else None
            )
            if key not in groups:  # an environment removed from the specs
                groups[key] = {
                    "environment": key,
                    "objects": 0,
                    "added": 0,
                    "changed": 0,
                    "unchanged": 0,
                    "removed": 0,
                }
            groups[key][fate] += 1
    return [
        row
        for row in groups.values()
        if row["environment"] != "(gitops)"
        or any(row[k] for k in ("added", "changed", "unchanged", "removed"))
    ]


def format_summary(rows: list[dict], limit: int = 30) -> str:
    columns = ("environment", "objects", "added", "changed", "unchanged", "removed")
    shown = (
        rows
        if len(rows) <= limit
        else [r for r in rows if r["added"] or r["changed"] or r["removed"]][:limit]
    )
    total = {"environment": "total", **{c: sum(r[c] or 0 for r in rows) for c in columns[1:]}}
    total["objects"] = sum(
        r["objects"] or 0 for r in rows if not r["environment"].startswith("(")
    )  # base objects are in each
    table = [columns, *([str(r[c]) if r[c] is not None else "-" for c in columns] for r in [*shown, total])]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    if len(rows) > limit:
        lines.insert(
            -1, f"... {len(rows) - len(shown)} more without changes (--format json lists every environment)"
        )
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar on a terminal, redrawn in place; silent elsewhere."""

    def __init__(self, stream, label: str, width: int = 30) -> None:
        self.stream, self.label, self.width, self.shown = stream, label, width, -1

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        if filled == self.shown and done != total:
            return
        self.shown = filled
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        if done == total:
            self.stream.write("\r" + " " * (len(self.label) + self.width + 24) + "\r")
        self.stream.flush()


def format_stream(objects: list[dict]) -> bytes:
    """Objects as one YAML stream, written as the output files are."""
    from kompile.emit import emit_stream

    return emit_stream(objects)


def format_removals(removals) -> list[str]:
    """Lines naming every environment a build removes, and every file (and GitOps object) with it."""
    lines = []
    for removal in removals:
        tier = f" (tier: {removal.tier})" if removal.tier else ""
        lines.append(f"removed environment '{removal.environment}'{tier}: {len(removal.files)} files")
        lines += [f"  removed  {path}" for path in removal.files]
    return lines


def format_explain(rows, matrix: bool) -> str:
    """`kompile explain` rows as aligned columns: setting = value, where it is written, where it came from."""

    def shown(text: str, limit: int = 60) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"

    table = [
        ((env if matrix else ""), s.path, shown(s.shown), str(s.span) if s.span else "", s.origin)
        for env, s in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = []
    for env, name, value, where, origin in table:
        head = f"{env:<{widths[0]}}  " if matrix else ""
        lines.append(
            f"{head}{name:<{widths[1]}} = {value:<{widths[2]}}  {where:<{widths[3]}}  {origin}".rstrip()
        )
    return "\n".join(lines)
