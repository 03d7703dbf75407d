"""YAML with positions: the only place that touches them.

libyaml (PyYAML's CSafeLoader) composes the node graph, which carries a mark for every node, and this
module builds plain dicts and lists from it. That is several times faster than a pure-Python
round-trip loader, which matters when a repo holds a thousand environments, and it lets kompile apply
its own rules while building: duplicate keys are errors, only the core YAML tags are allowed, and
alias expansion and nesting are bounded."""

from __future__ import annotations

import re
import sys
from array import array

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from kompile import goyaml
from kompile.errors import Code, Collector, Diagnostic, KompileError, Span

# Aliases are expanded while building; a "billion laughs" document stops here, in milliseconds.
MAX_NODES = 50_000
MAX_DEPTH = 64

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_scalars = SafeConstructor()

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_KIND_OF_TAG = {
    _STR: "str",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:timestamp": "str",  # kept as the text written
}
_KIND_NAMES = {
    "str": "text",
    "null": "null",
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "timestamp": "a date",
}
_SPELLING = {
    "bool": ", or write true or false",
    "int": ", or write the number in decimal",
    "float": ", or write the number with a decimal point (1000.0, 0.001)",
    "null": ", or write null",
}
_SCALAR_BUILDERS = {
    _STR: lambda node: node.value,
    "tag:yaml.org,2002:null": lambda node: None,
    "tag:yaml.org,2002:bool": _scalars.construct_yaml_bool,
    # YAML 1.1's base-60 numbers (1:30 is 90) are text in YAML 1.2, which kustomize and kubectl read.
    "tag:yaml.org,2002:int": lambda node: (
        node.value if ":" in node.value else _scalars.construct_yaml_int(node)
    ),
    "tag:yaml.org,2002:float": lambda node: (
        node.value if ":" in node.value else _scalars.construct_yaml_float(node)
    ),
    # A date is kept as the text the user wrote: no field of a spec is a timestamp.
    "tag:yaml.org,2002:timestamp": lambda node: node.value,
}


_SCANNED_KEYS = 16  # a parsed map with more keys finds a key's position through an index


class YMap(dict):
    """A mapping that remembers where each key and value came from (after merging, per key).

    A parsed map keeps its positions as numbers (marks) and makes a Span only when one is asked for:
    a Span object and two dicts for every key of every file were most of the memory a large repo
    needed. A map built in code (merging) holds its spans in key_spans and value_spans."""

    __slots__ = ("_span", "_key_spans", "_value_spans", "_rel", "_keys", "_marks", "_index")

    def __init__(self, span: Span) -> None:
        super().__init__()
        self._span = span
        self._key_spans: dict[str, Span] | None = {}
        self._value_spans: dict[str, Span] | None = {}

    @classmethod
    def _parsed(cls, rel: str, keys: tuple[str, ...], marks: bytes | array) -> YMap:
        """marks: the map's start and end (line, col, end_line, end_col), then each key's and its value's."""
        out = cls.__new__(cls)
        out._span = out._key_spans = out._value_spans = None
        out._rel, out._keys, out._marks, out._index = rel, keys, marks, None
        return out

    @property
    def span(self) -> Span:
        return self._span or _span_at(self._rel, self._marks, 0)

    @property
    def key_spans(self) -> dict[str, Span]:
        """Every key's span, to read or change (a parsed map's spans are made now, and kept)."""
        if self._key_spans is None:
            self._materialise()
        return self._key_spans

    @property
    def value_spans(self) -> dict[str, Span]:
        if self._value_spans is None:
            self._materialise()
        return self._value_spans

    def key_span(self, key: str) -> Span:
        if self._key_spans is not None:
            return self._key_spans.get(key, self._span)
        return self._mark_span(key, 4)

    def value_span(self, key: str) -> Span:
        if self._value_spans is not None:
            return self._value_spans.get(key, self._span)
        return self._mark_span(key, 8)

    def _mark_span(self, key: str, offset: int) -> Span:
        if len(self._keys) <= _SCANNED_KEYS:
            try:
                index = self._keys.index(key)
            except ValueError:
                return self.span
        else:  # a scan per key made a merge of a large map quadratic (50,000 keys: 20 s)
            if self._index is None:
                self._index = {k: i for i, k in enumerate(self._keys)}
            index = self._index.get(key)
            if index is None:
                return self.span
        return _span_at(self._rel, self._marks, offset + 8 * index)

    def _materialise(self) -> None:
        rel, marks = self._rel, self._marks
        self._span = self.span
        self._key_spans = {key: _span_at(rel, marks, 4 + 8 * i) for i, key in enumerate(self._keys)}
        self._value_spans = {key: _span_at(rel, marks, 8 + 8 * i) for i, key in enumerate(self._keys)}
        self._rel = self._keys = self._marks = self._index = None


