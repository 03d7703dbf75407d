"""Errors are data: a Diagnostic names a code, a position and a hint; tests assert the fields."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A position in a file under the repo root. line and col are 1-based; 0 means "the whole file".
    end_line and end_col (when known, else 0) are where the setting's value ends: an editor can mark it
    whole. Two spans that start at the same place are the same span."""

    path: str
    line: int = 0
    col: int = 0
    end_line: int = field(default=0, compare=False)
    end_col: int = field(default=0, compare=False)

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


class Code(enum.Enum):
    """Every diagnostic kompile can give. The value is the code users see and search for."""

    # Reading files
    UNREADABLE = "K101"  # missing, too large, not a regular file
    NOT_UTF8 = "K102"
    YAML_SYNTAX = "K103"
    DUPLICATE_KEY = "K104"
    TAG_NOT_ALLOWED = "K105"
    TOO_COMPLEX = "K106"  # alias expansion or nesting beyond the limits
    DOCUMENT_COUNT = "K107"  # empty file or more than one document
    AMBIGUOUS_CHARACTER = "K108"  # a character YAML readers disagree on, or one that hides text in review
    # Shape of a document
    UNKNOWN_KEY = "K201"
    WRONG_TYPE = "K202"
    MISSING_FIELD = "K203"
    INVALID_VALUE = "K204"
    INVALID_NAME = "K205"
    WRONG_KIND = "K206"
    # Across files
    APP_COUNT = "K301"
    NAME_MISMATCH = "K302"
    UNKNOWN_EXTENDS = "K303"
    EXTENDS_CYCLE = "K304"
    PATH_OUTSIDE_ROOT = "K305"
    SECRET_NOT_PROVIDED = "K306"
    SEALED_SECRET_MISMATCH = "K307"
    NO_ENVIRONMENTS = "K308"
    NAMESPACE_CLASH = "K309"
    UNKNOWN_ENVIRONMENT = "K310"
    DUPLICATE_FILE = "K311"  # dev.yaml beside dev.yml
    EXTENDS_DEPTH = "K312"
    ENVIRONMENT_REMOVED = (
        "K313"  # a production environment's spec is gone; removing its output needs --remove
    )
    # Meaning of a spec
    AUTOSCALING_BOUNDS = "K401"
    SCHEDULER_SCALING = "K402"
    INGRESS_TARGET = "K403"
    INVALID_CIDR = "K404"
    COMPONENT_SHAPE = "K405"
    EXTRA_RESOURCE = "K406"
    PATCH = "K407"
    SECRET_REFERENCE = "K408"
    REFERENCE = "K409"  # a sidecar, init container or secret named where none is declared
    # Production rules (spec.tier: production)
    PROD_DIGEST = "K501"
    PROD_REPLICAS = "K502"
    PROD_RESOURCES = "K503"
    LATEST_TAG = "K504"
    # Secrets in plain text
    PLAINTEXT_SECRET = "K601"
    SECRET_OBJECT = "K602"
    HARDENING = "K603"  # a patch or an extra resource weakens the hardening
    OPT_OUT = "K604"  # a warning: the spec opts out of a hardening rule
    UNCLASSIFIABLE = "K605"  # an object whose kind or shape kompile cannot check
    # Writing output
    FOREIGN_FILE = "K701"
    HAND_EDITED = "K702"
    MANIFEST = "K703"
    GIT = "K704"
    WRITE = "K705"  # the file system refused a write (no room, a name too long, permissions)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: Code
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR

    def sort_key(self) -> tuple:
        span = self.span or Span("")
        return (span.path, span.line, span.col, self.code.value, self.message)

    def as_dict(self) -> dict:
        span = self.span
        return {
            "file": span.path if span else None,
            "line": span.line if span else None,
            "column": span.col if span else None,
            "end_line": span.end_line or None if span else None,
            "end_column": span.end_col or None if span else None,
            "severity": self.severity.value,
            "code": self.code.value,
            "message": self.message,
            "hint": self.hint,
        }


class KompileError(Exception):
    """Raised once, with every problem found; the CLI turns it into exit code 2."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]):
        unique = {(d.code, d.span, d.message): d for d in diagnostics}
        self.diagnostics = tuple(sorted(unique.values(), key=Diagnostic.sort_key))
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(f"{first.span}: {first.message}" if first else "kompile error")

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (KompileError, (self.diagnostics,))


class Collector:
    """Gathers diagnostics across a stage so users see every problem at once."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: Code, message: str, span: Span | None, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def add(self, diagnostics) -> None:
        self.items.extend(diagnostics)

    def __bool__(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def raise_if_any(self) -> None:
        if self:
            raise KompileError(self.items)


def naming_environments(problems: list[tuple[str, Diagnostic]]) -> list[Diagnostic]:
    """Problems that environments have with a file not their own (the App's, or one they extend), each
    once, saying which environments have it."""
    grouped: dict[Diagnostic, list[str]] = {}
    for name, diagnostic in problems:
        grouped.setdefault(diagnostic, []).append(name)
    named = []
    for diagnostic, names in grouped.items():
        which = (
            f"environment '{names[0]}'"
            if len(names) == 1
            else "environments " + ", ".join(f"'{n}'" for n in names)
        )
        named.append(replace(diagnostic, message=f"{which}: {diagnostic.message}"))
    return named
