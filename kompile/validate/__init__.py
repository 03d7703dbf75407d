"""Rules across fields and files, checked on each environment's merged settings before anything is
rendered. Every rule reports into one Collector so a run lists every problem at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from kompile import names, spec
from kompile.errors import Code, Collector, Diagnostic, KompileError, naming_environments
from kompile.load.merge import app_settings, effective_spec
from kompile.load.project import Project
from kompile.source import YMap
from kompile.validate.clusters import Placement, check_hydration, check_namespaces, placement
from kompile.validate.components import check_component, check_helpers, check_references
from kompile.validate.environment import check_environment
from kompile.validate.objects import check_allow_kinds, check_extra_resources, check_patches, check_plaintext
from kompile.validate.resolved import MAX_COMPONENTS, Resolved
from kompile.validate.traffic import check_allowed_hosts, check_ingress, check_network


def validate_app(project: Project) -> None:
    """The App's own settings alone (what a command needs before it compiles, such as its GitOps)."""
    out = Collector()
    check_settings(project, app_settings(project), None, out)
    check_hydration(project, out)
    out.raise_if_any()


def validate_project(
    project: Project,
    keep_settings: bool = True,
    only: Iterable[str] | None = None,
    placements: Iterable[Placement] = (),
    placed_before: Callable[[Placement], bool] | None = None,
) -> list[Resolved]:
    """Every environment merged and checked, every problem collected and raised once. Without
    keep_settings each Resolved keeps only its placement (a large repo then holds one environment's
    merged settings at a time: `resolve` merges it again when it is compiled). With `only`, just those
    environments are checked in full, and the rules across environments read the others' placements
    (from the index of a run that checked them, when none of their files changed since). When every
    environment checked is `placed_before` (placed as in a set that passed them, the others included),
    those rules are known to pass, and the others' placements are not read."""
    out = Collector()
    app_problems = check_app(project, out)
    resolved: list[Resolved] = []
    shared: list[tuple[str, Diagnostic]] = []  # found in a file other than the environment's own
    for name in project.environments if only is None else only:
        item = check_environment_settings(project, name, keep_settings, app_problems, shared, out)
        if item is not None:
            resolved.append(item)
    checked = [item.placement for item in resolved]
    passed = placed_before is not None and all(map(placed_before, checked))
    check_across(project, out, shared, () if passed else [*placements, *checked])
    return resolved


def check_app(project: Project, out: Collector) -> set[Diagnostic]:
    """The checks of the App alone and of the repo as a whole, before any environment's; the problems of
    the App's own settings, which come back for every environment too (KompileError drops the repeats:
    same code, place and message)."""
    project.reading = set()
    check_settings(project, app_settings(project), None, out)
    project.app_reads, project.reading = tuple(sorted(project.reading)), None
    app_problems = set(out.items)
    check_allow_kinds(project, out)
    check_hydration(project, out)
    return app_problems


def check_across(
    project: Project, out: Collector, shared: list[tuple[str, Diagnostic]], placements: Iterable[Placement]
) -> None:
    """After every environment's own checks: the problems found in shared files (naming the environments
    that have them), then the rules across environments; raises every problem collected."""
    out.add(naming_environments(shared))
    # In name order, as every environment is checked: the first of two to claim a namespace (or spell a
    # cluster) is the one the message names, whichever were checked this time.
    check_namespaces(project, sorted(placements, key=lambda where: where.name), out)
    out.raise_if_any()


def check_environment_settings(
    project: Project,
    name: str,
    keep_settings: bool,
    app_problems: set[Diagnostic],
    shared: list[tuple[str, Diagnostic]],
    out: Collector,
) -> Resolved | None:
    """One environment merged and checked into out; None when it cannot even be merged."""
    project.reading = set()  # the files its rules read, for the index
    try:
        env_file = project.environments[name]
        settings, chain = effective_spec(project, name)
    except KompileError as exc:
        project.reading = None
        out.add(exc.diagnostics)
        return None
    try:
        before = len(out.items)
        # A setting the merged spec lacks was nulled by this environment (the App has it): point at its spec.
        spec.check_effective(
            settings, out, env_file.doc.key_span("spec") if "spec" in env_file.doc else env_file.doc.span
        )
        if "namespace" not in settings:
            # After the check: <app>-<environment> gets its own message (check_environment) when too long.
            settings["namespace"] = names.instance(project.name, name)
        if len(out.items) == before:
            check_settings(project, settings, name, out)
            check_environment(project, name, settings, out)
            # A problem of the merged settings that the App alone does not have, found in another file (the
            # App's, or one extended): say which environment has it.
            found, out.items[before:] = out.items[before:], []
            out.add(d for d in found if d in app_problems or (d.span and d.span.path == env_file.rel))
            shared.extend(
                (name, d)
                for d in found
                if not (d in app_problems or (d.span and d.span.path == env_file.rel))
            )
        sources = (project.app.rel, *(project.environments[n].rel for n in chain))
        reads = tuple(sorted(project.reading - set(sources)))
        where = placement(name, settings, env_file.doc["metadata"].value_span("name"))
        return Resolved(name, settings if keep_settings else None, tuple(chain), sources, where, reads)
    finally:
        project.reading = None


def resolve(project: Project, light: Resolved) -> Resolved:
    """An environment's full settings again, after validate_project(keep_settings=False) checked them."""
    settings, _ = effective_spec(project, light.name)
    if "namespace" not in settings:
        settings["namespace"] = names.instance(project.name, light.name)
    return replace(light, settings=settings)


def check_settings(project: Project, settings: YMap, env: str | None, out: Collector) -> None:
    components = settings.get("components") or YMap(settings.span)
    if len(components) > MAX_COMPONENTS:
        out.error(
            Code.COMPONENT_SHAPE,
            f"{len(components)} components; an app has at most {MAX_COMPONENTS}",
            settings.key_span("components"),
            "split the app into several apps (repos or folders)",
        )
        return
    for name, component in components.items():
        check_component(project.name, name, component, components.key_span(name), out)
        check_references(settings, f"components.{name}", component, out)
    if isinstance(settings.get("migrate"), YMap):
        check_references(settings, "migrate", settings["migrate"], out)
    check_helpers(settings, out)
    check_ingress(settings, components, out)
    check_allowed_hosts(settings, out)
    check_network(settings, components, out)
    check_plaintext(settings.get("env") or {}, out)
    check_extra_resources(project, settings, env, out)
    check_patches(project, settings, out)
