"""The command line: parse options, call kompile.api, print, choose the exit code. Nothing else.

Exit codes follow `git diff --exit-code`: 0 all good, 1 differences found, 2 invalid input.
The API (and with it the compiler and deepdiff) is imported inside the commands, so `--version`
and `--help` stay quick.
"""

from __future__ import annotations

import enum
import gc
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kompile import __version__

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Compile environments/ into Kustomize bases/ and overlays/ for GitOps.",
)


def _discover_root(value: Path | None) -> Path:
    """--root as given, else the nearest folder at or above the working directory that holds environments/
    (found as git finds .git); with none, say so and how to start one."""
    if value is not None:
        return value
    from kompile.api import find_root

    found = find_root(Path.cwd())
    if found is None:
        print(
            f"kompile: no environments/ folder in {Path.cwd()} or in any folder above it\n"
            "hint: start a repo here with `kompile init`, or pass --root DIR",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    return found


Root = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="The repo root: the folder that holds environments/ "
        "(default: found from the working directory upwards).",
        file_okay=False,
        callback=_discover_root,
    ),
]
InitRoot = Annotated[
    Path,
    typer.Option("--root", help="Where to start the repo (default: the working directory).", file_okay=False),
]
Envs = Annotated[list[str] | None, typer.Option("--env", "-e", help="Only these environments (repeatable).")]


class Format(enum.StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="text or json")]


def _version(value: bool) -> None:
    if value:
        print(f"kompile {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """kompile: environment specs in, hardened Kustomize bases and overlays out."""


def _warn(warnings, root: Path) -> None:
    from kompile.cli.report import format_diagnostic, use_colour

    sources: dict = {}
    for warning in warnings:
        print(format_diagnostic(warning, root, use_colour(sys.stderr), sources), file=sys.stderr)


def _show(diagnostics, root: Path) -> None:
    from kompile.cli.report import format_diagnostic, use_colour

    colour, sources = use_colour(sys.stderr), {}
    for diagnostic in diagnostics:
        print(format_diagnostic(diagnostic, root, colour, sources), file=sys.stderr)


def _fail(exc, root: Path, fmt: Format = Format.text) -> None:
    from kompile.cli.report import format_json

    if fmt is Format.json:
        print(format_json(exc.diagnostics))
    else:
        _show(exc.diagnostics, root)
        count = len(exc.diagnostics)
        print(f"{count} problem{'s' if count != 1 else ''} found; nothing was written.", file=sys.stderr)
    raise typer.Exit(2)


@app.command()
def validate(root: Root = None, format: FormatOption = Format.text) -> None:
    """Check the specs and report every problem, with file, line and column. It compiles everything in
    memory (writing nothing), so whatever `build` would refuse, `validate` reports."""
    from kompile import api
    from kompile.cli.report import format_json

    try:
        result = api.validate(root)
    except api.KompileError as exc:
        _fail(exc, root, format)
    # Every opt-out from the hardening is listed, every time: weakening is allowed only in plain sight.
    if format is Format.json:
        print(format_json(result.opt_outs))
        return
    _warn(result.warnings, root)
    count, opt_outs = len(result.environments), len(result.opt_outs)
    print(
        f"ok: app {result.app}, {count} environment{'s' if count != 1 else ''} ({', '.join(result.environments)})"
        + (f"; {opt_outs} hardening opt-out{'s' if opt_outs != 1 else ''}" if opt_outs else "")
    )


class GitOpsChoice(enum.StrEnum):
    argocd = "argocd"
    flux = "flux"


@app.command()
def init(
    root: InitRoot = Path("."),
    app_name: Annotated[
        str | None, typer.Option("--app", help="The app's name (default: the folder's name).")
    ] = None,
    env: Annotated[str, typer.Option("--env", help="Comma-separated environments.")] = "dev,staging,prod",
    gitops: Annotated[GitOpsChoice, typer.Option("--gitops", help="argocd or flux")] = GitOpsChoice.argocd,
) -> None:
    """Start a repo: a commented environments/ (App and environments) and kompile.schema.json for editors."""
    import re

    from kompile import api

    name = app_name or re.sub(r"[^a-z0-9-]+", "-", root.resolve().name.lower()).strip("-") or "app"
    try:
        files = api.init(root, name, [e.strip() for e in env.split(",") if e.strip()], gitops.value)
    except api.KompileError as exc:
        _fail(exc, root)
    for path in files:
        print(f"wrote {path}")
    print("next: edit environments/, then `kompile build` (and `kompile validate` any time)")


class SchemaFormat(enum.StrEnum):
    json = "json"
    markdown = "markdown"


@app.command()
def hydrate(
    root: Root = None,
    env: Envs = None,
    worktree: Annotated[
        Path | None,
        typer.Option(
            "--worktree", help="Write one environment's branch files into this git worktree, not commit."
        ),
    ] = None,
    format: FormatOption = Format.text,
) -> None:
    """Commit each environment's rendered manifests to its hydrated branch (gitops.hydration: branches),
    from HEAD, as Argo CD's Source Hydrator would (hydrator.metadata for GitOps Promoter). Pushes nothing."""
    from kompile import api

    try:
        results = api.hydrate(root, env or None, worktree)
    except api.KompileError as exc:
        _fail(exc, root, format)
    if format is Format.json:
        print(json.dumps([{**vars(r)} for r in results], indent=2))
        return
    for r in results:
        print(
            f"{r.environment:<12} {r.branch:<32} {r.commit[:12]} {'committed' if r.changed else 'unchanged'}"
        )
    if results:
        refs = " ".join(f"refs/heads/{r.branch}" for r in results)
        print(f"publish with: git push origin {refs} refs/notes/hydrator.metadata")


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
    format: Annotated[
        SchemaFormat,
        typer.Option("--format", help="json (a JSON Schema, for editors and CI) or markdown (the reference)"),
    ] = SchemaFormat.json,
) -> None:
    """Print the JSON Schema of App and Environment files (for editors and CI), or the spec reference."""
    from kompile import api

    text = (
        api.schema_reference()
        if format is SchemaFormat.markdown
        else json.dumps(api.schema(), indent=2) + "\n"
    )
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"kompile: cannot write {output}: {exc.strerror}", file=sys.stderr)
        raise typer.Exit(2) from None


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but problems.")]


