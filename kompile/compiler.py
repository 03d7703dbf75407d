"""The pipeline, end to end and in memory: load -> validate -> normalise -> render -> lay out.

Nothing here prints, exits or writes; the CLI and write.py decide what to do with the result.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kompile.errors import Code, Collector, Diagnostic, KompileError, Severity, naming_environments
from kompile.index import checked_incrementally, write_index
from kompile.index_file import Index, Seen
from kompile.inputs import reading
from kompile.layout import Compiled, base_dir, layout_base, layout_overlay, overlay_dir
from kompile.layout.gitops import environment_gitops, gitops_header, layout_gitops
from kompile.layout.rendered import layout_rendered, rendered_dir
from kompile.load.git import folder_in_repo, remote_urls, same_repository
from kompile.load.merge import MAX_EXTENDS
from kompile.load.project import Project, load_project, require_environments
from kompile.model import Environment, Hydration, Network
from kompile.names import OUTPUT_FOLDERS
from kompile.normalise import normalise_base, normalise_environment
from kompile.parallel import cores, in_workers, job
from kompile.render import render_stages
from kompile.validate import (
    check_across,
    check_app,
    check_environment_settings,
    resolve,
    validate_project,
)
from kompile.validate.resolved import Resolved


@dataclass(frozen=True)
class Output:
    """What a build produces: the files (path relative to the root -> bytes) and where it may prune."""

    project: Project
    base: Compiled
    environments: dict[str, Compiled]
    files: dict[str, bytes]
    owned: tuple[str, ...]  # folders whose generated files this output fully describes
    names: tuple[str, ...] = ()  # the environments compiled (environments holds their objects, when kept)
    examined: dict[str, object] = field(default_factory=dict)  # environment -> what `examine` made of it
    warnings: tuple[Diagnostic, ...] = ()  # every opt-out from the hardening, each time (K604)
    tiers: dict[str, str] = field(default_factory=dict)  # environment -> its tier ("" for none)
    object_counts: dict[str, int] = field(default_factory=dict)  # environment -> objects it deploys
    partial: bool = False  # only some environments were compiled
    # Warnings about this checkout (its git remotes), shown every time but never recorded in the
    # manifest: the output is the same bytes on every machine.
    notices: tuple[Diagnostic, ...] = ()
    # Records in the local index what this run checked (kompile/index.py): a build calls it once written.
    remember: Callable[[], Index | None] = field(default=lambda: None, compare=False, repr=False)

    @property
    def inputs(self) -> dict[str, str]:
        """The input hashes to record. A partial build cannot vouch for the environments it skipped
        unless no spec changed since the last record (write.next_manifest decides)."""
        return self.project.inputs


def compile_project(
    root: Path,
    only: Sequence[str] | None = None,
    *,
    keep_objects: bool = True,
    progress: Callable[[int, int], None] | None = None,
    sink: Callable[[dict[str, bytes]], None] | None = None,
    render: frozenset[str] = frozenset(),
    seen: Callable[[], Seen | None] | None = None,
    started: int | None = None,
    loaded: Project | None = None,
    layout: bool = True,
    examine: Callable[[Compiled, dict[str, bytes]], object] | None = None,
) -> Output:
    """Compile the repo at root (only some environments, if given). Without keep_objects the result holds
    files but no objects, and large repos are compiled on every core. progress(done, total) is called
    as environments are compiled (the CLI draws a bar with it). With a sink, the files are handed to it
    batch by batch as they are made (a build stages them at once) and the result holds none: memory
    then holds one batch of output, not the whole tree. The environments named in render also get
    rendered/<env>/manifest.yaml whatever the hydration mode (kompile hydrate reads them), except
    previews (templates the ApplicationSet fills in). With only, `seen` gives what index_file.inputs_seen
    gives, when the caller looked ahead; `started` (time.time_ns()) is then from before it looked: a file
    modified since is recorded as one the next command must read again. `loaded` is the project as
    already read (by an edit, from before `started`), not read again; with only, as already checked
    whole (by a diff's first compile), so only those environments are checked again. Without layout,
    the environments' own files are not laid out: what a caller that reads only their objects needs.
    examine(compiled, files) is called with each environment's objects and files where it compiles (in
    a worker, when the work is spread), and what it returns (small, picklable) is kept in examined: a
    caller reads a large repo's objects without holding or sending them. The base's files reach the sink
    before any environment compiles (and before any worker starts)."""
    started = started or time.time_ns()
    # A command about some environments checks only those and the ones whose files changed, when the
    # index of an earlier run can say which (index.py); else every environment is loaded and checked.
    with reading(root):
        checked = checked_incrementally(root, only, keep_objects, seen) if only and loaded is None else None
        if checked is None:
            project = loaded if loaded is not None else load_project(root)
            if not only and _workers(keep_objects, project, project.environments) and _app_clean(project):
                resolved = None  # each environment is checked by the worker that compiles it
            else:
                # Without objects to keep, each environment's merged settings and model live only while
                # it compiles.
                again = only if loaded is not None else None
                resolved = validate_project(project, keep_settings=keep_objects, only=again)
        else:
            project, resolved, _ = checked
    # What is loaded now lives until the end: keep the collector from scanning it again and again (its
    # cost would grow with the repo) and from touching its pages in forked workers (copy on write).
    gc.freeze()
    try:
        output, resolved = _compile(
            root, project, resolved, only, keep_objects, progress, sink, render, layout, examine
        )
    finally:
        gc.unfreeze()
    # Only a build records what was checked (a command that reads, such as validate, writes nothing).
    old = None if checked is None else checked[2]
    return replace(output, remember=lambda: write_index(root, project, resolved, started, old))


def _compile(
    root: Path,
    project: Project,
    resolved: list[Resolved] | None,
    only: Sequence[str] | None,
    keep_objects: bool,
    progress: Callable[[int, int], None] | None,
    sink: Callable[[dict[str, bytes]], None] | None,
    render: frozenset[str] = frozenset(),
    layout: bool = True,
    examine: Callable[[Compiled, dict[str, bytes]], object] | None = None,
) -> tuple[Output, list[Resolved]]:
    """The output, and every environment as checked (resolved None: the workers check them)."""
    if only:
        require_environments(project, only)
    base = compiled_base(project)
    base_env = base.env
    files: dict[str, bytes] = {}
    emit = sink or files.update
    emit(layout_base(base))
    kinds: set[tuple[str, str]] = set()
    environments = {}
    counts = {}
    # Workers compiling every environment make each one's own GitOps files too (else the parent makes
    # them all at the end, alone).
    head = (
        gitops_header(base_env, [spec.rel for spec in project.environments.values()])
        if not only and base_env.gitops is not None and _workers(keep_objects, project, project.environments)
        else None
    )
    if resolved is None:
        resolved, results = _check_and_compile_all(base, project, progress, emit, render, head, examine)
        compiled = resolved
    else:
        compiled = [r for r in resolved if r.name in only] if only else resolved
        results = _compile_all(
            base, project, compiled, keep_objects, progress, emit, render, head, layout, examine
        )
    problems = [(item, d) for item, result in zip(compiled, results, strict=True) for d in result.problems]
    if problems:  # a problem in the environment's own file needs no name; one in a shared file does
        own = [d for item, d in problems if d.span is not None and d.span.path == item.sources[-1]]
        shared = [
            (item.name, d)
            for item, d in problems
            if not (d.span is not None and d.span.path == item.sources[-1])
        ]
        raise KompileError([*own, *naming_environments(shared)])
    envs = [result.env for result in results]
    for env, result in zip(envs, results, strict=True):
        kinds |= result.kinds
        counts[env.name] = result.count
        if result.compiled is not None:
            environments[env.name] = result.compiled
    if only:  # the GitOps objects describe every environment: a partial build leaves them as they are
        owned = (
            base_dir(project.name),
            *(overlay_dir(env.name) for env in envs),
            *(rendered_dir(env.name) for env in envs),
        )
    else:
        made = None if head is None else [path for result in results for path in result.gitops]
        emit(layout_gitops(base_env, envs, kinds, made))
        owned = OUTPUT_FOLDERS
    output = Output(
        project,
        base,
        environments,
        dict(sorted(files.items())),
        owned,
        tuple(env.name for env in envs),
        {env.name: result.examined for env, result in zip(envs, results, strict=True)} if examine else {},
        opt_out_warnings(project, envs),
        {env.name: env.tier.value if env.tier else "" for env in envs},
        counts,
        partial=bool(only),
        notices=tuple(source_warnings(root, project)),
    )
    return output, resolved


def opt_out_warnings(project: Project, envs: list[Environment]) -> tuple[Diagnostic, ...]:
    """Every way the specs weaken a promise on purpose, as warnings shown by validate, build and check:
    security.allow entries, and the kinds allowKinds lets extra resources have."""
    warnings = [
        Diagnostic(
            Code.OPT_OUT,
            f"environment '{env.name}' opts out of {allowance.rule}"
            f"{' for ' + allowance.object if allowance.object else ' for every object'}: {allowance.reason}",
            allowance.where,
            severity=Severity.WARNING,
        )
        for env in envs
        for allowance in env.security.allow
    ]
    kinds = project.app.spec.get("allowKinds")
    for index, entry in enumerate(kinds or ()):
        warnings.append(
            Diagnostic(
                Code.OPT_OUT,
                f"extra resources may be of kind {entry.get('kind')} "
                f"({entry.get('group') or 'core'} group): allowKinds lists it",
                kinds.item_span(index),
                severity=Severity.WARNING,
            )
        )
    return tuple(warnings)


def source_warnings(root: Path, project: Project) -> list[Diagnostic]:
    """Where the GitOps objects send Argo CD or Flux, when that is not plainly this repository and this
    folder: what the controller syncs from there is not what kompile checked here."""
    gitops = project.app.spec.get("gitops")
    if not isinstance(gitops, dict) or not gitops.get("repoURL"):
        return []
    warnings = []
    remotes = remote_urls(root)
    if remotes and not any(same_repository(str(gitops["repoURL"]), url) for url in remotes):
        warnings.append(
            Diagnostic(
                Code.OPT_OUT,
                f"gitops.repoURL {gitops['repoURL']} is not a remote of this repository: "
                "the controller would sync what kompile never checked",
                gitops.value_span("repoURL"),
                "point it at this repository (git remote -v lists its URLs)",
                Severity.WARNING,
            )
        )
    folder = folder_in_repo(root)
    path = str(gitops.get("path") or "").strip("/")
    if folder is not None and path != folder:
        warnings.append(
            Diagnostic(
                Code.OPT_OUT,
                f"gitops.path is '{path}', but the output is in '{folder}' of its "
                "repository: the controller would sync files kompile did not write",
                gitops.value_span("path") if "path" in gitops else gitops.span,
                f"set gitops.path: {folder}" if folder else "remove gitops.path",
                Severity.WARNING,
            )
        )
    return warnings


@dataclass
class _Result:
    files: dict[str, bytes]
    kinds: frozenset[tuple[str, str]]  # (API group, kind) of what the environment deploys
    count: int  # how many objects
    compiled: Compiled | None
    problems: tuple[Diagnostic, ...] = ()
    env: Environment | None = None  # without objects kept: only what the GitOps objects and warnings read
    gitops: tuple[str, ...] = ()  # its own GitOps files, when it made them (files holds them)
    examined: object = None  # what compile_project's examine made of it


def _compile_one(
    base: Compiled,
    project: Project,
    item: Resolved,
    keep_objects: bool,
    render: frozenset[str] = frozenset(),
    merged: bool = False,
    gitops_head: str | None = None,
    layout: bool = True,
    examine: Callable[[Compiled, dict[str, bytes]], object] | None = None,
) -> _Result:
    """One environment compiled (item holds its merged settings when kept, or when merged says so). With
    gitops_head, its own GitOps files too (what heads every GitOps file); with examine, what it makes of
    the environment's objects and files."""
    env = normalise_environment(project, item if keep_objects or merged else resolve(project, item))
    try:
        untransformed, deployed = render_stages(env, base.ids)
        compiled = Compiled(env, deployed, untransformed)
        files = layout_overlay(base, compiled) if layout else {}
        if layout and (renders(env) or (env.name in render and not env.pull_requests)):
            files.update(layout_rendered(compiled))
    except KompileError as exc:  # every environment is compiled, so one run lists every problem
        return _Result({}, frozenset(), 0, None, tuple(exc.diagnostics), env)
    examined = examine(compiled, files) if examine is not None else None
    gitops = environment_gitops(base.env, env, gitops_head) if gitops_head is not None else {}
    files.update(gitops)
    kinds = frozenset((obj["apiVersion"].rpartition("/")[0], obj["kind"]) for obj in deployed)
    if keep_objects:
        return _Result(
            files, kinds, len(deployed), compiled, env=env, gitops=tuple(gitops), examined=examined
        )
    return _Result(
        files, kinds, len(deployed), None, env=_summary(env), gitops=tuple(gitops), examined=examined
    )


