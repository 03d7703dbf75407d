"""Credentials in plain text, anywhere in an object.

Every string of every object is scanned: values that are credentials whatever their key (URLs with a
password, private keys, tokens with a known prefix), and values whose key names a credential (a
mapping key, an env or header `name`, a `--flag=value` argument, a `KEY=value` or `key: value` line
inside a string). Names such as `*_NAME`, `*_REF` or `*_FILE` point at a secret without holding one,
and so do values that are plainly numbers, booleans, paths or `$(VAR)` references.
SealedSecret ciphertext (`spec.encryptedData`) is the one place a sealed value belongs.

Every pattern is linear-time, and results are remembered per (key, value), so a value repeated in a
thousand environments is judged once."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from kompile.policy.credentials import (
    MAX_SCANNED,
    TOKENS,
    TOO_COMPRESSED,
    as_text,
    base64_bytes,
    credential_in,
    der_private_key,
    inflated,
    inflated_limit,
)
from kompile.policy.credentials import _memo as _credential_memo  # (read in scan's loop, without a call)
from kompile.policy.sops import ENC, SOPS_KEY, is_sops_encrypted

# What no reader on the way keeps as written: go-yaml folds NEL and the Unicode line and paragraph
# separators (kustomize re-emits them as spaces), refuses a byte order mark and the noncharacters
# U+FFFE and U+FFFF inside a value (kustomize stops), and control characters have no place in a manifest.
_ODD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
INT64 = 1 << 63


SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"


def scan(obj: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str], list]:
    """One walk over every value of an object: (credentials in plain text, values kustomize or the API
    server would change or refuse, each as (where, what); where it asks for a Secret of the
    ServiceAccount token type, which the cluster fills with a token; and every mapping key, for the
    rules that look for keys anywhere)."""
    credentials: list[tuple[str, str]] = []
    tokens: list[str] = []
    sealed = obj.get("kind") == "SealedSecret"
    encrypted = is_sops_encrypted(obj)
    found: list[tuple] = []
    commands: list[tuple[str, dict]] = []
    keys: list = []
    _scalars(obj, "", "", found.append, commands, keys, _CLEAN_NAMES, _CLEAN_PAIRS)
    texts: list[str] = []
    memo, missing = _credential_memo, _MISSING
    for entry in found:
        key, value = entry[3], entry[4]
        if type(value) is str or isinstance(value, str):
            texts.append(value)
            token = key == "type" and value == SERVICE_ACCOUNT_TOKEN
            if token:
                tokens.append(_where(entry))
            if (sealed or encrypted) and _ciphertext(_where(entry), value, sealed, encrypted):
                continue
            what = memo.get((key, value), missing)  # (credential_in's own table, read without a call)
            if what is missing:
                what = credential_in(key, value)
            if what:
                credentials.append((_where(entry), what))
            elif len(value) <= 256 and type(value) is str and not token and not _ODD_CHARACTERS.search(value):
                # (Full tables keep what they hold: credentials.MEMO_LIMIT says why.)
                if key == "" and entry[1] is value:
                    if len(_CLEAN_NAMES) < 100_000:
                        _CLEAN_NAMES.add(value)  # a mapping key that holds nothing: not looked at again
                elif len(_CLEAN_PAIRS) < 100_000:
                    _CLEAN_PAIRS.add((key, value))  # a value that holds nothing under its key: likewise
        elif isinstance(value, Decoded):
            what = value.unreadable or credential_in(key, value.text)
            if what:
                credentials.append((_where(entry), what))
        elif isinstance(value, float | int) and _odd_number(value):
            texts.append("\0")  # (then found value by value, in order)
    # Odd values are rare: one search over every string (the line breaks joining them are not odd) says
    # whether to look value by value.
    odd = _odd(found) if _ODD_CHARACTERS.search("\n".join(texts)) else []
    credentials += _command_lines(commands)
    return credentials, odd, tokens, keys


_MISSING = object()
# Mapping keys found to hold no credential and no odd character ("metadata", "securityContext", ...): the
# walk of scan leaves them out. A key is judged by itself alone (no key names it), so one found clean in
# one object is clean in every object. (Short ones only, in a bounded table.)
_CLEAN_NAMES: set[str] = set()
# Likewise (the key naming a value, the value) found to hold no credential and no odd character, and
# not asking for a token: what a value holds depends on these two alone, wherever it is ("name: web",
# "protocol: TCP"). Ciphertext is never judged, so never listed.
_CLEAN_PAIRS: set[tuple[str, str]] = set()


def _ciphertext(path: str, value: str, sealed: bool, encrypted: bool) -> bool:
    """Where a sealed or sops-encrypted object holds ciphertext, which is no credential in plain text."""
    return (sealed and path.startswith("spec.encryptedData.")) or (
        encrypted and (ENC.fullmatch(value) is not None or SOPS_KEY.fullmatch(path) is not None)
    )


def _odd(found: list[tuple[str, str, object]]) -> list[tuple[str, str]]:
    """(where, what) for each value kustomize or the API server would change or refuse, in order."""
    odd = []
    for entry in found:
        value = entry[4]
        if isinstance(value, str):
            if _ODD_CHARACTERS.search(value):
                odd.append(
                    (
                        _where(entry),
                        "holds a control character or a Unicode line separator, which kustomize changes",
                    )
                )
        elif isinstance(value, float | int) and _odd_number(value):
            odd.append((_where(entry), _odd_number(value)))
    return odd


def _odd_number(value: float | int) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}, which no Kubernetes field holds (kustomize stops at it)"
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return "is a number larger than Kubernetes holds (kustomize writes it in another form)"
    return None


_COMMAND_LINE = re.compile("|".join(pattern for pattern, what in TOKENS if "command line" in what))


def _command_lines(commands: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """A container's command and args read as one command line: [mysql, -u, root, -pSECRET] holds a password
    no single argument shows. (Of the mappings holding a command or args, with their paths.)"""
    found = []
    for path, node in commands:
        argv = [
            a
            for key in ("command", "args")
            for a in (node.get(key) if isinstance(node.get(key), list) else ())
        ]
        if (
            len(argv) > 1
            and all(isinstance(a, str) for a in argv)
            and _COMMAND_LINE.search(" ".join(argv)[:MAX_SCANNED])
            and not any(_COMMAND_LINE.search(a[:MAX_SCANNED]) for a in argv)
        ):  # one argument alone is reported as itself
            found.append((f"{path}.command" if path else "command", "a password on a command line"))
    return sorted(found)


def scalars(node, path: str, key: str = "") -> list[tuple[str, str, object]]:
    """(path, the key naming it, value) for every scalar in node, and every mapping key as a string (with
    no key of its own); binaryData decoded. An env variable's or header's value is named by its `name`,
    and a command's argument by the flag before it. In document order."""
    found: list[tuple] = []
    _scalars(node, path, key, found.append, [], [], frozenset(), None)
    return [(_where(entry), entry[3], entry[4]) for entry in found]


