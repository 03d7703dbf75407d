"""Hostile inputs that cannot be files in a case folder: FIFOs, the environment kompile runs in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError

from conftest import run_kompile


def test_a_fifo_is_refused_without_blocking(example: Path):
    fifo = example / "secrets/dev/pipe.yaml"
    os.mkfifo(fifo)
    dev = example / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("secrets/dev/shop-django.yaml", "secrets/dev/pipe.yaml"))
    with pytest.raises(KompileError) as caught:
        compile_project(example)  # opening a FIFO for reading would wait forever
    assert [(d.code, d.span.path, d.span.line) for d in caught.value.diagnostics] == [
        (Code.UNREADABLE, "environments/dev.yaml", 20)
    ]


def build_in(root: Path, env: dict[str, str]) -> dict[str, bytes]:
    result = subprocess.run(
        [sys.executable, "-m", "kompile", "build", "--root", str(root)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # kompile's local cache holds this checkout's file identities (inodes, times): never committed, not output.
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".kompile-cache" not in p.parts
    }


def test_nothing_from_the_environment_reaches_the_output(tmp_path: Path):
    from conftest import copy_example

    plain = build_in(copy_example(tmp_path / "a"), {"PATH": os.environ["PATH"]})
    noisy = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "elsewhere"),
        "USER": "mallory",
        "LANG": "tr_TR.UTF-8",
        "LC_ALL": "tr_TR.UTF-8",
        "TZ": "Pacific/Kiritimati",
        "PYTHONHASHSEED": "12345",
        "KUBECONFIG": "/etc/shadow",
        "DJANGO_SECRET_KEY": "leak-me-if-you-can",
        "GITHUB_TOKEN": "ghp_" + "x" * 36,
        "KOMPILE_DEBUG": "1",
    }
    other = build_in(copy_example(tmp_path / "b"), noisy)
    assert other == plain
    everything = b"".join(other.values())
    for value in ("mallory", "leak-me-if-you-can", "ghp_", str(tmp_path), "Kiritimati"):
        assert value.encode() not in everything


# ---------------------------------------------------------------------------------------------
# Paths: nothing read, written, renamed or deleted outside the repo or through a link, whatever the
# manifest, the output folders or the temporary files hold.


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<other>")
        for p in sorted(root.rglob("*"))
    }


def built(tmp_path: Path) -> Path:
    from conftest import copy_example

    root = copy_example(tmp_path / "repo")
    assert run_kompile("build", "--root", str(root)).returncode == 0
    return root


@pytest.mark.parametrize(
    "entry",
    [
        "../outside.txt",
        "/tmp/kompile-victim.txt",
        "overlays/../../outside.txt",
        "overlays//dev/x.yaml",
        "overlays/./dev/x.yaml",
        "environments/app.yaml",
        "overlays",
        "overlays/dev/..",
        "overlays/dev/.",
        "bases/..",
    ],
)
@pytest.mark.parametrize("first", [False, True], ids=["listed-last", "listed-first"])
def test_a_forged_manifest_makes_kompile_refuse_never_delete(tmp_path: Path, entry: str, first: bool):
    import hashlib
    import json

    root = built(tmp_path)
    victim = tmp_path / "outside.txt"
    victim.write_text("keep me\n")
    manifest = root / ".kompile-manifest.json"
    body = json.loads(manifest.read_text())
    forged = {entry: hashlib.sha256(victim.read_bytes()).hexdigest()}
    # Listed first or last: the usual listing is checked as one text, whose ends are special.
    body["files"] = {**forged, **body["files"]} if first else {**body["files"], **forged}
    manifest.write_text(json.dumps(body))
    before = snapshot(root)
    for command in (["build"], ["check"], ["check", "--full"]):  # (diff reads the overlays, not the manifest)
        result = run_kompile(*command, "--root", str(root))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "error[K703]" in result.stderr and ".kompile-manifest.json" in result.stderr, result.stderr
    assert victim.read_text() == "keep me\n"
    assert snapshot(root) == before


def test_a_forged_manifest_entry_a_thousand_folders_deep_is_refused_not_a_crash(tmp_path: Path):
    """A path that passes the manifest's checks but is nested deeper than any folder kompile writes: the
    build refuses it with exit 2 (the listing of what is on disk does not recurse through its folders)."""
    import json

    root = built(tmp_path)
    manifest = root / ".kompile-manifest.json"
    body = json.loads(manifest.read_text())
    body["files"]["overlays/" + "/".join(["a"] * 1500) + "/x.yaml"] = "0" * 64
    manifest.write_text(json.dumps(body))
    before = snapshot(root)
    result = run_kompile("build", "--root", str(root))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert snapshot(root) == before


def test_a_symlink_in_an_output_path_is_never_written_through(tmp_path: Path):
    root = built(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "overlays/dev/patches").rename(root / "moved")
    (root / "overlays/dev/patches").symlink_to(outside, target_is_directory=True)
    spec = root / "environments/dev.yaml"
    spec.write_text(spec.read_text().replace("replicas: 1}", "replicas: 2}", 1))
    result = run_kompile("build", "--root", str(root))
    assert result.returncode == 2 and "error[K701]" in result.stderr and "symbolic link" in result.stderr, (
        result.stderr
    )
    assert list(outside.iterdir()) == []


def test_an_obstacle_where_a_folder_belongs_stops_the_build_before_anything_changes(tmp_path: Path):
    from conftest import copy_example

    root = copy_example(tmp_path / "repo")
    (root / "overlays").mkdir()
    (root / "overlays/dev").write_text("not a folder\n")
    before = snapshot(root)
    result = run_kompile("build", "--root", str(root))
    assert result.returncode == 2 and "overlays/dev" in result.stderr and "error[K701]" in result.stderr, (
        result.stderr
    )
    assert snapshot(root) == before


def test_a_planted_link_at_the_temporary_name_is_not_written_through(tmp_path: Path, monkeypatch):
    """Temporary files are created exclusively (O_EXCL, O_NOFOLLOW): a link waiting at the name makes the
    build refuse; the link's target is untouched and nothing visible changes."""
    import secrets

    from kompile.output.write import write_tree

    from conftest import copy_example

    root = copy_example(tmp_path / "repo")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (root / "bases/shop").mkdir(parents=True)
    # (The name is a random half drawn once per run, then a count: the first file staged is in bases/.)
    (root / "bases/shop/.kompile-0000000000000001.tmp").symlink_to(victim)
    monkeypatch.setattr(secrets, "token_hex", lambda n: "0" * (2 * n))
    output = compile_project(root)
    with pytest.raises(KompileError) as caught:
        write_tree(root, output.files, output.owned, output.inputs)
    assert {d.code for d in caught.value.diagnostics} == {Code.WRITE}
    assert victim.read_text() == "keep me\n"
    assert not (root / ".kompile-manifest.json").exists()
    assert sorted(p.name for p in (root / "bases/shop").iterdir()) == [".kompile-0000000000000001.tmp"]


