"""`kompile init`: a commented environments/ folder that validates and builds as it is, and the JSON
Schema beside it so editors complete and check the specs (yaml-language-server modeline)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kompile import names
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.load.listing import ENVIRONMENTS_DIR, SPEC_SUFFIXES
from kompile.safefs import Refused, Root
from kompile.spec import API_VERSION, DNS_LABEL, json_schema

SCHEMA_FILE = "kompile.schema.json"
MODELINE = f"# yaml-language-server: $schema=../{SCHEMA_FILE}\n"
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64

APP = """\
{modeline}# What every environment of the "{app}" Django app shares. Each environment file says only what differs;
# `kompile explain ENV` shows where every setting comes from, `kompile validate` checks them all.
apiVersion: {api}
kind: App
metadata:
  name: {app}
spec:
  image: ghcr.io/acme/{app}           # repository only; each environment pins a tag or a digest
  env:                                # plain settings -> a ConfigMap (never secrets: see below)
    DJANGO_SETTINGS_MODULE: {module}.settings
    GUNICORN_CMD_ARGS: "--workers=3 --timeout=30 --graceful-timeout=25"
  # Secrets the pods read; every environment then provides them sealed with kubeseal, e.g.
  #   secrets:
  #     - name: {app}-django
  #       keys: [DJANGO_SECRET_KEY, DATABASE_URL]
  # and in each environment: sealedSecrets: {{{app}-django: {{file: secrets/<env>/{app}-django.yaml}}}}
  components:
    web:
      type: web                       # gunicorn behind a Service, reachable through the ingress
      command: [gunicorn, "{module}.wsgi:application", --bind=0.0.0.0:8000]
      port: 8000
      probes:
        http: {{path: /healthz/}}       # answers 200 when the app is healthy
      resources:
        requests: {{cpu: 250m, memory: 256Mi}}
        limits: {{cpu: "1", memory: 512Mi}}
    worker:
      type: worker                    # celery: no Service; scales on its own
      command: [celery, -A, {module}, worker, --loglevel=info]
      probes:
        exec: {{command: [sh, -c, "celery -A {module} inspect ping -d celery@$HOSTNAME"]}}
      resources:
        requests: {{cpu: 250m, memory: 384Mi}}
        limits: {{cpu: "1", memory: 768Mi}}
  migrate:                            # a Job that runs before each release reaches the pods
    command: [python, manage.py, migrate, --noinput]
  network:
    ingressFrom:                      # who may reach the web component
      - namespace: ingress-nginx
    egress: []                        # DNS is always allowed; add your database and broker, e.g.
                                      # - {{name: postgres, cidr: 10.20.0.0/16, ports: [5432]}}
  gitops:
    tool: {gitops}                      # or {other}
    repoURL: https://github.com/acme/{app}-deploy.git   # the repo that holds this output
    revision: main
"""

ENVIRONMENT = """\
{modeline}apiVersion: {api}
kind: Environment
metadata:
  name: {env}
spec:
{tier}  namespace: {app}-{env}
  image: {image}
  env:
    DJANGO_ALLOWED_HOSTS: {host}
  components:
    web: {web}
  ingress:
    host: {host}
    className: nginx
    tlsSecret: {app}-{env}-tls
"""


def scaffold(app: str, environments: list[str], gitops: str) -> dict[str, str]:
    """{relative path: text} of a new repo's specs and schema."""
    problems = [
        Diagnostic(
            Code.INVALID_NAME,
            f"'{name}' is not a DNS-1123 label",
            None,
            "lower-case letters, digits and '-', e.g. shop or prod",
        )
        for name in [app, *environments]
        if not re.match(DNS_LABEL, name) or len(names.instance(app, name)) > 63
    ]
    if not environments:
        problems.append(
            Diagnostic(Code.NO_ENVIRONMENTS, "give at least one environment", None, "--env dev,staging,prod")
        )
    if len(set(environments)) != len(environments):
        problems.append(Diagnostic(Code.INVALID_VALUE, "an environment is listed twice", None))
    if problems:
        raise KompileError(problems)
    module = app.replace("-", "_")
    files = {
        SCHEMA_FILE: json.dumps(json_schema(), indent=2) + "\n",
        f"{ENVIRONMENTS_DIR}/app.yaml": APP.format(
            modeline=MODELINE,
            api=API_VERSION,
            app=app,
            module=module,
            gitops=gitops,
            other="flux" if gitops == "argocd" else "argocd",
        ),
    }
    for env in environments:
        production = env in ("prod", "production")
        files[f"{ENVIRONMENTS_DIR}/{env}.yaml"] = ENVIRONMENT.format(
            modeline=MODELINE,
            api=API_VERSION,
            app=app,
            env=env,
            host=f"{app}.example.com" if production else f"{app}.{env}.example.com",
            tier="  tier: production                  # digest-pinned image, 2+ web pods: see `kompile validate`\n"
            if production
            else "",
            image=f"{{digest: {PLACEHOLDER_DIGEST}}}   # your release: kompile set-image {env} --digest ..."
            if production
            else '{tag: "0.1.0"}                # kompile set-image ' + env + " --tag ...",
            web="{replicas: 2}" if production else "{replicas: 1}",
        )
    files[GITATTRIBUTES] = GENERATED
    return files


# GitHub (linguist) folds generated files in a pull request's diff and leaves them out of the language
# statistics: reviewers read the specs, and the output only when they want to.
GITATTRIBUTES = ".gitattributes"
GENERATED = """\
# kompile writes these from environments/: folded in code review (`kompile check` keeps them current).
bases/** linguist-generated=true
overlays/** linguist-generated=true
gitops/** linguist-generated=true
rendered/** linguist-generated=true
.kompile-manifest.json linguist-generated=true
.kompile-manifest/** linguist-generated=true
"""


def write_scaffold(root: Path, files: dict[str, str]) -> list[str]:
    """Write the scaffold, refusing (before writing anything) to overwrite any spec or schema, or to write
    through a link. Each file is created exclusively, so one that appears meanwhile is not overwritten.
    A .gitattributes the repo has already is left as it is (the README says what to add). Returns what
    was written."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with Root(root) as disk:
            existing = sorted(
                e.name for e in disk.listdir(ENVIRONMENTS_DIR) if e.name.endswith(SPEC_SUFFIXES)
            )
            present = {path for path in files if disk.lstat(path) is not None}
            taken = sorted(present - {GITATTRIBUTES})
            if existing or taken:
                where = f"{ENVIRONMENTS_DIR}/{existing[0]}" if existing else taken[0]
                raise KompileError(
                    [
                        Diagnostic(
                            Code.FOREIGN_FILE,
                            f"{where} already exists; kompile init starts a new repo",
                            Span(where),
                            "run it in an empty folder (--root DIR), or edit the existing specs",
                        )
                    ]
                )
            written = [path for path in files if path not in present]
            for path in written:
                disk.create(path, files[path].encode("utf-8"))
            return written
    except Refused as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.FOREIGN_FILE,
                    f"{exc.rel}: {exc.why}",
                    Span(exc.rel),
                    "kompile init writes only into plain folders of the repo",
                )
            ]
        ) from None
    except FileExistsError as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.FOREIGN_FILE,
                    f"{exc.filename or 'a file'} appeared while kompile init ran",
                    Span(ENVIRONMENTS_DIR),
                    "run it again in an empty folder",
                )
            ]
        ) from None
    except OSError as exc:
        raise KompileError(
            [Diagnostic(Code.WRITE, f"cannot write in {root}: {exc.strerror}", Span(ENVIRONMENTS_DIR))]
        ) from None
