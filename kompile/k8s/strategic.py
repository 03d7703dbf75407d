"""Strategic merge patches, as kustomize (kyaml) applies them to the kinds kompile emits.

Two directions share one table of merge keys: `apply_patch` applies a user's patch inside kompile's
model, and `diff_patch` writes the patch that turns a base object into an environment's object.
Maps merge; null deletes a key; lists of named things (containers, env, volumes, ...) merge by their
key, patch items first in patch order, then the target's remaining items; every other list is
replaced whole. Custom resources have no schema in kustomize, so all their lists are replaced.
tests/test_strategic.py checks both directions against the real kustomize.
"""

from __future__ import annotations

import copy

DIRECTIVE = "$patch"

# Kinds whose lists kustomize merges by key (it has their OpenAPI schema).
_POD_OWNERS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController"}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_POD_KEYS = {
    **{name: "name" for name in _CONTAINER_LISTS},
    "volumes": "name",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
    "hostAliases": "ip",
}
_CONTAINER_KEYS = {"env": "name", "volumeMounts": "mountPath", "ports": "containerPort"}


class PatchError(ValueError):
    pass


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The key a list at `path` (field names from the object's root) is merged by, or None if atomic."""
    if not path:
        return None
    field_name = path[-1]
    if kind == "Service" and path == ("spec", "ports"):
        return "port"
    if kind not in _POD_OWNERS:
        return None
    if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
        return _CONTAINER_KEYS.get(field_name)
    if len(path) >= 2 and path[-2] == "spec":
        return _POD_KEYS.get(field_name)
    return None


# ---------------------------------------------------------------------------------------------
# Applying a patch


def apply_patch(target: dict, patch: dict) -> dict:
    """A new object: target with the strategic merge patch applied. Neither argument is changed."""
    return _merge_map(target, patch, target.get("kind", ""), ())


def _merge_map(target: dict, patch: dict, kind: str, path: tuple[str, ...]) -> dict:
    directive = patch.get(DIRECTIVE)
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != DIRECTIVE}
    if directive not in (None, "merge"):
        raise PatchError(f"unsupported directive {DIRECTIVE}: {directive} at {'.'.join(path) or 'the top level'}")
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if key == DIRECTIVE:
            continue
        if key.startswith("$"):
            raise PatchError(f"unsupported directive {key} at {'.'.join(path) or 'the top level'}")
        here = (*path, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            if value.get(DIRECTIVE) == "delete":
                out.pop(key, None)
            elif isinstance(out.get(key), dict):
                out[key] = _merge_map(out[key], value, kind, here)
            else:
                out[key] = _merge_map({}, value, kind, here)
        elif isinstance(value, list):
            merge_by = merge_key(kind, here)
            if merge_by and isinstance(out.get(key), list):
                out[key] = _merge_list(out[key], value, merge_by, kind, here)
            else:
                out[key] = [_strip_directives(v) for v in value]
        else:
            out[key] = value
    return out


def _merge_list(target: list, patch: list, merge_by: str, kind: str, path: tuple[str, ...]) -> list:
    if any(isinstance(item, dict) and item.get(DIRECTIVE) == "replace" for item in patch):
        return [_strip_directives(item) for item in patch if not (isinstance(item, dict) and DIRECTIVE in item)]
    by_key = {item.get(merge_by): item for item in target if isinstance(item, dict)}
    merged: list = []
    used: set = set()
    deleted: set = set()
    for item in patch:
        if not isinstance(item, dict) or merge_by not in item:
            raise PatchError(f"every item of {'.'.join(path)} needs '{merge_by}' to be merged")
        key = item[merge_by]
        if item.get(DIRECTIVE) == "delete":
            deleted.add(key)
            continue
        if key in by_key:
            merged.append(_merge_map(by_key[key], item, kind, path))
            used.add(key)
        else:
            merged.append(_merge_map({}, item, kind, path))
    for item in target:
        key = item.get(merge_by) if isinstance(item, dict) else None
        if key not in used and key not in deleted:
            merged.append(copy.deepcopy(item))
    return merged


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if k != DIRECTIVE and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Writing a patch


def diff_patch(base: dict, target: dict) -> dict:
    """The smallest strategic merge patch (by this module's rules) that turns base into target.
    Empty when they are equal. Identifying fields (apiVersion, kind, metadata.name) are added by the caller."""
    return _diff_map(base, target, target.get("kind", ""), ())


def _diff_map(base: dict, target: dict, kind: str, path: tuple[str, ...]) -> dict:
    patch: dict = {}
    for key, value in target.items():
        here = (*path, key)
        if key not in base:
            patch[key] = copy.deepcopy(value)
            continue
        old = base[key]
        if old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            patch[key] = _diff_map(old, value, kind, here)
        elif isinstance(old, list) and isinstance(value, list) and merge_key(kind, here) and _keyed(old, value, merge_key(kind, here)):
            patch[key] = _diff_list(old, value, merge_key(kind, here), kind, here)
        else:
            patch[key] = copy.deepcopy(value)
    for key in base:
        if key not in target:
            patch[key] = None
    return patch


def _keyed(old: list, new: list, merge_by: str) -> bool:
    items = [*old, *new]
    if not all(isinstance(item, dict) and merge_by in item for item in items):
        return False
    return len({i[merge_by] for i in old}) == len(old) and len({i[merge_by] for i in new}) == len(new)


def _diff_list(old: list, new: list, merge_by: str, kind: str, path: tuple[str, ...]) -> list:
    """Every new item in order (the key alone when unchanged), so the merged order is exactly new's."""
    by_key = {item[merge_by]: item for item in old}
    patch: list = []
    for item in new:
        key = item[merge_by]
        if key in by_key:
            change = _diff_map(by_key[key], item, kind, path)
            patch.append({merge_by: key, **{k: v for k, v in change.items() if k != merge_by}})
        else:
            patch.append(copy.deepcopy(item))
    kept = {item[merge_by] for item in new}
    patch.extend({merge_by: item[merge_by], DIRECTIVE: "delete"} for item in old if item[merge_by] not in kept)
    return patch