def test_a_full_disk_while_staging_changes_nothing_visible(tmp_path: Path, monkeypatch):
    import errno

    from kompile.output.write import write_tree

    from conftest import copy_example

    root = copy_example(tmp_path / "repo")
    output = compile_project(root)
    write_tree(root, output.files, output.owned, output.inputs)
    spec = root / "environments/app.yaml"
    spec.write_text(spec.read_text().replace("--workers=3", "--workers=4"))
    before = snapshot(root)
    output = compile_project(root)
    real_write, calls = os.write, []

    def failing_write(fd, data):
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(KompileError) as caught:
        write_tree(root, output.files, output.owned, output.inputs)
    monkeypatch.undo()
    assert [d.code for d in caught.value.diagnostics] == [Code.WRITE]
    assert "No space left" in caught.value.diagnostics[0].message
    assert snapshot(root) == before  # no temporary file left, the manifest as it was


def test_committed_output_that_is_a_link_or_damaged_is_reported_not_followed(tmp_path: Path):
    root = built(tmp_path)
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: hunter2\n")
    target = root / "overlays/dev/kustomization.yaml"
    target.unlink()
    target.symlink_to(secret)
    check = run_kompile("check", "--full", "--root", str(root))
    assert check.returncode == 1 and "overlays/dev/kustomization.yaml" in check.stdout, (
        check.stdout + check.stderr
    )
    diff = run_kompile("diff", "--root", str(root))
    assert (
        diff.returncode == 2 and "error[K703]" in diff.stderr and "hunter2" not in diff.stdout + diff.stderr
    )
    # Damage: not YAML, not a kustomization, an alias bomb. Each is a positioned K703.
    for text in (
        "resources: [\n",
        "resources: 5\n",
        "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        + "".join(
            f"c{i}: &c{i} [" + ", ".join([f"*{'b' if i == 0 else f'c{i - 1}'}"] * 10) + "]\n"
            for i in range(8)
        ),
    ):
        target.unlink()
        target.write_text(text)
        diff = run_kompile("diff", "--root", str(root))
        assert (
            diff.returncode == 2
            and "error[K703]" in diff.stderr
            and "overlays/dev/kustomization.yaml" in diff.stderr
        ), diff.stderr
        assert "Traceback" not in diff.stderr


