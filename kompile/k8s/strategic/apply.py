"""Applying a strategic merge patch, as kustomize does (and refusing what it does silently wrong)."""

from __future__ import annotations

from kompile.k8s.strategic.schema import (
    DIRECTIVE,
    SET,
    UNSUPPORTED_DIRECTIVES,
    MergeKey,
    PatchError,
    merge_key,
)


class _Deleted:
    """What a list directive `{$patch: delete}` turns the list into: no field at all."""


_DELETED = _Deleted()


def apply_patch(target: dict, patch: dict) -> dict:
    """A new object: target with the strategic merge patch applied, as kustomize would. Neither argument is
    changed. PatchError where kustomize would fail, or would silently do something else than the patch says."""
    directive = patch.get(DIRECTIVE)
    if directive == "delete":
        raise PatchError("the patch deletes the whole object ($patch: delete); remove the object instead")
    if directive == "replace":
        raise PatchError("kustomize ignores $patch: replace on a whole object; replace its fields one by one")
    gvk = (target.get("apiVersion", ""), target.get("kind", ""))
    return as_kustomize_reads(_merge_map(target, patch, gvk, ()))


def as_kustomize_reads(obj: dict) -> dict:
    """kustomize drops an empty or null metadata.annotations from every object it reads or patches (it keeps
    its own bookkeeping there), whether or not a patch touched it. Returns obj, or a copy without them."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "annotations" in metadata and metadata["annotations"] in (None, {}):
        return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "annotations"}}
    return obj


def path_text(path: tuple[str, ...]) -> str:
    return ".".join(path) or "the top level"


def node_kind(value) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _check_key(key, path: tuple[str, ...]) -> None:
    if isinstance(key, str) and key.startswith(UNSUPPORTED_DIRECTIVES):
        raise PatchError(
            f"{key} at {path_text(path)}: kustomize does not support this directive and would copy it "
            "into the object; list the items in the wanted order, or use $patch: replace"
        )


def _map_directive(patch: dict, path: tuple[str, ...]) -> str:
    directive = patch.get(DIRECTIVE, "merge")
    if directive not in ("merge", "replace", "delete"):
        raise PatchError(
            f"unknown directive {DIRECTIVE}: {directive} at {path_text(path)} (merge, replace or delete)"
        )
    return directive


def _merge_map(target: dict, patch: dict, gvk: tuple[str, str], path: tuple[str, ...]) -> dict:
    if _map_directive(patch, path) == "replace":
        target = {}
    out = dict(
        target
    )  # what the patch leaves alone is shared, never changed: objects are not mutated once built
    for key, value in patch.items():
        if key == DIRECTIVE:
            continue
        _check_key(key, path)
        here = (*path, key)
        old = out.get(key)
        if value is None:
            out.pop(key, None)
            continue
        if old is not None and node_kind(old) != node_kind(value):
            raise PatchError(
                f"{path_text(here)}: a {node_kind(value)} cannot patch a {node_kind(old)} "
                "(kustomize stops with 'wrong node kind')"
            )
        if isinstance(value, dict):
            if _map_directive(value, here) == "delete":
                out.pop(key, None)
            else:
                out[key] = _merge_map(old or {}, value, gvk, here)
        elif isinstance(value, list):
            merged = merge_list(old, value, gvk, here)
            if merged is _DELETED:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = value
    return out


def _text(value) -> str:
    """A scalar as kyaml compares it: by its YAML text (80 and "80" are the same key)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def merge_list(target: list | None, patch: list, gvk: tuple[str, str], path: tuple[str, ...]):
    keys = merge_key(*gvk, path)
    if keys is None:
        _reject_directives(patch, path)
        return list(patch)
    directive, items = _list_directive(patch, path)
    if target is None and len(items) != len(patch):
        raise PatchError(
            f"{path_text(path)}: the target has no such list, and there kustomize writes the "
            f"{{{DIRECTIVE}: {directive}}} item alone into the object; leave the directive out"
        )
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        target = None
    if keys == SET:
        return _merge_set(target or [], items, path)
    return _merge_keyed(target or [], items, keys, gvk, path)


def _reject_directives(value, path: tuple[str, ...]) -> None:
    if "'$" not in repr(value):  # no key starting with $ anywhere: nothing to reject (repr walks in C)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key == DIRECTIVE:
                raise PatchError(
                    f"{DIRECTIVE} inside {path_text(path)}: kustomize replaces this list whole (it has no "
                    "merge key) and would keep the directive as data; write the whole list"
                )
            _check_key(key, path)
            _reject_directives(item, path)
    elif isinstance(value, list):
        for item in value:
            _reject_directives(item, path)


def _is_list_directive(item) -> bool:
    return isinstance(item, dict) and len(item) == 1 and DIRECTIVE in item


