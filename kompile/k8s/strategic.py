"""Strategic merge patches, as kustomize v5.5 (kyaml's merge2) applies them to the kinds kompile emits.

Two directions share one model: `apply_patch` applies a user's patch inside kompile's model, and
`diff_patch` writes the patch that turns a base object into an environment's object. The model is
kustomize's behaviour, not the Kubernetes API server's; tests/test_strategic.py holds both directions
equal to `kubectl kustomize`, list order included. What kustomize does:

- Schemas. kustomize carries the OpenAPI document of Kubernetes v1.21.2 and looks objects up by
  apiVersion and kind (`_KNOWN`). Anything else has no schema (custom resources, and also
  autoscaling/v2 HorizontalPodAutoscaler and apps/v1beta2 Deployment, newer or older than 1.21):
  every list in it is replaced whole, even a list of named items.
- Maps merge; null deletes a key (absent or not); `{$patch: delete}` deletes it; `{$patch: replace, ...}`
  stands for its own content merged into nothing (nested nulls and directives are applied, not kept).
  A patch value of another node kind than the target's (a map onto a string, a list onto a map)
  stops kustomize with "wrong node kind".
- Lists with a merge key (`merge_key`) merge item by item; an item `{$patch: delete}` plus its key
  deletes it; a lone `{$patch: replace}` item replaces the list with the other items (merged into
  nothing), a lone `{$patch: delete}` removes the field. An empty patch list changes nothing.
  Order, with one key (env by name, volumes by name, ...): the patch's items first in patch order,
  then the target's other items in target order. With two keys (container ports by containerPort and
  protocol, Service ports by port and protocol, topologySpreadConstraints by topologyKey and
  whenUnsatisfiable): the patch's new items first in patch order, then the target's items in target
  order, merged in place; if no item on either side has the second key, the one-key order applies.
- `metadata.finalizers` (in built-in kinds) is a set of strings: the patch's first, then the rest.
- Lists without a merge key are replaced whole and copied verbatim: nulls and `$patch` inside them stay.
- Not a merge rule but seen in every result: kustomize drops an empty or null `metadata.annotations`.

Where kustomize silently does something nobody means, `apply_patch` raises PatchError instead of
copying it:
- `$patch: replace` on an existing list item (kustomize ignores it);
- duplicate merge keys on either side (kustomize collapses them into one);
- two-key items that differ only by a missing second key (port 80 next to 80/TCP: kustomize drops
  the patch item), and deleting an item without the second key while others have it (it stays);
- a list directive for a list the target lacks (kustomize writes the directive item alone), and a
  list's `{$patch: merge}` next to items holding `$patch` (their changes are lost);
- `$setElementOrder`, `$retainKeys`, `$deleteFromPrimitiveList` (kustomize copies them into the
  object), and `$patch` inside lists replaced whole (kept as data);
- `$patch: replace` on a whole object (ignored);
- lists of built-in kinds this module does not model (a webhook configuration's `webhooks`, ...).
`diff_patch` checks every patch it writes against the model; where no faithful keyed patch exists it
replaces the list (`$patch: replace`) or the map, and raises PatchError when even that is not faithful
(a target list with duplicate keys; a target with explicit nulls).
"""

from __future__ import annotations

import json

DIRECTIVE = "$patch"

# Directive keys of the API server's strategic merge patch that kustomize does not understand: it
# copies them into the object as if they were fields.
_UNSUPPORTED_DIRECTIVES = ("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/")

