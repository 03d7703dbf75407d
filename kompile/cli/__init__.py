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
    from kompile.load.project import find_root

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

    for warning in warnings:
        print(format_diagnostic(warning, root, use_colour(sys.stderr)), file=sys.stderr)


def _fail(exc, root: Path, fmt: Format = Format.text) -> None:
    from kompile.cli.report import format_diagnostic, format_json, use_colour

    if fmt is Format.json:
        print(format_json(exc.diagnostics))
    else:
        colour = use_colour(sys.stderr)
        for diagnostic in exc.diagnostics:
            print(format_diagnostic(diagnostic, root, colour), file=sys.stderr)
        count = len(exc.diagnostics)
        print(f"{count} problem{'s' if count != 1 else ''} found; nothing was written.", file=sys.stderr)
    raise typer.Exit(2)


@app.command()
def validate(root: Root = None, format: FormatOption = Format.text) -> None:
    """Check the specs and report every problem, with file, line and column. It compiles everything in
    memory (writing nothing), so whatever `build` would refuse, `validate` reports."""
    from kompile.cli.report import format_json
    from kompile.compiler import compile_project
    from kompile.errors import KompileError

    try:
        output = compile_project(root, keep_objects=False)
    except KompileError as exc:
        _fail(exc, root, format)
    # Every opt-out from the hardening is listed, every time: weakening is allowed only in plain sight.
    opt_outs = output.warnings
    if format is Format.json:
        print(format_json(opt_outs))
        return
    _warn((*opt_outs, *output.notices), root)
    count = len(output.names)
    print(
        f"ok: app {output.project.name}, {count} environment{'s' if count != 1 else ''} ({', '.join(output.names)})"
        + (f"; {len(opt_outs)} hardening opt-out{'s' if len(opt_outs) != 1 else ''}" if opt_outs else "")
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

    from kompile.errors import KompileError
    from kompile.tools.scaffold import scaffold, write_scaffold

    name = app_name or re.sub(r"[^a-z0-9-]+", "-", root.resolve().name.lower()).strip("-") or "app"
    try:
        files = scaffold(name, [e.strip() for e in env.split(",") if e.strip()], gitops.value)
        write_scaffold(root, files)
    except KompileError as exc:
        _fail(exc, root)
    for path in files:
        print(f"wrote {path}")
    print("next: edit environments/, then `kompile build` (and `kompile validate` any time)")


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Print the JSON Schema of App and Environment files (for editors and CI)."""
    from kompile.spec import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"kompile: cannot write {output}: {exc.strerror}", file=sys.stderr)
        raise typer.Exit(2) from None


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but problems.")]


def _plan_build(root: Path, only=None, force: bool = False, progress=None, remove: tuple[str, ...] = ()):
    """(output, plan) of a build, nothing written yet; KompileError when it cannot be done, and when it
    would remove a production environment (or one of unknown tier) that `remove` does not name."""
    from kompile.compiler import compile_project
    from kompile.errors import Code, Diagnostic, KompileError, Span
    from kompile.output.write import plan_write

    output = compile_project(root, only, keep_objects=False, progress=progress)
    plan = plan_write(
        root, output.files, output.owned, output.inputs, force, output.warnings, output.tiers, output.partial
    )
    guarded = [
        name
        for name, tier in plan.removed_environments.items()
        if tier in (None, "production") and name not in remove
    ]
    if guarded:
        raise KompileError(
            [
                Diagnostic(
                    Code.ENVIRONMENT_REMOVED,
                    f"environment '{name}' ({'tier: production' if plan.removed_environments[name] else 'tier unknown'}) "
                    f"is no longer in environments/: this build would delete its overlay and its GitOps object, and a GitOps tool "
                    "that prunes would then remove what runs there",
                    Span(f"environments/{name}.yaml"),
                    f"if that is meant, run `kompile build --remove {name}`; otherwise restore environments/{name}.yaml",
                )
                for name in guarded
            ]
        )
    return output, plan


def _removals(plan) -> list[str]:
    """Lines naming every environment a build removes, and every file (and GitOps object) with it."""
    lines = []
    for name, tier in sorted(plan.removed_environments.items()):
        gone = [
            path
            for path in plan.deletes
            if path.startswith(f"overlays/{name}/") or path.endswith(f"-{name}.yaml")
        ]
        lines.append(
            f"removed environment '{name}'" + (f" (tier: {tier})" if tier else "") + f": {len(gone)} files"
        )
        lines += [f"  removed  {path}" for path in gone]
    return lines


def _apply_build(root: Path, plan) -> None:
    """Write a planned build, warning first when the output folders hold uncommitted changes."""
    from kompile.load.git import uncommitted_outputs
    from kompile.output.write import apply_plan

    if not plan.is_noop:
        dirty = uncommitted_outputs(root)
        if dirty:
            print(
                f"warning: {len(dirty)} output file(s) have uncommitted changes (e.g. {dirty[0]}); "
                "kompile only replaces files it generated",
                file=sys.stderr,
            )
    apply_plan(root, plan)


def _built(output, plan) -> str:
    opt_outs = len(output.warnings)
    return (
        f"built {len(output.names)} environment(s): {len(plan.added)} added, {len(plan.changed)} changed, "
        f"{len(plan.deletes)} removed, {len(plan.unchanged)} unchanged"
        + (f"; {opt_outs} hardening opt-out{'s' if opt_outs != 1 else ''}" if opt_outs else "")
    )


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
            help="Confirm removing this production environment's "
            "output (repeatable); needed when its spec is gone.",
        ),
    ] = None,
    format: FormatOption = Format.text,
    quiet: Quiet = False,
) -> None:
    """Compile environments/ and write bases/, overlays/ and gitops/ (only files that changed)."""
    from kompile.cli.report import format_summary, summary_rows
    from kompile.errors import KompileError
    from kompile.load.project import spec_paths

    try:
        progress = _progress(len(env) if env else len(spec_paths(root)), quiet or format is Format.json)
        output, plan = _plan_build(root, env or None, force, progress, tuple(remove or ()))
        _apply_build(root, plan)
    except KompileError as exc:
        _fail(exc, root, format)
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
    _warn((*output.warnings, *output.notices), root)  # shown even with --quiet: weakening only in plain sight
    for line in _removals(plan):  # and so is every removal: an environment never disappears silently
        print(line, file=sys.stderr)
    if not quiet:
        print(format_summary(rows))
        print(_built(output, plan))


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
    from kompile.errors import KompileError
    from kompile.output.diff import unchanged_since_build
    from kompile.output.manifest import read_manifest, warning_diagnostics

    if fast and not full and unchanged_since_build(root):
        _warn(
            warning_diagnostics(read_manifest(root)), root
        )  # the opt-outs it was built with, listed every time
        print("ok: the output is up to date")
        return
    from kompile.compiler import compile_project
    from kompile.output.diff import compare_with_disk
    from kompile.output.write import next_manifest

    try:
        output = compile_project(root, keep_objects=False)
        old = read_manifest(root)
        manifest = next_manifest(
            old, output.files, output.owned, output.inputs, output.warnings, output.tiers
        )
        changes = compare_with_disk(root, output.files, manifest, output.owned)
    except KompileError as exc:
        _fail(exc, root)
    _warn((*output.warnings, *output.notices), root)
    if not changes:
        print("ok: the output is up to date")
        return
    from kompile.output.manifest import recorded_environments

    for name, tier in sorted(recorded_environments(old).items() if old else ()):
        if name not in output.tiers:  # first, and loud: what goes is easy to miss in a list of files
            confirm = "; `kompile build` needs --remove " + name if tier in (None, "production") else ""
            print(
                f"REMOVED  environment '{name}'"
                + (f" (tier: {tier})" if tier else "")
                + f": its overlay and GitOps object go{confirm}"
            )
    for label, paths in (
        ("added", changes.added),
        ("changed", changes.changed),
        ("removed", changes.removed),
    ):
        for path in paths:
            print(f"{label:8} {path}")
    print("the output is not up to date: run `kompile build` and commit the result", file=sys.stderr)
    raise typer.Exit(1)


def _edit_and_build(root: Path, make_edit, no_build: bool) -> None:
    """Write a spec edit, then rebuild; when the build refuses the result, the spec is put back."""
    from kompile.errors import KompileError
    from kompile.tools.edit import write_edit

    try:
        edit = make_edit()
    except KompileError as exc:
        _fail(exc, root)
    if not edit.changed:
        print(f"{edit.path}: already so; nothing changed")
        return
    write_edit(root, edit)
    if no_build:
        print(f"{edit.path}: image updated (not built)")
        return
    try:
        output, plan = _plan_build(root)
    except KompileError as exc:
        from kompile.cli.report import format_diagnostic, use_colour

        for diagnostic in exc.diagnostics:  # shown against the edited file, before it is put back
            print(format_diagnostic(diagnostic, root, use_colour(sys.stderr)), file=sys.stderr)
        write_edit(root, type(edit)(edit.path, edit.after, edit.before))
        print(
            f"the build refuses this change, so {edit.path} is back as it was; nothing else was written.",
            file=sys.stderr,
        )
        raise typer.Exit(2) from None
    try:
        _apply_build(root, plan)
    except KompileError as exc:
        _fail(exc, root)
    print(f"{edit.path}: image updated; {_built(output, plan)}")


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
    from kompile.tools.edit import set_image as pin

    _edit_and_build(root, lambda: pin(root, env, tag, digest), no_build)


@app.command()
def promote(
    source: Annotated[str, typer.Argument(help="The environment whose image to copy.")],
    target: Annotated[str, typer.Argument(help="The environment to give it to.")],
    root: Root = None,
    no_build: NoBuild = False,
) -> None:
    """Give one environment the image (tag and digest) another runs, editing only that value, then rebuild."""
    from kompile.tools.edit import promote as copy_image

    _edit_and_build(root, lambda: copy_image(root, source, target), no_build)


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
    from kompile.errors import KompileError
    from kompile.load.project import load_project, require_environments
    from kompile.tools.explain import Setting, explain_environment
    from kompile.validate import validate_project

    try:
        project = load_project(root)
        validate_project(project)
        if matrix:
            if path is not None:
                raise typer.BadParameter(
                    "with --matrix, give only the setting: kompile explain --matrix PATH"
                )
            rows = []
            for name in project.environments:
                found = explain_environment(project, name, first)
                rows += [(name, setting) for setting in found] or [
                    (name, Setting(first, "(not set)", "", None))
                ]
        else:
            require_environments(project, [first])
            rows = [(first, setting) for setting in explain_environment(project, first, path or "")]
    except KompileError as exc:
        _fail(exc, root)
    if not rows or all(s.value == "(not set)" for _, s in rows):
        print(f"no setting under '{first if matrix else path}'", file=sys.stderr)
        raise typer.Exit(1)

    def shown(text: str, limit: int = 60) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"

    table = [
        ((env if matrix else ""), s.path, shown(s.shown), str(s.span) if s.span else "", s.origin)
        for env, s in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for env, name, value, where, origin in table:
        head = f"{env:<{widths[0]}}  " if matrix else ""
        print(f"{head}{name:<{widths[1]}} = {value:<{widths[2]}}  {where:<{widths[3]}}  {origin}".rstrip())


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
    from kompile.cli.report import format_changes_json, format_changes_markdown, format_changes_text
    from kompile.errors import KompileError
    from kompile.output.diff import diff_project

    try:
        names, changes = diff_project(root, base, env or None)
    except KompileError as exc:
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
    except OSError as exc:  # the file system or the machine said no: not a bug, and not the specs
        where = f" {exc.filename}" if exc.filename else ""
        print(f"kompile: cannot go on:{where}: {exc.strerror or exc}", file=sys.stderr)
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
