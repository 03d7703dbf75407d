"""What every renderer of one environment shares: names, labels, hashes and the pod identity."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace

from kompile import names
from kompile.k8s import meta
from kompile.k8s.pod import PodIdentity
from kompile.model import Account, Component, Environment, SecretMount

AZURE_LABEL = "azure.workload.identity/use"  # the AKS identity webhook's object selector: a pod label


@dataclass(frozen=True)
class Context:
    env: Environment
    identity: PodIdentity
    config_name: str
    secret_values: dict[str, object]  # each secret's sealed, stored or encrypted values, by name
    config_hash: str = ""  # of env.env: every pod template carries it
    # (the secrets a pod reads -> their hash: the same few sets in each component's pods; shared by the
    # copies replace() makes for each component's identity)
    secret_hashes: dict[tuple[str, ...] | None, str] = field(default_factory=dict, compare=False)

    def pod_annotations(self, secrets: tuple[str, ...] | None = None) -> dict[str, str]:
        """Hashes of the config and of the secrets a pod reads (secrets None: all): a new value of
        either restarts the pods that read it, and only those."""
        annotations = {"kompile.dev/config-hash": self.config_hash}
        hashed = self.secret_hashes.get(secrets)
        if hashed is None:
            values = {
                name: value
                for name, value in self.secret_values.items()
                if secrets is None or name in secrets
            }
            hashed = self.secret_hashes[secrets] = _digest(values) if values else ""
        if hashed:
            annotations["kompile.dev/secrets-hash"] = hashed
        return annotations

    @property
    def app(self) -> str:
        return self.env.app

    def name(self, component: str) -> str:
        return names.component(self.env.app, component)

    def labels(self, component: str | None = None) -> dict[str, str]:
        return meta.labels(self.env.app, component)

    def workload_labels(self, component: str) -> dict[str, str]:
        """Workloads and their pods also carry the release they run (only there: a release would
        otherwise touch every object of the environment). A tag that is no valid label value (one
        ending in '_', say) is left out rather than having the API server reject the workload."""
        labels = self.labels(component)
        tag = self.env.image.tag
        if tag and meta.is_label_value(tag):
            labels = dict(sorted({**labels, meta.VERSION: tag}.items()))
        return labels

    def pod_identity(self, account: Account) -> PodIdentity:
        """Who a pod runs as: the account, and an API token only when a Role is bound to it."""
        return replace(self.identity, service_account=account.name, api_access=account.api_access)

    def pod_labels(self, component: str, account: Account) -> dict[str, str]:
        labels = self.workload_labels(component)
        return dict(sorted({**labels, AZURE_LABEL: "true"}.items())) if account.azure else labels

    def selector(self, component: str) -> dict[str, str]:
        return meta.selector_labels(self.env.app, component)

    def env_from(self, secrets: tuple[str, ...] | None = None) -> list[dict]:
        """The ConfigMap first, then the secrets (secrets None: all the App declares): a secret wins over
        a setting of the same name."""
        sources = [{"configMapRef": {"name": self.config_name}}]
        sources += [
            {"secretRef": {"name": s.name}}
            for s in self.env.secrets
            if s.mount is SecretMount.ENV and (secrets is None or s.name in secrets)
        ]
        return sources

    def secret_volumes(self, secrets: tuple[str, ...] | None = None) -> tuple[list[dict], list[dict]]:
        volumes, mounts = [], []
        for secret in self.env.secrets:
            if secret.mount is SecretMount.FILES and (secrets is None or secret.name in secrets):
                volume = f"secret-{secret.name}"[:63].rstrip("-.")
                # 0440 with fsGroup: readable by the app's group, never writable.
                volumes.append({"name": volume, "secret": {"defaultMode": 0o440, "secretName": secret.name}})
                mounts.append({"mountPath": secret.mount_path, "name": volume, "readOnly": True})
        return volumes, mounts


def build_context(env: Environment) -> Context:
    values: dict[str, object] = {
        s["metadata"]["name"]: s.get("spec", {}).get("encryptedData", {}) for s in env.sealed_secrets
    }
    values.update({s["metadata"]["name"]: s.get("spec", {}) for s in env.external_secrets})
    values.update(
        {
            s["metadata"]["name"]: {k: s.get(k) for k in ("data", "stringData") if s.get(k)}
            for s in env.sops_secrets
        }
    )
    shared = env.accounts[0]
    identity = PodIdentity(
        service_account=shared.name,
        run_as_user=env.security.run_as_user,
        run_as_group=env.security.run_as_group,
        fs_group=env.security.fs_group,
        tmp_size=env.security.tmp_size,
        api_access=shared.api_access,
    )
    return Context(
        env=env,
        identity=identity,
        config_name=names.config_map(env.app),
        secret_values=values,
        config_hash=_digest(env.env),
    )


def probe_host(env: Environment, component: Component) -> str | None:
    """The Host header for HTTP probes: Django rejects the kubelet's pod IP unless it is allowed."""
    if env.ingress and component.name in env.ingress.routed:
        return env.ingress.hosts[0]
    for host in re.split(r"[,\s]+", env.env.get("DJANGO_ALLOWED_HOSTS", "")):
        host = host.strip().lstrip(".")
        if host and "*" not in host:
            return host
    return None


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