# Every apiVersion and kind in kustomize's built-in schema (Kubernetes v1.21.2).
_KNOWN: dict[str, frozenset[str]] = {
    api: frozenset(kinds.split())
    for api, kinds in {
        "v1": "Binding ComponentStatus ConfigMap Endpoints Event LimitRange Namespace Node PersistentVolume "
        "PersistentVolumeClaim Pod PodTemplate ReplicationController ResourceQuota Secret Service ServiceAccount",
        "admissionregistration.k8s.io/v1": "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1beta1": "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
        "apiextensions.k8s.io/v1": "CustomResourceDefinition",
        "apiextensions.k8s.io/v1beta1": "CustomResourceDefinition",
        "apiregistration.k8s.io/v1": "APIService",
        "apiregistration.k8s.io/v1beta1": "APIService",
        "apps/v1": "ControllerRevision DaemonSet Deployment ReplicaSet StatefulSet",
        "authentication.k8s.io/v1": "TokenRequest TokenReview",
        "authentication.k8s.io/v1beta1": "TokenReview",
        "authorization.k8s.io/v1": "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview SubjectAccessReview",
        "authorization.k8s.io/v1beta1": "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview "
        "SubjectAccessReview",
        "autoscaling/v1": "HorizontalPodAutoscaler Scale",
        "autoscaling/v2beta1": "HorizontalPodAutoscaler",
        "autoscaling/v2beta2": "HorizontalPodAutoscaler",
        "batch/v1": "CronJob Job",
        "batch/v1beta1": "CronJob",
        "certificates.k8s.io/v1": "CertificateSigningRequest",
        "certificates.k8s.io/v1beta1": "CertificateSigningRequest",
        "coordination.k8s.io/v1": "Lease",
        "coordination.k8s.io/v1beta1": "Lease",
        "discovery.k8s.io/v1": "EndpointSlice",
        "discovery.k8s.io/v1beta1": "EndpointSlice",
        "events.k8s.io/v1": "Event",
        "events.k8s.io/v1beta1": "Event",
        "extensions/v1beta1": "Ingress",
        "flowcontrol.apiserver.k8s.io/v1beta1": "FlowSchema PriorityLevelConfiguration",
        "networking.k8s.io/v1": "Ingress IngressClass NetworkPolicy",
        "networking.k8s.io/v1beta1": "Ingress IngressClass",
        "node.k8s.io/v1": "RuntimeClass",
        "node.k8s.io/v1beta1": "RuntimeClass",
        "policy/v1": "PodDisruptionBudget",
        "policy/v1beta1": "Eviction PodDisruptionBudget PodSecurityPolicy",
        "rbac.authorization.k8s.io/v1": "ClusterRole ClusterRoleBinding Role RoleBinding",
        "rbac.authorization.k8s.io/v1beta1": "ClusterRole ClusterRoleBinding Role RoleBinding",
        "scheduling.k8s.io/v1": "PriorityClass",
        "scheduling.k8s.io/v1beta1": "PriorityClass",
        "storage.k8s.io/v1": "CSIDriver CSINode StorageClass VolumeAttachment",
        "storage.k8s.io/v1beta1": "CSIDriver CSINode CSIStorageCapacity StorageClass VolumeAttachment",
    }.items()
}

# Where the pod spec sits in the built-in kinds that hold one.
_TEMPLATE = ("spec", "template", "spec")
_POD_SPEC: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): ("spec",),
    ("v1", "PodTemplate"): ("template", "spec"),
    ("v1", "ReplicationController"): _TEMPLATE,
    **{("apps/v1", kind): _TEMPLATE for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")},
    ("batch/v1", "Job"): _TEMPLATE,
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", *_TEMPLATE),
    ("batch/v1beta1", "CronJob"): ("spec", "jobTemplate", *_TEMPLATE),
}
# Built-in kinds whose every list this module knows; the lists of other built-in kinds (outside their
# metadata) raise PatchError rather than guess.
_MODELLED: frozenset[tuple[str, str]] = frozenset(
    {
        *_POD_SPEC,
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1beta1", "Ingress"),
        ("extensions/v1beta1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("policy/v1beta1", "PodDisruptionBudget"),
        *(("autoscaling/" + version, "HorizontalPodAutoscaler") for version in ("v1", "v2beta1", "v2beta2")),
        *(
            (f"rbac.authorization.k8s.io/{version}", kind)
            for version in ("v1", "v1beta1")
            for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        ),
    }
)

MergeKey = tuple[str, ...]
SET: MergeKey = ()  # a list of strings merged as a set (metadata.finalizers)

_META_KEYS: dict[str, MergeKey] = {"finalizers": SET, "ownerReferences": ("uid",)}
_POD_KEYS: dict[str, MergeKey] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
_CONTAINER_KEYS: dict[str, MergeKey] = {
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "protocol"),
}
_EPHEMERAL_KEYS: dict[str, MergeKey] = {k: v for k, v in _CONTAINER_KEYS.items() if k != "ports"}
_KIND_KEYS: dict[tuple[str, str], dict[tuple[str, ...], MergeKey]] = {
    ("v1", "Service"): {("spec", "ports"): ("port", "protocol")},
    ("v1", "ServiceAccount"): {("secrets",): ("name",)},
}


