"""The containers a pod runs besides the app's: native sidecars and init containers from the App's
declarations, hardened like the app's own."""

from __future__ import annotations

from kompile.k8s import pod
from kompile.k8s.pod import PodIdentity
from kompile.model import Container
from kompile.render.probes import container_probes


def helper_containers(
    identity: PodIdentity,
    sidecars: tuple[Container, ...],
    init_containers: tuple[Container, ...],
    app_image: str,
) -> tuple[list[dict], list[dict]]:
    """A pod's initContainers, and the volumes they write to. Its sidecars come first (restartPolicy
    Always: started in order, each once its startup probe passes, and stopped after the app's containers,
    also in a Job), then the init containers that run to completion, which may already use the sidecars
    (a database proxy). Each writable path is an emptyDir of the container's own."""
    out, volumes = [], []
    for container, restart in [*((c, "Always") for c in sidecars), *((c, None) for c in init_containers)]:
        env = [{"name": key, "value": value} for key, value in container.env.items()]
        env_from = [{"secretRef": {"name": name}} for name in container.secrets]
        ports = [{"containerPort": port, "protocol": "TCP"} for port in container.ports]
        mounts = []
        for index, path in enumerate(container.writable_paths):
            volume = f"{container.name}-{index}"[:63].rstrip("-")
            volumes.append({"name": volume, "emptyDir": {"sizeLimit": identity.tmp_size}})
            mounts.append({"mountPath": path, "name": volume})
        out.append(
            pod.container(
                container.name,
                app_image if container.app_image else container.image,
                identity,
                command=container.command,
                args=container.args,
                ports=ports,
                env=env,
                env_from=env_from,
                volume_mounts=mounts,
                probes=container_probes(container.probes) if restart else None,
                resources=pod.resources(container.resources.requests, container.resources.limits),
                restart_policy=restart,
            )
        )
    return out, volumes


def pod_secrets(selected: tuple[str, ...] | None, helpers: tuple[Container, ...]) -> tuple[str, ...] | None:
    """The secrets a pod reads: those its app container selects (None: all) and its helpers'."""
    if selected is None:
        return None
    return tuple(sorted({*selected, *(name for helper in helpers for name in helper.secrets)}))