class Merged(YMap):
    """A map that merging made: `over` laid on `base`. Every entry whose key `over` does not hold is
    base's own (the same value, at the same place), so a check of a map of entries can reuse what it
    found in base and read only over's keys (kompile/spec/structure.py: entry_problems): a chain of
    environments that each add to a large map costs each layer once, not once per environment below it.
    Nothing changes a map merging made, nor one merging was given (kompile/load/merge.py)."""

    __slots__ = ("base", "over")


class YList(list):
    """A list that remembers where each item came from; a parsed one keeps marks, as YMap does."""

    __slots__ = ("_span", "_item_spans", "_rel", "_marks")

    def __init__(self, span: Span) -> None:
        super().__init__()
        self._span = span
        self._item_spans: list[Span] | None = []

    @classmethod
    def _parsed(cls, rel: str, marks: bytes | array) -> YList:
        """marks: the list's start and end (line, col, end_line, end_col), then each item's."""
        out = cls.__new__(cls)
        out._span = out._item_spans = None
        out._rel, out._marks = rel, marks
        return out

    @property
    def span(self) -> Span:
        return self._span or _span_at(self._rel, self._marks, 0)

    @property
    def item_spans(self) -> list[Span]:
        if self._item_spans is None:
            self._span = self.span
            self._item_spans = [
                _span_at(self._rel, self._marks, offset) for offset in range(4, len(self._marks), 4)
            ]
            self._rel = self._marks = None
        return self._item_spans

    def item_span(self, index: int) -> Span:
        if self._item_spans is not None:
            return self._item_spans[index] if index < len(self._item_spans) else self._span
        count = len(self._marks) // 4 - 1
        if index < count:
            return _span_at(self._rel, self._marks, 4 + 4 * range(count)[index])
        return self.span


def _span_at(rel: str, marks: bytes | array, offset: int) -> Span:
    return Span(rel, marks[offset], marks[offset + 1], marks[offset + 2], marks[offset + 3])


