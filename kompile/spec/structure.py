"""Structured types: mappings with fields, maps of entries, lists, collections by name (the lists that
add up), and choices between types."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from kompile.errors import Code, Collector, Diagnostic, Span
from kompile.source import Merged, YList, YMap, describe
from kompile.spec.types import DNS_LABEL, NAME, Anything, Field, Int, Str, Type, nullable, shown

# Merging keeps what an environment does not change as the App's own maps and lists (kompile/load/merge.py),
# so every environment's settings share most of their subtrees: one found clean (no diagnostic) is not
# checked again for the same type. Entries hold the value itself, so its id is not reused while kept;
# merging never changes a map or list it was given. (A bounded table, per process.)
_CLEAN: dict[int, tuple] = {}


def forget_checked() -> None:
    """A new project is read: what was found in the last one's maps is of no more use, and must not keep
    them alive (a process that loads projects one after another, as a server or a test run does)."""
    _CLEAN.clear()
    _ENTRIES.clear()


def was_clean(value, kind: Type, partial: bool) -> bool:
    seen = _CLEAN.get(id(value))
    return seen is not None and seen[0] is value and seen[1] is kind and seen[2] is partial


def remember_clean(value, kind: Type, partial: bool) -> None:
    if isinstance(value, YMap | YList):
        if len(_CLEAN) > 4096:
            _CLEAN.clear()
        _CLEAN[id(value)] = (value, kind, partial)


# What checking each entry of a map found, by key, for the maps checked most recently (a bounded table,
# per process, kept as _CLEAN is): a Merged map takes its base's findings for the keys its top layer
# left alone and checks only that layer's keys.
_ENTRIES: dict[tuple, tuple] = {}
_NOWHERE = Span("")  # (where a check that will be made again with positions, if it finds anything, says it)


def entry_problems(
    value: dict, rule: object, path: str, variant: object, check_entry: Callable[[dict, str, Collector], None]
) -> dict[str, list[Diagnostic]]:
    """{key: what check_entry(map, key, out) found} for each entry of value, for one rule at one path
    (and one variant of the rule: whether the spec is partial, where that matters). check_entry reads the
    entry and its spans from the map it is given. Through merges, each file's entries are checked once
    per process, however many environments extend it: a chain of 16 environments that each add 3,000
    variables checked the last one's 16 times over. When variant is None (findings that do not depend on
    whether the spec is partial), the entries a merge took from its top layer were checked with that
    layer's file, at the same path, and are not checked again."""
    memo = (id(value), id(rule), path, variant)
    seen = _ENTRIES.get(memo)
    if seen is not None and seen[0] is value and seen[1] is rule:
        return seen[2]
    if isinstance(value, Merged):
        inherited = entry_problems(value.base, rule, path, variant, check_entry)
        over = value.over
        problems = {key: found for key, found in inherited.items() if key not in over}
        if variant is None:
            # A merge copies its top layer's entries as they are, spans included (null ones removed).
            problems.update(
                (key, found)
                for key, found in entry_problems(over, rule, path, variant, check_entry).items()
                if key in value
            )
            keys = []
        else:
            keys = [key for key in over if key in value]
    else:
        problems, keys = {}, list(value)
    scratch = Collector()
    for key in keys:
        check_entry(value, key, scratch)
        if scratch.items:
            problems[key], scratch.items = scratch.items, []
    if isinstance(value, YMap) and len(value) >= 32:  # (a small map is checked again sooner than kept)
        if len(_ENTRIES) > 4096:
            _ENTRIES.clear()
        _ENTRIES[memo] = (value, rule, problems)
    return problems


class _CheckedOnce(Type):
    """A structured type: a value it found clean is remembered (_CLEAN), its check (_check) not run again."""

    def check(self, value, path, span, out, partial, key_span=None):
        if was_clean(value, self, partial):
            return
        found = len(out.items)
        self._check(value, path, span, out, partial, key_span)
        if len(out.items) == found:
            remember_clean(value, self, partial)

    def _check(self, value, path, span, out, partial, key_span=None):
        raise NotImplementedError


