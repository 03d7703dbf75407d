"""An environment's effective settings: the App, then each environment it extends, then its own file.

Maps merge key by key, lists and scalars replace, and an explicit null removes an inherited key.
Collections (patches, extraResources, secrets, sidecars, network rules: spec.COLLECTIONS) are maps by
name while they merge, whichever form a file writes them in, so entries add up and only a name removes
one; the merged settings hold them as lists again. Every merged node keeps the position of the file
that set it, so later errors point at the right line.
"""

from __future__ import annotations

import difflib

from kompile import spec
from kompile.errors import Code, Diagnostic, KompileError
from kompile.load.project import Project
from kompile.source import Merged, YList, YMap

# The identity of an environment is never inherited through extends.
NOT_INHERITED = ("namespace", "extends")
# How many environments deep `extends` may go: enough for app -> dev -> preview -> a preview's variant.
MAX_EXTENDS = 16


def merge_maps(base: YMap, over: YMap, memo: dict | None = None, keep: bool = False) -> Merged:
    """over laid on base. An environment's own settings and those it passes on are two merges of its
    file (each of a layer made for it), and the large maps below the top (env, ...) are the same in
    both: with a memo (the project's), those that the settings passed on hold (`keep`, as the project
    keeps those) are found there, not merged again."""
    out = Merged(over.span)
    out.base, out.over = base, over
    if isinstance(base, Merged) and _spanned(base):
        _copy(out, base)
    else:
        for key, value in base.items():
            _put(out, key, value, base)
    if (
        len(over) >= 32
        and not any(v is None or isinstance(v, YMap) for v in over.values())
        and _spanned(over)  # (last: a parsed map makes its spans here)
    ):
        _copy(out, over)  # (a large map of one file: its positions made once, and shared)
        return out
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
            out.key_spans.pop(key, None)
            out.value_spans.pop(key, None)
            continue
        if isinstance(value, YMap):
            # Merging into an empty map also drops nulls that had nothing to remove.
            value = _merge_below(
                out[key] if isinstance(out.get(key), YMap) else YMap(value.span), value, memo, keep
            )
        _put(out, key, value, over)
    return out


def _merge_below(base: YMap, over: YMap, memo: dict | None, keep: bool) -> Merged:
    if memo is None or len(over) < 32:  # (a small map costs less to merge again than to look up)
        return merge_maps(base, over, memo, keep)
    found = memo.get((id(base), id(over)))
    if found is not None and found[0] is base and found[1] is over:
        return found[2]
    out = merge_maps(base, over, memo, keep)
    if keep:
        memo[(id(base), id(over))] = (base, over, out)  # (holding both, so that their ids are not reused)
    return out


def _spanned(source: YMap) -> bool:
    """Whether every key of source has its spans at hand (a parsed map makes them now)."""
    return len(source.key_spans) == len(source.value_spans) == len(source)


def _copy(out: YMap, source: YMap) -> None:
    """Every entry of source put into out with its spans, at C speed (as _put does key by key)."""
    dict.update(out, source)
    out.key_spans.update(source.key_spans)
    out.value_spans.update(source.value_spans)


def _put(out: YMap, key: str, value, source: YMap) -> None:
    out[key] = value
    out.key_spans[key] = source.key_span(key)
    out.value_spans[key] = source.value_span(key)


def _layer(settings: YMap, skip: tuple[str, ...] | dict) -> YMap:
    """One file's settings, ready to merge: `image: repo` becomes `image: {repository: repo}`, and each
    collection a map by name."""
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
    for path, collection in spec.COLLECTIONS:
        _convert(
            layer, path, lambda items, c=collection: _by_name(items, c) if isinstance(items, YList) else items
        )
    return layer


def _convert(settings: YMap, path: tuple[str, ...], change) -> None:
    """Replace the value at path (copying the maps on the way, which may be a file's own); "*" in the
    path is every entry of a map (components.*.egress)."""
    if len(path) == 1:
        if path[0] in settings:
            settings[path[0]] = change(settings[path[0]])
        return
    keys = [k for k, v in settings.items() if isinstance(v, YMap)] if path[0] == "*" else [path[0]]
    for key in keys:
        child = settings.get(key)
        if not isinstance(child, YMap):
            continue
        copy = YMap(child.span)
        for k, v in child.items():
            _put(copy, k, v, child)
        settings[key] = copy
        _convert(copy, path[1:], change)


def _check_removals(base: YMap, layer: YMap) -> None:
    """A null in a collection removes an inherited entry by name; one that removes nothing is a typo or
    a stale line, and the entry it meant would stay without a word."""
    problems = []

    def walk(base, layer, path: tuple[str, ...], where: str) -> None:
        if not isinstance(layer, YMap):
            return
        head, rest = path[0], path[1:]
        keys = (
            [k for k, v in layer.items() if isinstance(v, YMap)]
            if head == "*"
            else [head]
            if head in layer
            else []
        )
        for key in keys:
            inherited = base.get(key) if isinstance(base, YMap) else None
            if rest:
                walk(inherited, layer[key], rest, f"{where}{key}.")
                continue
            entries = layer[key]
            if not isinstance(entries, YMap):
                continue
            names = [n for n in inherited if not n.startswith("#")] if isinstance(inherited, YMap) else []
            for name, value in entries.items():
                if value is None and name not in names:
                    close = difflib.get_close_matches(name, names, n=1)
                    problems.append(
                        Diagnostic(
                            Code.REFERENCE,
                            f"{where}{key}.{name}: null removes nothing: no inherited entry is named '{name}'",
                            entries.key_span(name),
                            f"did you mean '{close[0]}'?"
                            if close
                            else (
                                "inherited: " + ", ".join(names)
                                if names
                                else "nothing is inherited here; remove the line"
                            ),
                        )
                    )

    for path, _ in spec.COLLECTIONS:
        walk(base, layer, path, "")
    if problems:
        raise KompileError(problems)