def plain(value):
    """Strip position bookkeeping: what the renderers and the YAML emitter see."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# YAML


# Characters kompile refuses anywhere in a file or a value. YAML readers disagree on NEL, LS and PS:
# libyaml breaks lines at them, YAML 1.2 readers do not, and kustomize (whose JSON leaves NEL raw for
# go-yaml to fold) turns NEL into a space or a line break, so the cluster would receive a string the gate
# never checked. A byte order mark or a bidirectional control (Unicode's Bidi_Control set) inside text
# hides what it says from the person reviewing the pull request (Trojan Source, CVE-2021-42574); YAML
# forbids the noncharacters U+FFFE and U+FFFF, and kustomize stops at them.
AMBIGUOUS_CHARACTERS = "\x85\u2028\u2029\ufeff\ufffe\uffff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_AMBIGUOUS = re.compile(f"[{AMBIGUOUS_CHARACTERS}]")
_CHARACTER_NAMES = {
    "\x85": "NEXT LINE (U+0085)",
    "\u2028": "LINE SEPARATOR (U+2028)",
    "\u2029": "PARAGRAPH SEPARATOR (U+2029)",
    "\ufeff": "BYTE ORDER MARK (U+FEFF)",
    "\ufffe": "noncharacter U+FFFE",
    "\uffff": "noncharacter U+FFFF",
}


def _ambiguous(char: str) -> str:
    return _CHARACTER_NAMES.get(char, f"bidirectional control U+{ord(char):04X}")


def visible(text: str, characters: re.Pattern = _AMBIGUOUS) -> str:
    """text with these characters written as \\uXXXX escapes (as JSON and YAML write them)."""
    return characters.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def parse_yaml(text: str, rel: str) -> list:
    """Every document in text as YMap / YList / scalars. Raises KompileError with positions."""
    return _build_all(_compose(text, rel), rel)


def _compose(text: str, rel: str) -> list:
    """libyaml's node graph of every document; syntax errors become K103 with the parser's position."""
    found = _AMBIGUOUS.search(text, 1 if text.startswith("\ufeff") else 0)  # a leading BOM marks UTF-8
    if found:
        raise KompileError(
            [
                Diagnostic(
                    Code.AMBIGUOUS_CHARACTER,
                    f"'{rel}' holds a {_ambiguous(found.group())}",
                    _char_span(text, found.start(), rel),
                    "remove it: YAML readers disagree on it, or it hides text from review",
                )
            ]
        )
    try:
        return list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = _mark_span(text, mark, rel) if mark else Span(rel)
        problem = exc.problem or "invalid YAML"
        hint = None
        if "nesting depth" in problem:
            hint = f"YAML here nests at most {MAX_DEPTH} levels; specs are shallow"
        elif "\t" in _line_at(text, exc.problem_mark):
            hint = "YAML indents with spaces; replace the tabs"
        elif exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            what = exc.context.removeprefix("while ").removeprefix("parsing ").removeprefix("scanning ")
            hint = (
                f"in {what} that starts at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}: "
                "check its brackets, quotes and indentation"
            )
        raise KompileError(
            [Diagnostic(Code.YAML_SYNTAX, f"YAML syntax error: {problem}", span, hint)]
        ) from None
    except yaml.reader.ReaderError as exc:
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise KompileError(
            [
                Diagnostic(
                    Code.YAML_SYNTAX,
                    f"YAML syntax error: unacceptable character {character}",
                    _reader_span(text, exc.position, rel),
                    "remove control characters (NUL, escape codes) from the file",
                )
            ]
        ) from None
    except UnicodeEncodeError as exc:  # a lone surrogate: text that came from bytes that were not UTF-8
        raise KompileError(
            [
                Diagnostic(
                    Code.NOT_UTF8,
                    f"'{rel}' is not valid UTF-8 (character U+{ord(text[exc.start]):04X})",
                    _char_span(text, exc.start, rel),
                    "save the file as UTF-8",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:  # anything libyaml reports without a mark
        raise KompileError([Diagnostic(Code.YAML_SYNTAX, f"YAML error: {exc}", Span(rel))]) from None


def _line_at(text: str, mark) -> str:
    if mark is None:
        return ""
    lines = text.splitlines()
    return lines[mark.line] if 0 <= mark.line < len(lines) else ""


def _mark_span(text: str, mark, rel: str) -> Span:
    """A parser position; the end of the file (after the last newline) becomes the end of the last line,
    where the missing bracket or quote belongs and where an editor can show it."""
    lines = text.splitlines()
    if mark.line >= len(lines) and lines:
        return Span(rel, len(lines), len(lines[-1]) + 1)
    return Span(rel, mark.line + 1, mark.column + 1)


def _build_all(nodes: list, rel: str, manifests: bool = False) -> list:
    collector = Collector()
    docs = [_Builder(rel, collector, manifests).build(node, 0) for node in nodes]
    collector.raise_if_any()
    return docs


def _node_span(node, text: str, rel: str) -> Span:
    return _mark_span(text, node.start_mark, rel)


def _is_null(node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def parse_document(text: str, rel: str) -> YMap:
    """Exactly one YAML document whose top level is a mapping."""
    nodes = _compose(text, rel)
    if len(nodes) > 1:
        raise KompileError(
            [
                Diagnostic(
                    Code.DOCUMENT_COUNT,
                    "the file holds more than one YAML document",
                    _node_span(nodes[1], text, rel),
                    "put each App or Environment in a file of its own",
                )
            ]
        )
    if not nodes or _is_null(nodes[0]):
        raise KompileError(
            [
                Diagnostic(
                    Code.DOCUMENT_COUNT,
                    "the file holds no YAML document",
                    Span(rel, 1, 1),
                    "an environment file holds one App or one Environment",
                )
            ]
        )
    node = nodes[0]
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a single value"
        raise KompileError(
            [
                Diagnostic(
                    Code.WRONG_TYPE,
                    f"expected a mapping at the top level, found {kind}",
                    _node_span(node, text, rel),
                    "a spec starts with apiVersion:, kind:, metadata: and spec:",
                )
            ]
        )
    return _build_all(nodes, rel)[0]


def parse_manifests(text: str, rel: str) -> list[YMap]:
    """The Kubernetes objects in a multi-document YAML file (empty documents skipped)."""
    nodes = [node for node in _compose(text, rel) if not _is_null(node)]
    for node in nodes:
        if not isinstance(node, MappingNode):
            kind = "a list" if isinstance(node, SequenceNode) else "a single value"
            raise KompileError(
                [
                    Diagnostic(
                        Code.WRONG_TYPE,
                        f"expected a Kubernetes object (a mapping), found {kind}",
                        _node_span(node, text, rel),
                    )
                ]
            )
    return _build_all(nodes, rel, manifests=True)


def describe(value) -> str:
    """A value's YAML type, as users name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _reader_span(text: str, offset: int, rel: str) -> Span:
    """The position of a character the YAML reader refused. libyaml counts bytes of the UTF-8 text."""
    if _Loader is not yaml.SafeLoader:
        offset = len(text.encode("utf-8")[:offset].decode("utf-8", "replace"))
    return _char_span(text, offset, rel)