class PatchError(ValueError):
    pass


def has_schema(api_version: str, kind: str) -> bool:
    """Whether kustomize knows the kind's schema; without one every list is replaced whole."""
    return kind in _KNOWN.get(api_version, ())


def merge_key(api_version: str, kind: str, path: tuple[str, ...]) -> MergeKey | None:
    """The key(s) kustomize merges the list at `path` (field names from the object's root, list levels
    left out) by: None when the list is replaced whole, SET for a set of strings, else the key fields
    (the first one always present, the others optional). PatchError for a built-in kind not modelled."""
    if not path or not has_schema(api_version, kind):
        return None
    gvk = (api_version, kind)
    *parent, field_name = path
    if parent and parent[-1] == "metadata" and tuple(parent) in _object_metas(gvk):
        return _META_KEYS.get(field_name)
    if gvk not in _MODELLED:
        raise PatchError(
            f"kompile does not model how kustomize merges {'.'.join(path)} of a {kind} ({api_version}); "
            "use a JSON patch (a list of operations) for it"
        )
    pod = _POD_SPEC.get(gvk)
    if pod and tuple(parent) == pod:
        return _POD_KEYS.get(field_name)
    if pod and len(parent) == len(pod) + 1 and tuple(parent[:-1]) == pod:
        if parent[-1] in ("containers", "initContainers"):
            return _CONTAINER_KEYS.get(field_name)
        if parent[-1] == "ephemeralContainers":
            return _EPHEMERAL_KEYS.get(field_name)
    return _KIND_KEYS.get(gvk, {}).get(path)


def _object_metas(gvk: tuple[str, str]) -> set[tuple[str, ...]]:
    """The paths of the ObjectMeta maps in a built-in kind: its own, and its templates'."""
    metas = {("metadata",)}
    pod = _POD_SPEC.get(gvk)
    if pod:
        metas.add((*pod[:-1], "metadata"))
        if "jobTemplate" in pod:
            metas.add(("spec", "jobTemplate", "metadata"))
    return metas


# ---------------------------------------------------------------------------------------------
# Applying a patch


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


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) or "the top level"


def _node_kind(value) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _check_key(key, path: tuple[str, ...]) -> None:
    if isinstance(key, str) and key.startswith(_UNSUPPORTED_DIRECTIVES):
        raise PatchError(
            f"{key} at {_where(path)}: kustomize does not support this directive and would copy it "
            "into the object; list the items in the wanted order, or use $patch: replace"
        )


