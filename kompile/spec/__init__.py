"""The user-facing spec: one declarative description that both checks documents and becomes the
JSON Schema editors use (`kompile schema`), so the two cannot drift apart.

Checking walks a loaded document (source.YMap / YList) beside its type and reports every problem with
the position of the offending key or value. Cross-field and cross-file rules live in validate.py.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import ipaddress
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from kompile.errors import Code, Collector, Span
from kompile.policy import RULES
from kompile.source import YList, YMap, describe

API_VERSION = "kompile.dev/v1alpha1"
SCHEMA_ID = "https://kompile.dev/schemas/v1alpha1/kompile.schema.json"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
IMAGE_REPOSITORY = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?/)?"
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST = r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
URL_PATH = r"^/[^\s]*$"
CLUSTER = r"^(https://[^\s/]+(/[^\s]*)?|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"

# A check returns None when the value is fine, else (code, message, hint).
Check = Callable[[str], "tuple[Code, str, str | None] | None"]


@dataclass(frozen=True)
class Field:
    type: Type
    doc: str
    required: bool = False
    default: object = None  # documented default; normalise.py applies it


class Type:
    """A node of the spec. check() reports problems; json_schema() describes the same rules."""

    def check(
        self, value, path: str, span: Span, out: Collector, partial: bool, key_span: Span | None = None
    ) -> None:
        """Report what is wrong with value (at span); key_span is the key that holds it, where a missing
        field is reported."""
        raise NotImplementedError

    def json_schema(self, partial: bool = False) -> dict:
        """The same rules as a JSON Schema; partial (Environment files) drops required fields and lets any
        setting be null, which removes what it would inherit."""
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Type):
    pattern: str | None = None
    pattern_hint: str | None = None  # what a valid value looks like, for the error message
    enum: tuple[str, ...] | None = None
    max_length: int | None = None
    checks: tuple[Check, ...] = ()
    name_code: bool = False  # a pattern failure is an invalid name (K205), not an invalid value (K204)

    def check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, str):
            hint = None
            if isinstance(value, bool | int | float) and value is not None:
                hint = "quote the value to make it a string"
            out.error(Code.WRONG_TYPE, f"{path}: expected a string, found {describe(value)}", span, hint)
            return
        if self.enum is not None:
            if value not in self.enum:
                close = difflib.get_close_matches(value, self.enum, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "one of: " + ", ".join(self.enum)
                out.error(
                    Code.INVALID_VALUE,
                    f"{path}: {shown(value)} is not one of {', '.join(self.enum)}",
                    span,
                    hint,
                )
            return
        if self.max_length is not None and len(value) > self.max_length:
            out.error(
                Code.INVALID_NAME if self.name_code else Code.INVALID_VALUE,
                f"{path}: {shown(value)} is longer than {self.max_length} characters",
                span,
            )
            return
        # fullmatch: `$` alone would accept a trailing newline (a name written as a `|` block)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            code = Code.INVALID_NAME if self.name_code else Code.INVALID_VALUE
            out.error(
                code,
                f"{path}: {shown(value)} is not {self.pattern_hint or 'valid'}",
                span,
                _name_hint(value) if self.name_code else None,
            )
            return
        for check in self.checks:
            problem = check(value)
            if problem:
                code, message, hint = problem
                out.error(code, f"{path}: {message}", span, hint)
                return

    def json_schema(self, partial=False):
        schema: dict = {"type": "string"}
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema


@dataclass(frozen=True)
class Int(Type):
    min: int | None = None
    max: int | None = None

    def check(self, value, path, span, out, partial, key_span=None):
        if isinstance(value, bool) or not isinstance(value, int):
            hint = (
                "write a whole number without quotes"
                if isinstance(value, str) and value.strip().isdigit()
                else None
            )
            out.error(Code.WRONG_TYPE, f"{path}: expected an integer, found {describe(value)}", span, hint)
            return
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            bounds = f"between {self.min} and {self.max}" if self.max is not None else f"at least {self.min}"
            out.error(Code.INVALID_VALUE, f"{path}: {value} must be {bounds}", span)

    def json_schema(self, partial=False):
        schema: dict = {"type": "integer"}
        if self.min is not None:
            schema["minimum"] = self.min
        if self.max is not None:
            schema["maximum"] = self.max
        return schema


@dataclass(frozen=True)
class Bool(Type):
    def check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, bool):
            out.error(Code.WRONG_TYPE, f"{path}: expected true or false, found {describe(value)}", span)

    def json_schema(self, partial=False):
        return {"type": "boolean"}


@dataclass(frozen=True)
class Quantity(Type):
    """A Kubernetes resource quantity: 250m, 1, "1", 512Mi."""

    def check(self, value, path, span, out, partial, key_span=None):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            out.error(
                Code.WRONG_TYPE,
                f"{path}: expected a quantity such as 250m or 512Mi, found {describe(value)}",
                span,
            )
            return
        text = quantity_text(value)
        if not re.fullmatch(QUANTITY, text):
            out.error(
                Code.INVALID_VALUE,
                f"{path}: '{text}' is not a Kubernetes quantity",
                span,
                "cpu as 250m or 1, memory as 512Mi or 1Gi",
            )

    def json_schema(self, partial=False):
        return {"anyOf": [{"type": "string", "pattern": QUANTITY}, {"type": "number", "minimum": 0}]}


def quantity_text(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # .inf or .nan: never a quantity
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    return str(value)


@dataclass(frozen=True)
class Anything(Type):
    """Free-form content handed to Kubernetes as written (inline patches)."""

    kind: type | tuple = dict
    label: str = "a mapping"

    def check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, self.kind):
            out.error(Code.WRONG_TYPE, f"{path}: expected {self.label}, found {describe(value)}", span)

    def json_schema(self, partial=False):
        return {"type": "object"} if self.kind is dict else {}


@dataclass(frozen=True)
class Obj(Type):
    fields: dict[str, Field]
    one_of: tuple[str, ...] = ()  # exactly one of these keys must be set (checked on full specs)
    one_of_optional: bool = False  # ... or none of them
    elsewhere: dict[str, str] = field(default_factory=dict)  # keys that belong to another kind: why
    label: str = "spec"  # what messages call this object when it is checked at the top (path "")
    # Fields required for some values of another: {"type": {"cron": ("schedule",)}} (checked on full specs).
    required_when: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def check(self, value, path, span, out, partial, key_span=None):
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
class MapOf(Type):
    value: Type
    key: Str = Str()
    what: str = "key"

    def check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, dict):
            hint = (
                f"write one {self.what} per line as `name: value`, not as a list"
                if isinstance(value, list)
                else None
            )
            out.error(Code.WRONG_TYPE, f"{path}: expected a mapping, found {describe(value)}", span, hint)
            return
        for key, item in value.items():
            item_key_span = value.key_span(key) if isinstance(value, YMap) else span
            value_span = value.value_span(key) if isinstance(value, YMap) else span
            self.key.check(key, f"{self.what} name in {path}", item_key_span, out, partial)
            if item is None:
                continue
            self.value.check(item, f"{path}.{key}", value_span, out, partial, item_key_span)

    def json_schema(self, partial=False):
        schema = {"type": "object", "additionalProperties": nullable(self.value.json_schema(partial))}
        key_schema = self.key.json_schema()
        if "pattern" in key_schema:
            schema["propertyNames"] = {"pattern": key_schema["pattern"]}
        return schema


@dataclass(frozen=True)
class ListOf(Type):
    item: Type
    min_items: int = 0
    unique_key: str | None = None  # items are mappings whose value at this key must be unique

    def check(self, value, path, span, out, partial, key_span=None):
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
class Collection(Type):
    """Named entries that add up across the App, the environments it extends and the environment:
    an entry of the same name replaces the inherited one, `name: null` removes it, and nothing is
    dropped because a file wrote its own list. Written as a map keyed by name, or as a list whose
    entries name themselves with `key` (list entries without one only add)."""

    item: Type
    key: str | None = "name"  # the field that names a list entry; None: a string entry is its own name
    what: str = "entry"

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

    def check(self, value, path, span, out, partial, key_span=None):
        if isinstance(value, list):
            ListOf(self.item, unique_key=self.key).check(value, path, span, out, partial, key_span)
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
        item = self.map_item()
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
                    "additionalProperties": nullable(self.map_item().json_schema(partial)),
                },
            ]
        }


@dataclass(frozen=True)
class Either(Type):
    """A value written in one of several shapes, told apart by its YAML type (a string or a mapping)."""

    options: tuple[Type, ...]
    label: str

    def check(self, value, path, span, out, partial, key_span=None):
        for option in self.options:
            if _accepts(option, value):
                option.check(value, path, span, out, partial, key_span)
                return
        out.error(Code.WRONG_TYPE, f"{path}: expected {self.label}, found {describe(value)}", span)

    def json_schema(self, partial=False):
        return {"anyOf": [o.json_schema(partial) for o in self.options]}


def nullable(schema: dict) -> dict:
    """schema, also accepting null."""
    schema = dict(schema)
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    elif "anyOf" in schema:
        schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
    elif schema:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def _accepts(option: Type, value) -> bool:
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


def shown(value: str, limit: int = 80) -> str:
    """A value quoted for a one-line message: shortened, with newlines and control characters escaped."""
    text = value if len(value) <= limit else value[:limit] + "..."
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return f"'{text}'"


def _name_hint(value: str) -> str:
    foreign = next((ch for ch in value if ord(ch) > 127), None)
    if foreign is not None:  # a look-alike (Cyrillic 'е' for 'e') is invisible in most fonts: name it
        return (
            f"'{foreign}' is {unicodedata.name(foreign, f'U+{ord(foreign):04X}')} (U+{ord(foreign):04X}), not an ASCII "
            "letter; names are lower-case ASCII letters, digits and '-'"
        )
    fixed = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    if fixed and fixed != value:
        return f"names are lower-case letters, digits and '-'; for example '{fixed[:63]}'"
    return "names are lower-case letters, digits and '-', starting and ending with a letter or digit"


# ---------------------------------------------------------------------------------------------
# Value checks that need more than a pattern.


def check_cidr(value: str):
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        hint = None
        try:
            hint = f"did you mean '{ipaddress.ip_network(value, strict=False)}'?"
        except ValueError:
            hint = "write an address block such as 10.20.0.0/16"
        return Code.INVALID_CIDR, f"{shown(value)} is not a valid CIDR ({exc})", hint
    if "/" not in value:
        return (
            Code.INVALID_CIDR,
            f"'{value}' has no prefix length",
            f"write '{value}/32' for a single address",
        )
    return None


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(
        importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    )


def check_time_zone(value: str):
    """A name the API server's time zone database knows (Go's, the IANA one): not Local, not an offset."""
    if value in _time_zones():
        return None
    close = difflib.get_close_matches(value, sorted(_time_zones()), n=1, cutoff=0.7)
    return (
        Code.INVALID_VALUE,
        f"{shown(value)} is not an IANA time zone",
        f"did you mean '{close[0]}'?"
        if close
        else "write a name such as Europe/Berlin, America/New_York or UTC",
    )


def check_no_latest(value: str):
    if value == "latest":
        return (
            Code.LATEST_TAG,
            "the tag 'latest' is not allowed",
            "pin a version tag or a digest: a release must name what it runs",
        )
    return None


# ---------------------------------------------------------------------------------------------
# The spec.

NAME = Str(DNS_LABEL, "a DNS-1123 label (lower-case letters, digits, '-')", max_length=63, name_code=True)
SUBDOMAIN = Str(
    DNS_SUBDOMAIN,
    "a DNS-1123 subdomain (lower-case letters, digits, '-', '.')",
    max_length=253,
    name_code=True,
)
PATH = Str(r"^[^\x00]+$", "a path relative to the repo root")
ENV_KEY = Str(
    ENV_NAME,
    "an environment variable name (letters, digits, '_', '-', '.'; no leading digit)",
    max_length=253,
)
PORT = Int(1, 65535)
PERCENT = Int(1, 1000)
LABELS = MapOf(Str(LABEL_VALUE, "a label value", max_length=63), Str(LABEL_KEY, "a label key"), "label")
COMMAND = ListOf(Str(), 1)

RESOURCE_LIST = Obj(
    {
        "cpu": Field(Quantity(), 'CPU, e.g. 250m or "1"'),
        "memory": Field(Quantity(), "Memory, e.g. 512Mi"),
        "ephemeral-storage": Field(Quantity(), "Local disk (logs, /tmp), e.g. 1Gi"),
    }
)
RESOURCES = Obj(
    {
        "requests": Field(RESOURCE_LIST, "What the scheduler reserves for each pod"),
        "limits": Field(RESOURCE_LIST, "The most each pod may use"),
    }
)

HTTP_CHECK = Obj(
    {
        "path": Field(
            Str(URL_PATH, "a URL path starting with '/'"),
            "Path that answers 200 when the app is healthy",
            required=True,
        ),
        "port": Field(PORT, "Port to probe; defaults to the component's port"),
    }
)
EXEC_CHECK = Obj(
    {
        "command": Field(COMMAND, "Command that exits 0 when healthy", required=True),
    }
)
PROBE = Obj(
    {
        "http": Field(HTTP_CHECK, "An HTTP GET"),
        "exec": Field(EXEC_CHECK, "A command run in the container"),
        "tcp": Field(
            Obj({"port": Field(PORT, "Port to connect to; defaults to the component's port")}),
            "A TCP connection (the process listens)",
        ),
        "periodSeconds": Field(Int(1, 3600), "Seconds between checks"),
        "failureThreshold": Field(Int(1, 1000), "Failed checks in a row before it acts"),
        "timeoutSeconds": Field(Int(1, 600), "Seconds one check may take"),
    },
    one_of=("http", "exec", "tcp"),
)

PROBES = Obj(
    {
        "http": Field(HTTP_CHECK, "The health check as an HTTP GET: readiness (and, for web, startup)"),
        "exec": Field(EXEC_CHECK, "The health check as a command: readiness of workers and schedulers"),
        "readiness": Field(PROBE, "Readiness, instead of the health check (may depend on the database)"),
        "liveness": Field(
            PROBE,
            "Liveness: restarts the container; must not depend on the database or the broker "
            "(web: a TCP check of its port; workers and schedulers: none)",
        ),
        "startup": Field(
            PROBE, "Startup: holds readiness and liveness back until it passes (web: the health check)"
        ),
    },
    one_of=("http", "exec"),
    one_of_optional=True,
)

QUEUE = Obj(
    {
        "broker": Field(
            Str(enum=("redis", "rabbitmq")),
            "The Celery broker whose queue length drives the scale",
            required=True,
        ),
        "name": Field(
            Str(r"^\S+$", "a queue name"), "The queue (Redis list or RabbitMQ queue)", default="celery"
        ),
        "length": Field(Int(1, 100000), "Messages waiting per pod before KEDA adds one", default=10),
        "secret": Field(SUBDOMAIN, "The App's secret that holds the broker's address and credentials"),
        "keys": Field(
            MapOf(
                ENV_KEY,
                Str(
                    r"^(address|host|port|username|password|tls|ca|cert|key)$",
                    "a KEDA parameter (address, host, port, username, password, tls, ca, cert, key)",
                ),
                "parameter",
            ),
            "KEDA parameter -> key of the secret (redis: address, password; rabbitmq: host)",
        ),
    }
)

AUTOSCALING = Obj(
    {
        "minReplicas": Field(
            Int(0, 10000), "Fewest pods (0 only with a queue, outside production)", required=True
        ),
        "maxReplicas": Field(Int(1, 10000), "Most pods", required=True),
        "cpu": Field(
            PERCENT,
            "Target average CPU use, percent of requests (80 when neither cpu nor memory nor queue is set)",
        ),
        "memory": Field(PERCENT, "Target average memory use, percent of requests"),
        "queue": Field(
            QUEUE,
            "Scale a Celery worker on its queue length with KEDA (a ScaledObject, no HorizontalPodAutoscaler)",
        ),
    }
)

IDENTITY = Obj(
    {
        "gcp": Field(
            Str(
                r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.]*[a-z0-9]\.iam\.gserviceaccount\.com$",
                "a Google service account e-mail (name@project.iam.gserviceaccount.com)",
            ),
            "GKE Workload Identity: the Google service account to act as",
        ),
        "aws": Field(
            Str(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$", "an IAM role ARN"),
            "EKS IAM roles for service accounts: the role to assume",
        ),
        "azure": Field(
            Str(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", "a client ID (a UUID)"),
            "AKS Workload Identity: the client ID of the managed identity",
        ),
        "annotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"),
            "Other ServiceAccount annotations a cloud's identity webhook reads",
        ),
    }
)

RBAC = Obj(
    {
        "rules": Field(
            ListOf(
                Obj(
                    {
                        "apiGroups": Field(ListOf(Str()), "API groups ('' is the core group)", required=True),
                        "resources": Field(ListOf(Str(), 1), "Resources", required=True),
                        "verbs": Field(
                            ListOf(
                                Str(
                                    enum=(
                                        "get",
                                        "list",
                                        "watch",
                                        "create",
                                        "update",
                                        "patch",
                                        "delete",
                                        "deletecollection",
                                    )
                                ),
                                1,
                            ),
                            "Verbs",
                            required=True,
                        ),
                        "resourceNames": Field(ListOf(Str()), "Only these objects"),
                    }
                ),
                1,
            ),
            "Rules of a Role bound to the component's own ServiceAccount",
            required=True,
        ),
    }
)

PORT_ENTRY = Either(
    (
        PORT,
        Obj(
            {
                "port": Field(PORT, "Port number", required=True),
                "protocol": Field(Str(enum=("TCP", "UDP", "SCTP")), "Protocol", default="TCP"),
            }
        ),
    ),
    "a port number or {port, protocol}",
)

EGRESS_RULE = Obj(
    {
        "name": Field(
            NAME, "A name for the rule (shown in diffs), by which an environment replaces or removes it"
        ),
        "cidr": Field(Str(checks=(check_cidr,)), "Destination address block"),
        "host": Field(
            Str(
                r"^(?!.*\.[0-9]+$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
                "a host name such as api.stripe.com (an IP address goes under cidr)",
            ),
            "Destination host name (needs network.cni: cilium)",
        ),
        "except": Field(ListOf(Str(checks=(check_cidr,))), "Blocks inside cidr that stay denied"),
        "namespace": Field(NAME, "Destination namespace (instead of cidr)"),
        "podSelector": Field(LABELS, "Only pods with these labels in that namespace"),
        "ports": Field(ListOf(PORT_ENTRY, 1), "Destination ports", required=True),
    },
    one_of=("cidr", "namespace", "host"),
)

SCHEDULING = Obj(
    {
        "nodeSelector": Field(LABELS, "Only nodes with these labels (a node pool)"),
        "tolerations": Field(
            ListOf(
                Obj(
                    {
                        "key": Field(Str(LABEL_KEY, "a taint key"), "The taint's key"),
                        "operator": Field(Str(enum=("Equal", "Exists")), "Equal (the default) or Exists"),
                        "value": Field(Str(LABEL_VALUE, "a taint value"), "The taint's value"),
                        "effect": Field(
                            Str(enum=("NoSchedule", "PreferNoSchedule", "NoExecute")),
                            "The taint's effect (all when absent)",
                        ),
                        "tolerationSeconds": Field(Int(0, 86400), "How long a NoExecute taint is tolerated"),
                    }
                )
            ),
            "Taints its pods tolerate",
        ),
        "priorityClassName": Field(SUBDOMAIN, "The PriorityClass of its pods"),
        "podAnnotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"),
            'Annotations on its pods, e.g. karpenter.sh/do-not-disrupt: "true"',
        ),
    }
)

CRON_SCHEDULE = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( \S+){4})$"


def check_schedule(value: str):
    if re.search(r"\b(CRON_)?TZ=", value):
        return (
            Code.INVALID_VALUE,
            f"{shown(value)} sets its time zone inside the schedule, which Kubernetes refuses",
            "move it to timeZone: (an IANA name) and keep five fields in schedule",
        )
    if not re.fullmatch(CRON_SCHEDULE, value):
        return (
            Code.INVALID_VALUE,
            f"{shown(value)} is not a cron schedule",
            "five fields, minute hour day-of-month month day-of-week, e.g. '30 3 * * *' (or @daily, @hourly)",
        )
    return None


COMPONENT = Obj(
    {
        "type": Field(
            Str(enum=("web", "worker", "scheduler", "cron")),
            "web (gunicorn or an ASGI server behind a Service), worker (celery), scheduler (celery beat), "
            "cron (a management command on a schedule)",
            required=True,
        ),
        "command": Field(COMMAND, "The container's command"),
        "args": Field(ListOf(Str()), "Arguments appended to the command"),
        "port": Field(PORT, "Port the web server listens on (web only)"),
        "replicas": Field(Int(0, 10000), "Pods to run when not autoscaled", default=1),
        "autoscaling": Field(
            AUTOSCALING,
            "A HorizontalPodAutoscaler (or, with queue, a KEDA ScaledObject) instead of a fixed replica count",
        ),
        "probes": Field(PROBES, "Health checks (web, worker, scheduler; required for them)"),
        "resources": Field(RESOURCES, "Requests and limits; kompile adds defaults for what is missing"),
        "terminationGracePeriodSeconds": Field(
            Int(1, 86400),
            "Seconds a pod gets to stop; web derives it from gunicorn's "
            "graceful timeout, workers from celery's --time-limit",
        ),
        "schedule": Field(Str(checks=(check_schedule,)), "When a cron component runs (cron only)"),
        "timeZone": Field(
            Str(checks=(check_time_zone,)),
            "IANA time zone of the schedule (cron only; the cluster's "
            "controller-manager zone, usually UTC, when absent)",
        ),
        "timeoutSeconds": Field(
            Int(10, 86400), "How long one run may take before it is stopped (cron only)", default=3600
        ),
        "suspend": Field(Bool(), "Stop scheduling new runs (cron only)", default=False),
        "sidecars": Field(ListOf(NAME), "Sidecars (from the App's sidecars) that run beside the container"),
        "initContainers": Field(
            ListOf(NAME), "Init containers (from the App's initContainers) that run to completion first"
        ),
        "identity": Field(IDENTITY, "A ServiceAccount of its own with these cloud identities"),
        "rbac": Field(
            RBAC,
            "Kubernetes API access: a ServiceAccount and Role of its own, and the only pods with an API token",
        ),
        "metrics": Field(
            Obj(
                {
                    "port": Field(
                        PORT,
                        "The port it serves metrics on, outside Django (django-prometheus' exporter port)",
                        required=True,
                    ),
                    "path": Field(
                        Str(URL_PATH, "a URL path starting with '/'"), "The metrics path", default="/metrics"
                    ),
                }
            ),
            "Prometheus scrapes it (a Service and a ServiceMonitor), from the monitoring namespace only",
        ),
        "connectsTo": Field(
            ListOf(NAME), "Other web components of the app it calls (both policies allow it)"
        ),
        "scheduling": Field(SCHEDULING, "Where and how its pods are scheduled"),
        "egress": Field(
            Collection(EGRESS_RULE, what="egress rule"),
            "Where this component's pods may connect, besides network.egress",
        ),
        "secrets": Field(
            ListOf(SUBDOMAIN), "Only these of the App's secrets reach its pods (all when absent)"
        ),
    },
    required_when={
        "type": {"web": ("probes",), "worker": ("probes",), "scheduler": ("probes",), "cron": ("schedule",)}
    },
)

SIDECAR = Obj(
    {
        "name": Field(NAME, "Name of the container", required=True),
        "image": Field(
            Str(
                r"^[^\s@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$",
                "an image reference with a tag or digest",
            ),
            "Image with a tag or digest (production requires a digest)",
        ),
        "appImage": Field(
            Bool(), "Run the app's own image (the release's tag or digest), e.g. for collectstatic"
        ),
        "writablePaths": Field(
            ListOf(
                Str(
                    r"^(?!/(proc|sys|dev)(/|$))(?!.*/\.\.?(/|$))(/[A-Za-z0-9._@+-]+)+$",
                    "an absolute, normalised path below / and outside /proc, /sys and /dev, such as /var/run",
                )
            ),
            "Folders it may write to (each an emptyDir; its root filesystem is read-only)",
        ),
        "command": Field(COMMAND, "The container's command"),
        "args": Field(ListOf(Str()), "Arguments"),
        "env": Field(MapOf(Str(), ENV_KEY, "variable"), "Plain settings (never secrets)"),
        "secrets": Field(
            ListOf(SUBDOMAIN), "The App's secrets (mount: env) it reads as environment variables"
        ),
        "ports": Field(ListOf(PORT), "Ports it listens on"),
        "resources": Field(RESOURCES, "Requests and limits; kompile adds small defaults for what is missing"),
        "probes": Field(
            Obj(
                {
                    "startup": Field(PROBE, "The app's containers start only after this passes"),
                    "readiness": Field(PROBE, "Readiness (counts for the pod's)"),
                    "liveness": Field(PROBE, "Liveness"),
                }
            ),
            "Probes (sidecars only)",
        ),
    },
    one_of=("image", "appImage"),
)

SECRET = Obj(
    {
        "name": Field(
            SUBDOMAIN, "Name of the Secret (and of the SealedSecret that unseals to it)", required=True
        ),
        "keys": Field(ListOf(ENV_KEY, 1), "Keys every environment must provide", required=True),
        "mount": Field(
            Str(enum=("env", "files")),
            "env: keys as environment variables; files: a read-only volume",
            default="env",
        ),
        "mountPath": Field(Str(r"^/[^\x00]*$", "an absolute path"), "Where files are mounted (mount: files)"),
    }
)

DNS_TARGET = Obj(
    {
        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
        "namespace": Field(NAME, "Namespace of the DNS pods"),
        "podSelector": Field(LABELS, "Their labels"),
        "cidr": Field(
            Str(checks=(check_cidr,)),
            "An address that answers DNS (NodeLocal DNSCache, the GKE metadata server)",
        ),
    },
    one_of=("namespace", "cidr"),
)

NETWORK = Obj(
    {
        "ingressFrom": Field(
            Collection(
                Obj(
                    {
                        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
                        "namespace": Field(NAME, "Namespace allowed to reach web components", required=True),
                        "podSelector": Field(LABELS, "Only pods with these labels in that namespace"),
                    }
                ),
                what="peer",
            ),
            "Who may reach web components; everything else is denied",
        ),
        "egress": Field(
            Collection(EGRESS_RULE, what="egress rule"), "Where every pod may connect; DNS is always allowed"
        ),
        "dns": Field(
            Collection(DNS_TARGET, what="DNS target"),
            "Where pods resolve names (default: the kube-dns pods and NodeLocal DNSCache's 169.254.20.10)",
        ),
        "cni": Field(
            Str(enum=("cilium", "other")),
            "The cluster's network plugin, for what plain NetworkPolicy cannot say (egress to host names)",
            default="other",
        ),
    }
)

ROUTE = Obj(
    {
        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
        "path": Field(
            Str(URL_PATH, "a URL path starting with '/'"),
            "Path prefix (the longest matching prefix wins)",
            required=True,
        ),
        "component": Field(NAME, "The web component that serves it", required=True),
        "timeoutSeconds": Field(
            Int(1, 86400), "How long a request (or an idle websocket) may last, e.g. 3600 for websockets"
        ),
    }
)

INGRESS = Obj(
    {
        "host": Field(SUBDOMAIN, "Public host name; also sent as the Host header of HTTP probes"),
        "hosts": Field(
            ListOf(SUBDOMAIN, 1), "More public host names (the first of host and hosts is the probes' Host)"
        ),
        "className": Field(Str(), "IngressClass to use (Ingress only)"),
        "tlsSecret": Field(SUBDOMAIN, "Secret holding the TLS certificate of every host (Ingress only)"),
        "annotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"),
            "Annotations for the ingress controller",
        ),
        "component": Field(
            NAME, "The web component to route to; needed only when there are several (without routes)"
        ),
        "path": Field(
            Str(URL_PATH, "a URL path starting with '/'"),
            "Path prefix routed to the component (without routes)",
            default="/",
        ),
        "routes": Field(
            Collection(ROUTE, what="route"),
            "Path prefixes routed to components, e.g. /ws to an ASGI component",
        ),
        "certificate": Field(
            Obj(
                {
                    "issuer": Field(NAME, "The cert-manager issuer", required=True),
                    "kind": Field(Str(enum=("ClusterIssuer", "Issuer")), "Its kind", default="ClusterIssuer"),
                    "http01": Field(
                        Bool(),
                        "The issuer solves HTTP-01 challenges: let the ingress controller reach cert-manager's "
                        "solver pods through the default deny",
                        default=False,
                    ),
                }
            ),
            "A cert-manager Certificate for tlsSecret, covering every host",
        ),
        "gateway": Field(
            Obj(
                {
                    "name": Field(NAME, "The Gateway", required=True),
                    "namespace": Field(
                        NAME, "Its namespace (the platform's; it must allow routes from this one)"
                    ),
                    "sectionName": Field(NAME, "The listener to attach to"),
                }
            ),
            "Route through a Gateway API Gateway (an HTTPRoute) instead of an Ingress; TLS is the Gateway's",
        ),
    }
)

MONITORING = Obj(
    {
        "namespace": Field(NAME, "Where Prometheus runs", default="monitoring"),
        "podSelector": Field(
            LABELS, "Prometheus' pod labels", default={"app.kubernetes.io/name": "prometheus"}
        ),
        "labels": Field(
            LABELS,
            "Labels every ServiceMonitor carries, so Prometheus selects it (e.g. release: kube-prometheus-stack)",
        ),
        "interval": Field(
            Str(r"^[0-9]+(ms|s|m|h)$", "a duration such as 30s"),
            "How often Prometheus scrapes",
            default="30s",
        ),
    }
)

SEALED_SECRET = Obj(
    {
        "encryptedData": Field(
            MapOf(
                Str(r"^[A-Za-z0-9+/=_-]+(\s+[A-Za-z0-9+/=_-]+)*$", "ciphertext as printed by kubeseal --raw"),
                ENV_KEY,
            ),
            "Ciphertext per key, as `kubeseal --raw` prints it",
        ),
        "scope": Field(
            Str(enum=("strict", "namespace-wide", "cluster-wide")),
            "The scope it was sealed with",
            default="strict",
        ),
        "file": Field(
            PATH, "A SealedSecret manifest written by `kubeseal -o yaml`, relative to the repo root"
        ),
    },
    one_of=("encryptedData", "file"),
)

SECURITY = Obj(
    {
        "runAsUser": Field(Int(10000, 2147483647), "User ID of every container", default=10001),
        "runAsGroup": Field(Int(10000, 2147483647), "Group ID of every container", default=10001),
        "fsGroup": Field(Int(10000, 2147483647), "Group that owns mounted volumes", default=10001),
        "tmpSize": Field(Quantity(), "Size limit of the writable /tmp (an emptyDir)", default="256Mi"),
        "allow": Field(
            ListOf(
                Obj(
                    {
                        "rule": Field(
                            Str(enum=tuple(RULES)),
                            "The hardening rule a patch or an extra resource may break",
                            required=True,
                        ),
                        "object": Field(
                            Str(
                                r"^[A-Za-z][A-Za-z0-9]*/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                                "Kind/name, e.g. Deployment/shop-web",
                            ),
                            "Only this object (all objects when absent)",
                        ),
                        "reason": Field(
                            Str(r"^\s*\S.{9,}", "a reason of at least ten characters"),
                            "Why: shown by `kompile validate`",
                            required=True,
                        ),
                    }
                )
            ),
            "Visible opt-outs from the hardening rules, each with a reason (none by default)",
        ),
    }
)

PATCH = Obj(
    {
        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
        "path": Field(PATH, "A patch file relative to the repo root"),
        "patch": Field(
            Either(
                (Anything(dict), ListOf(Anything(dict, "a JSON patch operation"))),
                "a strategic merge patch (mapping) or JSON patch operations (list)",
            ),
            "An inline strategic merge patch (a mapping) or JSON patch (a list of operations)",
        ),
        "target": Field(
            Obj(
                {
                    "group": Field(Str(), "API group"),
                    "version": Field(Str(), "API version"),
                    "kind": Field(Str(), "Kind"),
                    "name": Field(Str(), "Object name"),
                }
            ),
            "Which object to patch; a strategic merge patch names it itself",
        ),
    },
    one_of=("path", "patch"),
)

IMAGE = Either(
    (
        Str(IMAGE_REPOSITORY, "an image repository such as ghcr.io/acme/shop"),
        Obj(
            {
                "repository": Field(
                    Str(IMAGE_REPOSITORY, "an image repository such as ghcr.io/acme/shop"), "Image repository"
                ),
                "tag": Field(
                    Str(IMAGE_TAG, "an image tag", checks=(check_no_latest,)), "Image tag, e.g. 1.4.3"
                ),
                "digest": Field(
                    Str(IMAGE_DIGEST, "a digest such as sha256:<64 hex digits>"),
                    "Image digest; production requires it",
                ),
            }
        ),
    ),
    "an image repository or {repository, tag, digest}",
)

GITOPS = Obj(
    {
        "tool": Field(
            Str(enum=("argocd", "flux")), "Which GitOps controller syncs the output", required=True
        ),
        "repoURL": Field(
            Str(r"^(https://|ssh://|git@)\S+$", "a Git URL (https://, ssh:// or git@)"),
            "The Git repository that holds the output",
            required=True,
        ),
        "revision": Field(Str(), "Branch, tag or commit to follow", default="main"),
        "path": Field(PATH, "Folder of the output inside the repository, for monorepos"),
        "argocd": Field(
            Obj(
                {
                    "namespace": Field(NAME, "Namespace Argo CD runs in", default="argocd"),
                    "applicationSet": Field(
                        Bool(),
                        "One ApplicationSet (list generator) instead of one Application per environment",
                        default=False,
                    ),
                },
                elsewhere={
                    "allowKinds": "allowKinds moved to the App's spec (`spec.allowKinds`), where it covers Flux too; "
                    "add `namespaced: true|false` to each kind kompile does not know"
                },
            ),
            "Argo CD settings",
        ),
        "flux": Field(
            Obj(
                {
                    "namespace": Field(NAME, "Namespace Flux runs in", default="flux-system"),
                    "interval": Field(
                        Str(r"^[0-9]+(ms|s|m|h)$", "a duration such as 5m"),
                        "How often Flux reconciles each environment",
                        default="10m",
                    ),
                    "timeout": Field(
                        Str(r"^[0-9]+(ms|s|m|h)$", "a duration such as 5m"),
                        "How long Flux waits for an environment to become ready",
                        default="5m",
                    ),
                    "sopsKeySecret": Field(
                        SUBDOMAIN,
                        "Secret in Flux's namespace holding the sops key (age: a key ending in .agekey)",
                        default="sops-age",
                    ),
                }
            ),
            "Flux settings",
        ),
    }
)

SHARED_FIELDS: dict[str, Field] = {
    "image": Field(IMAGE, "The app's image: the App names the repository, each environment a tag or digest"),
    "env": Field(
        MapOf(Str(), ENV_KEY, "variable"), "Plain settings, as a ConfigMap the pods read (never secrets)"
    ),
    "secrets": Field(
        Collection(SECRET, what="secret"), "Secrets the pods read; every environment provides them sealed"
    ),
    "components": Field(MapOf(COMPONENT, NAME, "component"), "The processes of the app, by name"),
    "sidecars": Field(
        Collection(SIDECAR, what="sidecar"),
        "Containers that run beside a component's (native sidecars), "
        "used by name from components and migrate",
    ),
    "initContainers": Field(
        Collection(SIDECAR, what="init container"),
        "Containers that run to completion before a component's, used by name from components and migrate",
    ),
    "identity": Field(
        IDENTITY,
        "Cloud identities of the app's ServiceAccount (every component without one of its own, and migrate)",
    ),
    "migrate": Field(
        Obj(
            {
                "command": Field(COMMAND, "The migration command", required=True),
                "timeoutSeconds": Field(Int(30, 86400), "Deadline of the migration Job", default=900),
                "backoffLimit": Field(Int(0, 10), "Retries before the Job fails", default=1),
                "resources": Field(RESOURCES, "Requests and limits of the Job"),
                "sidecars": Field(
                    ListOf(NAME), "Sidecars it needs (a database proxy); they stop when the migration ends"
                ),
                "secrets": Field(
                    ListOf(SUBDOMAIN), "Only these of the App's secrets reach it (all when absent)"
                ),
                "initContainers": Field(ListOf(NAME), "Init containers it needs"),
            }
        ),
        "A Job that runs before each release reaches the pods",
    ),
    "network": Field(NETWORK, "Who may connect to the app and where it may connect"),
    "ingress": Field(INGRESS, "Public HTTP(S) entry to a web component"),
    "cluster": Field(
        Str(CLUSTER, "an API server URL (https://...) or a cluster name"),
        "The cluster this environment deploys to",
    ),
    "security": Field(SECURITY, "Identity of the pods' processes"),
    "monitoring": Field(MONITORING, "Where Prometheus runs and how it finds the ServiceMonitors"),
    "extraResources": Field(
        Collection(PATH, key=None, what="manifest"),
        "Extra Kubernetes manifests to include, relative to the repo root (a list, or a map of name: path)",
    ),
    "patches": Field(
        Collection(PATCH, what="patch"), "Kustomize-style patches applied to what kompile generates"
    ),
}


def collection_paths(fields: dict[str, Field], prefix: tuple[str, ...] = ()):
    """Where the Collections among these settings are ((path, collection) pairs): the lists that add up."""
    for key, spec_field in fields.items():
        if isinstance(spec_field.type, Collection):
            yield (*prefix, key), spec_field.type
        elif isinstance(spec_field.type, Obj):
            yield from collection_paths(spec_field.type.fields, (*prefix, key))
        elif isinstance(spec_field.type, MapOf) and isinstance(
            spec_field.type.value, Obj
        ):  # in every entry: "*"
            yield from collection_paths(spec_field.type.value.fields, (*prefix, key, "*"))


# Settings that moved: where they are now (a clear error instead of a silent change).
MOVED = {
    "rbac": "rbac moved into the components that call the Kubernetes API: `components.<name>.rbac: {rules: [...]}` "
    "(only their pods get an API token, and migrate none)",
}

COLLECTIONS = tuple(collection_paths(SHARED_FIELDS))

ALLOW_KINDS = ListOf(
    Obj(
        {
            "group": Field(
                Str(
                    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$",
                    "an API group ('' for the core group)",
                ),
                "API group ('' for the core group)",
                required=True,
            ),
            "kind": Field(
                Str(r"^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$", "a kind such as ScaledObject"),
                "Kind",
                required=True,
            ),
            "namespaced": Field(
                Bool(), "Whether its objects live in a namespace; required for kinds kompile does not know"
            ),
        }
    )
)

APP_ONLY = {
    "gitops": Field(GITOPS, "How Argo CD or Flux syncs the output"),
    "allowKinds": Field(
        ALLOW_KINDS,
        "Kinds extra resources may have besides kompile's own, each listed on every run "
        "(and the only ones an Argo CD AppProject allows besides kompile's own)",
    ),
}
ENVIRONMENT_ONLY = {
    "namespace": Field(NAME, "Namespace of this environment", default="<app>-<environment>"),
    "extends": Field(NAME, "Another environment whose settings this one starts from"),
    "tier": Field(
        Str(enum=("development", "staging", "production", "preview")),
        "production turns on the production rules",
    ),
    "sealedSecrets": Field(
        MapOf(SEALED_SECRET, SUBDOMAIN, "secret"), "The sealed value of each secret the App declares"
    ),
    "externalSecrets": Field(
        Obj(
            {
                "store": Field(
                    Obj(
                        {
                            "name": Field(SUBDOMAIN, "The SecretStore or ClusterSecretStore", required=True),
                            "kind": Field(
                                Str(enum=("SecretStore", "ClusterSecretStore")),
                                "Its kind",
                                default="SecretStore",
                            ),
                        }
                    ),
                    "Where External Secrets Operator reads the values",
                    required=True,
                ),
                "refreshInterval": Field(
                    Str(r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", "a duration such as 1h0m0s"),
                    "How often it reads them again",
                    default="1h0m0s",
                ),
                "secrets": Field(
                    MapOf(
                        Obj(
                            {
                                "key": Field(
                                    Str(r"^\S+$", "a key in the store"),
                                    "The entry in the store",
                                    required=True,
                                ),
                                "properties": Field(
                                    MapOf(Str(r"^\S+$", "a property"), ENV_KEY, "key"),
                                    "The property of each declared key (the key's own name when absent)",
                                ),
                            }
                        ),
                        SUBDOMAIN,
                        "secret",
                    ),
                    "Each secret the App declares, from the store",
                    required=True,
                ),
            }
        ),
        "Secrets from an external store (External Secrets Operator), instead of sealed values",
    ),
    "sopsSecrets": Field(
        MapOf(
            Obj(
                {
                    "file": Field(
                        PATH,
                        "A Secret manifest encrypted with sops (data or stringData encrypted), relative to the repo root",
                        required=True,
                    ),
                }
            ),
            SUBDOMAIN,
            "secret",
        ),
        "Secrets encrypted with sops, which Flux decrypts (Flux only)",
    ),
    "pullRequests": Field(
        Obj(
            {
                "github": Field(
                    Obj(
                        {
                            "owner": Field(
                                Str(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$", "a GitHub owner"),
                                "Owner of the app's repository",
                                required=True,
                            ),
                            "repo": Field(
                                Str(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$", "a repository name"),
                                "The app's repository",
                                required=True,
                            ),
                            "tokenSecret": Field(
                                SUBDOMAIN,
                                "Secret (in Argo CD's namespace) whose `token` key reads pull requests",
                            ),
                            "labels": Field(ListOf(Str()), "Only pull requests with these labels"),
                        }
                    ),
                    "Pull requests of a GitHub repository",
                ),
                "gitlab": Field(
                    Obj(
                        {
                            "project": Field(
                                Str(r"^\S+$", "a project ID or path"), "The app's project", required=True
                            ),
                            "api": Field(
                                Str(r"^https://\S+$", "an https:// URL"),
                                "GitLab's URL, for a self-hosted GitLab",
                            ),
                            "tokenSecret": Field(
                                SUBDOMAIN,
                                "Secret (in Argo CD's namespace) whose `token` key reads merge requests",
                            ),
                            "labels": Field(ListOf(Str()), "Only merge requests with these labels"),
                        }
                    ),
                    "Merge requests of a GitLab project",
                ),
                "host": Field(
                    Str(
                        r"^[a-z0-9{}.-]*\{number\}[a-z0-9{}.-]*$",
                        "a host with {number}, e.g. pr-{number}.preview.example.com",
                    ),
                    "Each preview's host",
                    required=True,
                ),
                "imageTag": Field(
                    Str(r"^[A-Za-z0-9_.{}-]+$", "a tag such as pr-{number} or {head_sha}"),
                    "The image tag CI pushes for a pull request ({number}, {head_sha}, {head_short_sha})",
                    default="{head_sha}",
                ),
                "requeueAfterSeconds": Field(
                    Int(30, 86400), "How often Argo CD looks for pull requests", default=300
                ),
            },
            one_of=("github", "gitlab"),
        ),
        "This environment is a template: one preview per open pull request (Argo CD)",
    ),
}

APP_SPEC = Obj(
    {
        **SHARED_FIELDS,
        "image": Field(IMAGE, SHARED_FIELDS["image"].doc, required=True),
        "components": Field(SHARED_FIELDS["components"].type, SHARED_FIELDS["components"].doc, required=True),
        **APP_ONLY,
    },
    elsewhere={**{k: f"'{k}' is set per environment, not on the App" for k in ENVIRONMENT_ONLY}, **MOVED},
)
ENVIRONMENT_SPEC = Obj(
    {**SHARED_FIELDS, **ENVIRONMENT_ONLY},
    elsewhere={**{k: f"'{k}' is set on the App only" for k in APP_ONLY}, **MOVED},
)
# What an environment's settings must satisfy once the App and its extends chain are merged in.
EFFECTIVE_SPEC = Obj(
    {
        **SHARED_FIELDS,
        "image": Field(IMAGE, SHARED_FIELDS["image"].doc, required=True),
        "components": Field(SHARED_FIELDS["components"].type, SHARED_FIELDS["components"].doc, required=True),
        **ENVIRONMENT_ONLY,
    }
)

METADATA = Obj(
    {
        "name": Field(NAME, "The app's name, or the environment's (equal to the file name)", required=True),
        "labels": Field(LABELS, "Labels (informational)"),
        "annotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"), "Annotations (informational)"
        ),
    }
)

KINDS = {"App": APP_SPEC, "Environment": ENVIRONMENT_SPEC}


def document_type(kind: str) -> Obj:
    return Obj(
        {
            "apiVersion": Field(Str(enum=(API_VERSION,)), "Always " + API_VERSION, required=True),
            "kind": Field(Str(enum=tuple(KINDS)), "App or Environment", required=True),
            "metadata": Field(METADATA, "Name and labels", required=True),
            "spec": Field(KINDS[kind], f"The {kind}'s settings", required=kind == "App"),
        }
    )


_ENVELOPES = {
    kind: Obj(
        {
            **document_type(kind).fields,
            "spec": Field(Anything(dict), f"The {kind}'s settings", required=kind == "App"),
        },
        label="the document",
    )
    for kind in KINDS
}


def check_document(doc: YMap, kind: str, out: Collector) -> None:
    """Types, unknown keys and names of one file. Required settings of an Environment are checked
    after merging (validate.py): an environment file only states what differs."""
    _ENVELOPES[kind].check(doc, "", doc.span, out, partial=False)
    spec = doc.get("spec")
    if isinstance(spec, dict):
        KINDS[kind].check(spec, "", doc.value_span("spec"), out, partial=kind == "Environment")


def check_effective(spec: YMap, out: Collector, key_span: Span | None = None) -> None:
    """An environment's merged settings; key_span (its file's `spec:`) is where missing settings are reported."""
    EFFECTIVE_SPEC.check(spec, "", spec.span, out, partial=False, key_span=key_span)


def json_schema() -> dict:
    """A JSON Schema (2020-12) for App and Environment files, for yaml-language-server and CI."""

    def kind_schema(kind: str) -> dict:
        # The envelope is complete in every file; an Environment's spec states only what differs.
        schema = document_type(kind).json_schema()
        schema["properties"]["kind"] = {
            "const": kind,
            "description": schema["properties"]["kind"]["description"],
        }
        spec = KINDS[kind].json_schema(partial=kind == "Environment")
        if kind == "Environment":
            spec = nullable(spec)
        schema["properties"]["spec"] = {**spec, "description": schema["properties"]["spec"]["description"]}
        return schema

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "kompile App and Environment specs",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "oneOf": [
            {"$ref": "#/$defs/App"},
            {"$ref": "#/$defs/Environment"},
        ],
        "$defs": {"App": kind_schema("App"), "Environment": kind_schema("Environment")},
    }