def _list_directive(patch: list, path: tuple[str, ...]) -> tuple[str, list]:
    """kyaml reads a list directive from the first item holding $patch, and only when that item holds nothing else."""
    marked = [i for i, item in enumerate(patch) if isinstance(item, dict) and DIRECTIVE in item]
    lone = [i for i in marked if _is_list_directive(patch[i])]
    if not lone:
        return "merge", patch
    if len(lone) > 1 or lone[0] != marked[0]:
        raise PatchError(
            f"{path_text(path)}: a list directive ({{{DIRECTIVE}: ...}} alone) must come once, before any "
            f"item with {DIRECTIVE}"
        )
    directive = patch[lone[0]][DIRECTIVE]
    if directive not in ("merge", "replace", "delete"):
        raise PatchError(
            f"unknown directive {DIRECTIVE}: {directive} in {path_text(path)} (merge, replace or delete)"
        )
    if directive == "merge" and len(marked) > 1:
        raise PatchError(
            f"{path_text(path)}: next to a list's {{{DIRECTIVE}: merge}}, kustomize loses the changes of items "
            f"that hold {DIRECTIVE} themselves; drop the {{{DIRECTIVE}: merge}} item"
        )
    return directive, [item for i, item in enumerate(patch) if i != lone[0]]


def _merge_set(target: list, patch: list, path: tuple[str, ...]) -> list:
    for item in (*target, *patch):
        if isinstance(item, (dict, list)) or item is None:
            raise PatchError(f"{path_text(path)} is a list of strings; {item!r} cannot be merged into it")
    kept = {}
    for item in target:
        kept.setdefault(_text(item), item)
    merged: dict[str, object] = {}
    for item in patch:
        merged.setdefault(_text(item), kept.get(_text(item), item))
    for text, item in kept.items():
        merged.setdefault(text, item)
    return list(merged.values())


def item_identity(item, keys: MergeKey, side: str, path: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(item, dict) or item.get(keys[0]) is None:
        raise PatchError(
            f"every item of {path_text(path)} needs '{keys[0]}' to be merged (an item of the {side} has "
            f"none: {item!r})"
        )
    for key in keys:
        if isinstance(item.get(key), (dict, list)):
            raise PatchError(f"{path_text(path)}: '{key}' of an item of the {side} is not a scalar")
    return tuple(_text(item.get(key)) for key in keys)


def _merge_keyed(
    target: list, patch: list, keys: MergeKey, gvk: tuple[str, str], path: tuple[str, ...]
) -> list:
    old_ids = [item_identity(item, keys, "target", path) for item in target]
    new_ids = [item_identity(item, keys, "patch", path) for item in patch]
    for ids, side in ((old_ids, "target"), (new_ids, "patch")):
        if len(set(ids)) != len(ids):
            raise PatchError(
                f"{path_text(path)}: the {side} has two items with the same {'/'.join(keys)}; kustomize "
                "collapses them into one"
            )
    effective = [i for i, key in enumerate(keys) if any(key_id[i] for key_id in (*old_ids, *new_ids))]
    if len(effective) > 1:
        _check_ambiguous([*old_ids, *new_ids], keys, path)
    old_by_id = dict(zip(old_ids, target, strict=True))
    merged: dict[tuple[str, ...], dict] = {}
    deleted: set[tuple[str, ...]] = set()
    for key_id, item in zip(new_ids, patch, strict=True):
        directive = _map_directive(item, path)
        if directive == "delete":
            if len(effective) > 1 and not all(key_id[i] for i in effective):
                raise PatchError(
                    f"{path_text(path)}: kustomize does not delete an item without "
                    f"{'/'.join(keys[i] for i in effective if not key_id[i])} while other items have it; "
                    f"replace the list instead ([{{{DIRECTIVE}: replace}}, ...])"
                )
            deleted.add(key_id)
        elif directive == "replace" and key_id in old_by_id:
            raise PatchError(
                f"{DIRECTIVE}: replace on an item of {path_text(path)}: kustomize ignores it and keeps the "
                "item as it was; set the fields to drop to null instead"
            )
        else:  # (a new item marked replace is just added)
            merged[key_id] = _merge_map(old_by_id.get(key_id, {}), item, gvk, path)
    if len(effective) > 1:  # new items first, then the target's items where they were
        order = [key_id for key_id in new_ids if key_id not in old_by_id] + old_ids
    else:  # the patch's items first, then the target's others
        order = new_ids + [key_id for key_id in old_ids if key_id not in merged]
    return [
        merged[key_id] if key_id in merged else old_by_id[key_id] for key_id in order if key_id not in deleted
    ]


def _check_ambiguous(ids: list[tuple[str, ...]], keys: MergeKey, path: tuple[str, ...]) -> None:
    """kyaml merges two identities that agree wherever both have a value (port 80, and port 80 with protocol
    TCP) and then drops one of the items; refuse instead."""
    groups: dict[str, list[tuple[str, ...]]] = {}
    for key_id in sorted(set(ids)):  # the first key is always present: only items sharing it can clash
        groups.setdefault(key_id[0], []).append(key_id)
    # Two items with every key given differ somewhere both have a value: only one with a missing key can
    # be taken for another, so each is compared with its group (linear for any realistic list).
    for group in groups.values():
        for one in (key_id for key_id in group if not all(key_id)):
            for other in group:
                if other != one and all(a == b or not a or not b for a, b in zip(one, other, strict=True)):
                    shown = " and ".join(
                        "/".join(part for part in key_id if part) for key_id in sorted((one, other))
                    )
                    raise PatchError(
                        f"{path_text(path)}: kustomize matches items by {'/'.join(keys)} and cannot tell {shown} "
                        f"apart; give every item its {', '.join(keys[1:])}"
                    )