def _map_directive(patch: dict, path: tuple[str, ...]) -> str:
    directive = patch.get(DIRECTIVE, "merge")
    if directive not in ("merge", "replace", "delete"):
        raise PatchError(
            f"unknown directive {DIRECTIVE}: {directive} at {_where(path)} (merge, replace or delete)"
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
        if old is not None and _node_kind(old) != _node_kind(value):
            raise PatchError(
                f"{_where(here)}: a {_node_kind(value)} cannot patch a {_node_kind(old)} "
                "(kustomize stops with 'wrong node kind')"
            )
        if isinstance(value, dict):
            if _map_directive(value, here) == "delete":
                out.pop(key, None)
            else:
                out[key] = _merge_map(old or {}, value, gvk, here)
        elif isinstance(value, list):
            merged = _merge_list(old, value, gvk, here)
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


def _merge_list(target: list | None, patch: list, gvk: tuple[str, str], path: tuple[str, ...]):
    keys = merge_key(*gvk, path)
    if keys is None:
        _reject_directives(patch, path)
        return list(patch)
    directive, items = _list_directive(patch, path)
    if target is None and len(items) != len(patch):
        raise PatchError(
            f"{_where(path)}: the target has no such list, and there kustomize writes the "
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
                    f"{DIRECTIVE} inside {_where(path)}: kustomize replaces this list whole (it has no "
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
            f"{_where(path)}: a list directive ({{{DIRECTIVE}: ...}} alone) must come once, before any "
            f"item with {DIRECTIVE}"
        )
    directive = patch[lone[0]][DIRECTIVE]
    if directive not in ("merge", "replace", "delete"):
        raise PatchError(
            f"unknown directive {DIRECTIVE}: {directive} in {_where(path)} (merge, replace or delete)"
        )
    if directive == "merge" and len(marked) > 1:
        raise PatchError(
            f"{_where(path)}: next to a list's {{{DIRECTIVE}: merge}}, kustomize loses the changes of items "
            f"that hold {DIRECTIVE} themselves; drop the {{{DIRECTIVE}: merge}} item"
        )
    return directive, [item for i, item in enumerate(patch) if i != lone[0]]


def _merge_set(target: list, patch: list, path: tuple[str, ...]) -> list:
    for item in (*target, *patch):
        if isinstance(item, (dict, list)) or item is None:
            raise PatchError(f"{_where(path)} is a list of strings; {item!r} cannot be merged into it")
    kept = {}
    for item in target:
        kept.setdefault(_text(item), item)
    merged: dict[str, object] = {}
    for item in patch:
        merged.setdefault(_text(item), kept.get(_text(item), item))
    for text, item in kept.items():
        merged.setdefault(text, item)
    return list(merged.values())


def _identity(item, keys: MergeKey, side: str, path: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(item, dict) or item.get(keys[0]) is None:
        raise PatchError(
            f"every item of {_where(path)} needs '{keys[0]}' to be merged (an item of the {side} has "
            f"none: {item!r})"
        )
    for key in keys:
        if isinstance(item.get(key), (dict, list)):
            raise PatchError(f"{_where(path)}: '{key}' of an item of the {side} is not a scalar")
    return tuple(_text(item.get(key)) for key in keys)


def _merge_keyed(
    target: list, patch: list, keys: MergeKey, gvk: tuple[str, str], path: tuple[str, ...]
) -> list:
    old_ids = [_identity(item, keys, "target", path) for item in target]
    new_ids = [_identity(item, keys, "patch", path) for item in patch]
    for ids, side in ((old_ids, "target"), (new_ids, "patch")):
        if len(set(ids)) != len(ids):
            raise PatchError(
                f"{_where(path)}: the {side} has two items with the same {'/'.join(keys)}; kustomize "
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
                    f"{_where(path)}: kustomize does not delete an item without "
                    f"{'/'.join(keys[i] for i in effective if not key_id[i])} while other items have it; "
                    f"replace the list instead ([{{{DIRECTIVE}: replace}}, ...])"
                )
            deleted.add(key_id)
        elif directive == "replace" and key_id in old_by_id:
            raise PatchError(
                f"{DIRECTIVE}: replace on an item of {_where(path)}: kustomize ignores it and keeps the "
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
                        f"{_where(path)}: kustomize matches items by {'/'.join(keys)} and cannot tell {shown} "
                        f"apart; give every item its {', '.join(keys[1:])}"
                    )


# ---------------------------------------------------------------------------------------------
# Writing a patch


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
    (Python's == does the walking; only where it says equal do the scalars' types need a second look.)"""
    if one is other:
        return True
    if one != other:
        return False
    return _typed(one) == _typed(other)


def _typed(value) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _first_difference(one, other, path: tuple[str, ...]) -> str:
    if isinstance(one, dict) and isinstance(other, dict):
        for key in (*one, *(k for k in other if k not in one)):
            if key not in one or key not in other or not same(one[key], other[key]):
                return _first_difference(one.get(key), other.get(key), (*path, str(key)))
    return _where(path)


def _diff_map(base: dict, target: dict, gvk: tuple[str, str], path: tuple[str, ...]) -> dict:
    patch: dict = {}
    for key, value in target.items():
        here = (*path, key)
        old = base.get(key)
        if key in base and same(old, value):
            continue
        if old is None or value is None:
            patch[key] = value
        elif _node_kind(old) != _node_kind(value):
            raise _NeedsReplace(_where(here))
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
            if same(_merge_list(old, patch, gvk, path), new):
                return patch
        except (PatchError, _NeedsReplace):
            continue
    raise PatchError(
        f"{_where(path)}: kustomize cannot be given this list faithfully (duplicate merge keys "
        f"{'/'.join(keys) or 'values'}, items without them, or explicit nulls)"
    )


def _keyed_patch(
    old: list, new: list, keys: MergeKey, gvk: tuple[str, str], path: tuple[str, ...], compact: bool
) -> list:
    """Either every new item in order (the key alone when unchanged) and deletions, which gives the new order
    under one-key merging; or (compact) only the added, changed and deleted items, which gives it under
    two-key merging when the added items come first and the kept ones keep their order."""

    def ident(item) -> tuple[str, ...]:
        return _identity(item, keys, "list", path)

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
