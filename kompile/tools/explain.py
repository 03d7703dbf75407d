"""Why an environment has the settings it has: each effective value with where it came from (the App,
an environment it extends, its own file, or a kompile default), as `kompile explain` prints it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kompile import names, spec
from kompile.errors import Span
from kompile.load.merge import effective_spec
from kompile.load.project import Project
from kompile.source import YList, YMap, plain

# Settings that apply whether or not a spec mentions them (so their defaults are worth showing).
ALWAYS_APPLIED = {"security"}


@dataclass(frozen=True)
class Setting:
    path: str  # components.web.autoscaling.maxReplicas
    value: object
    origin: str  # "App", "extends dev", "environment", "kompile default"
    span: Span | None

    @property
    def shown(self) -> str:
        return self.value if isinstance(self.value, str) else json.dumps(self.value)


def explain_environment(project: Project, name: str, prefix: str = "") -> list[Setting]:
    settings, chain = effective_spec(project, name)
    if "namespace" not in settings:
        settings["namespace"] = names.instance(project.name, name)
    origins = {project.app.rel: "App", project.environments[name].rel: "environment"}
    origins.update({project.environments[other].rel: f"extends {other}" for other in chain[:-1]})
    rows: list[Setting] = []
    _walk(spec.EFFECTIVE_SPEC, settings, "", origins, rows)
    if "namespace" not in settings.value_spans:
        rows = [
            r
            if r.path != "namespace"
            else Setting("namespace", settings["namespace"], "kompile default", None)
            for r in rows
        ]
    return [row for row in rows if _under(row.path, prefix)]


def _unused_defaults(kind: spec.Obj, value: YMap) -> set[str]:
    """Defaults a component's type never uses: a schedule's for long-running components, replicas for a
    cron or an autoscaled component."""
    if kind is not spec.COMPONENT:
        return set()
    if value.get("type") == "cron":
        return {"replicas"}
    return {"timeoutSeconds", "suspend"} | ({"replicas"} if value.get("autoscaling") else set())


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _walk(
    kind: spec.Type, value, path: str, origins: dict[str, str], rows: list[Setting], span: Span | None = None
) -> None:
    if isinstance(kind, spec.Either):
        kind = (
            next((option for option in kind.options if isinstance(option, spec.Obj)), kind)
            if isinstance(value, dict)
            else kind
        )
    if isinstance(kind, spec.Obj) and isinstance(value, YMap):
        unused = _unused_defaults(kind, value)
        for key, field in kind.fields.items():
            here = f"{path}.{key}" if path else key
            if key in value:
                _walk(field.type, value[key], here, origins, rows, value.value_span(key))
            elif field.default is not None and key not in unused:
                rows.append(Setting(here, field.default, "kompile default", None))
            elif here in ALWAYS_APPLIED:  # settings every environment has, spec or not: show their defaults
                _walk(field.type, YMap(Span("")), here, origins, rows)
        return
    if isinstance(kind, spec.Collection) and isinstance(
        value, YList
    ):  # each entry from the file that wrote it
        for index, item in enumerate(value):
            named = isinstance(item, YMap) and isinstance(item.get(kind.key), str)
            here = f"{path}.{item[kind.key]}" if named else f"{path}[{index}]"
            _walk(kind.item, item, here, origins, rows, value.item_span(index))
        return
    if isinstance(kind, spec.MapOf) and isinstance(value, YMap):  # components.web, env.DJANGO_..., by key
        for key, item in value.items():
            _walk(kind.value, item, f"{path}.{key}", origins, rows, value.value_span(key))
        return
    origin = origins.get(span.path, span.path) if span else "kompile default"
    rows.append(Setting(path, plain(value) if isinstance(value, YMap | YList) else value, origin, span))
