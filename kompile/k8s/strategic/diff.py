"""Writing the strategic merge patch that turns a base object into an environment's object, checked
against the apply model."""

from __future__ import annotations

import json
import marshal

from kompile.k8s.strategic.apply import (
    apply_patch,
    as_kustomize_reads,
    item_identity,
    merge_list,
    node_kind,
    path_text,
)
from kompile.k8s.strategic.schema import DIRECTIVE, SET, MergeKey, PatchError, merge_key


class _NeedsReplace(Exception):
    """A field changes node kind (a map becomes a string): only replacing the map around it says that."""


def diff_patch(base: dict, target: dict) -> dict:
    """A strategic merge patch that kustomize applies to base to give exactly target (up to
    `as_kustomize_reads`, which kustomize does to every object); empty when they are equal. Identifying fields (apiVersion, kind, metadata.name) are added by the caller. PatchError when no
    patch kustomize applies faithfully can say it."""
    if same(base, as_kustomize_reads(target)):
        return {}
    gvk = (target.get("apiVersion", ""), target.get("kind", ""))
    name = f"{gvk[1]}/{(target.get('metadata') or {}).get('name')}"
    try:
        patch = _diff_map(base, target, gvk, ())
    except _NeedsReplace as exc:
        raise PatchError(
            f"{name}: {exc} changes node kind at the top level, which no patch can say"
        ) from None
    try:
        result = apply_patch(base, patch)
    except PatchError as exc:
        raise PatchError(f"{name}: the patch kompile would write does not apply: {exc}") from None
    expected = as_kustomize_reads(target)
    # Plain ==: every value in the patch is copied from target, so only structure can differ here
    # (the typed comparison, which tells 1 from true, already decided what the patch holds).
    if result != expected:
        raise PatchError(
            f"{name}: no strategic merge patch kustomize applies faithfully gives "
            f"{_first_difference(result, expected, ())} (a list with duplicate keys, or an explicit null?)"
        )
    return patch


def same(one, other) -> bool:
    """Equal as YAML: 1 and true, or 1 and 1.0, differ; map key order does not matter, list order does.
    (Python's == does the walking; only where it says equal do the scalars' kinds need a second look.)"""
    if one is other:
        return True
    if one != other:
        return False
    # marshal (format 2: no references, so sharing does not change the bytes) writes each scalar of plain
    # data (what specs and objects are made of: maps, lists, strings, numbers, booleans, null) with its
    # kind (1, 1.0, true; 0.0, -0.0): the same bytes are the same YAML, found in C. Bytes that differ
    # (key order, or a kind) are told apart by the walk. (marshal would write a bytearray as bytes: no
    # object holds one.)
    if type(one) is dict or type(one) is list:
        try:
            if marshal.dumps(one, 2) == marshal.dumps(other, 2):
                return True
        except ValueError:  # (not plain data)
            pass
    return _same_kinds(one, other)


def _same_kinds(one, other) -> bool:
    """Given one == other: whether they are also one as JSON (_typed), walked without writing either
    out (the diff asks this of every field of every object, most of them equal)."""
    kind = type(one)
    if kind is type(other):
        if kind is dict and all(type(key) is str for key in one):
            return all(_same_kinds(value, other[key]) for key, value in one.items())
        if kind is list:
            return all(map(_same_kinds, one, other))
        if kind is str or kind is int or kind is bool or one is None:
            return True  # (equal, and of one kind)
        if kind is float:
            return repr(one) == repr(other)  # (0.0 and -0.0 are equal, and written apart)
    return _typed(one) == _typed(other)


def _typed(value) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _first_difference(one, other, path: tuple[str, ...]) -> str:
    if isinstance(one, dict) and isinstance(other, dict):
        for key in (*one, *(k for k in other if k not in one)):
            if key not in one or key not in other or not same(one[key], other[key]):
                return _first_difference(one.get(key), other.get(key), (*path, str(key)))
    return path_text(path)


def _diff_map(base: dict, target: dict, gvk: tuple[str, str], path: tuple[str, ...]) -> dict:
    patch: dict = {}
    for key, value in target.items():
        here = (*path, key)
        old = base.get(key)
        if key in base and same(old, value):
            continue
        if old is None or value is None:
            patch[key] = value
        elif node_kind(old) != node_kind(value):
            raise _NeedsReplace(path_text(here))
        elif isinstance(value, dict):
            try:
                patch[key] = _diff_map(old, value, gvk, here)
            except _NeedsReplace:
                patch[key] = {DIRECTIVE: "replace", **value}
        elif isinstance(value, list):
            patch[key] = _diff_list(old, value, gvk, here)
        else:
            patch[key] = value
    for key in base:
        if key not in target:
            patch[key] = None
    return patch


def _diff_list(old: list, new: list, gvk: tuple[str, str], path: tuple[str, ...]) -> list:
    keys = merge_key(*gvk, path)
    if keys is None:
        return new
    candidates = []
    if keys == SET:
        candidates.append(lambda: new)
    else:
        if len(keys) > 1:
            candidates.append(lambda: _keyed_patch(old, new, keys, gvk, path, compact=True))
        candidates.append(lambda: _keyed_patch(old, new, keys, gvk, path, compact=False))
    candidates.append(lambda: [{DIRECTIVE: "replace"}, *new])
    for candidate in candidates:
        try:
            patch = candidate()
            if same(merge_list(old, patch, gvk, path), new):
                return patch
        except (PatchError, _NeedsReplace):
            continue
    raise PatchError(
        f"{path_text(path)}: kustomize cannot be given this list faithfully (duplicate merge keys "
        f"{'/'.join(keys) or 'values'}, items without them, or explicit nulls)"
    )


def _keyed_patch(
    old: list, new: list, keys: MergeKey, gvk: tuple[str, str], path: tuple[str, ...], compact: bool
) -> list:
    """Either every new item in order (the key alone when unchanged) and deletions, which gives the new order
    under one-key merging; or (compact) only the added, changed and deleted items, which gives it under
    two-key merging when the added items come first and the kept ones keep their order."""

    def ident(item) -> tuple[str, ...]:
        return item_identity(item, keys, "list", path)

    old_by_id = {ident(item): item for item in old}
    new_ids = {ident(item) for item in new}
    patch: list = []
    for item in new:
        previous = old_by_id.get(ident(item))
        if previous is None:
            patch.append(item)
            continue
        change = _diff_map(previous, item, gvk, path)
        if compact and not change:
            continue
        stub = {key: item[key] for key in keys if key in item}
        patch.append({**stub, **{k: v for k, v in change.items() if k not in stub}})
    for key_id, item in old_by_id.items():
        if key_id not in new_ids:
            patch.append({**{key: item[key] for key in keys if key in item}, DIRECTIVE: "delete"})
    return patch