@dataclass(frozen=True)
class Obj(_CheckedOnce):
    fields: dict[str, Field]
    one_of: tuple[str, ...] = ()  # exactly one of these keys must be set (checked on full specs)
    one_of_optional: bool = False  # ... or none of them
    elsewhere: dict[str, str] = field(default_factory=dict)  # keys that belong to another kind: why
    label: str = "spec"  # what messages call this object when it is checked at the top (path "")
    # Fields required for some values of another: {"type": {"cron": ("schedule",)}} (checked on full specs).
    required_when: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def _check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, dict):
            hint = (
                "write its keys on their own lines (`key: value`), not as a list"
                if isinstance(value, list)
                else None
            )
            out.error(
                Code.WRONG_TYPE,
                f"{path or self.label}: expected a mapping, found {describe(value)}",
                span,
                hint,
            )
            return
        prefix = f"{path}." if path else ""
        for key, item in value.items():
            item_key_span = value.key_span(key) if isinstance(value, YMap) else span
            value_span = value.value_span(key) if isinstance(value, YMap) else span
            spec_field = self.fields.get(key)
            if spec_field is None:
                out.error(
                    Code.UNKNOWN_KEY,
                    f"unknown key {shown(key)} in {path or self.label}",
                    item_key_span,
                    self._hint(key),
                )
                continue
            if item is None:
                if not partial and spec_field.required:
                    out.error(
                        Code.MISSING_FIELD,
                        f"{prefix}{key} is required and cannot be null",
                        value_span,
                        f"give it a value: {spec_field.doc}",
                    )
                continue  # an explicit null removes an inherited value
            spec_field.type.check(item, f"{prefix}{key}", value_span, out, partial, item_key_span)
        if partial:
            return
        for key, spec_field in self.fields.items():
            if spec_field.required and key not in value:
                out.error(
                    Code.MISSING_FIELD,
                    f"{path or self.label}: '{key}' is required",
                    key_span or span,
                    f"add '{key}': {spec_field.doc}",
                )
        if self.one_of:
            present = [k for k in self.one_of if value.get(k) is not None]
            if len(present) > 1 or (not present and not self.one_of_optional):
                self._one_of_error(value, present, path, key_span or span, span, out)
        for key, needs in self.required_when.items():
            for needed in needs.get(value.get(key), ()) if isinstance(value.get(key), str) else ():
                if value.get(needed) is None:
                    out.error(
                        Code.MISSING_FIELD,
                        f"{path or self.label}: {key} {value[key]} needs '{needed}'",
                        key_span or span,
                        f"add '{needed}': {self.fields[needed].doc}",
                    )

    def _one_of_error(
        self, value, present: list[str], path: str, where: Span, span: Span, out: Collector
    ) -> None:
        names = " or ".join(f"'{k}'" for k in self.one_of)
        found = "none" if not present else " and ".join(f"'{k}'" for k in present)
        message = f"{path or self.label}: set exactly one of {names} (found {found})"
        if not present:
            out.error(Code.COMPONENT_SHAPE, message, where, "add one of them")
            return
        spans = {k: value.key_span(k) if isinstance(value, YMap) else span for k in present}
        # After merging, the map's own span is its latest layer: point at the key that layer added.
        latest = [k for k in present if spans[k].path == span.path]
        chosen = latest[-1] if latest else present[-1]
        inherited = [k for k in present if spans[k].path != spans[chosen].path]
        if inherited:
            other = spans[inherited[0]]
            hint = f"'{inherited[0]}' is inherited from {other.path}:{other.line}; add `{inherited[0]}: null` beside '{chosen}' to replace it"
        else:
            hint = "keep one of them"
        out.error(Code.COMPONENT_SHAPE, message, spans[chosen], hint)

    def _hint(self, key: str) -> str | None:
        if key in self.elsewhere:
            return self.elsewhere[key]
        close = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.6)
        if close:
            return f"did you mean '{close[0]}'?"
        return "known keys: " + ", ".join(self.fields)

    def json_schema(self, partial=False):
        schema: dict = {
            "type": "object",
            "additionalProperties": False,
            "properties": {},
        }
        for key, spec_field in self.fields.items():
            sub = spec_field.type.json_schema(partial)
            if partial or not spec_field.required:
                sub = nullable(sub)  # what check() accepts: a null setting is no setting
            sub["description"] = spec_field.doc
            if spec_field.default is not None:
                sub["default"] = spec_field.default
            schema["properties"][key] = sub
        required = [key for key, spec_field in self.fields.items() if spec_field.required]
        if required and not partial:
            schema["required"] = required
        if self.required_when and not partial:
            schema["allOf"] = [
                {
                    "if": {"properties": {key: {"const": option}}, "required": [key]},
                    "then": {"required": list(needs)},
                }
                for key, by_value in self.required_when.items()
                for option, needs in by_value.items()
            ]
        return schema


