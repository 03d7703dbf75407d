"""What go-yaml takes a plain scalar for: kustomize reads files with go-yaml v3 and prints through
go-yaml v2, kubectl reads with go-yaml v2. Numbers follow Go's strconv (0o17, 0x1F, 1_000, 1e3), dates
time.Parse's layouts; v2 also reads YAML 1.1's yes/no/on/off as booleans, v3 as text.

The emitters quote what a reader would take for something else (emit/), and source.py refuses, in the
manifests a spec brings (extra resources, patches), plain values YAML 1.1 and go-yaml v3 read differently.
"""

from __future__ import annotations

import calendar
import decimal
import re
from decimal import Decimal

_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1

# go-yaml's resolve table: the words it reads as something else (v3 reads YAML 1.1's other booleans,
# yes/no/on/off and y/n, as text).
_YAML_1_1_BOOLS = frozenset(
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
)
_WORDS = {
    word: kind
    for kind, words in (
        ("bool", "y Y yes Yes YES true True TRUE on On ON n N no No NO false False FALSE off Off OFF"),
        ("null", "~ null Null NULL"),
        ("float", ".nan .NaN .NAN .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF"),
    )
    for word in words.split()
} | {"": "null"}
_HINTED = frozenset("+-0123456789yYnNtTfFoO~.")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# strconv.ParseInt/ParseUint(s, 0, 64), after go-yaml removed every underscore.
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_GO_DECIMAL_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_GO_HEX_FLOAT = re.compile(r"[-+]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][-+]?[0-9]+")
_GO_SPECIAL_FLOAT = re.compile(r"[-+]?(?:inf|infinity|nan)", re.IGNORECASE)
_DECIMAL = decimal.Context(Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_MAX_FLOAT = Decimal("1.7976931348623158e308")  # past half an ULP above the largest float64: ErrRange
# time.Parse layouts go-yaml v2 tries ("2006-1-2T15:4:5.999999999Z07:00", its lower-case t twin,
# "2006-1-2 15:4:5.999999999", "2006-1-2"): month, day, hour, minute and second take one or two digits,
# a fraction after '.' or ',' any number.
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<zone>Z|[-+](?P<zh>[0-9]{2}):(?P<zm>[0-9]{2}))?)?"
)


def _go_int(plain: str) -> bool:
    """strconv.ParseInt or ParseUint(plain, 0, 64) succeeds: Go's syntax, and a value within 64 bits."""
    match = _GO_INT.fullmatch(plain)
    if not match:
        return False
    sign, body = match.groups()
    lower = body.lower()
    if lower.startswith(("0x", "0b", "0o")):
        base, digits = {"x": 16, "b": 2, "o": 8}[lower[1]], lower[2:]
    else:
        base, digits = (8, lower[1:]) if len(lower) > 1 and lower[0] == "0" else (10, lower)
    digits = digits.lstrip("0") or "0"
    if len(digits) > {16: 16, 10: 20, 8: 22, 2: 64}[base]:  # past 64 bits whatever the digits
        return False  # (and never a long conversion: Python refuses over 4,300 decimal digits)
    value = int(digits, base)
    return value <= (1 << 63) if sign == "-" else value <= _UINT64_MAX


def _go_float(text: str) -> bool:
    """strconv.ParseFloat(text, 64) succeeds (no syntax error, no overflow)."""
    if "_" in text:
        if not _underscores_ok(text):
            return False
        text = text.replace("_", "")
    if _GO_SPECIAL_FLOAT.fullmatch(text) or _GO_HEX_FLOAT.fullmatch(text):
        return True
    if not _GO_DECIMAL_FLOAT.fullmatch(text):
        return False
    try:
        return abs(_DECIMAL.create_decimal(text)) <= _MAX_FLOAT
    except decimal.Overflow:  # an exponent past what any float holds
        return False


def _underscores_ok(text: str) -> bool:
    """strconv's underscoreOK: an underscore only between digits, or between a base prefix and a digit."""
    saw = "^"
    body = text[1:] if text[:1] in "+-" else text
    i, hex_digits = 0, False
    if len(body) >= 2 and body[0] == "0" and body[1].lower() in "box":
        i, saw, hex_digits = 2, "0", body[1].lower() == "x"
    for char in body[i:]:
        if char.isascii() and (char.isdigit() or hex_digits and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _timestamp(text: str) -> bool:
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return False
    year, month, day = int(match["y"]), int(match["m"]), int(match["d"])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 2000, month)[1]):
        return False
    if match["sep"] is None:
        return True
    if match["sep"] == " " and match["zone"] is not None:
        return False
    if match["sep"] in "Tt" and match["zone"] is None:
        return False
    if int(match["H"]) > 23 or int(match["M"]) > 59 or int(match["S"]) > 59:
        return False
    return match["zh"] is None or (int(match["zh"]) <= 24 and int(match["zm"]) <= 59)


_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


def base60(text: str) -> bool:
    """YAML 1.1's sexagesimal numbers (1:30), which go-yaml v2 quotes on the way out."""
    return text[:1] in "+-0123456789" and ":" in text and _BASE60.fullmatch(text) is not None


def resolve(text: str, version: int = 2) -> str:
    """What go-yaml (v2, or v3 as kustomize reads files) takes text for, written plain: "str", "bool",
    "null", "int", "float" or "timestamp" (its resolve(), with Go's strconv syntax for numbers)."""
    if text in _WORDS:
        return _WORDS[text] if version == 2 or text not in _YAML_1_1_BOOLS else "str"
    if text[0] not in _HINTED:
        return "str"
    if text[0] == ".":
        return "float" if _go_float(text) else "str"
    if text[0] in "+-0123456789":
        if _timestamp(text):
            return "timestamp"
        plain = text.replace("_", "")
        if _go_int(plain):
            return "int"
        if _YAML_FLOAT.fullmatch(plain) and _go_float(plain):
            return "float"
        if plain.startswith("0b"):  # go-yaml's own retry: a sign after the prefix ("0b-1") is an int
            return "int" if re.fullmatch(r"0b[-+]?[01]+", plain) and _fits(plain[2:], 2) else "str"
    return "str"


def _fits(digits: str, base: int) -> bool:
    value = int(digits, base)
    return _INT64[0] <= value <= _UINT64_MAX