def test_diff_base_with_links_in_the_revision(tmp_path: Path):
    """Links in an older revision, absolute or relative, are written as links and never followed."""
    root = built(tmp_path)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    git = ["git", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / "docs").mkdir()
    (root / "docs/passwd").symlink_to("/etc/passwd")
    (root / "docs/up").symlink_to("../../..", target_is_directory=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "links"], check=True, env=env)
    spec = root / "environments/dev.yaml"
    spec.write_text(spec.read_text().replace("replicas: 1}", "replicas: 2}", 1))
    result = run_kompile("diff", "--base", "HEAD", "--root", str(root))
    assert result.returncode == 1, result.stderr
    assert "dev" in result.stdout and "Traceback" not in result.stderr
    # A spec that was a link in the base revision is reported, at that revision.
    (root / "environments/evil.yaml").symlink_to("/etc/passwd")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "evil"], check=True, env=env)
    (root / "environments/evil.yaml").unlink()
    result = run_kompile("diff", "--base", "HEAD", "--root", str(root))
    assert result.returncode == 2 and "at HEAD" in result.stderr and "symbolic link" in result.stderr, (
        result.stderr
    )


def test_init_never_writes_through_a_link(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "environments").symlink_to(outside, target_is_directory=True)
    result = run_kompile("init", "--root", str(root))
    assert result.returncode == 2 and "symbolic link" in result.stderr, result.stderr
    assert list(outside.iterdir()) == []
    (root / "environments").unlink()
    (root / "kompile.schema.json").symlink_to(outside / "schema.json")
    result = run_kompile("init", "--root", str(root))
    assert result.returncode == 2 and not (outside / "schema.json").exists(), result.stderr


def test_a_file_system_error_is_a_clear_error_not_a_bug(tmp_path: Path):
    result = run_kompile("schema", "-o", str(tmp_path / "nonexistent" / "x.json"))
    assert result.returncode == 2 and "cannot write" in result.stderr and "bug" not in result.stderr, (
        result.stderr
    )