@dataclass(frozen=True)
class MapOf(_CheckedOnce):
    value: Type
    key: Str = Str()
    what: str = "key"

    def _check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, dict):
            hint = (
                f"write one {self.what} per line as `name: value`, not as a list"
                if isinstance(value, list)
                else None
            )
            out.error(Code.WRONG_TYPE, f"{path}: expected a mapping, found {describe(value)}", span, hint)
            return

        def check_entry(owner: dict, key: str, out: Collector) -> None:
            # First without positions (making two for every key of a large map cost more than checking
            # it): only an entry with a problem is checked again with them. A check's findings depend on
            # the value alone; a position is only where they are said.
            item = owner[key]
            found = len(out.items)
            self.key.check(key, "", _NOWHERE, out, partial)
            if item is not None:
                self.value.check(item, "", _NOWHERE, out, partial, _NOWHERE)
            if len(out.items) == found:
                return
            del out.items[found:]
            item_key_span = owner.key_span(key) if isinstance(owner, YMap) else span
            value_span = owner.value_span(key) if isinstance(owner, YMap) else span
            self.key.check(key, f"{self.what} name in {path}", item_key_span, out, partial)
            if item is not None:
                self.value.check(item, f"{path}.{key}", value_span, out, partial, item_key_span)

        variant = partial if self.value.partial_matters or self.key.partial_matters else None
        for problems in entry_problems(value, self, path, variant, check_entry).values():
            out.add(problems)

    def json_schema(self, partial=False):
        schema = {"type": "object", "additionalProperties": nullable(self.value.json_schema(partial))}
        key_schema = self.key.json_schema()
        if "pattern" in key_schema:
            schema["propertyNames"] = {"pattern": key_schema["pattern"]}
        return schema


@dataclass(frozen=True)
class ListOf(_CheckedOnce):
    item: Type
    min_items: int = 0
    unique_key: str | None = None  # items are mappings whose value at this key must be unique

    def _check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, list):
            hint = f"write it as a list: [{value}]" if isinstance(value, str | int) else None
            out.error(Code.WRONG_TYPE, f"{path}: expected a list, found {describe(value)}", span, hint)
            return
        if len(value) < self.min_items:
            out.error(Code.INVALID_VALUE, f"{path}: needs at least {self.min_items} item(s)", span)
        seen: dict = {}
        for index, item in enumerate(value):
            item_span = value.item_span(index) if isinstance(value, YList) else span
            if item is None:
                out.error(Code.WRONG_TYPE, f"{path}[{index}]: list items cannot be null", item_span)
                continue
            self.item.check(item, f"{path}[{index}]", item_span, out, partial)
            if (
                self.unique_key
                and isinstance(item, dict)
                and isinstance(item.get(self.unique_key), str | int)
            ):
                name = item[self.unique_key]
                if name in seen:
                    out.error(
                        Code.INVALID_VALUE,
                        f"{path}[{index}]: {self.unique_key} '{name}' is listed twice",
                        item_span,
                        f"first listed at line {seen[name].line}; merge the two or rename one",
                    )
                else:
                    seen[name] = item_span

    def json_schema(self, partial=False):
        schema = {"type": "array", "items": self.item.json_schema(partial)}
        if self.min_items:
            schema["minItems"] = self.min_items
        return schema