def _by_name(items: YList, collection: spec.Collection) -> YMap:
    """A list of entries as a map by name. An entry without a name gets one no file can write (`#` and
    where it was written), so it only adds."""
    keyed = YMap(items.span)
    for index, item in enumerate(items):
        span = items.item_span(index)
        if collection.key is None and isinstance(item, str):
            name = item
        elif isinstance(item, dict) and isinstance(item.get(collection.key), str):
            name = item[collection.key]
        else:
            name = f"#{span.path}:{span.line}:{span.col}"
        keyed[name] = item
        keyed.key_spans[name] = keyed.value_spans[name] = span
    return keyed


def _as_list(keyed, collection: spec.Collection):
    """A merged collection as the list the rest of kompile reads; a map entry's name becomes its name field."""
    if not isinstance(keyed, YMap):
        return keyed
    items = YList(keyed.span)
    for name, item in keyed.items():
        if (
            isinstance(item, YMap)
            and collection.key
            and collection.key not in item
            and not name.startswith("#")
        ):
            named = YMap(item.span)
            named[collection.key] = name  # written as the map's key: that is where it points
            named.key_spans[collection.key] = named.value_spans[collection.key] = keyed.key_span(name)
            for k, v in item.items():
                _put(named, k, v, item)
            item = named
        items.append(item)
        items.item_spans.append(keyed.value_span(name))
    return items


def as_lists(settings: YMap) -> YMap:
    """Merged settings with their collections as lists (a copy: the merged maps are reused)."""
    out = YMap(settings.span)
    for key, value in settings.items():
        _put(out, key, value, settings)
    for path, collection in spec.COLLECTIONS:
        _convert(out, path, lambda keyed, c=collection: _as_list(keyed, c))
    return out


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
            raise KompileError(
                [
                    Diagnostic(
                        Code.UNKNOWN_EXTENDS,
                        f"environment '{current.name}' extends unknown environment '{parent}'",
                        where,
                        f"did you mean '{close[0]}'?"
                        if close
                        else "known environments: " + ", ".join(project.environments),
                    )
                ]
            )
        if parent in chain:
            raise KompileError([_cycle(project, chain[chain.index(parent) :])])
        if len(chain) > MAX_EXTENDS:
            raise KompileError(
                [
                    Diagnostic(
                        Code.EXTENDS_DEPTH,
                        f"environment '{name}' extends through more than {MAX_EXTENDS} environments",
                        where,
                        "start it from an environment nearer the App; long chains are hard to review",
                    )
                ]
            )
        chain.append(parent)
        current = project.environments[parent]


def _cycle(project: Project, members: list[str]) -> Diagnostic:
    """One diagnostic per cycle, whichever environment found it: it starts at, and points at, the
    first member by name, so every environment on or behind the cycle reports the same thing."""
    first = members.index(min(members))
    members = members[first:] + members[:first]
    start = project.environments[members[0]]
    if len(members) == 1:
        return Diagnostic(
            Code.EXTENDS_CYCLE,
            f"environment '{start.name}' extends itself",
            start.spec.value_span("extends"),
            "remove extends, or name the environment this one starts from",
        )
    return Diagnostic(
        Code.EXTENDS_CYCLE,
        f"extends forms a cycle: {' -> '.join([*members, members[0]])}",
        start.spec.value_span("extends"),
        f"remove extends from {start.rel} (or from another environment of the cycle)",
    )


def app_settings(project: Project) -> YMap:
    """The App's own settings as the first layer (what bases/ is compiled from). Computed once per
    project: merging never changes its inputs, so every environment can start from the same layer."""
    if project.app_settings is None:
        project.app_settings = as_lists(_app_layer(project))
    return project.app_settings


def _app_layer(project: Project) -> YMap:
    """The App's settings as the first layer of every merge (collections by name)."""
    if project.app_layer is None:
        app = project.app.spec
        layer = _layer(app, spec.APP_ONLY)
        _check_removals(YMap(app.span), layer)
        project.app_layer = merge_maps(YMap(app.span), layer)
    return project.app_layer


def effective_spec(project: Project, name: str) -> tuple[YMap, list[str]]:
    """The merged settings of environment `name`, and the chain of environments they came from. Each
    environment's inheritable settings are merged once and reused by the environments that extend it,
    so a repo's merging costs one merge per environment, however the chains run."""
    chain = extends_chain(project, name)
    result = _inheritable(project, chain[:-1])
    layer = _layer(project.environments[name].spec, ())
    _check_removals(result, layer)
    result = as_lists(merge_maps(result, layer, project.merges))
    result.pop("extends", None)
    return result, chain


def _inheritable(project: Project, chain: list[str]) -> YMap:
    """What the last environment of chain passes on (the App's settings for an empty chain)."""
    if not chain:
        return _app_layer(project)
    key = chain[-1]
    if key not in project.inherited:
        base = _inheritable(project, chain[:-1])
        layer = _layer(project.environments[key].spec, NOT_INHERITED)
        _check_removals(base, layer)
        project.inherited[key] = merge_maps(base, layer, project.merges, keep=True)
    return project.inherited[key]
