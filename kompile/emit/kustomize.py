"""YAML exactly as `kubectl kustomize` prints it: what rendered/<env>/manifest.yaml holds.

kustomize (v5) prints each object through sigs.k8s.io/yaml's JSONToYAML: the object is written as JSON,
read back by go-yaml v2 (so a number is an int when its JSON text is one) and written by go-yaml v2's
encoder, which sorts keys in its own "natural" order, writes a string in double quotes when go-yaml v2
would read it back as something else (YAML 1.1 booleans, numbers in Go's syntax, dates, base-60), a
string with a line break as a literal block, and wraps long lines at 80 columns. Its emitter is a port
of libyaml's, so libyaml (through PyYAML) does the emitting here, with every decision about style made
beforehand. Two differences are left out on purpose: strings holding characters kompile refuses in any
input (NEL, LS, PS, BOM: source.py), which go-yaml's port writes unlike libyaml, and keys whose digit
runs make go-yaml's order intransitive, which kustomize itself prints in a different order on each run
(Go randomises map iteration); kompile picks one order and keeps it. tests/test_rendered.py holds this equal to kubectl kustomize, byte for byte, on every golden
overlay and on a corpus of awkward strings and numbers.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from kompile.goyaml import base60, resolve

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


def _string_style(text: str) -> str | None:
    if "\n" in text:
        return "|"
    if resolve(text) != "str" or base60(text):
        return '"'
    return None  # plain, unless the emitter finds it cannot be (then it quotes, as go-yaml's does)


def _key_less(a: str, b: str) -> bool:
    """go-yaml v2's keyList.Less for two string keys: letters after everything else, runs of digits
    compared as numbers."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        a_letter, b_letter = a[i].isalpha(), b[i].isalpha()
        if a_letter and b_letter:
            return a[i] < b[i]
        if a_letter or b_letter:
            return b_letter
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an = _wrap64(an * 10 + ord(a[ai]) - 48)
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn = _wrap64(bn * 10 + ord(b[bi]) - 48)
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def _wrap64(value: int) -> int:
    """Go's int64 arithmetic overflows silently."""
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _key_order(a: str, b: str) -> int:
    return -1 if _key_less(a, b) else 1 if _key_less(b, a) else 0


def _go_float_text(value: float) -> str:
    """The float as kustomize prints it: written as JSON by encoding/json, read back by go-yaml (an int if
    that text is one: encoding/json writes an integral value below 1e21 without '.' or exponent),
    written by strconv.FormatFloat(f, 'g', -1, 64)."""
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e21 and _INT64[0] <= int(value) <= _UINT64_MAX:
        return str(int(value))
    digits, exponent = _shortest(value)
    point = len(digits) + exponent  # where the decimal point goes
    sign = "-" if value < 0 else ""
    if point - 1 < -4 or point - 1 >= 6:  # the %e form, as 'g' with the shortest precision picks it
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = point - 1
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest(value: float) -> tuple[str, int]:
    """The shortest decimal digits that read back as value, and their exponent (|value| = digits *
    10**exponent)."""
    _, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    exponent += len(digits) - len(text)
    return text or "0", exponent


def _int_text(value: int) -> str:
    if _INT64[0] <= value <= _UINT64_MAX:
        return str(value)
    # Past uint64 go-yaml reads the JSON number as a float (float() raises OverflowError past 1e308:
    # such a number reaches no cluster through kustomize either).
    return _go_float_text(float(value))


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """libyaml's emitter, given nodes whose every style is decided above: a plain scalar is written plain
    whenever the emitter's own analysis allows it (as go-yaml's port does)."""

    def resolve(self, kind, value, implicit):
        return _STR if kind is ScalarNode else _MAP if kind is MappingNode else _SEQ


class PurePythonDumper(yaml.SafeDumper):
    """The same emitter without libyaml (tests hold both to the same bytes)."""

    resolve = _Dumper.resolve


# Styles and key orders repeat across objects and environments (apiVersion, metadata, labels, ...).
_STYLES: dict[str, str | None] = {}
_KEY_ORDERS: dict[str, tuple | None] = {}
_CACHE_LIMIT = 1 << 16


def _scalar(text: str) -> ScalarNode:
    style = _STYLES.get(text, "?")
    if style == "?":
        style = _string_style(text)
        if len(_STYLES) < _CACHE_LIMIT:
            _STYLES[text] = style
    return ScalarNode(_STR, text, style=style)


def _sort_key(key: str) -> tuple | None:
    """go-yaml's order for a key without digits (there it is lexicographic, letters after everything
    else); None for a key with digits, which compares through _key_less."""
    cached = _KEY_ORDERS.get(key, False)
    if cached is False:
        cached = None if any(char.isdecimal() for char in key) else tuple((c.isalpha(), c) for c in key)
        if len(_KEY_ORDERS) < _CACHE_LIMIT:
            _KEY_ORDERS[key] = cached
    return cached


def _node(value):
    if isinstance(value, str):
        return _scalar(value)
    if isinstance(value, dict):
        orders = [(_sort_key(key), key) for key in value]
        if any(order is None for order, _ in orders):
            keys = sorted(value, key=functools.cmp_to_key(_key_order))
        else:
            keys = [key for _, key in sorted(orders)]
        items = [(_scalar(key), _node(value[key])) for key in keys]
        return MappingNode(_MAP, items, flow_style=not items or None)
    if isinstance(value, (list, tuple)):
        return SequenceNode(_SEQ, [_node(item) for item in value], flow_style=not value or None)
    if value is None:
        return ScalarNode(_STR, "null")
    if isinstance(value, bool):
        return ScalarNode(_STR, "true" if value else "false")
    if isinstance(value, int):
        return ScalarNode(_STR, _int_text(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("JSON has no NaN or infinity: kustomize cannot print this object")
        return ScalarNode(_STR, _go_float_text(value))
    raise TypeError(f"cannot print a {type(value).__name__}")


def emit_kustomize(objects: list[dict], dumper: type = _Dumper) -> bytes:
    """The objects as one stream, as kustomize prints a build (objects already in its order)."""
    return b"---\n".join(_dump(obj, dumper).encode("utf-8") for obj in objects)


def _dump(obj: dict, dumper: type) -> str:
    text = yaml.serialize(_node(obj), Dumper=dumper, allow_unicode=True, width=80)
    # libyaml (0.2.5) ends a document that holds a keep-chomped block scalar (|+) with "...", go-yaml's
    # older port never does. No line of a mapping's document can be "..." otherwise.
    return text.removesuffix("...\n")