def renders(env: Environment) -> bool:
    """Whether build writes rendered/<env>/ (a preview is a template the ApplicationSet fills in)."""
    return env.gitops is not None and env.gitops.hydration is Hydration.RENDERED and not env.pull_requests


_NO_NETWORK = Network()


def _summary(env: Environment) -> Environment:
    """An environment without what only its own objects needed: what the GitOps objects, the opt-out
    warnings and the record of tiers read (a preview template keeps its ingress, accounts, env and
    image). The parent holds one per environment, each unpickled apart: what it keeps counts."""
    preview = {} if env.pull_requests else {"ingress": None, "accounts": (), "env": {}}
    return replace(
        env,
        components=(),
        extra_objects=(),
        patches=(),
        sealed_secrets=(),
        external_secrets=(),
        secrets=(),
        migrate=None,
        setting_spans={},
        network=_NO_NETWORK,
        gitops=None,  # the GitOps objects read the base's; renders() was asked before
        where=None,
        **preview,
    )


def _compile_all(
    base: Compiled,
    project: Project,
    envs: list[Resolved],
    keep_objects: bool,
    progress: Callable[[int, int], None] | None,
    emit: Callable[[dict[str, bytes]], None],
    render: frozenset[str] = frozenset(),
    gitops_head: str | None = None,
    layout: bool = True,
    examine: Callable[[Compiled, dict[str, bytes]], object] | None = None,
) -> list[_Result]:
    """Each environment compiles on its own, so large repos are spread over the cores. Workers are
    forked after loading and validating, so they share the model instead of receiving it; they send
    back only file bytes, which are handed on (emit) as each batch arrives and then dropped. Results
    come back in order: the output does not depend on the schedule."""
    results: list[_Result] = []
    keep = _keeper(results, emit, progress, len(envs))
    workers = _workers(keep_objects, project, [env.name for env in envs])
    if not workers:
        for env in envs:
            keep(_compile_one(base, project, env, keep_objects, render, layout=layout, examine=examine))
        return results
    shared = (base, project, envs, render, gitops_head, layout, examine)
    in_workers(workers, shared, _compile_chunk, len(envs), keep)
    return results


