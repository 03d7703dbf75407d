"""Diagnostics as people read them: position, code, message, the source line with a caret, a hint."""

from __future__ import annotations

import json
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
        text = file.read_bytes().decode("utf-8", "replace").lstrip("\ufeff")
    except OSError:
        return None
    rows = text.splitlines()
    if not 1 <= line <= len(rows):
        return None
    row = rows[line - 1].replace("\t", " ")
    # Keep control characters out of the terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in row)[:200]


def _display_column(source: str, col: int) -> int:
    return max(0, min(col - 1, len(source)))