@pytest.mark.kubectl
def test_kustomize_builds_exactly_what_the_gate_checked_for_hostile_kinds(tmp_path: Path):
    """Lists, custom kinds with pod templates and cluster-scoped kinds (opted out): what kubectl kustomize
    emits is what kompile's model holds, so the gate saw what the cluster gets."""
    from test_kustomize import object_differences

    from conftest import copy_example, kustomize_build, write_files

    root = copy_example(tmp_path / "repo")
    (root / "k8s").mkdir()
    (root / "k8s/extras.yaml").write_text(EXTRAS)
    app = root / "environments/app.yaml"
    app.write_text(
        app.read_text()
        + "  allowKinds:\n"
        + "".join(
            f"    - {{group: {g}, kind: {k}}}\n"
            for g, k in (
                ("argoproj.io", "Rollout"),
                ("keda.sh", "ScaledJob"),
                ("scheduling.k8s.io", "PriorityClass"),
            )
        )
    )
    dev = root / "environments/dev.yaml"
    dev.write_text(
        dev.read_text() + "  extraResources: [k8s/extras.yaml]\n  security:\n    allow:\n"
        "      - {rule: cluster-scoped, object: PriorityClass/shop-low, reason: the platform team asked for it}\n"
        "      - {rule: gitops-delegation, object: ScaledJob/shop-batch, reason: KEDA runs the batch jobs}\n"
    )
    output = compile_project(root)
    write_files(root, output.files)
    built_objects = [doc for doc in yaml.safe_load_all(kustomize_build(root / "overlays/dev")) if doc]
    assert not object_differences(output.environments["dev"].objects, built_objects, "kubectl kustomize")


HARDENED_POD = """
        automountServiceAccountToken: false
        securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
        containers:
          - name: main
            image: ghcr.io/acme/shop:1.0
            securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true}
            resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 100m, memory: 64Mi}}
"""
EXTRAS = f"""\
apiVersion: v1
kind: List
items:
  - apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata: {{name: shop-canary}}
    spec:
      selector: {{matchLabels: {{app: canary}}}}
      template:
        metadata: {{labels: {{app: canary}}}}
        spec:{HARDENED_POD.replace(chr(10) + "        ", chr(10) + "          ")}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {{name: shop-batch}}
spec:
  jobTargetRef:
    template:
      spec:{HARDENED_POD.replace(chr(10) + "        ", chr(10) + "        ")}
  triggers: [{{type: cron, metadata: {{timezone: UTC, start: "0 1 * * *", end: "0 2 * * *", desiredReplicas: "1"}}}}]
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: shop-low}}
value: 10
"""


# Inputs small on disk that would cost the CI machine minutes or gigabytes: each is refused by a limit
# with its own message, before the expensive step.


def _codes(root: Path) -> list[str]:
    with pytest.raises(KompileError) as caught:
        compile_project(root)
    return [d.code.value for d in caught.value.diagnostics]


def test_too_many_components_is_refused(example: Path):
    app = example / "environments" / "app.yaml"
    workers = "".join(
        f"    w{i}: {{type: worker, command: [x], probes: {{exec: {{command: [x]}}}}, resources: "
        f"{{requests: {{cpu: 1m, memory: 1Mi}}, limits: {{cpu: 1m, memory: 1Mi}}}}}}\n"
        for i in range(101)
    )
    app.write_text(app.read_text().replace("  components:\n", "  components:\n" + workers))
    assert "K405" in _codes(example)


def test_too_many_extra_objects_is_refused(example: Path):
    (example / "k8s").mkdir()
    (example / "k8s" / "many.yaml").write_text(
        "".join(f"---\n{{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}\n" for i in range(1001))
    )
    dev = example / "environments" / "dev.yaml"
    dev.write_text(dev.read_text() + "  extraResources: [k8s/many.yaml]\n")
    assert _codes(example) == ["K406"]


def test_a_patch_that_nests_itself_is_refused_not_a_crash(example: Path):
    ops = [
        "  - {op: add, path: /metadata/annotations, value: {}}",
        "  - {op: add, path: /metadata/annotations/x, value: {}}",
    ]
    ops += ["  - {op: copy, from: /metadata/annotations/x, path: /metadata/annotations/x/x}"] * 500
    dev = example / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text()
        + "  patches:\n    - target: {kind: ServiceAccount, name: shop}\n      patch:\n"
        + "".join(f"    {op}\n" for op in ops)
    )
    assert _codes(example) == ["K407"]


