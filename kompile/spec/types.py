"""The value types a spec is made of, each a checker and its JSON Schema at once: strings with a
pattern, integers in a range, quantities, and the helpers their messages share."""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from kompile.errors import Code, Collector, Span
from kompile.source import describe

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
    default: object = None  # documented default; normalise/ applies it


class Type:
    """A node of the spec. check() reports problems; json_schema() describes the same rules."""

    # Whether check() can find something different in a full spec than in a partial one (a required
    # field, one of several): a scalar's findings do not depend on it, so a checked entry of an
    # environment's file needs no second look once merged (structure.entry_problems).
    partial_matters: bool = True

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
    partial_matters = False
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
    partial_matters = False
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
    partial_matters = False

    def check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, bool):
            out.error(Code.WRONG_TYPE, f"{path}: expected true or false, found {describe(value)}", span)

    def json_schema(self, partial=False):
        return {"type": "boolean"}


@dataclass(frozen=True)
class Quantity(Type):
    """A Kubernetes resource quantity: 250m, 1, "1", 512Mi."""

    partial_matters = False

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

    partial_matters = False

    kind: type | tuple = dict
    label: str = "a mapping"

    def check(self, value, path, span, out, partial, key_span=None):
        if not isinstance(value, self.kind):
            out.error(Code.WRONG_TYPE, f"{path}: expected {self.label}, found {describe(value)}", span)

    def json_schema(self, partial=False):
        return {"type": "object"} if self.kind is dict else {}


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


NAME = Str(DNS_LABEL, "a DNS-1123 label (lower-case letters, digits, '-')", max_length=63, name_code=True)
