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
(a target list with duplicate keys; a target with explicit nulls)."""

from __future__ import annotations

from kompile.k8s.strategic.apply import apply_patch, as_kustomize_reads
from kompile.k8s.strategic.diff import diff_patch, same
from kompile.k8s.strategic.schema import DIRECTIVE, SET, MergeKey, PatchError, has_schema, merge_key

__all__ = [
    "DIRECTIVE",
    "SET",
    "MergeKey",
    "PatchError",
    "apply_patch",
    "as_kustomize_reads",
    "diff_patch",
    "has_schema",
    "merge_key",
    "same",
]