def _progress(total_hint: int, quiet: bool):
    """A bar on a terminal when there are more than a few dozen environments to compile."""
    from kompile.cli.report import ProgressBar

    if quiet or total_hint <= 24 or not sys.stderr.isatty():
        return None
    return ProgressBar(sys.stderr, "compiling")


@app.command()
def build(
    root: Root = None,
    env: Envs = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite generated files that were edited by hand.")
    ] = False,
    remove: Annotated[
        list[str] | None,
        typer.Option(
            "--remove",
            help="Confirm removing this production environment's output (repeatable); needed when its spec is gone.",
        ),
    ] = None,
    format: FormatOption = Format.text,
    quiet: Quiet = False,
) -> None:
    """Compile environments/ and write bases/, overlays/, gitops/ and rendered/ (only files that changed)."""
    from kompile import api
    from kompile.cli.report import format_removals, format_summary, summary_rows

    try:
        progress = _progress(len(env) if env else len(api.spec_paths(root)), quiet or format is Format.json)
        result = api.build(root, env or None, force, tuple(remove or ()), progress)
    except api.KompileError as exc:
        _fail(exc, root, format)
    output, plan = result.output, result.plan
    rows = summary_rows(output.names, output.object_counts, len(output.base.objects), plan)
    if format is Format.json:
        print(
            json.dumps(
                {
                    "environments": rows,
                    "added": len(plan.added),
                    "changed": len(plan.changed),
                    "removed": len(plan.deletes),
                    "unchanged": len(plan.unchanged),
                    "removed_environments": sorted(plan.removed_environments),
                    "warnings": [w.as_dict() for w in output.warnings],
                },
                indent=2,
            )
        )
        return
    _warn(result.warnings, root)  # shown even with --quiet: weakening only in plain sight
    # And so is every removal: an environment never disappears silently.
    for line in format_removals(result.removals):
        print(line, file=sys.stderr)
    if not quiet:
        print(format_summary(rows))
        print(result.summary)


@app.command()
def check(
    root: Root = None,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Trust the manifest's record when no input changed (a local "
            "hook on a large repo; never where a pull request could forge the record).",
        ),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", hidden=True, help="Recompile (the default; kept for old workflows).")
    ] = False,
) -> None:
    """Exit 0 if the committed output is exactly what the specs produce, 1 if not (listing the files).
    It recompiles every time: a manifest record can be forged along with the files it vouches for."""
    from kompile import api

    try:
        result = api.check(root, fast=fast and not full)
    except api.KompileError as exc:
        _fail(exc, root)
    _warn(result.warnings, root)
    if result.up_to_date:
        print("ok: the output is up to date")
        return
    for (
        name,
        tier,
        needs_remove,
    ) in result.removed:  # first, and loud: what goes is easy to miss in a list of files
        confirm = f"; `kompile build` needs --remove {name}" if needs_remove else ""
        tier_text = f" (tier: {tier})" if tier else ""
        print(f"REMOVED  environment '{name}'{tier_text}: its overlay and GitOps object go{confirm}")
    changes = result.changes
    for label, paths in (
        ("added", changes.added),
        ("changed", changes.changed),
        ("removed", changes.removed),
    ):
        for path in paths:
            print(f"{label:8} {path}")
    print("the output is not up to date: run `kompile build` and commit the result", file=sys.stderr)
    raise typer.Exit(1)


