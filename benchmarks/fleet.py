"""A repo with N environments made from the canonical example: what a team with per-tenant or
per-pull-request previews has. Used by the benchmark and by the tests that need a large tree."""

from __future__ import annotations

import shutil
from pathlib import Path

# The canonical example is the repo's own environments/ and secrets/.
EXAMPLE = Path(__file__).resolve().parent.parent

PREVIEW = """\
# Preview environment {index}: staging's settings, its own namespace, host and release.
apiVersion: kompile.dev/v1alpha1
kind: Environment
metadata:
  name: {name}
spec:
  extends: staging
  tier: preview
  image: {{tag: "1.5.{index}"}}
  env:
    DJANGO_ALLOWED_HOSTS: {name}.preview.example.com
  components:
    web:
      autoscaling: null
      replicas: {replicas}
    worker: {{replicas: 1}}
  ingress:
    host: {name}.preview.example.com
    className: nginx
    tlsSecret: {name}-tls
  sealedSecrets:                  # sealed for this namespace (staging's cannot be unsealed here)
    shop-django:
      encryptedData:
        DJANGO_SECRET_KEY: AgA{index:05d}dj4OJSWK+PiTySYZZA9rO43cGDEq8Kx7HDNnUzFXBhhkfMtkLqZBPxa
        DATABASE_URL: AgB{index:05d}db1YqSEwVT4o3JJoSB+Yxz5Gi5cRQD1SPWxaYTjmydGoVnT6zg+BFXKM
        CELERY_BROKER_URL: AgC{index:05d}cbOzH3l2m6o+IC1PNmOSq1DIjvNA72SS4+1HpUt2v8VDIJuJwGoRk
"""


def environment_name(index: int) -> str:
    return f"pr-{index:05d}"


def generate_fleet(destination: Path, count: int, example: Path = EXAMPLE) -> Path:
    """The example plus `count` preview environments (the example's three are part of the count)."""
    for folder in ("environments", "secrets"):
        shutil.copytree(example / folder, destination / folder, dirs_exist_ok=True)
    for index in range(max(0, count - 3)):
        name = environment_name(index)
        text = PREVIEW.format(name=name, index=index, replicas=1 + index % 3)
        (destination / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return destination