# Where a scalar sits, as the walk finds it: (the path of what holds it, its name or index there, how
# the two join: _MEMBER a.b, _ITEM a[0] or a[NAME], _ITSELF the path alone). A path is written out only
# for a finding: most scalars never need theirs.
_MEMBER, _ITEM, _ITSELF = 0, 1, 2


def _where(entry: tuple) -> str:
    path, name, joined = entry[0], entry[1], entry[2]
    if joined == _MEMBER:
        return f"{path}.{name}" if path else str(name)
    if joined == _ITEM:
        return f"{path}[{name}]"
    return path


def _scalars(node, path: str, key: str, add, commands: list, keys: list, clean, pairs) -> None:
    # Appends (path, name, how they join, key, value) rather than yields: a generator hands each value up
    # through every level of nesting. The mappings holding a command or args are collected on the way
    # (for _command_lines), and every mapping key (for the rules that look for keys anywhere). Mapping
    # keys in `clean`, and (key, string) in `pairs`, are known to hold nothing, and are not listed; with
    # `pairs` (not None), neither are the scalars no rule of scan looks at (booleans, null, integers that
    # Kubernetes holds).
    if isinstance(node, dict):
        if "command" in node or "args" in node:
            commands.append((path, node))
        keys += node
        binary = path == "binaryData"
        for name, value in node.items():
            if type(name) is str:
                named = name
                if name not in clean:
                    add((path, name, _MEMBER, "", name))
            else:
                named = str(name)
                if isinstance(name, str) and name not in clean:
                    add((path, name, _MEMBER, "", name))
            if binary and isinstance(value, str):
                value = _decoded(value)
            kind = type(value)
            if kind is str:
                if pairs is None or (named, value) not in pairs:
                    add((path, name, _MEMBER, named, value))
            elif kind is dict or kind is list or isinstance(value, dict | list):
                _scalars(value, f"{path}.{name}" if path else named, named, add, commands, keys, clean, pairs)
            elif pairs is None or not _inert(value, kind):
                add((path, name, _MEMBER, named, value))
    elif isinstance(node, list):
        pairs_of_names = all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in node)
        flag = None
        for index, item in enumerate(node):
            if pairs_of_names and isinstance(item.get("value"), str):  # env variables, HTTP headers
                if (
                    pairs is None
                    or type(item["name"]) is not str
                    or type(item["value"]) is not str
                    or (item["name"], item["value"]) not in pairs
                ):
                    add((path, item["name"], _ITEM, item["name"], item["value"]))
                keys += ("name", "value")
                item = {k: v for k, v in item.items() if k not in ("name", "value")}
            if type(item) is str or isinstance(item, str):
                # `--password hunter2`: the value after a flag is held under the flag's name.
                if pairs is None or type(item) is not str or (flag or key, item) not in pairs:
                    add((path, index, _ITEM, flag or key, item))
                flag = item.lstrip("-") if item.startswith("-") and "=" not in item else None
            elif type(item) is dict or type(item) is list or isinstance(item, dict | list):
                _scalars(item, f"{path}[{index}]", key, add, commands, keys, clean, pairs)
            elif pairs is None or not _inert(item, type(item)):
                add((path, index, _ITEM, key, item))
    else:
        add((path, None, _ITSELF, key, node))


def _inert(value, kind) -> bool:
    """A scalar no rule of scan looks at: a boolean, null, or an integer Kubernetes holds."""
    return kind is bool or value is None or (kind is int and -INT64 <= value < INT64)


def _decoded(value: str) -> str | Decoded:
    """binaryData as the scan reads it: its bytes (gzip inflated, bounded) read leniently as text, or a
    private key's marker for DER (which the scan then names); the value itself when it is not base64."""
    data = base64_bytes(value)
    if data is None:
        return value
    data = inflated(data, inflated_limit(value))
    if data is None:
        return Decoded(unreadable=TOO_COMPRESSED)
    if der_private_key(data):
        return Decoded("-----BEGIN PRIVATE KEY----- (DER)")
    return Decoded(as_text(data))


@dataclass(frozen=True)
class Decoded:
    """binaryData's bytes as text, scanned for credentials (what the cluster stores is the base64, which
    holds no odd character), or why they cannot be read (reported as it is)."""

    text: str = ""
    unreadable: str | None = None


def findings(obj: dict) -> list[tuple[str, str]]:
    """(where, what) for every credential in plain text anywhere in the object."""
    return scan(obj)[0]