def _edit(root: Path, run, no_build: bool) -> None:
    """Report a spec edit and its rebuild; when the build refused it, the spec is already back."""
    from kompile import api

    try:
        edited = run(not no_build)
    except api.EditRefused as exc:
        _show(exc.diagnostics, root)  # shown against the edited file, before it was put back
        print(
            f"the build refuses this change, so {exc.path} is back as it was; nothing else was written.",
            file=sys.stderr,
        )
        raise typer.Exit(2) from None
    except api.KompileError as exc:
        _fail(exc, root)
    if not edited.changed:
        print(f"{edited.path}: already so; nothing changed")
    elif edited.build is None:
        print(f"{edited.path}: image updated (not built)")
    else:
        _warn(edited.build.warnings, root)
        print(f"{edited.path}: image updated; {edited.build.summary}")


NoBuild = Annotated[bool, typer.Option("--no-build", help="Only edit the spec; do not rebuild the output.")]


@app.command("set-image")
def set_image(
    env: Annotated[str, typer.Argument(help="The environment.")],
    tag: Annotated[str | None, typer.Option("--tag", help="Image tag, e.g. 1.4.3.")] = None,
    digest: Annotated[str | None, typer.Option("--digest", help="Image digest, sha256:...")] = None,
    root: Root = None,
    no_build: NoBuild = False,
) -> None:
    """Pin an environment's image (what is not given is removed), editing only that value, then rebuild."""
    from kompile import api

    _edit(root, lambda build_after: api.set_image(root, env, tag, digest, build_after), no_build)


@app.command()
def promote(
    source: Annotated[str, typer.Argument(help="The environment whose image to copy.")],
    target: Annotated[str, typer.Argument(help="The environment to give it to.")],
    root: Root = None,
    no_build: NoBuild = False,
) -> None:
    """Give one environment the image (tag and digest) another runs, editing only that value, then rebuild."""
    from kompile import api

    _edit(root, lambda build_after: api.promote(root, source, target, build_after), no_build)


@app.command()
def explain(
    first: Annotated[
        str, typer.Argument(metavar="ENV", help="The environment (with --matrix: the setting).")
    ],
    path: Annotated[
        str | None,
        typer.Argument(metavar="[PATH]", help="Only settings under this path, e.g. components.web."),
    ] = None,
    matrix: Annotated[bool, typer.Option("--matrix", help="One setting across every environment.")] = False,
    root: Root = None,
) -> None:
    """The effective value of each setting of an environment and where it came from."""
    from kompile import api
    from kompile.cli.report import format_explain

    if matrix and path is not None:
        raise typer.BadParameter("with --matrix, give only the setting: kompile explain --matrix PATH")
    try:
        rows = api.explain(root, first, path or "", matrix)
    except api.KompileError as exc:
        _fail(exc, root)
    if not rows or all(s.value == "(not set)" for _, s in rows):
        print(f"no setting under '{first if matrix else path}'", file=sys.stderr)
        raise typer.Exit(1)

    print(format_explain(rows, matrix))


class DiffFormat(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


@app.command()
def diff(
    root: Root = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base", help="Compare with the specs at this git revision instead of the committed output."
        ),
    ] = None,
    env: Envs = None,
    format: Annotated[
        DiffFormat, typer.Option("--format", help="text, markdown (for a pull-request comment) or json")
    ] = DiffFormat.text,
) -> None:
    """What a change does to each environment, object by object. Exit 1 when anything differs."""
    from kompile import api
    from kompile.cli.report import format_changes_json, format_changes_markdown, format_changes_text

    try:
        names, changes = api.diff(root, base, env or None)
    except api.KompileError as exc:
        _fail(exc, root)
    if format is DiffFormat.json:
        print(format_changes_json(changes))
    elif format is DiffFormat.markdown:
        sys.stdout.write(format_changes_markdown(changes, names))
    else:
        print(format_changes_text(changes))
    if changes:
        raise typer.Exit(1)


@app.command()
def render(name: Annotated[str, typer.Argument(help="The environment.")], root: Root = None) -> None:
    """Print the objects kompile intends for one environment, as a YAML stream."""
    from kompile import api
    from kompile.cli.report import format_stream

    try:
        objects = api.render(root, name)
    except api.KompileError as exc:
        _fail(exc, root)
    sys.stdout.buffer.write(format_stream(objects))


def main() -> None:
    # One short run that allocates hundreds of thousands of objects and frees few: the collector's
    # default (a pass every 700 allocations, each older generation scanned again and again) costs
    # more than it finds here, as mypy found for the same shape of program.
    gc.set_threshold(100_000, 50, 100)
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:  # the file system or the machine said no: not a bug, and not the specs
        where = f" {exc.filename}:" if exc.filename else ""
        print(f"kompile: cannot go on:{where} {exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # a bug: say so plainly, show the traceback only when asked
        if os.environ.get("KOMPILE_DEBUG"):
            raise
        print(
            f"kompile: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in kompile, not in your specs. Please report it with the input "
            "(KOMPILE_DEBUG=1 shows the traceback).",
            file=sys.stderr,
        )
        sys.exit(70)
