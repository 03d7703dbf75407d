"""The spec reference in the README, written from spec/ so the two never drift apart
(`kompile schema --format markdown` prints it; tests/test_readme.py holds the README to it)."""

from __future__ import annotations

from kompile import spec


def _type_name(kind: spec.Type) -> str:
    if isinstance(kind, spec.Str):
        if kind.enum:
            return " \\| ".join(f"`{v}`" for v in kind.enum)
        return "name" if kind.name_code else "string"
    if isinstance(kind, spec.Int):
        if kind.min is not None and kind.max is not None:
            return f"integer {kind.min}-{kind.max}"
        return "integer"
    if isinstance(kind, spec.Bool):
        return "boolean"
    if isinstance(kind, spec.Quantity):
        return "quantity"
    if isinstance(kind, spec.Obj):
        return "mapping"
    if isinstance(kind, spec.MapOf):
        return f"map of {_type_name(kind.value)}"
    if isinstance(kind, spec.ListOf):
        return f"list of {_type_name(kind.item)}"
    if isinstance(kind, spec.Collection):
        return f"{_type_name(kind.item)} by name (map or list)"
    if isinstance(kind, spec.Either):
        return " or ".join(_type_name(option) for option in kind.options)
    if isinstance(kind, spec.Anything):
        return kind.label
    return type(kind).__name__


def _rows(obj: spec.Obj, prefix: str):
    for key, field in obj.fields.items():
        path = f"{prefix}{key}"
        default = (
            ""
            if field.default is None
            else f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"
        )
        required = " (required)" if field.required else ""
        yield path, _type_name(field.type), default, field.doc + required
        for child, suffix in _children(field.type):
            yield from _rows(child, f"{path}{suffix}.")


def _children(kind: spec.Type):
    if isinstance(kind, spec.Obj):
        yield kind, ""
    elif isinstance(kind, spec.MapOf):
        for child, suffix in _children(kind.value):
            yield child, f".<{kind.what}>{suffix}"
    elif isinstance(kind, spec.ListOf):
        for child, suffix in _children(kind.item):
            yield child, f"[]{suffix}"
    elif isinstance(kind, spec.Collection):  # documented in the map form: the key names an entry
        for child, suffix in _children(kind.map_item):
            yield child, f".<{kind.what.replace(' ', '-')}>{suffix}"
    elif isinstance(kind, spec.Either):
        for option in kind.options:
            yield from _children(option)


def _table(obj: spec.Obj, only: tuple[str, ...] | None = None) -> list[str]:
    lines = ["| Field | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    for path, type_name, default, doc in _rows(obj, "spec."):
        if only is None or path.split(".")[1].split("[")[0] in only:
            lines.append(f"| `{path}` | {type_name} | {default} | {doc} |")
    return lines


def reference_markdown() -> str:
    shared = tuple(spec.SHARED_FIELDS)
    lines = [
        "#### Settings of the App and of every Environment",
        "",
        "An Environment may set any of these to override the App (see the merge rules).",
        "",
    ]
    lines += _table(spec.APP_SPEC, shared)
    lines += ["", "#### On the App only", ""]
    lines += _table(spec.APP_SPEC, tuple(spec.APP_ONLY))
    lines += ["", "#### On an Environment only", ""]
    lines += _table(spec.ENVIRONMENT_SPEC, tuple(spec.ENVIRONMENT_ONLY))
    return "\n".join(lines) + "\n"
