"""Diagnostics as people read them: position, code, message, the source line with a caret, a hint."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from kompile.errors import Diagnostic


def format_diagnostic(diagnostic: Diagnostic, root: Path) -> str:
    span = diagnostic.span
    where = f"{span}: " if span and span.path else ""
    lines = [f"{where}{diagnostic.severity.value}[{diagnostic.code.value}]: {diagnostic.message}"]
    source = _source_line(root, span.path, span.line) if span and span.line else None
    if source is not None:
        gutter = len(str(span.line))
        lines.append(f"   {span.line} | {source}")
        lines.append(f"   {' ' * gutter} | {' ' * _display_column(source, span.col)}^")
    if diagnostic.hint:
        lines.append(f"hint: {diagnostic.hint}")
    return "\n".join(lines)


def format_json(diagnostics) -> str:
    return json.dumps([d.as_dict() for d in diagnostics], indent=2)


def _source_line(root: Path, path: str, line: int) -> str | None:
    try:
        file = (root / path).resolve()
        if not file.is_file() or root.resolve() not in file.parents or file.stat().st_size > (1 << 20):
            return None
        text = file.read_bytes().decode("utf-8").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError):  # not UTF-8 (K102): no line worth showing
        return None
    rows = text.splitlines()
    if not 1 <= line <= len(rows):
        return None
    row = rows[line - 1].replace("\t", " ")
    # Keep control characters out of the terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in row)[:200]


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
            rows.append((change.environment, change.object, change.path, f"{change.kind.value} {new if change.new is not None else old}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows)


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else ""


def format_changes_markdown(changes, environments: list[str]) -> str:
    by_env: dict[str, list] = {env: [] for env in environments}
    for change in changes:
        by_env.setdefault(change.environment, []).append(change)
    touched = [env for env, items in by_env.items() if items]
    lines = [f"## kompile diff: {len(touched)} of {len(by_env)} environment{'s' if len(by_env) != 1 else ''} change", ""]
    lines += ["| Environment | Objects added | Objects removed | Settings changed |", "| --- | ---: | ---: | ---: |"]
    for env, items in by_env.items():
        added = sum(1 for c in items if not c.path and c.kind.value == "added")
        removed = sum(1 for c in items if not c.path and c.kind.value == "removed")
        lines.append(f"| {env} | {added} | {removed} | {len(items) - added - removed} |")
    for env in touched:
        items = by_env[env]
        lines += ["", f"<details><summary><b>{env}</b>: {len(items)} change{'s' if len(items) != 1 else ''}</summary>", "",
                  "| Object | Setting | Before | After |", "| --- | --- | --- | --- |"]
        for change in items:
            if change.path:
                old, new = _pair(change)
            else:
                old, new = ("absent", "present") if change.kind.value == "added" else ("present", "absent")
            lines.append(f"| {_cell(change.object)} | {_cell(change.path or '(whole object)')} | {_cell(old)} | {_cell(new)} |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def format_changes_json(changes) -> str:
    return json.dumps([c.as_dict() for c in changes], indent=2)