def test_check_recompiles_so_a_forged_manifest_cannot_vouch_for_hand_written_output(example: Path):
    """A pull request that adds a privileged pod to an overlay and puts the file's hash into the manifest:
    `kompile check` recompiles (only `--fast` trusts the record) and lists the file."""
    import hashlib
    import json

    assert run_kompile("build", "--root", str(example)).returncode == 0
    target = example / "overlays" / "dev" / "namespace-shop-dev.yaml"
    target.write_text(
        target.read_text() + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: pwn}\n"
        "spec: {hostPID: true, containers: [{name: x, image: busybox, securityContext: {privileged: true}}]}\n"
    )
    manifest_path = example / ".kompile-manifest" / "dev.json"  # (dev's record of its files)
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["files"]["overlays/dev/namespace-shop-dev.yaml"]
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest["files"]["overlays/dev/namespace-shop-dev.yaml"] = (
        [digest] if isinstance(entry, list) else digest
    )
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    result = run_kompile("check", "--root", str(example))
    assert result.returncode == 1 and "overlays/dev/namespace-shop-dev.yaml" in result.stdout, (
        result.stdout + result.stderr
    )


def test_a_gitops_source_other_than_this_repository_is_said_every_time(example: Path):
    subprocess.run(["git", "init", "-q", str(example)], check=True)
    subprocess.run(
        ["git", "-C", str(example), "remote", "add", "origin", "git@github.com:acme/shop-deploy.git"],
        check=True,
    )
    quiet = run_kompile("validate", "--root", str(example))
    assert quiet.returncode == 0 and "not a remote" not in quiet.stderr, (
        quiet.stderr
    )  # the same repo, written as ssh
    app = example / "environments" / "app.yaml"
    app.write_text(
        app.read_text()
        .replace("https://github.com/acme/shop-deploy.git", "https://github.com/attacker/payload.git")
        .replace("    revision: main\n", "    revision: main\n    path: handwritten\n")
    )
    result = run_kompile("validate", "--root", str(example))
    assert result.returncode == 0, result.stderr
    assert "gitops.repoURL https://github.com/attacker/payload.git is not a remote" in result.stderr, (
        result.stderr
    )
    assert "gitops.path is 'handwritten'" in result.stderr, result.stderr


# ---------------------------------------------------------------------------------------------
# Cost: what 1 MiB of hostile input can make kompile do (benchmarks/adversarial.py measures it)


def test_thousands_of_problems_in_one_file_read_it_once(example: Path, monkeypatch):
    """Each printed problem shows its source line; the file is read and split once for all of them, not
    once per problem (20,000 merge keys in one file took 20 s to report)."""
    from kompile.cli import report

    dev = example / "environments" / "dev.yaml"
    dev.write_text(
        "a0: &a0 {k: v}\n" + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}, k{i}: v}}\n" for i in range(1, 300))
    )
    codes = _codes(example)
    assert codes.count("K105") == 299
    reads = []
    rows = report._source_rows
    monkeypatch.setattr(report, "_source_rows", lambda root, path: reads.append(path) or rows(root, path))
    with pytest.raises(KompileError) as caught:
        compile_project(example)
    sources: dict = {}
    shown = [report.format_diagnostic(d, example, sources=sources) for d in caught.value.diagnostics]
    assert reads == ["environments/dev.yaml"]
    assert "a1: &a1 {<<: *a0, k1: v}" in shown[0] and "a2: &a2 {<<: *a1" in shown[1]


def _dev_patch(
    example: Path, operations: list[str], target: str = "{kind: ServiceAccount, name: shop}"
) -> None:
    dev = example / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text()
        + f"  patches:\n    - target: {target}\n      patch:\n"
        + "".join(f"      - {op}\n" for op in operations)
    )


def test_a_json_patch_that_copies_and_removes_again_and_again_is_refused(example: Path):
    """Each copy is real work though the object stays small: what a patch's operations write adds up to at
    most what one object holds (2,000 values copied 60 times is 120,000)."""
    values = ", ".join(f"a{i}: v" for i in range(2000))
    cycle = ["{op: copy, from: /spec, path: /x}", "{op: remove, path: /x}"]
    _dev_patch(example, ["{op: add, path: /spec, value: {" + values + "}}", *cycle * 60])
    with pytest.raises(KompileError) as caught:
        compile_project(example)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.PATCH and "write more than 100000 values" in diagnostic.message
    assert diagnostic.span.path == "environments/dev.yaml"


