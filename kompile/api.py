"""kompile's public API: what the command line does, as functions that return results and never print.

Every function takes the repo root (the folder that holds environments/), raises KompileError with
every problem found (nothing written), and returns a result whose `warnings` are diagnostics: the
opt-outs from the hardening, notices about the GitOps source, uncommitted output. The CLI is a thin
shell over this module; scripts and other tools can use it the same way.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kompile.errors import Code, Diagnostic, KompileError, Severity, Span
from kompile.load.git import FOLDERS_ASKED, Status, uncommitted_outputs
from kompile.load.listing import find_root, spec_paths
from kompile.output.check import Comparer, TreeChanges, unchanged_since_build
from kompile.output.manifest import FORMAT as MANIFEST_FORMAT
from kompile.output.manifest import MANIFEST, RECORDS, recorded_environments
from kompile.output.write import Planner, WritePlan, apply_plan, next_manifest

# The compiler and the spec model are imported by the functions that use them: finding the root and
# `check --fast` (a commit hook) answer without them, in a third of the start-up time.
if TYPE_CHECKING:
    from kompile.compiler import Output
    from kompile.index_file import Changes, Seen
    from kompile.load.project import Project
    from kompile.output.diff import Change
    from kompile.output.hydrate import Hydrated
    from kompile.tools import edit as edits
    from kompile.tools.explain import Setting

_LAZY = {
    "Output": "kompile.compiler",
    "Change": "kompile.output.diff",
    "Hydrated": "kompile.output.hydrate",
    "Setting": "kompile.tools.explain",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Build",
    "Change",
    "Check",
    "EditRefused",
    "Edited",
    "Output",
    "KompileError",
    "Removal",
    "Setting",
    "Validated",
    "build",
    "check",
    "compile",
    "diff",
    "explain",
    "find_root",
    "hydrate",
    "Hydrated",
    "init",
    "promote",
    "render",
    "schema",
    "schema_reference",
    "set_image",
    "spec_paths",
    "validate",
]


def compile(root: Path, envs: list[str] | None = None) -> Output:  # noqa: A001 - the stage's name
    """The whole pipeline in memory: every output file as bytes, every environment's objects."""
    from kompile.compiler import compile_project

    return compile_project(root, envs)


@dataclass(frozen=True)
class Validated:
    app: str
    environments: tuple[str, ...]
    opt_outs: tuple[Diagnostic, ...]  # every opt-out from the hardening, listed every time
    warnings: tuple[Diagnostic, ...]  # the opt-outs and the notices


def validate(root: Path) -> Validated:
    """Compile everything in memory, writing nothing: whatever `build` would refuse is raised here."""
    from kompile.compiler import compile_project

    output = compile_project(root, keep_objects=False)
    return Validated(
        output.project.name, tuple(output.names), output.warnings, (*output.warnings, *output.notices)
    )


@dataclass(frozen=True)
class Removal:
    """An environment whose spec is gone, and the output files that go with it."""

    environment: str
    tier: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class Build:
    output: Output
    plan: WritePlan
    removals: tuple[Removal, ...]
    warnings: tuple[Diagnostic, ...]

    @property
    def summary(self) -> str:
        plan, opt_outs = self.plan, len(self.output.warnings)
        return (
            f"built {len(self.output.names)} environment(s): {len(plan.added)} added, {len(plan.changed)} changed, "
            f"{len(plan.deletes)} removed, {len(plan.unchanged)} unchanged"
            + (f"; {opt_outs} hardening opt-out{'s' if opt_outs != 1 else ''}" if opt_outs else "")
        )


