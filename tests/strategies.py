"""Hypothesis strategies shared by the property tests: random spec-like values and mutations of a document."""

from __future__ import annotations

import copy

from hypothesis import strategies as st

from kompile.spec import API_VERSION

KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "name",
        "spec",
        "image",
        "tag",
        "digest",
        "repository",
        "components",
        "web",
        "worker",
        "beat",
        "type",
        "port",
        "replicas",
        "autoscaling",
        "minReplicas",
        "maxReplicas",
        "probes",
        "http",
        "exec",
        "path",
        "command",
        "resources",
        "requests",
        "limits",
        "cpu",
        "memory",
        "env",
        "secrets",
        "keys",
        "sealedSecrets",
        "file",
        "encryptedData",
        "scope",
        "network",
        "egress",
        "ingressFrom",
        "cidr",
        "namespace",
        "ports",
        "ingress",
        "host",
        "className",
        "tlsSecret",
        "component",
        "extends",
        "tier",
        "extraResources",
        "patches",
        "patch",
        "target",
        "gitops",
        "tool",
        "repoURL",
        "migrate",
        "security",
        "rbac",
        "rules",
        "cluster",
        "labels",
    ]
) | st.text(max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "web",
            "worker",
            "scheduler",
            "production",
            API_VERSION,
            "App",
            "Environment",
            "dev",
            "shop",
            "10.0.0.0/8",
            "latest",
            "sha256:" + "a" * 64,
            "secrets/dev/shop-django.yaml",
            "../x",
            "/etc/passwd",
            "250m",
            "1Gi",
            "/healthz/",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def containers(value, path=()):
    """Every (path, container) in a loaded document, the document itself first."""
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        if isinstance(child, dict | list):
            yield from containers(child, (*path, key))


def typo(key: str, data) -> str:
    if not key:
        return "x"
    index = data.draw(st.integers(0, len(key) - 1), label="typo at")
    how = data.draw(st.sampled_from(["drop", "swap", "double", "case"]), label="typo")
    if how == "drop":
        return key[:index] + key[index + 1 :] or "x"
    if how == "swap" and index + 1 < len(key):
        return key[:index] + key[index + 1] + key[index] + key[index + 2 :]
    if how == "case":
        return key[:index] + key[index].swapcase() + key[index + 1 :]
    return key[:index] + key[index] * 2 + key[index + 1 :]


def mutate(doc, data):
    doc = copy.deepcopy(doc)
    places = list(containers(doc))
    path, target = data.draw(st.sampled_from(places), label="where")
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    operations = ["insert"] + (["delete", "replace", "rename", "tweak", "tweak"] if keys else [])
    operation = data.draw(st.sampled_from(operations), label=f"what at {path}")
    if operation == "insert":
        value = data.draw(VALUES, label="inserted value")
        if isinstance(target, dict):
            target[data.draw(KEYS, label="inserted key")] = value
        else:
            target.insert(data.draw(st.integers(0, len(target)), label="index"), value)
        return doc
    key = data.draw(st.sampled_from(keys), label="key")
    if operation == "delete":
        del target[key]
    elif operation == "replace":
        target[key] = data.draw(VALUES, label="new value")
    elif operation == "tweak":
        target[key] = data.draw(similar(target[key]), label="similar value")
    elif isinstance(target, dict):
        new = data.draw(st.one_of(KEYS, st.just(typo(str(key), data))), label="new name")
        target[new] = target.pop(key)
    else:
        target[key] = [target[key]]
    return doc


PLAUSIBLE = st.sampled_from(
    [
        "web",
        "worker",
        "scheduler",
        "shop",
        "shop-web",
        "dev",
        "prod",
        "staging",
        "production",
        "strict",
        "cluster-wide",
        "namespace-wide",
        "files",
        "env",
        "TCP",
        "UDP",
        "1",
        "250m",
        "1Gi",
        "0",
        "/",
        "/healthz/",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "ingress-nginx",
        "nginx",
        "Deployment",
        "Service",
        "shop-django",
        "secrets/dev/shop-django.yaml",
        "1.4.3",
        "latest",
        "sha256:" + "0" * 64,
        "ghcr.io/acme/shop",
        "argocd",
        "flux",
        "https://example.com/x.git",
    ]
)
NAMEISH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-./:_", min_size=1, max_size=20)


def similar(value):
    """A value of the same YAML type, so the mutation gets past type checks into the later stages."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-2, 70000) | st.sampled_from([0, 1, 2, 65535, 65536, 10000])
    if isinstance(value, float):
        return st.floats(-1, 1e6)
    if isinstance(value, str):
        return PLAUSIBLE | NAMEISH
    if isinstance(value, list):
        return st.lists(st.sampled_from(value), max_size=len(value) + 2) if value else st.just([])
    if isinstance(value, dict):
        keys = sorted(value)
        return (
            st.lists(st.sampled_from(keys), unique=True).map(lambda kept: {k: value[k] for k in kept})
            if keys
            else st.just({})
        )
    return st.just(value)


IDENTITY = {((), "apiVersion"), ((), "kind"), (("metadata",), "name")}


def tweak(doc, data):
    """One value replaced by another of the same type (the document's identity kept): mostly still valid,
    so it reaches the renderers."""
    doc = copy.deepcopy(doc)
    slots = [
        (path, target, key)
        for path, target in containers(doc)
        for key in (target if isinstance(target, dict) else range(len(target)))
        if (path, key) not in IDENTITY
    ]
    path, target, key = data.draw(st.sampled_from(slots), label="where")
    target[key] = data.draw(similar(target[key]), label=f"new value at {(*path, key)}")
    return doc
