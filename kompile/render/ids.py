"""Objects by identity, as kustomize tells them apart: API group, kind and name."""

from __future__ import annotations


def object_id_problem(obj) -> str | None:
    """Why obj is not an object kustomize can place (None when it is)."""
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("apiVersion"), str)
        or not isinstance(obj.get("kind"), str)
    ):
        return "no apiVersion or kind"
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return "no metadata.name"
    return None


def object_id(obj: dict) -> tuple[str, str, str]:
    """(group, kind, name): unique within one environment's namespace."""
    group = obj["apiVersion"].rpartition("/")[0]
    return group, obj["kind"], obj["metadata"]["name"]
