"""What a hostile input of at most 1 MiB costs: every command that reads specs, on crafted projects.

    python benchmarks/adversarial.py               # every case, every command (about 10 minutes on 2 cores)
    python benchmarks/adversarial.py --quick       # a few cases and commands: what the test runs
    python benchmarks/adversarial.py --cases 'patch|cred' --commands 'build|check'

Each case is a copy of the canonical example (the repo's environments/, secrets/ and its committed
output, in a git repository of its own, built once so the local caches are warm) with crafted input
of at most 1 MiB in total: one spec, sealed-secret, extra-resource or patch file replaced or added
(a file a spec must name to be read is named by a one-line edit of dev.yaml). Every command then runs
in a process of its own, with a wall-clock timeout (a runaway is reported, never waited for) and an
address-space cap (a runaway never takes the machine). The table gives seconds, peak RSS (of the
process and the workers it forks, from wait4), the exit code and whether the run stayed within the
bound: 5 s and 500 MB, and an exit that is an answer (0, 1 where the command means "differences",
2) with no traceback. kompile's bytecode is compiled once first, as an installed kompile has it
(benchmarks/bytecode.py).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from bytecode import compile_bytecode, environment  # noqa: E402

KOMPILE = [sys.executable, "-m", "kompile"]
MAX_INPUT = 1 << 20  # the bound is stated for inputs of at most 1 MiB
MAX_SECONDS = 5.0
MAX_RSS_MB = 500.0
ADDRESS_SPACE = 4 << 30  # a run past this fails (MemoryError) instead of swapping the machine out
FOLDERS = ("environments", "secrets", "bases", "overlays", "gitops")
NODES = 48_000  # a little under the loader's 50,000 values: crafted files stay loadable


# ---------------------------------------------------------------------------------------------
# Cases: crafted input files


@dataclass
class Case:
    name: str
    files: dict[str, str | bytes]  # relative path -> content (replaced or added)
    edits: list[tuple[str, str, str]] = field(default_factory=list)  # (path, old, new): to name a file
    env: str = "dev"  # the environment the per-environment commands name
    quick: bool = False  # part of --quick

    def crafted_bytes(self) -> int:
        return sum(len(c.encode() if isinstance(c, str) else c) for c in self.files.values())


def _example(rel: str) -> str:
    return (REPO / rel).read_text(encoding="utf-8")


DEV = "environments/dev.yaml"
APP = "environments/app.yaml"
SEALED = "secrets/dev/shop-django.yaml"
_APP_EGRESS = (
    "    egress:                           # DNS is always allowed; everything else is denied unless listed\n"
    "      - name: postgres\n        cidr: 10.20.0.0/16\n        ports: [5432]\n"
    "      - name: redis\n        cidr: 10.30.0.0/16\n        ports: [6379]\n"
)


def _dev_with(spec_tail: str, head: str = "") -> str:
    """dev.yaml with more settings under spec: (spec_tail is indented two spaces, as dev's keys are); a
    section dev.yaml has already (env:, components:) is added to, not repeated."""
    text = _example(DEV)
    for section in re.split(r"(?m)^(?=  [A-Za-z])", spec_tail):
        header = section.split("\n", 1)[0] + "\n"
        if section and header in text and header.rstrip().endswith(":"):
            text = text.replace(header, section, 1)
        else:
            text += section
    return head + text


def _app_with(spec_tail: str, components: str = "") -> str:
    text = _example(APP)
    if components:
        text = text.replace("  components:\n", "  components:\n" + components, 1)
    return text + spec_tail


_RESOURCES = "{requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}"


def _workers(count: int, extra: str = "") -> str:
    """count worker components, flow style, one line each."""
    return "".join(
        f"    w{i}: {{type: worker, command: [x], probes: {{exec: {{command: [x]}}}}, resources: {_RESOURCES}{extra}}}\n"
        for i in range(count)
    )


def _webs(count: int, extra: str = "") -> str:
    return "".join(
        f"    s{i}: {{type: web, command: [x], port: 8000, replicas: 2, probes: {{http: {{path: /h}}}}, "
        f"resources: {_RESOURCES}{extra}}}\n"
        for i in range(count)
    )


def _env_block(count: int, value: str = "v") -> str:
    return "  env:\n" + "".join(f"    K{i}: {value}\n" for i in range(count))


def _billion_laughs() -> str:
    lines = ['  lol0: &l0 ["lol"]']
    for level in range(1, 12):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"  lol{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _gzip_b64(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), 9, mtime=0)).decode()


def _deep_block(levels: int) -> str:
    return "".join(" " * (2 * i) + f"k{i}:\n" for i in range(levels)) + " " * (2 * levels) + "v\n"


def _extra(rel: str, content: str, where: str = "extraResources") -> tuple[dict, list]:
    """A file dev.yaml names with a one-line edit."""
    return {rel: content}, [(DEV, "spec:\n", f"spec:\n  {where}: [{rel}]\n")]


def _patch_file(rel: str, content: str) -> tuple[dict, list]:
    return {rel: content}, [(DEV, "spec:\n", f"spec:\n  patches: [{{path: {rel}}}]\n")]


def _json_ops(count: int, target: str = "{kind: ServiceAccount, name: shop}", op: str = "add") -> str:
    ops = [f"      - {{op: {op}, path: /metadata/annotations/a{i}, value: v}}\n" for i in range(count)]
    return (
        f"  patches:\n    - target: {target}\n      patch:\n"
        "      - {op: add, path: /metadata/annotations, value: {}}\n" + "".join(ops)
    )


def _sealed(encrypted: str, template_meta: str = "") -> str:
    return (
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: shop-django\n"
        "  namespace: shop-dev\nspec:\n  encryptedData:\n"
        "    DJANGO_SECRET_KEY: AgA8eec1e97ac602d3228bad33b61efeaae\n"
        "    DATABASE_URL: AgBf1195a47f78b3ac9194dec6ab076850d\n"
        "    CELERY_BROKER_URL: AgCcd61fb6d2c7781af0fb1a6ec4258fcd8\n"
        + encrypted
        + "  template:\n    metadata:\n      name: shop-django\n      namespace: shop-dev\n"
        + template_meta
    )


def cases() -> list[Case]:
    out: list[Case] = []

    def add(name: str, files: dict, edits: list | None = None, **kw) -> None:
        out.append(Case(name, files, edits or [], **kw))

    # -- the YAML loader
    add("alias-bomb", {DEV: _dev_with("", head="lol:\n" + _billion_laughs())}, quick=True)
    add(
        "alias-wide",
        {
            DEV: _dev_with(
                "  env: &e\n"
                + "".join(f"    A{i}: v\n" for i in range(2000))
                + "  x: ["
                + ", ".join(["*e"] * 2000)
                + "]\n"
            )
        },
    )
    add(
        "merge-key-chain",
        {
            DEV: "a0: &a0 {k: v}\n"
            + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}, k{i}: v}}\n" for i in range(1, 20000))
        },
    )
    add("deep-flow", {DEV: "x: " + "[" * 300_000 + "]" * 300_000 + "\n"})
    add("deep-block", {DEV: _deep_block(1000)})
    add(
        "deep-within-limit",
        {
            DEV: _dev_with(
                "  env:\n    X: v\n  components:\n    web:\n      scheduling:\n"
                "        podAnnotations:\n" + _deep_block(55).replace("\n", "\n          ")[:-10]
            )
        },
    )
    add("values-49k-env", {DEV: _dev_with(_env_block(NODES - 200))}, quick=True)
    add("values-200k", {DEV: _dev_with("  x: [" + ",".join(["1"] * 250_000) + "]\n")})
    add("many-documents", {DEV: "---\n" * 260_000})
    add("many-documents-real", {DEV: (_example(DEV) + "---\n") * 1200})
    add("long-key", {DEV: _dev_with(f"  env:\n    {'K' * 1_000_000}: v\n")})
    add("long-value", {DEV: _dev_with(f"  env:\n    LONG: {'a' * 1_000_000}\n")})
    add("long-name", {DEV: _dev_with("  components:\n    " + "a" * 1_000_000 + ": {replicas: 1}\n")})
    add("huge-int-digits", {DEV: _dev_with("  components:\n    web: {replicas: " + "9" * 1_000_000 + "}\n")})
    add("huge-exponent", {DEV: _dev_with("  components:\n    web: {replicas: 1e" + "9" * 1_000_000 + "}\n")})
    add(
        "huge-quantity",
        {
            DEV: _dev_with(
                "  components:\n    web:\n      resources:\n        limits: {memory: "
                + "9" * 1_000_000
                + "Ei}\n"
            )
        },
    )
    add(
        "quantity-many-digits-valid",
        {
            DEV: _dev_with(
                "  components:\n    web:\n      resources:\n        limits: "
                '{memory: "' + "9" * 300_000 + '"}\n'
                '        requests: {memory: "' + "9" * 300_000 + '"}\n'
            )
        },
    )
    add(
        "regex-image",
        {
            DEV: _dev_with("", head="").replace(
                'image: {tag: "1.5.0-rc.2"}', "image: {repository: " + "a-" * 450_000 + "!, tag: x}"
            )
        },
    )
    add(
        "regex-host",
        {DEV: _example(DEV).replace("host: shop.dev.example.com", "host: " + "a." * 450_000 + "-")},
    )
    add(
        "regex-cron",
        {
            DEV: _dev_with(
                "  components:\n    c:\n      type: cron\n      command: [x]\n"
                '      schedule: "' + "a " * 450_000 + '"\n'
            )
        },
    )
    add(
        "regex-cluster",
        {
            DEV: _example(DEV).replace(
                "cluster: https://kubernetes.default.svc", "cluster: " + "a." * 450_000 + "-"
            )
        },
    )
    add("unicode-expanding", {DEV: _dev_with('  env:\n    U: "' + "\ufdfa" * 300_000 + '"\n')})
    add("unicode-combining", {DEV: _dev_with('  env:\n    U: "a' + "\u0301" * 450_000 + '"\n')})
    add(
        "unicode-casefold-keys",
        {DEV: _dev_with("  env:\n" + "".join(f'    "\u00df{i}": v\n' for i in range(40_000)))},
    )

    # -- multiplication: one value copied into every component, object or rule
    add(
        "app-egress-x-100-components",
        {
            APP: _app_with("", components=_workers(97)).replace(
                _APP_EGRESS,
                "    egress:\n"
                + "".join(
                    f"      - {{name: e{i}, cidr: 10.{i // 256 % 256}.{i % 256}.0/24, ports: [{1 + i % 60000}]}}\n"
                    for i in range(8500)
                ),
            )
        },
        quick=True,
    )
    add(
        "app-dns-x-100-components",
        {
            APP: _app_with("", components=_workers(97)).replace(
                "  network:\n",
                "  network:\n    dns:\n"
                + "".join(
                    f"      - {{name: d{i}, cidr: 10.{i // 256 % 256}.{i % 256}.1/32}}\n"
                    for i in range(11000)
                ),
            )
        },
    )
    add(
        "app-ingressfrom-x-100-webs",
        {
            APP: _app_with("", components=_webs(97)).replace(
                "    ingressFrom:                      # who may reach the web component\n      - namespace: ingress-nginx\n",
                "    ingressFrom:\n"
                + "".join(f"      - {{name: p{i}, namespace: n{i}}}\n" for i in range(14000)),
            )
        },
    )
    add(
        "app-sidecar-env-x-100-components",
        {
            APP: _app_with(
                "  sidecars:\n    - name: proxy\n      image: proxy:1.0\n      env:\n"
                + "".join(f"        S{i}: v{i}\n" for i in range(44_000)),
                components=_workers(97, ", sidecars: [proxy]"),
            )
        },
        quick=True,
    )
    add(
        "app-100-sidecars-x-100-components",
        {
            APP: _app_with(
                "  sidecars:\n"
                + "".join(
                    f"    - {{name: p{i}, image: 'proxy:1.0', ports: [{1000 + i}]}}\n" for i in range(100)
                ),
                components=_workers(97, ", sidecars: [" + ", ".join(f"p{i}" for i in range(100)) + "]"),
            )
        },
    )
    add(
        "app-init-env-x-100-components",
        {
            APP: _app_with(
                "  initContainers:\n    - name: init\n      image: init:1.0\n      command: [x]\n      env:\n"
                + "".join(f"        I{i}: v{i}\n" for i in range(44_000)),
                components=_workers(97, ", initContainers: [init]"),
            )
        },
    )
    add(
        "app-patch-x-100-deployments",
        {
            APP: _app_with(
                "  patches:\n    - target: {kind: Deployment}\n      patch:\n        metadata:\n          annotations:\n"
                + "".join(f"            a{i}: v\n" for i in range(44_000)),
                components=_workers(97),
            )
        },
        quick=True,
    )
    add(
        "app-pod-patch-x-100-deployments",
        {
            APP: _app_with(
                "  patches:\n    - target: {kind: Deployment}\n      patch:\n        spec:\n          template:\n"
                "            metadata:\n              annotations:\n"
                + "".join(f"                a{i}: v\n" for i in range(40_000)),
                components=_workers(97),
            )
        },
    )
    add(
        "app-json-patch-x-100-deployments",
        {
            APP: _app_with(
                _json_ops((NODES - 2000) // 4, target="{kind: Deployment}"), components=_workers(97)
            )
        },
    )
    add("json-patch-12k-ops", {DEV: _dev_with(_json_ops(NODES // 4))}, quick=True)
    add(
        "json-patch-copy-remove",
        {
            DEV: _dev_with(
                "  patches:\n    - target: {kind: ServiceAccount, name: shop}\n      patch:\n"
                "      - {op: add, path: /metadata/annotations, value: {}}\n"
                "      - {op: add, path: /spec, value: {"
                + ", ".join(f"a{i}: v" for i in range(20_000))
                + "}}\n"
                + "      - {op: copy, from: /spec, path: /x}\n      - {op: remove, path: /x}\n" * 3000
            )
        },
    )
    add(
        "json-patch-move-ping-pong",
        {
            DEV: _dev_with(
                "  patches:\n    - target: {kind: ServiceAccount, name: shop}\n      patch:\n"
                "      - {op: add, path: /spec, value: {"
                + ", ".join(f"a{i}: v" for i in range(20_000))
                + "}}\n"
                + "      - {op: move, from: /spec, path: /x}\n      - {op: move, from: /x, path: /spec}\n"
                * 3000
            )
        },
    )
    add(
        "json-patch-test-ops",
        {
            DEV: _dev_with(
                "  patches:\n    - target: {kind: ServiceAccount, name: shop}\n      patch:\n"
                "      - {op: add, path: /spec, value: {"
                + ", ".join(f"a{i}: v" for i in range(20_000))
                + "}}\n"
                + "      - {op: test, path: /spec, value: {a0: v}}\n" * 1
            )
        },
    )
    add(
        "connects-mesh-100-webs",
        {
            DEV: _dev_with(
                "  components:\n"
                + "".join(
                    f"    s{i}: {{type: web, command: [x], port: 8000, probes: {{http: {{path: /h}}}}, connectsTo: ["
                    + ", ".join(f"s{j}" for j in range(97) if j != i)
                    + "]}\n"
                    for i in range(97)
                )
            )
        },
    )
    add(
        "hosts-x-routes",
        {
            DEV: _example(DEV)
            .replace(
                "    DJANGO_ALLOWED_HOSTS: shop.dev.example.com\n",
                "    DJANGO_ALLOWED_HOSTS: shop.dev.example.com,"
                + ",".join(f"h{i}.e.com" for i in range(30000))
                + "\n",
            )
            .replace(
                "  ingress:\n    host: shop.dev.example.com\n",
                "  ingress:\n    host: shop.dev.example.com\n    hosts: ["
                + ", ".join(f"h{i}.e.com" for i in range(30000))
                + "]\n    routes:\n"
                + "".join(f"      - {{name: r{i}, path: /r{i}, component: s{i}}}\n" for i in range(90)),
            )
            .replace("  components:\n", "  components:\n" + _webs(90).replace("    s", "    s", 1))
        },
    )
    # As many hosts as two routes to one component can take under the bound on an environment's values
    # (4,300: each host is a rule, a TLS name and a certificate name): every object is large, not many.
    add(
        "hosts-x-2-routes-under-the-bound",
        {
            DEV: _example(DEV)
            .replace(
                "    DJANGO_ALLOWED_HOSTS: shop.dev.example.com\n",
                "    DJANGO_ALLOWED_HOSTS: .dev.example.com\n",
            )
            .replace(
                "    host: shop.dev.example.com\n",
                "    hosts: ["
                + ", ".join(f"h{i}.dev.example.com" for i in range(4300))
                + "]\n    certificate: {issuer: letsencrypt, kind: ClusterIssuer, http01: true}\n"
                "    routes:\n      - {name: site, path: /, component: web}\n"
                "      - {name: api, path: /api, component: web}\n",
            )
        },
    )
    add(
        "security-allow-12k",
        {
            DEV: _dev_with(
                "  security:\n    allow:\n"
                + "".join(
                    f"      - {{rule: read-only-root, object: Deployment/x{i}, reason: r}}\n"
                    for i in range(11000)
                )
            )
        },
    )
    add(
        "allowkinds-10k",
        {
            APP: _app_with(
                "  allowKinds:\n"
                + "".join(
                    f"    - {{group: g{i}.example.com, kind: K{i}, namespaced: true}}\n" for i in range(11000)
                )
            )
        },
    )
    add(
        "rbac-12k-rules",
        {
            DEV: _dev_with(
                "  components:\n    worker:\n      rbac:\n        rules:\n"
                + "".join(
                    f"          - {{apiGroups: [apps], resources: [r{i}], verbs: [get]}}\n"
                    for i in range(8000)
                )
            )
        },
    )
    add(
        "tolerations-12k",
        {
            DEV: _dev_with(
                "  components:\n    web:\n      scheduling:\n        tolerations:\n"
                + "".join(f"          - {{key: k{i}, operator: Exists}}\n" for i in range(15000))
            )
        },
    )
    add(
        "env-secrets-4k-x-components",
        {
            DEV: _dev_with(
                "  secrets:\n"
                + "".join(f"    - {{name: s{i}, keys: [K]}}\n" for i in range(4000))
                + "".join(
                    f"    s{i}:\n      encryptedData: {{K: AgA{i:08d}xxxxxxxxxxxxxxxx}}\n"
                    for i in range(4000)
                ),
            )
            .replace("  sealedSecrets:\n", "  sealedSecrets:\n", 1)
            .replace(
                "      file: secrets/dev/shop-django.yaml     # written by: kubeseal -o yaml < secret.yaml\n",
                "      file: secrets/dev/shop-django.yaml\n",
            )
        },
    )
    add(
        "extends-chain-16",
        dict(
            [
                (
                    f"environments/c{i}.yaml",
                    f"apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: c{i}\nspec:\n"
                    f"  extends: {'dev' if i == 0 else f'c{i - 1}'}\n  namespace: shop-c{i}\n  env:\n"
                    + "".join(f"    C{i}_{j}: v\n" for j in range(2900)),
                )
                for i in range(16)
            ]
        ),
        env="c15",
    )
    # The same chain, valid: every environment compiles, each one's ConfigMap holding every variable above
    # it (8 MB of output from 1 MB of specs), and set-image and promote build it all again.
    add("extends-chain-16-valid", _valid_chain(16, 3900), env="c15")

    # -- sealed secrets
    add("sealed-45k-keys", {SEALED: _sealed("".join(f"    K{i}: AgA{i}\n" for i in range(NODES - 100)))})
    add("sealed-1mib-value", {SEALED: _sealed(f"    BIG: Ag{'A' * 1_000_000}\n")})
    add(
        "sealed-template-annotations",
        {
            SEALED: _sealed(
                "",
                "      annotations:\n"
                + "".join(f'        a{i}: "{"x" * 4}://u:p{i}@h"\n' for i in range(27000)),
            )
        },
    )
    add("sealed-alias-bomb", {SEALED: _sealed("") + "x:\n" + _billion_laughs()})
    add("sealed-many-documents", {SEALED: _sealed("") + "---\n" * 200_000})

    # -- extra resources
    files, edits = _extra(
        "k8s/many.yaml",
        "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{"
            + ", ".join(f"k{j}: v" for j in range(44))
            + "}\n"
            for i in range(1000)
        ),
    )
    add("extra-1000-objects", files, edits, quick=True)
    files, edits = _extra(
        "k8s/list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n"
        + "".join(f"- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}\n" for i in range(12000)),
    )
    add("extra-list-12k-items", files, edits)
    files, edits = _extra(
        "k8s/pod.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big}\nspec:\n"
        "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec:\n      containers:\n"
        + "".join(
            f"      - {{name: c{i}, image: 'ghcr.io/acme/shop:1', ports: [{{containerPort: {1 + i}}}]}}\n"
            for i in range(9000)
        ),
    )
    add("extra-9k-containers", files, edits)
    bomb = _gzip_b64("a://" * (1 << 18))
    files, edits = _extra(
        "k8s/bomb.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\nbinaryData:\n"
        + "".join(f"  k{i}: {bomb}\n" for i in range(900_000 // (len(bomb) + 10))),
    )
    add("extra-gzip-bombs-binarydata", files, edits, quick=True)
    files, edits = _extra(
        "k8s/big.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n  f: |\n" + "    A=b\n" * 120_000,
    )
    add("extra-configmap-file-lines", files, edits)
    files, edits = _extra(
        "k8s/floats.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n  f: x\nx: 1e" + "9" * 1_000_000 + "\n",
    )
    add("extra-huge-exponent", files, edits)
    files, edits = _extra(
        "k8s/nums.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n  f: x\n"
        "x: [" + ", ".join(["1e999999999"] * 80_000) + "]\n",
    )
    add("extra-many-exponents", files, edits)

    # -- patch files
    files, edits = _patch_file(
        "k8s/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop-web}\n"
        "spec:\n  template:\n    spec:\n      containers:\n"
        + "".join(f"      - {{name: c{i}, image: 'x:1'}}\n" for i in range(15000)),
    )
    add("patchfile-15k-containers", files, edits)
    files, edits = _patch_file(
        "k8s/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop-web}\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        env:\n"
        + "".join(f"        - {{name: E{i}, value: v}}\n" for i in range(15000)),
    )
    add("patchfile-15k-env", files, edits)
    files, edits = _patch_file(
        "k8s/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop-web}\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        env:\n"
        + "".join(f"        - {{name: E{i % 10}, value: v{i}}}\n" for i in range(15000))
        + "        - {$patch: replace}\n",
    )
    add("patchfile-duplicate-merge-keys", files, edits)

    # -- credential detectors
    add("cred-url-schemes", {DEV: _dev_with(f'  env:\n    U: "{"a://" * 250_000}"\n')}, quick=True)
    add(
        "cred-url-schemes-many-keys",
        {DEV: _dev_with("  env:\n" + "".join(f'    U{i}: "{"a://" * 250}"\n' for i in range(1000)))},
    )
    add(
        "cred-base64-long",
        {DEV: _dev_with(f"  env:\n    B: {base64.b64encode(('a://' * 190_000).encode()).decode()}\n")},
    )
    runs = " ".join([_gzip_b64("a://" * (1 << 18))] * 20)
    add(
        "cred-gzip-runs",
        {
            DEV: _dev_with(
                "  env:\n" + "".join(f'    G{i}: "{runs}"\n' for i in range(900_000 // (len(runs) + 12)))
            )
        },
        quick=True,
    )
    # Every base64 run of a value is decoded (and its gzip inflated, up to twice its length): many of them.
    rng = random.Random(7)
    plain_runs = " ".join(base64.b64encode(rng.randbytes(33)).decode() for _ in range(20_000))
    add("cred-many-base64-runs", {DEV: _dev_with(f'  env:\n    R: "{plain_runs}"\n')})
    small_gzips = " ".join(_gzip_b64(rng.randbytes(24).hex()) for _ in range(9_000))
    add("cred-many-small-gzip-runs", {DEV: _dev_with(f'  env:\n    Z: "{small_gzips}"\n')})
    add("cred-embedded-lines", {DEV: _dev_with('  env:\n    L: "' + "A=b\\n" * 200_000 + '"\n')})
    add("cred-json-quoted", {DEV: _dev_with("  env:\n    J: '" + '"a": "' * 140_000 + "'\n")})
    add("cred-xml", {DEV: _dev_with('  env:\n    X: "' + "<a>" * 300_000 + '"\n')})
    add("cred-base64-nested", {DEV: _dev_with("  env:\n    N: " + _nested_base64(12) + "\n")})
    add("cred-authorization", {DEV: _dev_with('  env:\n    A: "' + "basic " * 170_000 + '"\n')})
    add("cred-pgpass-lines", {DEV: _dev_with('  env:\n    P: "' + "a:1:b:c\\n" * 110_000 + '"\n')})
    add(
        "cred-command-line",
        {
            DEV: _dev_with(
                "  components:\n    web:\n      args: [" + ", ".join(["-u", "curl"] * 100_000) + "]\n"
            )
        },
    )
    return out


def _valid_chain(length: int, variables: int) -> dict[str, str]:
    """A chain of environments from dev, each with its own namespace, host and sealed secret (the
    example's, resealed for it) and `variables` more variables."""
    sealed = (REPO / "secrets/dev/shop-django.yaml").read_text(encoding="utf-8")
    files = {}
    for i in range(length):
        files[f"secrets/c{i}/shop-django.yaml"] = sealed.replace("shop-dev", f"shop-c{i}")
        files[f"environments/c{i}.yaml"] = (
            f"apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: c{i}\nspec:\n"
            f"  extends: {'dev' if i == 0 else f'c{i - 1}'}\n  namespace: shop-c{i}\n"
            f"  sealedSecrets: {{shop-django: {{file: secrets/c{i}/shop-django.yaml}}}}\n"
            f"  ingress: {{host: shop.c{i}.example.com, tlsSecret: shop-c{i}-tls}}\n"
            f"  env:\n    DJANGO_ALLOWED_HOSTS: shop.c{i}.example.com\n"
            + "".join(f"    C{i}_{j}: v\n" for j in range(variables))
        )
    return files


def _nested_base64(levels: int) -> str:
    text = "postgres://u:p@h/db " * 10
    for _ in range(levels):
        text = base64.b64encode(text.encode()).decode()
    return text[: MAX_INPUT // 2]


# ---------------------------------------------------------------------------------------------
# Commands


def commands(env: str) -> list[tuple[str, list[str], tuple[int, ...]]]:
    """(label, arguments, exits that are answers), read-only commands first."""
    other = "staging" if env != "staging" else "dev"
    return [
        ("validate", ["validate"], (0, 2)),
        ("check", ["check"], (0, 1, 2)),
        ("check --fast", ["check", "--fast"], (0, 1, 2)),
        ("diff", ["diff"], (0, 1, 2)),
        ("diff --base HEAD", ["diff", "--base", "HEAD"], (0, 1, 2)),
        ("render X", ["render", env], (0, 2)),
        ("explain X", ["explain", env], (0, 1, 2)),
        ("explain --matrix", ["explain", "--matrix", "components"], (0, 1, 2)),
        ("build --env X", ["build", "--env", env, "--quiet"], (0, 2)),
        ("build", ["build", "--quiet"], (0, 2)),
        ("set-image", ["set-image", env, "--tag", "9.9.9"], (0, 2)),
        ("promote", ["promote", other, env], (0, 2)),
        ("hydrate", ["hydrate"], (0, 2)),
    ]


QUICK_COMMANDS = ("validate", "check", "diff", "render X", "build")


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class Run:
    case: str
    command: str
    seconds: float
    peak_mib: float
    exit: int | None  # None: killed at the timeout
    expected: tuple[int, ...]
    traceback: bool
    first_line: str

    @property
    def answered(self) -> bool:
        return self.exit in self.expected and not self.traceback

    @property
    def within(self) -> bool:
        return self.answered and self.seconds <= MAX_SECONDS and self.peak_mib * 1.048576 <= MAX_RSS_MB


PYCACHE: Path | None = None  # kompile's bytecode, compiled once (see bytecode.py); set by main()


def _environment() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOMPILE", "PYTHONHASHSEED"))}
    env = environment(env, PYCACHE)
    env.update(
        NO_COLOR="1",
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@e",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@e",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def measure(argv: list[str], cwd: Path, timeout: float) -> tuple[float, float, int | None, str]:
    """(seconds, peak RSS MiB of the process and the children it waited for, exit code or None, stderr)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=_environment(),
            start_new_session=True,
            preexec_fn=_limits,
        )
        killed = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout and not killed:
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # workers left behind
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return elapsed, usage.ru_maxrss / 1024, None if killed else process.returncode, stderr


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=_environment())


def prepare_template(work: Path) -> Path:
    template = work / "template"
    template.mkdir()
    for folder in FOLDERS:
        shutil.copytree(REPO / folder, template / folder)
    shutil.copy2(REPO / ".kompile-manifest.json", template / ".kompile-manifest.json")
    _git(template, "init", "-q", "-b", "main")
    _git(template, "add", "-A")
    _git(template, "commit", "-q", "-m", "example")
    return template


def prepare_case(case: Case, template: Path, work: Path) -> Path:
    for rel, content in case.files.items():
        size = len(content.encode() if isinstance(content, str) else content)
        assert size <= MAX_INPUT, f"{case.name}: {rel} is {size} bytes, more than 1 MiB"
    assert case.crafted_bytes() <= MAX_INPUT, f"{case.name}: {case.crafted_bytes()} bytes crafted"
    root = work / case.name
    shutil.copytree(template, root, symlinks=True)
    # A warm cache, as a developer's checkout has: build --env, render and diff take their short paths.
    subprocess.run(
        [*KOMPILE, "build", "--quiet"], cwd=root, capture_output=True, env=_environment(), check=True
    )
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for rel, old, new in case.edits:
        text = (root / rel).read_text(encoding="utf-8")
        assert old in text, f"{case.name}: {rel} does not hold {old!r}"
        (root / rel).write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


def run_case(
    case: Case, template: Path, work: Path, timeout: float, only: re.Pattern | None, quick: bool
) -> list[Run]:
    root = prepare_case(case, template, work)
    runs = []
    for label, args, expected in commands(case.env):
        if quick and label not in QUICK_COMMANDS:
            continue
        if only and not only.search(label):
            continue
        seconds, peak, code, stderr = measure([*KOMPILE, *args], root, timeout)
        first = next((line for line in stderr.splitlines() if "error[" in line or "Error" in line), "")
        runs.append(
            Run(
                case.name,
                label,
                seconds,
                peak,
                code,
                expected,
                "Traceback" in stderr or "internal error" in stderr,
                first[:160],
            )
        )
    shutil.rmtree(root, ignore_errors=True)
    return runs


def table(runs: list[Run]) -> str:
    rows = [
        "| case | command | seconds | peak RSS MiB | exit | within 5 s / 500 MB |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        code = "timeout" if r.exit is None else str(r.exit) + (" traceback" if r.traceback else "")
        verdict = "yes" if r.within else "**NO**"
        rows.append(f"| {r.case} | {r.command} | {r.seconds:.2f} | {r.peak_mib:.0f} | {code} | {verdict} |")
    return "\n".join(rows)


def worst(runs: list[Run]) -> str:
    lines = ["worst case per command (seconds, peak RSS MiB):"]
    for label in dict.fromkeys(r.command for r in runs):
        mine = [r for r in runs if r.command == label]
        slow = max(mine, key=lambda r: r.seconds)
        big = max(mine, key=lambda r: r.peak_mib)
        lines.append(
            f"  {label:<18} {slow.seconds:6.2f} s ({slow.case}), {big.peak_mib:5.0f} MiB ({big.case})"
        )
    bad = [r for r in runs if not r.within]
    lines.append(
        f"{len(runs)} runs, {len(bad)} outside the bound"
        + (": " + ", ".join(f"{r.case}/{r.command}" for r in bad) if bad else "")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    global PYCACHE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few cases and commands (what the test runs)")
    parser.add_argument("--cases", help="only cases whose name matches this regular expression")
    parser.add_argument("--commands", help="only commands whose label matches this regular expression")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run is killed")
    parser.add_argument("--json", action="store_true", help="also print every run as JSON")
    parser.add_argument("--list", action="store_true", help="list the cases and their sizes")
    parser.add_argument("--keep", type=Path, help="write each case's project into this folder; run nothing")
    args = parser.parse_args(argv)
    selected = [
        c
        for c in cases()
        if (not args.quick or c.quick) and (not args.cases or re.search(args.cases, c.name))
    ]
    if args.list:
        for case in selected:
            print(f"{case.name:<40} {case.crafted_bytes():>9} bytes")
        return 0
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        template = prepare_template(args.keep)
        for case in selected:
            print(prepare_case(case, template, args.keep))
        return 0
    only = re.compile(args.commands) if args.commands else None
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="kompile-adversarial-") as tmp:
        work = Path(tmp)
        PYCACHE = compile_bytecode(work / "pycache")
        template = prepare_template(work)
        for case in selected:
            mine = run_case(case, template, work, args.timeout, only, args.quick)
            for r in mine:
                print(
                    f"{r.case:<36} {r.command:<18} {r.seconds:7.2f} s {r.peak_mib:6.0f} MiB "
                    f"exit {r.exit} {'ok' if r.within else 'OUTSIDE'} {r.first_line[:90]}",
                    file=sys.stderr,
                    flush=True,
                )
            runs += mine
    print(table(runs))
    print()
    print(worst(runs))
    if args.json:
        print(json.dumps([{**r.__dict__, "answered": r.answered, "within": r.within} for r in runs]))
    return 0 if all(r.answered for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