def _keeper(
    results: list[_Result],
    emit: Callable[[dict[str, bytes]], None],
    progress: Callable[[int, int], None] | None,
    total: int,
) -> Callable[[_Result], None]:
    """What takes each result as it comes: its files handed on, then dropped."""
    kind_sets: dict[frozenset, frozenset] = {}  # most environments deploy the same kinds: one copy each

    def keep(result: _Result) -> None:
        if not result.problems:
            emit(result.files)
        result.files = {}
        result.kinds = kind_sets.setdefault(result.kinds, result.kinds)
        results.append(result)
        if progress is not None:
            progress(len(results), total)

    return keep


def _workers(keep_objects: bool, project: Project, names: Iterable[str]) -> int:
    """How many processes compile these environments (0: this one, alone, as when its objects are kept,
    or for one environment: the others would wait)."""
    names = list(names)
    return 0 if keep_objects or len(names) < 2 else cores(_work(project, names))


TYPICAL_LINES = 250  # an App's file and an environment's own, as most repos write them


def _work(project: Project, names: list[str]) -> int:
    """How many typical environments' work compiling these is. An environment's work grows with the
    lines of the files it merges (the App's, those it extends, its own): nineteen environments that
    extend a chain of large files are as much work as thousands of small ones, and are spread over the
    cores as those are."""
    app = project.app.doc.span.end_line
    through: dict[str, int] = {}  # an environment's lines and those of the environments it extends

    def lines(name: str, depth: int = 0) -> int:
        if name not in through:
            spec = project.environments[name]
            parent = spec.spec.get("extends")
            inherited = (
                lines(parent, depth + 1)
                if isinstance(parent, str) and parent in project.environments and depth <= MAX_EXTENDS
                else 0
            )
            through[name] = spec.doc.span.end_line + inherited
        return through[name]

    return max(len(names), sum(app + lines(name) for name in names) // TYPICAL_LINES)


def _compile_chunk(bounds: tuple[int, int]) -> list[_Result]:
    base, project, envs, render, head, layout, examine = job()
    return [
        _compile_one(base, project, env, False, render, gitops_head=head, layout=layout, examine=examine)
        for env in envs[bounds[0] : bounds[1]]
    ]


def _app_clean(project: Project) -> bool:
    """Whether the App's own checks find nothing (then workers may check the environments as they
    compile them: the base they compile against is sound). Else every check runs first, as usual, and
    says what is wrong."""
    out = Collector()
    check_app(project, out)
    return not out.items


def _check_and_compile_all(
    base: Compiled,
    project: Project,
    progress: Callable[[int, int], None] | None,
    emit: Callable[[dict[str, bytes]], None],
    render: frozenset[str],
    gitops_head: str | None,
    examine: Callable[[Compiled, dict[str, bytes]], object] | None = None,
) -> tuple[list[Resolved], list[_Result]]:
    """Every environment checked and compiled by the same worker, in one pass (its merged settings made
    once): the checks of ten thousand environments no longer hold up both cores. The problems are
    gathered in the order validate_project finds them and raised as it raises them, before any
    problem of compiling; nothing is written then (what was staged is removed)."""
    names = list(project.environments)
    results: list[_Result] = []
    keep = _keeper(results, emit, progress, len(names))
    found: list[_Checked] = []

    def take(item: tuple[_Checked, _Result | None]) -> None:
        checked, result = item
        found.append(checked)
        project.inputs.update(checked.inputs)  # (the files its checks read: recorded as every input is)
        project.identities.update(checked.identities)
        if result is not None:
            keep(result)

    job = (base, project, names, render, gitops_head, examine)
    in_workers(_workers(False, project, names), job, _check_chunk, len(names), take)
    out, shared = Collector(), []
    for checked in found:
        out.add(checked.problems)
        shared += checked.shared
    resolved = [checked.resolved for checked in found if checked.resolved is not None]
    check_across(project, out, shared, [item.placement for item in resolved])
    return resolved, results


@dataclass
class _Checked:
    """What a worker's check of one environment found (validate_project's share of it)."""

    resolved: Resolved | None  # (without its settings)
    problems: list[Diagnostic]
    shared: list[tuple[str, Diagnostic]]
    inputs: dict[str, str]  # the other files its checks read, with their hashes (as load records a spec's)
    identities: dict[str, str]


def _check_chunk(bounds: tuple[int, int]) -> list[tuple[_Checked, _Result | None]]:
    base, project, names, render, head, examine = job()
    out: list[tuple[_Checked, _Result | None]] = []
    for name in names[bounds[0] : bounds[1]]:
        problems = Collector()
        shared: list[tuple[str, Diagnostic]] = []
        item = check_environment_settings(project, name, True, set(), shared, problems)
        clean = item is not None and not problems and not any(d.severity is Severity.ERROR for _, d in shared)
        result = (
            _compile_one(base, project, item, False, render, merged=True, gitops_head=head, examine=examine)
            if clean
            else None
        )
        reads = item.reads if item is not None else ()  # (its own and the App's files: read already)
        checked = _Checked(
            replace(item, settings=None) if item is not None else None,
            problems.items,
            shared,
            {rel: project.inputs[rel] for rel in reads if rel in project.inputs},
            {rel: project.identities[rel] for rel in reads if rel in project.identities},
        )
        out.append((checked, result))
    return out


def compiled_base(project: Project) -> Compiled:
    """The App's own objects (what bases/ holds)."""
    base_env = normalise_base(project)
    return Compiled(base_env, *reversed(render_stages(base_env)))


def environment_objects(project: Project, base: Compiled, name: str) -> list[dict]:
    """The objects of one environment of a project compiled and checked whole already (as a diff's
    compile of a revision's specs was), made again against its compiled base: its settings merged and
    checked once more, the App's checks not run again."""
    out = Collector()
    shared: list[tuple[str, Diagnostic]] = []
    item = check_environment_settings(project, name, True, set(), shared, out)
    errors = [d for _, d in shared if d.severity is Severity.ERROR]
    if item is None or out.items or errors:
        raise KompileError([*out.items, *errors])
    result = _compile_one(base, project, item, True, layout=False)
    if result.problems:
        raise KompileError(result.problems)
    return result.compiled.objects


def render_one(root: Path, name: str) -> list[dict]:
    """The objects kompile intends for one environment (kompile render)."""
    return compile_project(root, [name]).environments[name].objects
