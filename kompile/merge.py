"""An environment's effective settings: the App, then each environment it extends, then its own file.

Maps merge key by key, lists and scalars replace, and an explicit null removes an inherited key.
Every merged node keeps the position of the file that set it, so later errors point at the right line.
"""

from __future__ import annotations

import difflib

from kompile import spec
from kompile.errors import Code, Diagnostic, KompileError
from kompile.project import Project
from kompile.source import YMap

# The identity of an environment is never inherited through extends.
NOT_INHERITED = ("namespace", "extends")
# How many environments deep `extends` may go: enough for app -> dev -> preview -> a preview's variant.
MAX_EXTENDS = 16


def merge_maps(base: YMap, over: YMap) -> YMap:
    out = YMap(over.span)
    for key, value in base.items():
        _put(out, key, value, base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
            out.key_spans.pop(key, None)
            out.value_spans.pop(key, None)
            continue
        if isinstance(value, YMap):
            # Merging into an empty map also drops nulls that had nothing to remove.
            value = merge_maps(out[key] if isinstance(out.get(key), YMap) else YMap(value.span), value)
        _put(out, key, value, over)
    return out


def _put(out: YMap, key: str, value, source: YMap) -> None:
    out[key] = value
    out.key_spans[key] = source.key_span(key)
    out.value_spans[key] = source.value_span(key)


def _layer(settings: YMap, skip: tuple[str, ...] | dict) -> YMap:
    """One file's settings, ready to merge: `image: repo` becomes `image: {repository: repo}`."""
    layer = YMap(settings.span)
    for key, value in settings.items():
        if key in skip:
            continue
        if key == "image" and isinstance(value, str):
            image = YMap(settings.value_span(key))
            image["repository"] = value
            image.key_spans["repository"] = image.value_spans["repository"] = settings.value_span(key)
            value = image
        _put(layer, key, value, settings)
    return layer


def extends_chain(project: Project, name: str) -> list[str]:
    """[oldest ancestor, ..., name]; unknown names and cycles are errors."""
    chain = [name]
    current = project.environments[name]
    while True:
        parent = current.spec.get("extends")
        if parent is None:
            return list(reversed(chain))
        where = current.spec.value_span("extends")
        if parent not in project.environments:
            close = difflib.get_close_matches(parent, list(project.environments), n=1)
            raise KompileError([Diagnostic(
                Code.UNKNOWN_EXTENDS, f"environment '{current.name}' extends unknown environment '{parent}'", where,
                f"did you mean '{close[0]}'?" if close else "known environments: " + ", ".join(project.environments))])
        if parent in chain:
            raise KompileError([_cycle(project, chain[chain.index(parent):])])
        if len(chain) > MAX_EXTENDS:
            raise KompileError([Diagnostic(
                Code.EXTENDS_DEPTH, f"environment '{name}' extends through more than {MAX_EXTENDS} environments", where,
                "start it from an environment nearer the App; long chains are hard to review")])
        chain.append(parent)
        current = project.environments[parent]


def _cycle(project: Project, members: list[str]) -> Diagnostic:
    """One diagnostic per cycle, whichever environment found it: it starts at, and points at, the
    first member by name, so every environment on or behind the cycle reports the same thing."""
    first = members.index(min(members))
    members = members[first:] + members[:first]
    start = project.environments[members[0]]
    if len(members) == 1:
        return Diagnostic(Code.EXTENDS_CYCLE, f"environment '{start.name}' extends itself", start.spec.value_span("extends"),
                          "remove extends, or name the environment this one starts from")
    return Diagnostic(Code.EXTENDS_CYCLE, f"extends forms a cycle: {' -> '.join([*members, members[0]])}",
                      start.spec.value_span("extends"), f"remove extends from {start.rel} (or from another environment of the cycle)")


def app_settings(project: Project) -> YMap:
    """The App's own settings as the first layer (what bases/ is compiled from). Computed once per
    project: merging never changes its inputs, so every environment can start from the same layer."""
    if project.app_settings is None:
        app = project.app.spec
        project.app_settings = merge_maps(YMap(app.span), _layer(app, spec.APP_ONLY))
    return project.app_settings


def effective_spec(project: Project, name: str) -> tuple[YMap, list[str]]:
    """The merged settings of environment `name`, and the chain of environments they came from. Each
    environment's inheritable settings are merged once and reused by the environments that extend it,
    so a repo's merging costs one merge per environment, however the chains run."""
    chain = extends_chain(project, name)
    result = _inheritable(project, chain[:-1])
    result = merge_maps(result, _layer(project.environments[name].spec, ()))
    result.pop("extends", None)
    return result, chain


def _inheritable(project: Project, chain: list[str]) -> YMap:
    """What the last environment of chain passes on (the App's settings for an empty chain)."""
    if not chain:
        return app_settings(project)
    key = chain[-1]
    if key not in project.inherited:
        base = _inheritable(project, chain[:-1])
        project.inherited[key] = merge_maps(base, _layer(project.environments[key].spec, NOT_INHERITED))
    return project.inherited[key]