def _char_span(text: str, offset: int, rel: str) -> Span:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(rel, line, col)


class _TooComplex(Exception):
    pass


_TYPE_NAMES = {
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "null": "null",
    "timestamp": "a date",
}


def _tag_text(tag: str) -> str:
    """A tag as users write it: !!python/object rather than tag:yaml.org,2002:python/object."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _type_name(tag: str) -> str:
    short = tag.rsplit(":", 1)[-1]
    return _TYPE_NAMES.get(short, short)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _marks(node) -> list[int]:
    """Where a node starts and ends: line, column, end line, end column (1-based)."""
    start, end = node.start_mark, node.end_mark
    return [start.line + 1, start.column + 1, end.line + 1, end.column + 1]


def _packed(marks: list[int]) -> bytes | array:
    """Positions in the narrowest form that holds them: most lines and columns are below 256, and bytes
    cost less than an array of bytes (33 bytes of header, not 64)."""
    top = max(marks)
    return bytes(marks) if top < 256 else array("H" if top < 65536 else "I", marks)


class _Builder:
    """Builds Python values from a composed node graph, expanding aliases within bounds.

    libyaml resolves an alias to the very node it names, so a node met twice was reached through an alias;
    `via` is the collection that first repeats one, which is where a limit is reported (an alias bomb
    points at the line that multiplies, not at a leaf somewhere inside)."""

    def __init__(self, rel: str, collector: Collector, manifests: bool = False) -> None:
        self.rel = rel
        self.collector = collector
        self.manifests = manifests  # Kubernetes YAML, which kustomize reads as YAML 1.2 (go-yaml v3)
        self.count = 0
        self.seen: set[int] = set()

    def span(self, node) -> Span:
        return Span(self.rel, *_marks(node))

    def build(self, node, depth: int):
        try:
            return self._build(node, depth, None)
        except _TooComplex as exc:
            node, why, hint = exc.args
            raise KompileError([Diagnostic(Code.TOO_COMPLEX, why, self.span(node), hint)]) from None

    def _child(self, parent, child, depth: int, via):
        if via is None and id(child) in self.seen:
            via = parent
        return self._build(child, depth + 1, via)

    def _build(self, node, depth: int, via):
        self.count += 1
        if self.count > MAX_NODES:
            if via is not None:
                raise _TooComplex(
                    via,
                    f"aliases here expand to more than {MAX_NODES} values",
                    "each *alias repeats its anchored value in full; write the values out",
                )
            raise _TooComplex(
                node, f"the document holds more than {MAX_NODES} values", "specs are small; split the file"
            )
        if depth > MAX_DEPTH:
            if via is not None:
                raise _TooComplex(
                    via,
                    f"aliases here nest deeper than {MAX_DEPTH} levels",
                    "an alias inside the value it refers to repeats forever; write the values out",
                )
            raise _TooComplex(
                node, f"the document nests deeper than {MAX_DEPTH} levels", "specs are shallow; flatten it"
            )
        if isinstance(node, ScalarNode):
            if node.style == '"' and _AMBIGUOUS.search(node.value):  # written as an escape
                self._ambiguous(node)
            if self.manifests and not node.style and not self._same_in_yaml_1_2(node):  # plain
                return None
            builder = _SCALAR_BUILDERS.get(node.tag)
            if builder is None:
                self._bad_tag(node)
                return None
            try:
                return builder(node)
            except (ValueError, OverflowError):
                self.collector.error(
                    Code.WRONG_TYPE,
                    f"'{_short(node.value)}' is not {_type_name(node.tag)}",
                    self.span(node),
                    "remove the tag, or quote the value to make it a string",
                )
                return None
        self.seen.add(id(node))
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self._bad_tag(node)
            marks = _marks(node)
            items = []
            for item in node.value:
                marks += _marks(item)
                items.append(self._child(node, item, depth, via))
            out = YList._parsed(self.rel, _packed(marks))
            out.extend(items)
            return out
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                self._bad_tag(node)
            marks = _marks(node)
            values: dict = {}
            for key_node, value_node in node.value:
                key = self._key(key_node)
                if key is None:
                    continue
                if key in values:
                    first = marks[4 + 8 * list(values).index(key)]
                    self.collector.error(
                        Code.DUPLICATE_KEY,
                        f"duplicate key '{_short(key)}'",
                        self.span(key_node),
                        f"'{_short(key)}' is first set at line {first}; keep one of them",
                    )
                    continue
                marks += _marks(key_node)
                marks += _marks(value_node)
                values[key] = self._child(node, value_node, depth, via)
            out = YMap._parsed(self.rel, tuple(values), _packed(marks))
            dict.update(out, values)
            return out
        raise _TooComplex(
            node, "unsupported YAML node", None
        )  # pragma: no cover - libyaml has no other kinds

    def _same_in_yaml_1_2(self, node) -> bool:
        """A plain value of a manifest means one thing to kompile (YAML 1.1, as kubectl reads) and
        another to kustomize (go-yaml v3, YAML 1.2): `yes` is true or text, `1e3` text or 1000, `0o17`
        text or 15, a date text or a time. Refused, whichever the author meant: quoting says it."""
        ours = _KIND_OF_TAG.get(node.tag, "str")
        if ours in ("int", "float") and ":" in node.value:
            ours = "str"  # base 60: text (see _SCALAR_BUILDERS)
        theirs = goyaml.resolve(node.value, version=3) if node.value else "null"
        if ours == theirs:
            return True
        other = theirs if ours == "str" else ours
        self.collector.error(
            Code.WRONG_TYPE,
            f"plain '{_short(node.value)}' is {_KIND_NAMES[ours]} to YAML 1.1 and {_KIND_NAMES[theirs]} to "
            "kustomize (go-yaml, YAML 1.2): readers disagree on what the cluster gets",
            self.span(node),
            f"quote it ('{_short(node.value)}') if you mean text{_SPELLING.get(other, '')}",
        )
        return False

    def _ambiguous(self, node) -> None:
        char = _AMBIGUOUS.search(node.value).group()
        self.collector.error(
            Code.AMBIGUOUS_CHARACTER,
            f"'{visible(_short(node.value))}' holds a {_ambiguous(char)}",
            self.span(node),
            "remove it: YAML readers disagree on it, or it hides text from review",
        )

    def _key(self, node) -> str | None:
        if isinstance(node, ScalarNode) and node.style == '"' and _AMBIGUOUS.search(node.value):
            self._ambiguous(node)
            return None
        if node.tag == _MERGE:
            self.collector.error(
                Code.TAG_NOT_ALLOWED,
                "YAML merge keys ('<<') are not supported",
                self.span(node),
                "write the keys out, or share them through the App or spec.extends",
            )
            return None
        if not isinstance(node, ScalarNode):
            self.collector.error(
                Code.WRONG_TYPE,
                "a mapping key must be a plain string, not a list or a mapping",
                self.span(node),
                "remove the '?' or the brackets around the key",
            )
            return None
        if node.tag not in _SCALAR_BUILDERS:
            self._bad_tag(node)
            return None
        if self.manifests and not node.style and goyaml.resolve(node.value, version=3) != "str":
            self.collector.error(
                Code.WRONG_TYPE,
                f"key '{_short(node.value)}' is read as {_KIND_NAMES[goyaml.resolve(node.value, version=3)]} "
                "by kustomize (YAML 1.2), not as a string",
                self.span(node),
                f"quote it: '{_short(node.value)}':",
            )
            return None
        if node.tag != _STR:
            # `on:` or `8000:` would silently become a boolean or an integer key.
            self.collector.error(
                Code.WRONG_TYPE,
                f"key '{_short(node.value)}' is read as {_type_name(node.tag)}, not a string",
                self.span(node),
                f"quote it: '{_short(node.value)}':",
            )
            return None
        return sys.intern(node.value)

    def _bad_tag(self, node) -> None:
        self.collector.error(
            Code.TAG_NOT_ALLOWED,
            f"YAML tag '{_tag_text(node.tag)}' is not allowed",
            self.span(node),
            "specs use plain YAML: strings, numbers, booleans, lists and mappings; remove the tag",
        )
