"""Labels and object metadata shared by every builder."""

from __future__ import annotations

import re

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def is_label_value(value: str) -> bool:
    """What the API server accepts as a label value: at most 63 characters, a letter or digit at each end."""
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def selector_labels(app: str, component: str) -> dict[str, str]:
    """What selectors match: never the version or anything else that changes between releases."""
    return {COMPONENT: component, NAME: app}


def labels(app: str, component: str | None = None) -> dict[str, str]:
    out = {NAME: app, PART_OF: app, MANAGED_BY: "kompile"}
    if component:
        out[COMPONENT] = component
    return dict(sorted(out.items()))


def object_meta(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict:
    meta: dict = {"name": name, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


def resource(api_version: str, kind: str, metadata: dict, **body) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def file_name(obj: dict) -> str:
    """The file an object is written to: `<kind>-<name>.yaml`, lower-case. Kinds and names are checked before
    (one path component, no '/'); two objects with one file name are refused, never written over each other."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
