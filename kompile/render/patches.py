"""The spec's escape hatches applied in the model: extra resources beside kompile's objects, and
patches on them, bounded in size and refused where kustomize would not build."""

from __future__ import annotations

import copy

import jsonpatch
import jsonpointer

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.k8s import kinds
from kompile.k8s.strategic import PatchError, apply_patch
from kompile.model import Environment, Patch
from kompile.render.ids import object_id, object_id_problem


def extra_objects(env: Environment, generated: list[dict]) -> list[tuple[dict, Span]]:
    taken = {object_id(obj) for obj in generated}
    extra = []
    for item in env.extra_objects:
        obj = copy.deepcopy(item.body)
        obj["metadata"].pop(
            "namespace", None
        )  # it lands in the environment's namespace, as kustomize would put it
        if object_id(obj) in taken:
            _, kind, name = object_id(obj)
            raise KompileError(
                [
                    Diagnostic(
                        Code.EXTRA_RESOURCE,
                        f"extra resource {kind}/{name} has the name of an object kompile generates",
                        item.where,
                        "change the generated object with spec.patches instead",
                    )
                ]
            )
        taken.add(object_id(obj))
        extra.append((obj, item.where))
    return extra


MAX_ENVIRONMENT_VALUES = 100_000  # as many as one patched object may hold; the largest example holds 3,000


