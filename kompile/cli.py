"""The command line: parse options, call the core, print, choose the exit code. Nothing else.

Exit codes follow `git diff --exit-code`: 0 all good, 1 differences found, 2 invalid input.
Heavy imports (the compiler, deepdiff) happen inside the commands that need them.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path

import typer

from kompile import __version__

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Compile environments/ into Kustomize bases/ and overlays/ for GitOps.")

ROOT = typer.Option(Path("."), "--root", help="The repo root: the folder that holds environments/.",
                    file_okay=False, resolve_path=False)


class Format(str, enum.Enum):
    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        print(f"kompile {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """kompile: environment specs in, hardened Kustomize bases and overlays out."""


def _fail(exc, root: Path, fmt: Format = Format.text) -> None:
    from kompile.report import format_diagnostic, format_json

    if fmt is Format.json:
        print(format_json(exc.diagnostics))
    else:
        for diagnostic in exc.diagnostics:
            print(format_diagnostic(diagnostic, root), file=sys.stderr)
        count = len(exc.diagnostics)
        print(f"{count} problem{'s' if count != 1 else ''} found; nothing was written.", file=sys.stderr)
    raise typer.Exit(2)


@app.command()
def validate(root: Path = ROOT, format: Format = typer.Option(Format.text, "--format", help="text or json")) -> None:
    """Check the specs and report every problem, with file, line and column."""
    from kompile.errors import KompileError
    from kompile.project import load_project
    from kompile.validate import validate_project

    try:
        project = load_project(root)
        resolved = validate_project(project)
    except KompileError as exc:
        _fail(exc, root, format)
    if format is Format.json:
        print("[]")
    else:
        names = ", ".join(r.name for r in resolved)
        print(f"ok: app {project.name}, {len(resolved)} environment{'s' if len(resolved) != 1 else ''} ({names})")


@app.command()
def schema(output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of standard output.")) -> None:
    """Print the JSON Schema of App and Environment files (for editors and CI)."""
    from kompile.spec import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@app.command()
def build(
    root: Path = ROOT,
    env: list[str] = typer.Option(None, "--env", "-e", help="Build only these environments (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    format: Format = typer.Option(Format.text, "--format", help="text or json"),
) -> None:
    """Compile environments/ and write bases/ and overlays/ (only files that changed)."""
    from kompile.compiler import compile_project
    from kompile.errors import KompileError
    from kompile.git import uncommitted_outputs
    from kompile.write import apply_plan, plan_write

    try:
        output = compile_project(root, env or None)
        plan = plan_write(root, output.files, output.owned, output.project.inputs, force)
    except KompileError as exc:
        _fail(exc, root, format)
    if not plan.is_noop:
        dirty = uncommitted_outputs(root)
        if dirty:
            print(f"warning: {len(dirty)} output file(s) have uncommitted changes (e.g. {dirty[0]}); "
                  "kompile only replaces files it generated", file=sys.stderr)
    apply_plan(root, plan)
    summary = {"environments": sorted(output.environments), "added": len(plan.added), "changed": len(plan.changed),
               "removed": len(plan.deletes), "unchanged": len(plan.unchanged)}
    if format is Format.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"built {len(output.environments)} environment(s): {summary['added']} added, {summary['changed']} changed, "
              f"{summary['removed']} removed, {summary['unchanged']} unchanged")


@app.command()
def check(root: Path = ROOT) -> None:
    """Exit 0 if the committed output is exactly what the specs produce, 1 if not (listing the files)."""
    from kompile.compiler import compile_project
    from kompile.diff import compare_with_disk
    from kompile.errors import KompileError
    from kompile.manifest import read_manifest
    from kompile.write import next_manifest

    try:
        output = compile_project(root)
        manifest = next_manifest(read_manifest(root), output.files, output.owned, output.project.inputs)
        changes = compare_with_disk(root, output.files, manifest, output.owned)
    except KompileError as exc:
        _fail(exc, root)
    if not changes:
        print("ok: the output is up to date")
        return
    for label, paths in (("added", changes.added), ("changed", changes.changed), ("removed", changes.removed)):
        for path in paths:
            print(f"{label:8} {path}")
    print("the output is not up to date: run `kompile build` and commit the result", file=sys.stderr)
    raise typer.Exit(1)


@app.command()
def render(name: str = typer.Argument(..., help="The environment."), root: Path = ROOT) -> None:
    """Print the objects kompile intends for one environment, as a YAML stream."""
    from kompile.compiler import render_one
    from kompile.emit import emit_stream
    from kompile.errors import KompileError

    try:
        objects = render_one(root, name)
    except KompileError as exc:
        _fail(exc, root)
    sys.stdout.buffer.write(emit_stream(objects))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug: say so plainly, show the traceback only when asked
        if os.environ.get("KOMPILE_DEBUG"):
            raise
        print(f"kompile: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in kompile, not in your specs. Please report it with the input "
              "(KOMPILE_DEBUG=1 shows the traceback).", file=sys.stderr)
        sys.exit(70)