def test_a_long_json_patch_applies_in_place_and_leaves_the_spec_alone(example: Path):
    """Thousands of operations on one object, and on every object a target matches: each gets exactly
    the patch's values (the operations' values are copied in, never shared with the spec's model)."""
    _dev_patch(
        example,
        ["{op: add, path: /metadata/annotations, value: {}}"]
        + [f"{{op: add, path: /metadata/annotations/a{i}, value: v{i}}}" for i in range(3000)]
        + [
            "{op: add, path: /metadata/annotations/z, value: {k: v}}",
            "{op: add, path: /metadata/annotations/z/k2, value: w}",
        ],
        target="{kind: Deployment}",
    )
    with pytest.raises(KompileError) as caught:  # a mapping is no annotation: the shape check still runs
        compile_project(example)
    assert {d.code for d in caught.value.diagnostics} == {Code.PATCH}
    dev = example / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text()
        .replace("      - {op: add, path: /metadata/annotations/z, value: {k: v}}\n", "")
        .replace("      - {op: add, path: /metadata/annotations/z/k2, value: w}\n", "")
    )
    project = compile_project(example)
    deployments = [o for o in project.environments["dev"].objects if o["kind"] == "Deployment"]
    assert len(deployments) == 3
    for deployment in deployments:
        annotations = deployment["metadata"]["annotations"]
        assert len(annotations) == 3000 and annotations["a2999"] == "v2999"


def test_a_string_of_a_quarter_of_a_million_schemes_is_scanned_without_copying_each_rest():
    """`a://a://...`: each scheme's user information is found by position; no copy of up to 4,096
    characters per scheme (a second per string, and decompressed data holds as many strings)."""
    from kompile.policy import credentials

    class Counted(str):
        slices = 0

        def __getitem__(self, key):
            Counted.slices += 1
            return str.__getitem__(self, key)

    text = Counted("a://" * 250_000 + " postgres://user:hunter2@db/x")
    assert credentials._url_password(text)
    assert Counted.slices == 0
    assert not credentials._url_password(
        "a://" * 1000 + " https://h:80/a@b http://[::1]:80@x redis://:$(PW)@h"
    )


def test_gzip_is_inflated_only_as_far_as_its_author_wrote(monkeypatch):
    """A few KiB of gzip inflate to a MiB, and 1 MiB of them to gigabytes: binaryData and base64 runs are
    inflated to at most twice the length of the text that holds them, and what would inflate further is
    refused (unread, it could hide anything), while what is there is still found."""
    import base64
    import gzip
    import zlib

    from kompile.policy import credentials, plaintext

    asked = []

    class Counting:
        def __init__(self, inflater):
            self.inflater = inflater

        def decompress(self, data, max_length=0):
            out = self.inflater.decompress(data, max_length)
            asked.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inflater, name)

    real = zlib.decompressobj
    monkeypatch.setattr(credentials.zlib, "decompressobj", lambda **kw: Counting(real(**kw)))
    bomb = base64.b64encode(gzip.compress(b"a://" * (1 << 18), mtime=0)).decode()
    leak = base64.b64encode(
        gzip.compress(b"DATABASE_URL=postgres://u:hunter2@db/x\n" + b"#" * 50, mtime=0)
    ).decode()
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": {"a": bomb}}
    assert plaintext.findings(config) == [("binaryData.a", credentials.TOO_COMPRESSED)]
    assert 0 < sum(asked) <= 2 * len(bomb) + 1
    asked.clear()
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"runs": " ".join([bomb] * 20)},
    }
    assert [what for _, what in plaintext.findings(config)] == [
        f"{credentials.TOO_COMPRESSED}, base64-encoded"
    ]
    assert 0 < sum(asked) <= 2 * len(bomb) + 1  # the first run is refused: the others are never inflated
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": {"b": leak}}
    assert [where for where, _ in plaintext.findings(config)] == ["binaryData.b"]