class ValueBudget:
    """What an environment's objects hold, counted as they are made. One spec file holds at most 50,000
    values, but the compiler copies some into every component (env, sidecars, init containers), and a
    patch into every object its target matches: 1 MiB of spec made gigabytes of objects. Past
    MAX_ENVIRONMENT_VALUES the setting that multiplied is reported (K106), before anything is checked or
    emitted."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_ENVIRONMENT_VALUES

    def take(self, objects: list[dict], where: Span | None, what: str) -> None:
        for obj in objects:
            self.left -= count_values(obj, self.left + 1)
            if self.left < 0:
                raise KompileError(
                    [
                        Diagnostic(
                            Code.TOO_COMPLEX,
                            f"{what} makes the environment's objects hold more than "
                            f"{MAX_ENVIRONMENT_VALUES} values",
                            where,
                            "each component's pods carry the env, sidecars and init containers they use, "
                            "and a patch changes every object its target matches: share less, or target fewer",
                        )
                    ]
                )

    def give(self, obj: dict) -> None:
        self.left += count_values(obj, MAX_OBJECT_VALUES + 1)


def count_values(value, limit: int) -> int:
    """The values in value (every mapping, list and scalar), counted up to limit."""
    stack, count = [value], 0
    while stack and count < limit:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def apply_patches(
    objects: list[dict],
    patches: tuple[Patch, ...],
    origins: dict[tuple, Span],
    patched_ids: set[tuple],
    budget: ValueBudget | None = None,
) -> list[dict]:
    """objects with the user's patches applied; origins records, per object, the last patch that changed it,
    and patched_ids every object a patch touched. budget: what the environment's objects may still grow by."""
    budget = budget or ValueBudget()
    for patch in patches:
        target = patch.target or {
            "kind": patch.body.get("kind"),
            "name": (patch.body.get("metadata") or {}).get("name"),
        }
        matched = False
        for index, obj in enumerate(objects):
            if not _matches(obj, target):
                continue
            matched = True
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            try:
                if isinstance(patch.body, list):
                    patched = _apply_json_patch(obj, patch.body, name, patch)
                else:
                    patched = apply_patch(obj, _patch_body(patch))
            except (PatchError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise KompileError(
                    [Diagnostic(Code.PATCH, f"patch does not apply to {name}: {exc}", patch.where)]
                ) from None
            except RecursionError:
                raise KompileError(
                    [Diagnostic(Code.PATCH, f"patch makes {name} too deep to handle", patch.where)]
                ) from None
            _check_size(patched, name, patch)
            if object_id_problem(patched) or object_id(patched) != object_id(obj):
                raise KompileError(
                    [
                        Diagnostic(
                            Code.PATCH,
                            f"patch changes what {obj['kind']}/{obj['metadata']['name']} is "
                            f"({object_id_problem(patched) or 'its kind, API group or name'})",
                            patch.where,
                            "a patch changes an object's contents; add another object with extraResources",
                        )
                    ]
                )
            problem = shape_problem(patched)
            if problem:
                raise KompileError(
                    [
                        Diagnostic(
                            Code.PATCH,
                            f"patch leaves {name} in a shape kustomize cannot read: {problem}",
                            patch.where,
                            "`kubectl explain` shows the field's type",
                        )
                    ]
                )
            budget.give(obj)
            budget.take([patched], patch.where, "this patch")
            objects[index] = patched
            origins[object_id(patched)] = patch.where
            patched_ids.add(object_id(patched))
        if not matched:
            what = "/".join(str(target.get(k)) for k in ("kind", "name") if target.get(k))
            raise KompileError(
                [
                    Diagnostic(
                        Code.PATCH,
                        f"patch matches no object ({what})",
                        patch.where,
                        "`kompile render ENV` lists the objects and their names",
                    )
                ]
            )
    return objects


MAX_OBJECT_DEPTH = 100  # a spec nests at most 64 levels; JSON patches could stack further, one op at a time
MAX_OBJECT_VALUES = 100_000  # a spec holds at most 50,000 values; JSON `copy` could multiply them


def too_large(value, max_depth: int = MAX_OBJECT_DEPTH, max_values: int = MAX_OBJECT_VALUES) -> str | None:
    """Why value is beyond what any Kubernetes object holds (walked without recursion, stopping early)."""
    stack = [(value, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > max_depth:
            return f"it nests deeper than {max_depth} levels"
        if count > max_values:
            return f"it holds more than {max_values} values"
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return None


def _apply_json_patch(obj: dict, operations: list, name: str, patch: Patch) -> dict:
    """obj with a JSON patch applied, one operation at a time, each bounded: `copy` can double an object
    with every operation. The operations work in place on one copy of the object (a copy per operation
    made a patch of n operations cost n times the object), and what they write is counted as they go:
    the values each adds, replaces or copies, which add up to at most MAX_OBJECT_VALUES, so no sequence of
    operations (a copy and a remove, again and again) does more work than one object holds."""
    doc = copy.deepcopy(obj)
    written = 0
    for operation in operations:
        values, depth = _writes(doc, operation)
        written += values
        # The operation's own value is copied in: a later operation must not change the spec's model.
        doc = jsonpatch.JsonPatch([copy.deepcopy(operation)]).apply(doc, in_place=True)
        if written > MAX_OBJECT_VALUES or depth > MAX_OBJECT_DEPTH:
            _check_size(doc, name, patch)
            if written > MAX_OBJECT_VALUES:
                raise KompileError(
                    [
                        Diagnostic(
                            Code.PATCH,
                            f"patch makes {name} too large: its operations write more than "
                            f"{MAX_OBJECT_VALUES} values",
                            patch.where,
                            "no Kubernetes object is that large; write the value out",
                        )
                    ]
                )
    return doc


def _writes(doc, operation) -> tuple[int, int]:
    """How many values an operation writes into doc (at most just past the limit: the count stops early),
    and how deep the deepest of them lands."""
    if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace", "copy"):
        return 0, 0
    if operation["op"] == "copy":
        try:
            value = jsonpointer.resolve_pointer(doc, operation.get("from"))
        except (jsonpointer.JsonPointerException, TypeError, AttributeError):
            return 0, 0  # the operation itself fails, with jsonpatch's message
    else:
        value = operation.get("value")
    path = operation.get("path")
    at = path.count("/") if isinstance(path, str) else 0
    stack, count, deepest = [(value, at)], 0, 0
    while stack and count <= MAX_OBJECT_VALUES and deepest <= MAX_OBJECT_DEPTH:
        node, depth = stack.pop()
        count, deepest = count + 1, max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return count, deepest


def _check_size(obj: dict, name: str, patch: Patch) -> None:
    problem = too_large(obj)
    if problem:
        raise KompileError(
            [
                Diagnostic(
                    Code.PATCH,
                    f"patch makes {name} too large: {problem}",
                    patch.where,
                    "no Kubernetes object is that large; write the value out",
                )
            ]
        )


def shape_problem(obj: dict) -> str | None:
    """What in an object kustomize's transformers cannot read: metadata, labels and annotations that are not
    mappings of strings, or a pod template's metadata that is not a mapping."""
    metadata = obj.get("metadata")
    for field in ("labels", "annotations"):
        value = metadata.get(field) if isinstance(metadata, dict) else None
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            return f"metadata.{field} must be a mapping of strings"
    if (
        isinstance(metadata, dict)
        and metadata.get("namespace") is not None
        and not isinstance(metadata["namespace"], str)
    ):
        return "metadata.namespace must be a string"
    for path in kinds.template_label_paths(obj["apiVersion"], obj["kind"]):
        node = obj
        for key in path:
            if key == []:
                if node is not None and not (
                    isinstance(node, list) and all(isinstance(i, dict) for i in node)
                ):
                    return "spec.volumeClaimTemplates must be a list of mappings"
                break
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
            if not isinstance(node, dict):
                return f"{'.'.join(path)} must be a mapping"
        else:
            template_meta = node.get("metadata") if isinstance(node, dict) else None
            if template_meta is not None and not isinstance(template_meta, dict):
                return f"{'.'.join(path)}.metadata must be a mapping"
            labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
            if labels is not None and not (
                isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())
            ):
                return f"{'.'.join(path)}.metadata.labels must be a mapping of strings"
    return None


def _patch_body(patch: Patch) -> dict:
    """With an explicit target, the patch's own identity is not applied (it may name several objects)."""
    if not patch.target:
        return patch.body
    body = {k: v for k, v in patch.body.items() if k not in ("apiVersion", "kind")}
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in ("name", "namespace")}
    return body


def _matches(obj: dict, target: dict) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    checks = {"kind": obj["kind"], "name": obj["metadata"]["name"], "group": group, "version": version}
    return all(target.get(key) in (None, value) for key, value in checks.items())
