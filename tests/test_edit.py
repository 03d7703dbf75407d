"""set-image and promote edit only the image's value: comments, key order, quoting and odd layout stay
byte for byte, running twice changes nothing, and a change the build refuses is put back."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError
from kompile.tools.edit import promote, set_image, write_edit

from conftest import run_kompile

DIGEST = "sha256:" + "ab" * 32
ODD_STAGING = """\
# Staging: what QA sees.   (a comment with    odd spacing)
apiVersion: kompile.dev/v1alpha1
kind:    Environment        # aligned comments
metadata: { name: staging }
spec:
    namespace: shop-staging            # four-space indent here
    cluster: 'https://staging.k8s.acme.internal'
    image: { tag: '1.4.3' }   # bumped by the release pipeline
    env:
      DJANGO_ALLOWED_HOSTS:    "shop.staging.example.com"
    components:
        web:
            autoscaling: {minReplicas: 2, maxReplicas: 4, cpu: 70}
        worker: {replicas: 2}
    ingress: {host: shop.staging.example.com, className: nginx, tlsSecret: shop-staging-tls}
    sealedSecrets:
      shop-django:
        encryptedData:
          DJANGO_SECRET_KEY: AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq8Kx7HDNnUzFXBhhkfMtkLqZBPxaOaTT0
          DATABASE_URL: AgCo1YqSEwVT4o3JJoSB+Yxz5Gi5cRQD1SPWxaYTjmydGoVnT6zg+BFXKMeDoa0k
          CELERY_BROKER_URL: AgDFOzH3l2m6o+IC1PNmOSq1DIjvNA72SS4+1HpUt2v8VDIJuJwGoRkzpvB0Gs2q
# trailing comment
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.fixture
def odd(example: Path) -> Path:
    (example / "environments/staging.yaml").write_text(ODD_STAGING)
    return example


def test_set_image_changes_only_the_value_in_an_odd_file(odd: Path):
    edit = set_image(odd, "staging", "1.4.4", None)
    assert changed_lines(edit.before, edit.after) == [
        "-    image: { tag: '1.4.3' }   # bumped by the release pipeline",
        "+    image: { tag: '1.4.4' }   # bumped by the release pipeline",
    ]
    write_edit(odd, edit)
    again = set_image(odd, "staging", "1.4.4", None)
    assert not again.changed  # safe to run twice


def test_a_digest_replaces_the_tag_keeping_the_flow_style(odd: Path):
    edit = set_image(odd, "staging", None, DIGEST)
    assert changed_lines(edit.before, edit.after) == [
        "-    image: { tag: '1.4.3' }   # bumped by the release pipeline",
        f"+    image: {{digest: {DIGEST}}}   # bumped by the release pipeline",
    ]


def test_block_style_images_change_line_by_line(example: Path):
    edit = set_image(example, "prod", None, DIGEST)  # prod writes `image:` on its own line, digest below
    assert changed_lines(edit.before, edit.after) == [
        "-    digest: sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        f"+    digest: {DIGEST}",
    ]
    both = set_image(example, "prod", "2.0.0", DIGEST)
    assert changed_lines(both.before, both.after) == [
        "-    digest: sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        f"+    digest: {DIGEST}",
        '+    tag: "2.0.0"',
    ]


def test_an_environment_without_image_gets_one_line(example: Path):
    dev = example / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace('  image: {tag: "1.5.0-rc.2"}\n', ""))
    edit = set_image(example, "dev", "1.5.0", None)
    assert changed_lines(edit.before, edit.after) == ['+  image: {tag: "1.5.0"}']


def test_an_inherited_tag_is_removed_explicitly(example: Path):
    (example / "environments/qa.yaml").write_text(
        "apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: qa\nspec:\n  extends: staging\n"
        "  namespace: shop-qa  # its own, with values sealed for it\n"
        "  sealedSecrets:\n    shop-django:\n      encryptedData: {DJANGO_SECRET_KEY: AgBq, DATABASE_URL: AgCq, CELERY_BROKER_URL: AgDq}\n"
    )
    edit = set_image(example, "qa", None, DIGEST)
    write_edit(example, edit)
    assert changed_lines(edit.before, edit.after) == [f"+  image: {{digest: {DIGEST}, tag: null}}"]
    qa = compile_project(example).environments["qa"]
    assert {
        c["image"]
        for o in qa.objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    } == {f"ghcr.io/acme/shop@{DIGEST}"}


def test_promote_copies_tag_and_digest(example: Path):
    edit = promote(example, "prod", "staging")
    assert changed_lines(edit.before, edit.after) == [
        '-  image: {tag: "1.4.3"}',
        "+  image: {digest: sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945}",
    ]
    assert yaml.safe_load(edit.after)["spec"]["image"] == {
        "digest": "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
    }


def test_cli_rebuilds_and_a_refused_change_is_put_back(example: Path):
    assert run_kompile("build", "--root", str(example)).returncode == 0
    done = run_kompile("set-image", "staging", "--tag", "1.4.4", "--root", str(example))
    assert done.returncode == 0, done.stderr
    assert run_kompile("check", "--root", str(example)).returncode == 0  # rebuilt
    twice = run_kompile("set-image", "staging", "--tag", "1.4.4", "--root", str(example))
    assert twice.returncode == 0 and "nothing changed" in twice.stdout
    prod = (example / "environments/prod.yaml").read_bytes()
    refused = run_kompile(
        "promote", "staging", "prod", "--root", str(example)
    )  # a tag is not enough for production
    assert refused.returncode == 2 and "K501" in refused.stderr and "back as it was" in refused.stderr
    assert (example / "environments/prod.yaml").read_bytes() == prod
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_bad_references_and_names(example: Path):
    for tag, digest, code in (
        ("latest", None, Code.LATEST_TAG),
        ("1.0 beta", None, Code.INVALID_VALUE),
        (None, "sha256:xyz", Code.INVALID_VALUE),
        (None, None, Code.INVALID_VALUE),
    ):
        with pytest.raises(KompileError) as caught:
            set_image(example, "dev", tag, digest)
        assert caught.value.diagnostics[0].code is code
    with pytest.raises(KompileError) as caught:
        promote(example, "dev", "qa")
    assert caught.value.diagnostics[0].code is Code.UNKNOWN_ENVIRONMENT


def test_promote_into_an_odd_file_changes_only_the_image_line_and_twice_nothing(odd: Path):
    before = (odd / "environments/staging.yaml").read_bytes()
    edit = promote(odd, "prod", "staging")
    write_edit(odd, edit)
    after = (odd / "environments/staging.yaml").read_bytes()
    diff = [
        (a, b)
        for a, b in zip(before.splitlines(keepends=True), after.splitlines(keepends=True), strict=True)
        if a != b
    ]
    assert diff == [
        (
            b"    image: { tag: '1.4.3' }   # bumped by the release pipeline\n",
            b"    image: {digest: sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945}"
            b"   # bumped by the release pipeline\n",
        )
    ]
    assert not promote(odd, "prod", "staging").changed
    assert (odd / "environments/staging.yaml").read_bytes() == after
