"""A real Kubernetes API server for tests: etcd and kube-apiserver from $KUBEBUILDER_ASSETS (controller-runtime's
envtest layout), on free ports of 127.0.0.1, with a throwaway data dir, a token and a service-account key.

Only the API half of a control plane: objects are stored, validated, defaulted and admitted (PodSecurity
included), but no controller runs, so nothing is ever scheduled and a deleted Namespace never goes away.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

BINARIES = ("etcd", "kube-apiserver")
HOW_TO_GET_ASSETS = (
    "point KUBEBUILDER_ASSETS at a folder holding kube-apiserver and etcd, for example with controller-runtime's "
    "setup-envtest: `go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest && "
    "export KUBEBUILDER_ASSETS=$(setup-envtest use -p path 1.36.x)`"
)


# Where controller-runtime's envtest looks when KUBEBUILDER_ASSETS is not set.
DEFAULT_ASSETS = "/usr/local/kubebuilder/bin"


def find_assets() -> tuple[Path | None, str]:
    """(the assets folder, '') when $KUBEBUILDER_ASSETS (or envtest's default folder) holds both binaries,
    else (None, why not)."""
    folder = os.environ.get("KUBEBUILDER_ASSETS", "")
    if not folder:
        if all(os.access(Path(DEFAULT_ASSETS) / name, os.X_OK) for name in BINARIES):
            return Path(DEFAULT_ASSETS), ""
        return (
            None,
            f"KUBEBUILDER_ASSETS is not set and {DEFAULT_ASSETS} holds no etcd and kube-apiserver; {HOW_TO_GET_ASSETS}",
        )
    missing = [name for name in BINARIES if not os.access(Path(folder) / name, os.X_OK)]
    if missing:
        return (
            None,
            f"KUBEBUILDER_ASSETS={folder} has no executable {' or '.join(missing)}; {HOW_TO_GET_ASSETS}",
        )
    return Path(folder), ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_service_account_key(private: Path, public: Path) -> None:
    """An RSA key pair for signing service-account tokens (the server will not start without one)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        subprocess.run(["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(private), "-pubout", "-out", str(public)],
            check=True,
            capture_output=True,
        )
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _die_with_parent() -> None:
    # Linux: the kernel kills the child when the test process dies, even by SIGKILL. SIGKILL, because an API
    # server sent SIGTERM as its etcd goes away never finishes shutting down.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ControlPlane:
    """etcd + kube-apiserver in `workdir`; `start()` returns once kubectl can use it, `stop()` ends both by PID."""

    def __init__(self, assets: Path, workdir: Path):
        self.assets, self.workdir = assets, workdir
        self.kubeconfig = workdir / "kubeconfig"
        self.token = secrets.token_hex(16)
        self.processes: list[subprocess.Popen] = []
        self.url = ""

    def start(self, timeout: float = 90) -> None:
        atexit.register(self.stop)  # Ctrl-C and other exits that skip fixture teardown
        deadline = time.monotonic() + timeout
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        write_service_account_key(self.workdir / "sa.key", self.workdir / "sa.pub")
        client, peer, secure = free_port(), free_port(), free_port()
        etcd = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            "--name",
            "default",
            "--data-dir",
            self.workdir / "etcd",
            "--listen-client-urls",
            etcd,
            "--advertise-client-urls",
            etcd,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer}",
        )
        self._wait(f"{etcd}/health", deadline)
        self._spawn(
            "kube-apiserver",
            "--etcd-servers",
            etcd,
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            secure,
            "--cert-dir",
            self.workdir / "certs",
            "--token-auth-file",
            self.workdir / "tokens.csv",
            "--anonymous-auth=false",
            "--authorization-mode",
            "RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            self.workdir / "sa.pub",
            "--service-account-signing-key-file",
            self.workdir / "sa.key",
            "--service-cluster-ip-range",
            "10.96.0.0/16",
            "--endpoint-reconciler-type",
            "none",
            # As real clusters do: then PodSecurity admission, not this flag, is what refuses a privileged Pod.
            "--allow-privileged=true",
        )
        self.url = f"https://127.0.0.1:{secure}"
        # kubectl needs both OpenAPI documents (apply's schema, diff, validation), which come after /readyz.
        for path in ("/readyz", "/openapi/v2", "/openapi/v3"):
            self._wait(self.url + path, deadline)
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "envtest",
                    "clusters": [
                        {
                            "name": "envtest",
                            "cluster": {
                                "server": self.url,
                                "certificate-authority": str(self.workdir / "certs" / "apiserver.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": self.token}}],
                    "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}],
                }
            )
        )

    def stop(self) -> None:
        """Ends what start() started, newest first, by PID; idempotent."""
        while self.processes:
            process = self.processes.pop()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(
                        timeout=3
                    )  # the API server's graceful shutdown takes ~10 s; its data is thrown away
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        atexit.unregister(self.stop)
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)  # etcd preallocates tens of MB

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(self.kubeconfig),
                "--cache-dir",
                str(self.workdir / "cache"),
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def install_crds(self, folder: Path, timeout: str = "120s") -> None:
        """Every CRD in folder, server-side (the largest are too big for a client-side apply), until Established."""
        for args in (
            ("apply", "--server-side", "-f", str(folder)),
            ("wait", "--for", "condition=Established", "crd", "--all", "--timeout", timeout),
        ):
            for attempt in range(5):
                result = self.kubectl(*args, timeout=300)
                # `wait` fails at once on a CRD whose status the server has not written yet
                # (".status.conditions accessor error"): ask again.
                if result.returncode == 0 or "accessor error" not in result.stderr:
                    break
                time.sleep(0.5 * (attempt + 1))
            if result.returncode != 0:
                raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")

    def _spawn(self, binary: str, *args: object) -> None:
        log = (self.workdir / f"{binary}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [str(self.assets / binary), *map(str, args)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        )
        log.close()

    def _wait(self, url: str, deadline: float) -> None:
        """Until url answers 200, failing early with the log's tail if a process exits."""
        headers = {"Authorization": f"Bearer {self.token}"}
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # polling only; kubectl verifies
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    name = Path(process.args[0]).name
                    tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} while waiting for {url}:\n{tail}"
                    )
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, headers=headers), timeout=5, context=context
                ) as answer:
                    if answer.status == 200:
                        answer.read()
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer 200 in time; logs in {self.workdir}")
            time.sleep(0.2)