def build(
    root: Path,
    envs: list[str] | None = None,
    force: bool = False,
    remove: tuple[str, ...] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Build:
    """Compile environments/ and write bases/, overlays/, gitops/ and rendered/ (only the files that changed).

    Files are compared with the disk and staged beside their targets as they are compiled, so memory
    holds one batch of output, not the tree; only when every environment compiled and nothing could be
    lost are they renamed into place (every file old or new). Removing a production environment (or
    one of unknown tier) needs its name in `remove`. The output folders' uncommitted changes are a
    warning: kompile replaces only files it generated."""
    if not envs:
        return _build(root, envs, force, remove, progress)
    # A build of some environments stats every spec file in a forked process while this one imports the
    # compiler (each takes about a tenth of a second at ten thousand environments).
    from kompile.parallel import ahead

    started = time.time_ns()  # (before anything is looked at: what changes after is read again next time)
    with ahead(functools.partial(_changes_since_index, root)) as changes:
        from kompile.index_file import inputs_seen

        seen = functools.partial(inputs_seen, root, changes)
        return _build(root, envs, force, remove, progress, seen, started)


def _changes_since_index(root: Path) -> Changes | None:
    from kompile.index_file import changes_since_index  # (in the forked process: the parent goes on)

    return changes_since_index(root)


def _build(
    root: Path,
    envs: list[str] | None,
    force: bool,
    remove: tuple[str, ...],
    progress: Callable[[int, int], None] | None,
    seen: Callable[[], Seen | None] | None = None,
    started: int | None = None,
    loaded: Project | None = None,
) -> Build:
    from kompile.compiler import compile_project
    from kompile.output.committed import record_outputs

    with (
        Planner(root, force, stage=True) as planner,
        _git_status_early(root, envs) as early,
    ):
        output = compile_project(
            root,
            envs,
            keep_objects=False,
            progress=progress,
            sink=planner.add,
            seen=seen,
            started=started,
            loaded=loaded,
        )
        plan = planner.finish(output.owned, output.inputs, output.warnings, output.tiers, output.partial)
        guarded = [
            name
            for name, tier in plan.removed_environments.items()
            if tier in (None, "production") and name not in remove
        ]
        if guarded:
            raise KompileError([_removal_refused(name, plan.removed_environments[name]) for name in guarded])
        warnings = (*output.warnings, *output.notices)
        if plan.old_manifest is not None and plan.old_manifest.format < MANIFEST_FORMAT:
            warnings = (*warnings, _manifest_upgraded())
        if not plan.is_noop:
            # git is asked about the folders of the files replaced or deleted in place: a folder new
            # to disk (staged whole) holds no one's work.
            touched = (*(path for path, _ in plan.staged), *plan.deletes)
            dirty = uncommitted_outputs(root, touched, early)
            if dirty:
                warnings = (*warnings, _uncommitted(dirty))
        apply_plan(root, plan)
    # What this build checked, and what it left on disk: the next `build --env` checks what changed since,
    # and the next `diff` compiles only the environments whose committed overlays may have changed.
    index = output.remember()
    if not output.partial:
        record_outputs(
            root, plan.manifest, index, planner.identities, (planner.read_identities, planner.started)
        )
    removals = tuple(
        Removal(
            name,
            tier,
            tuple(
                p for p in plan.deletes if p.startswith(f"overlays/{name}/") or p.endswith(f"-{name}.yaml")
            ),
        )
        for name, tier in sorted(plan.removed_environments.items())
    )
    return Build(output, plan, removals, warnings)


def _git_status_early(root: Path, envs: list[str] | None) -> Status | contextlib.nullcontext:
    """A build of a few environments asks git about their folders now, while it compiles them (git
    runs on the other core), rather than after: in a large repo, git reads an index of 100,000 files."""
    from kompile.layout import overlay_dir
    from kompile.layout.rendered import rendered_dir
    from kompile.spec import DNS_LABEL

    folders = [folder for name in envs or () for folder in (overlay_dir(name), rendered_dir(name))]
    name = re.compile(DNS_LABEL.removeprefix("^").removesuffix("$"))
    if not folders or len(folders) > FOLDERS_ASKED or not all(map(name.fullmatch, envs or ())):
        return contextlib.nullcontext()
    return Status(root, folders)


def _manifest_upgraded() -> Diagnostic:
    return Diagnostic(
        Code.MANIFEST,
        f"{MANIFEST} was written by an older kompile (format 1): this build rewrote it in format "
        f"{MANIFEST_FORMAT}, with each environment's files listed in {RECORDS}/<environment>.json",
        Span(MANIFEST),
        f"commit {MANIFEST} and {RECORDS}/ together; kompile reads them to know which files it owns",
        Severity.WARNING,
    )


def _uncommitted(dirty: list[str]) -> Diagnostic:
    from kompile.spec.types import shown

    return Diagnostic(
        Code.GIT,
        f"{len(dirty)} file(s) in the output folders this build writes have uncommitted changes (e.g. "
        f"{shown(dirty[0], 200)}); kompile only replaces files it generated",
        Span(dirty[0]),
        severity=Severity.WARNING,
    )


def _removal_refused(name: str, tier: str | None) -> Diagnostic:
    return Diagnostic(
        Code.ENVIRONMENT_REMOVED,
        f"environment '{name}' ({'tier: production' if tier else 'tier unknown'}) is no longer in environments/: this "
        "build would delete its overlay and its GitOps object, and a GitOps tool that prunes would then remove what "
        "runs there",
        Span(f"environments/{name}.yaml"),
        f"if that is meant, run `kompile build --remove {name}`; otherwise restore environments/{name}.yaml",
    )


@dataclass(frozen=True)
class Check:
    changes: TreeChanges | None  # None: up to date
    removed: tuple[tuple[str, str | None, bool], ...] = ()  # (environment, tier, needs --remove to build)
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def up_to_date(self) -> bool:
        return not self.changes


def check(root: Path, fast: bool = False) -> Check:
    """Is the committed output exactly what the specs produce? It recompiles every time, since a manifest
    record can be forged along with the files it vouches for; `fast` trusts the record when no input
    changed (for a local hook, never where a pull request could forge it)."""
    spec_paths(root)  # (a root that is not a repo says so, before the manifest it lacks does)
    remembered = unchanged_since_build(root) if fast else None
    if remembered is not None:
        return Check(None, warnings=tuple(remembered))
    from kompile.compiler import compile_project

    with Comparer(root) as comparer:  # one batch of output in memory at a time, as a build
        old = comparer.old
        output = compile_project(root, keep_objects=False, sink=comparer.add)
        manifest = next_manifest(
            old, comparer.digests, output.owned, output.inputs, output.warnings, output.tiers
        )
        changes = comparer.finish(manifest, output.owned)
    warnings = (*output.warnings, *output.notices)
    if not changes:
        return Check(None, warnings=warnings)
    removed = tuple(
        (name, tier, tier in (None, "production"))
        for name, tier in sorted(recorded_environments(old).items() if old else ())
        if name not in output.tiers
    )
    return Check(changes, removed, warnings)


def diff(
    root: Path, base: str | None = None, envs: list[str] | None = None
) -> tuple[list[str], list[Change]]:
    """What a change does to each environment, object by object: against the committed output, or
    against the specs at git revision `base`."""
    from kompile.output.diff import diff_project

    return diff_project(root, base, envs)


@dataclass(frozen=True)
class Edited:
    path: str
    changed: bool
    build: Build | None = None  # None when not built (no change, or asked not to)


class EditRefused(KompileError):
    """The build refused an edited spec, so the spec was put back as it was."""

    def __init__(self, diagnostics, path: str):
        super().__init__(diagnostics)
        self.path = path


def _edit_and_build(root: Path, edit: edits.Edit, build_after: bool) -> Edited:
    from kompile.tools import edit as edits

    if not edit.changed:
        return Edited(edit.path, False)
    edits.write_edit(root, edit)
    if not build_after:
        return Edited(edit.path, True)
    try:  # (a full build: the GitOps objects and the record describe every environment)
        built = _build(root, None, False, (), None, started=edit.started, loaded=edits.reloaded(edit))
    except KompileError as exc:  # nothing of the build was written: put the spec back too
        edits.write_edit(root, type(edit)(edit.path, edit.after, edit.before))
        raise EditRefused(exc.diagnostics, edit.path) from None
    return Edited(edit.path, True, built)


def set_image(root: Path, env: str, tag: str | None, digest: str | None, build_after: bool = True) -> Edited:
    """Pin an environment's image (what is not given is removed), editing only that value, then rebuild;
    when the build refuses the result, the spec is put back (EditRefused)."""
    from kompile.tools import edit as edits

    return _edit_and_build(root, edits.set_image(root, env, tag, digest), build_after)


def promote(root: Path, source: str, target: str, build_after: bool = True) -> Edited:
    """Give `target` the image (tag and digest) `source` runs, editing only that value, then rebuild."""
    from kompile.tools import edit as edits

    return _edit_and_build(root, edits.promote(root, source, target), build_after)


def explain(root: Path, env: str, path: str = "", matrix: bool = False) -> list[tuple[str, Setting]]:
    """(environment, setting) rows: each setting's effective value and where it came from; with `matrix`,
    `env` is a setting's path and the rows are that setting across every environment."""
    from kompile.load.project import load_project, require_environments
    from kompile.tools.explain import Setting, explain_environment
    from kompile.validate import validate_project

    project = load_project(root)
    validate_project(project)
    if not matrix:
        require_environments(project, [env])
        return [(env, setting) for setting in explain_environment(project, env, path)]
    rows = []
    for name in project.environments:
        found = explain_environment(project, name, env)
        rows += [(name, setting) for setting in found] or [(name, Setting(env, "(not set)", "", None))]
    return rows


def init(root: Path, app: str, envs: list[str], gitops: str) -> list[str]:
    """Start a repo: a commented environments/ and kompile.schema.json; never writes over a file."""
    from kompile.tools.scaffold import scaffold, write_scaffold

    return write_scaffold(root, scaffold(app, envs, gitops))


def schema() -> dict:
    """The JSON Schema of App and Environment files."""
    from kompile.spec import json_schema

    return json_schema()


def schema_reference() -> str:
    """The spec reference as Markdown: every setting, its type, default and meaning (the README's)."""
    from kompile.spec.doc import reference_markdown

    return reference_markdown()


def hydrate(root: Path, envs: list[str] | None = None, worktree: Path | None = None) -> list[Hydrated]:
    """Commit each environment's rendered manifests to its hydrated branch (gitops.hydration mode
    branches), from HEAD: the specs and the output must be committed, and the output current, so the
    branch holds what `kubectl kustomize overlays/<env>` prints at that commit. Nothing is pushed. With
    a worktree (another `git worktree` of the repository, on that environment's branch), one
    environment's branch files are written there instead, for a pipeline that commits itself."""
    from kompile.output.hydrate import hydrate_project

    return hydrate_project(root, envs, worktree)


def render(root: Path, env: str) -> list[dict]:
    """The objects kompile intends for one environment."""
    from kompile.compiler import render_one

    return render_one(root, env)
