"""The user-facing spec: one declarative description that both checks documents and becomes the
JSON Schema editors use (`kompile schema`), so the two cannot drift apart.

Checking walks a loaded document (source.YMap / YList) beside its type and reports every problem with
the position of the offending key or value. Cross-field and cross-file rules live in validate/."""

from __future__ import annotations

from kompile.errors import Collector, Span
from kompile.source import YMap
from kompile.spec.checks import check_cidr, check_no_latest, check_schedule, check_time_zone
from kompile.spec.platform import IMAGE
from kompile.spec.settings import APP_ONLY, COLLECTIONS, ENVIRONMENT_ONLY, MOVED, SHARED_FIELDS
from kompile.spec.structure import Collection, Either, ListOf, MapOf, Obj
from kompile.spec.types import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    IMAGE_DIGEST,
    IMAGE_TAG,
    LABEL_KEY,
    NAME,
    QUANTITY,
    Anything,
    Bool,
    Field,
    Int,
    Quantity,
    Str,
    Type,
    nullable,
    quantity_text,
    shown,
)
from kompile.spec.workloads import COMPONENT, LABELS

__all__ = [
    "API_VERSION",
    "APP_ONLY",
    "APP_SPEC",
    "COLLECTIONS",
    "COMPONENT",
    "DNS_LABEL",
    "DNS_SUBDOMAIN",
    "EFFECTIVE_SPEC",
    "ENVIRONMENT_ONLY",
    "ENVIRONMENT_SPEC",
    "IMAGE_DIGEST",
    "IMAGE_TAG",
    "KINDS",
    "MOVED",
    "QUANTITY",
    "SHARED_FIELDS",
    "Anything",
    "Bool",
    "Collection",
    "Either",
    "Field",
    "Int",
    "ListOf",
    "MapOf",
    "Obj",
    "Quantity",
    "Str",
    "Type",
    "check_cidr",
    "check_document",
    "check_effective",
    "check_no_latest",
    "check_schedule",
    "check_time_zone",
    "document_type",
    "json_schema",
    "quantity_text",
    "shown",
]

API_VERSION = "kompile.dev/v1alpha1"
SCHEMA_ID = "https://kompile.dev/schemas/v1alpha1/kompile.schema.json"


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