@dataclass(frozen=True)
class Collection(_CheckedOnce):
    """Named entries that add up across the App, the environments it extends and the environment:
    an entry of the same name replaces the inherited one, `name: null` removes it, and nothing is
    dropped because a file wrote its own list. Written as a map keyed by name, or as a list whose
    entries name themselves with `key` (list entries without one only add)."""

    item: Type
    key: str | None = "name"  # the field that names a list entry; None: a string entry is its own name
    what: str = "entry"

    @functools.cached_property
    def map_item(self) -> Type:
        """An entry written in the map form: its name is the map key, so the name field is optional."""
        if isinstance(self.item, Obj) and self.key in self.item.fields:
            named = self.item.fields[self.key]
            return Obj(
                {**self.item.fields, self.key: Field(named.type, named.doc)},
                self.item.one_of,
                self.item.one_of_optional,
                self.item.elsewhere,
            )
        return self.item

    @functools.cached_property
    def _as_list(self) -> ListOf:
        return ListOf(self.item, unique_key=self.key)

    def _check(self, value, path, span, out, partial, key_span=None):
        if isinstance(value, list):
            self._as_list.check(value, path, span, out, partial, key_span)
            if partial and not value and isinstance(value, YList):
                out.error(
                    Code.INVALID_VALUE,
                    f"{path}: an empty list adds nothing to what is inherited",
                    span,
                    f"to remove every inherited {self.what} write `{path.rpartition('.')[2]}: null`; "
                    f"to remove one, `{path.rpartition('.')[2]}: {{<name>: null}}`",
                )
            return
        if not isinstance(value, dict):
            out.error(
                Code.WRONG_TYPE,
                f"{path}: expected a map of {self.what}s by name (or a list), found {describe(value)}",
                span,
            )
            return
        item = self.map_item
        for name, entry in value.items():
            entry_key_span = value.key_span(name) if isinstance(value, YMap) else span
            entry_span = value.value_span(name) if isinstance(value, YMap) else span
            NAME.check(name, f"{self.what} name in {path}", entry_key_span, out, partial)
            if entry is None:
                continue  # removes the inherited entry of that name
            item.check(entry, f"{path}.{name}", entry_span, out, partial, entry_key_span)
            if isinstance(entry, dict) and self.key and entry.get(self.key) not in (None, name):
                out.error(
                    Code.INVALID_VALUE,
                    f"{path}.{name}: {self.key} '{entry[self.key]}' differs from its key '{name}'",
                    entry.value_span(self.key) if isinstance(entry, YMap) else entry_span,
                    f"leave out {self.key}: the key names it",
                )

    def json_schema(self, partial=False):
        return {
            "anyOf": [
                ListOf(self.item).json_schema(partial),
                {
                    "type": "object",
                    "propertyNames": {"pattern": DNS_LABEL},
                    "additionalProperties": nullable(self.map_item.json_schema(partial)),
                },
            ]
        }


@dataclass(frozen=True)
class Either(Type):
    """A value written in one of several shapes, told apart by its YAML type (a string or a mapping)."""

    options: tuple[Type, ...]
    label: str

    @property
    def partial_matters(self) -> bool:
        return any(option.partial_matters for option in self.options)

    def check(self, value, path, span, out, partial, key_span=None):
        for option in self.options:
            if accepts(option, value):
                option.check(value, path, span, out, partial, key_span)
                return
        out.error(Code.WRONG_TYPE, f"{path}: expected {self.label}, found {describe(value)}", span)

    def json_schema(self, partial=False):
        return {"anyOf": [o.json_schema(partial) for o in self.options]}


def accepts(option: Type, value) -> bool:
    if isinstance(option, Str):
        return isinstance(value, str)
    if isinstance(option, Int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(option, Obj | MapOf):
        return isinstance(value, dict)
    if isinstance(option, ListOf):
        return isinstance(value, list)
    if isinstance(option, Collection):
        return isinstance(value, list | dict)
    if isinstance(option, Anything):
        return isinstance(value, option.kind)
    return False