def _app_with_workers(example: Path, count: int, extra: str = "") -> Path:
    app = example / "environments" / "app.yaml"
    workers = "".join(
        f"    w{i}: {{type: worker, command: [x], probes: {{exec: {{command: [x]}}}}, resources: "
        f"{{requests: {{cpu: 1m, memory: 1Mi}}, limits: {{cpu: 1m, memory: 1Mi}}}}{extra}}}\n"
        for i in range(count)
    )
    app.write_text(app.read_text().replace("  components:\n", "  components:\n" + workers))
    return app


def test_a_sidecar_copied_into_every_component_is_bounded_where_it_multiplies(example: Path):
    """One sidecar's 2,000 env values in each of 97 components' pods is 600,000 values per environment:
    refused at the component that passes the bound (K106), before anything is checked or emitted."""
    app = _app_with_workers(example, 97, ", sidecars: [proxy]")
    env = "".join(f"        S{i}: v{i}\n" for i in range(2000))
    app.write_text(
        app.read_text() + "  sidecars:\n    - name: proxy\n      image: proxy@sha256:" + "a" * 64 + "\n"
        "      resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n"
        f"      env:\n{env}"
    )
    with pytest.raises(KompileError) as caught:
        compile_project(example)
    bounded = [d for d in caught.value.diagnostics if d.code is Code.TOO_COMPLEX]
    assert bounded and all("more than 100000 values" in d.message for d in bounded)
    assert {d.span.path for d in bounded} == {"environments/app.yaml"}
    assert all(d.span.line > 10 for d in bounded)  # a component's line, not the file


def test_a_patch_that_every_deployment_takes_is_bounded(example: Path):
    app = _app_with_workers(example, 40)
    annotations = "".join(f"            a{i}: v\n" for i in range(5000))
    app.write_text(
        app.read_text()
        + "  patches:\n    - target: {kind: Deployment}\n      patch:\n        metadata:\n          annotations:\n"
        + annotations
    )
    with pytest.raises(KompileError) as caught:
        compile_project(example)
    bounded = [d for d in caught.value.diagnostics if d.code is Code.TOO_COMPLEX]
    assert bounded and all(d.message.startswith("this patch makes") for d in bounded)


def test_a_large_map_finds_each_key_position_through_an_index():
    """Merging asks for every key's position: a scan of the keys per key was quadratic."""
    from kompile import source

    text = "env:\n" + "".join(f"  K{i}: v{i}\n" for i in range(5000))
    env = source.parse_document(text, "environments/dev.yaml")["env"]
    assert env.key_span("K4999").line == 5001 and env.value_span("K0").col == 7
    assert env._index is not None and len(env._index) == 5000
    assert env.key_span("missing") == env.span


def test_thousands_of_hosts_are_checked_against_allowed_hosts_each_by_its_own_length(example: Path):
    """Every host not in DJANGO_ALLOWED_HOSTS is named, with the setting shown shortened: a message per host
    holding the whole setting made 30,000 hosts gigabytes of messages."""
    allowed = ",".join(f"a{i}.example.org" for i in range(300)) + ",.example.net,shop.dev.example.com"
    hosts = [f"h{i}.example.com" for i in range(300)] + ["x.example.net", "example.net", "a7.example.org"]
    dev = example / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text()
        .replace("DJANGO_ALLOWED_HOSTS: shop.dev.example.com", f"DJANGO_ALLOWED_HOSTS: {allowed!r}")
        .replace(
            "    host: shop.dev.example.com\n",
            f"    host: shop.dev.example.com\n    hosts: [{', '.join(hosts)}]\n",
        )
    )
    with pytest.raises(KompileError) as caught:
        compile_project(example)
    refused = [d for d in caught.value.diagnostics if "DJANGO_ALLOWED_HOSTS (" in d.message]
    assert sorted(d.message.split()[1] for d in refused) == sorted(hosts[:300])
    assert all(len(d.message) < 300 for d in refused)
