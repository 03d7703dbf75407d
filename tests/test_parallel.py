"""Large repos compile on every core; the result must not depend on it, and errors must still be errors."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.parallel import PARALLEL_MIN

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from fleet import environment_name, generate_fleet  # noqa: E402

COUNT = PARALLEL_MIN + 20
# A fleet of 220 environments compiled twice: the full suite's, not the fast loop's.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    return generate_fleet(tmp_path_factory.mktemp("fleet"), COUNT)


PREVIEW = """apiVersion: kompile.dev/v1alpha1
kind: Environment
metadata:
  name: preview
spec:
  extends: staging
  tier: preview
  image: {tag: template}
  pullRequests:
    github: {owner: acme, repo: shop, tokenSecret: github-token}
    host: pr-{number}.preview.example.com
    imageTag: pr-{number}
  sealedSecrets: null
  externalSecrets:
    store: {name: previews, kind: ClusterSecretStore}
    secrets:
      shop-django: {key: shop-preview-django}
"""
# The GitOps objects each way: workers make each environment's own files, the parent those of them all.
GITOPS = {
    "argocd": ("tool: argocd", "tool: argocd"),
    "argocd-application-set": ("tool: argocd", "tool: argocd\n    argocd: {applicationSet: true}"),
    "flux": ("tool: argocd", "tool: flux"),
    "flux-branches": ("tool: argocd", "tool: flux\n    hydration: {mode: branches}"),
    "argocd-rendered": ("tool: argocd", "tool: argocd\n    hydration: {mode: rendered}"),
}


@pytest.mark.parametrize("gitops", sorted(GITOPS))
def test_parallel_and_sequential_compilation_give_the_same_bytes(fleet: Path, tmp_path: Path, gitops: str):
    import shutil

    root = tmp_path / "fleet"
    shutil.copytree(fleet, root)
    _edit(root, "environments/app.yaml", *GITOPS[gitops])
    if gitops.startswith("argocd"):  # (a template of previews, which Flux has no objects for)
        for spec in (root / "environments").glob("pr-*.yaml"):  # (pr-<number> is a preview's name)
            spec.with_name("env" + spec.name[2:]).write_text(
                spec.read_text().replace("name: pr-", "name: env-")
            )
            spec.unlink()
        (root / "environments" / "preview.yaml").write_text(PREVIEW)
    parallel = compile_project(root, keep_objects=False)
    sequential = compile_project(root, keep_objects=True)
    assert not parallel.environments and len(parallel.names) == len(sequential.names) > COUNT - 1
    assert parallel.names == sequential.names
    assert parallel.files == sequential.files
    folder = "gitops/flux/" if gitops.startswith("flux") else "gitops/argocd/"
    assert sum(path.startswith(folder) for path in parallel.files) > (3 if "set" in gitops else COUNT)


def test_an_error_in_a_worker_is_reported(tmp_path: Path):
    root = generate_fleet(tmp_path / "fleet", COUNT)
    broken = root / "environments" / f"{environment_name(COUNT - 10)}.yaml"
    broken.write_text(
        broken.read_text() + "  patches:\n    - patch: {kind: Deployment, metadata: {name: no-such-thing}}\n"
    )
    with pytest.raises(KompileError) as caught:
        compile_project(root, keep_objects=False)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.PATCH and diagnostic.span.path == f"environments/{broken.name}"


def _compiled_both_ways(root: Path):
    """(parallel, sequential): each an Output, or the KompileError's diagnostics."""
    outcomes = []
    for keep_objects in (False, True):  # without objects, the workers check each environment they compile
        try:
            outcomes.append(compile_project(root, keep_objects=keep_objects))
        except KompileError as exc:
            outcomes.append(list(exc.diagnostics))
    return outcomes


def test_checked_in_workers_the_inputs_and_index_are_those_of_checking_first(fleet: Path, tmp_path: Path):
    """The workers check the environments they compile: every file a check read (the sealed secrets dev
    and prod name) is an input of the build, and the index records what checking everything first records."""
    import shutil

    root = tmp_path / "fleet"
    shutil.copytree(fleet, root)
    parallel, sequential = _compiled_both_ways(root)
    assert "secrets/dev/shop-django.yaml" in parallel.inputs
    assert parallel.inputs == sequential.inputs
    assert parallel.project.identities == sequential.project.identities
    first, second = parallel.remember(), sequential.remember()
    assert first is not None and second is not None
    assert first.environments == second.environments and first.app_reads == second.app_reads
    assert {rel: sha for rel, (_, sha) in first.files.items()} == {
        rel: sha for rel, (_, sha) in second.files.items()
    }


def _edit(root: Path, rel: str, old: str, new: str | None) -> None:
    """old replaced by new once; new None cuts the file at old."""
    path = root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1) if new is not None else text[: text.index(old)])


PROBLEMS = {
    # one environment's own file
    "own-file": [
        (f"environments/{environment_name(7)}.yaml", "    worker: {replicas: 1}", "    worker: {replcas: 1}")
    ],
    # a file others extend: environments that inherit staging's sealed values (in different chunks) are
    # named in one problem at staging's file
    "shared-file": [
        (f"environments/{environment_name(4)}.yaml", "  sealedSecrets:", None),
        (f"environments/{environment_name(120)}.yaml", "  sealedSecrets:", None),
    ],
    # the rules across environments: two claim one namespace on one cluster
    "across": [
        (
            f"environments/{environment_name(3)}.yaml",
            "  tier: preview\n",
            "  tier: preview\n  namespace: shop-clash\n",
        ),
        (
            f"environments/{environment_name(9)}.yaml",
            "  tier: preview\n",
            "  tier: preview\n  namespace: shop-clash\n",
        ),
    ],
    # problems of both kinds at once, and one of compiling that is never reached
    "several": [
        (
            f"environments/{environment_name(5)}.yaml",
            "    worker: {replicas: 1}",
            "    worker: {replicas: -1}",
        ),
        (
            f"environments/{environment_name(150)}.yaml",
            "    worker: {replicas: 1}",
            "    worker: {replicas: x}",
        ),
        ("environments/staging.yaml", "className: nginx", "className: 7"),
        (
            f"environments/{environment_name(11)}.yaml",
            "  tier: preview\n",
            "  tier: preview\n  patches:\n    - patch: {kind: Deployment, metadata: {name: no-such-thing}}\n",
        ),
    ],
    # the App's own settings: everything is checked first, as usual (and every environment has it)
    # the App's file, found only in each environment's merged settings: named with every environment
    "app-egress": [("environments/app.yaml", "        cidr: 10.30.0.0/16", "        cidr: 0.0.0.0/1")],
    "app": [
        (
            "environments/app.yaml",
            "    DJANGO_SETTINGS_MODULE: shop.settings.production\n",
            "    DJANGO_SETTINGS_MODULE: shop.settings.production\n    API_PASSWORD: hunter2hunter2\n",
        )
    ],
}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_checked_in_workers_the_problems_are_those_of_checking_first(fleet: Path, tmp_path: Path, case: str):
    """Every problem, in the same order, whether the environments are checked before compiling or by the
    workers as they compile them."""
    import shutil

    root = tmp_path / "fleet"
    shutil.copytree(fleet, root)
    for rel, old, new in PROBLEMS[case]:
        _edit(root, rel, old, new)
    parallel, sequential = _compiled_both_ways(root)
    assert isinstance(sequential, list) and sequential, "the case must be a problem"
    assert parallel == sequential
    assert not (root / "overlays").exists()


def test_specs_loaded_on_every_core_are_those_loaded_one_by_one(fleet: Path, tmp_path: Path, monkeypatch):
    """Ten thousand specs are parsed on every core: the project (its specs, inputs and identities, in
    order) and every problem (in order) are those of reading them one by one."""
    import shutil

    from kompile.load import project as loading

    root = tmp_path / "fleet"
    shutil.copytree(fleet, root)

    def both():
        outcomes = []
        for workers in (True, False):
            if not workers:
                monkeypatch.setattr(loading, "cores", lambda count: 0)
            try:
                loaded = loading.load_project(root)
                outcomes.append(
                    (
                        [(f.rel, f.kind, f.name, f.doc) for f in (loaded.app, *loaded.environments.values())],
                        list(loaded.inputs.items()),
                        list(loaded.identities.items()),
                    )
                )
            except KompileError as exc:
                outcomes.append([(d.code, d.message, d.span) for d in exc.diagnostics])
            monkeypatch.undo()
        return outcomes

    parallel, sequential = both()
    assert parallel == sequential and len(parallel[0]) == COUNT + 1
    # Problems in several files, in several chunks: a YAML error, an unknown key, a name that is not the
    # file's, a second App.
    _edit(root, f"environments/{environment_name(3)}.yaml", "  tier: preview\n", "  tier: [preview\n")
    _edit(root, f"environments/{environment_name(90)}.yaml", "  tier: preview\n", "  tire: preview\n")
    _edit(root, f"environments/{environment_name(150)}.yaml", "  name: ", "  name: x")
    (root / "environments" / "zz-app.yaml").write_text((root / "environments" / "app.yaml").read_text())
    parallel, sequential = both()
    assert parallel == sequential and len(parallel) == 4


def _loaded_in_a_pool_worker(root: str) -> int:
    from kompile.load.project import load_project

    return len(compile_project(Path(root), keep_objects=False).names) + len(
        load_project(Path(root)).environments
    )


def test_a_caller_s_own_pool_worker_loads_and_compiles_alone(fleet: Path):
    """A daemonic process (a worker of the caller's own pool) may not have children: there, specs load
    and environments compile in the one process."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_loaded_in_a_pool_worker, (str(fleet),)) == 2 * COUNT


def _interrupt_handler(bounds: tuple[int, int]) -> list:
    import signal

    return [signal.getsignal(signal.SIGINT)] * (bounds[1] - bounds[0])


def test_workers_leave_ctrl_c_to_the_parent():
    """A Ctrl-C reaches every process of the terminal's group: the workers ignore it (the parent stops
    them), so it prints one "interrupted", not a traceback per worker."""
    import signal

    from kompile.parallel import in_workers, started

    handlers: list = []
    in_workers(2, (), _interrupt_handler, 40, handlers.append)
    with started(2, (), _interrupt_handler, 40) as results:
        handlers += results()
    assert len(handlers) == 80 and set(handlers) == {signal.SIG_IGN}
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # (the parent's own is left alone)


def _dies_on_its_third_chunk(bounds: tuple[int, int]) -> list:
    import os
    import signal

    if bounds[0] == 2 * (bounds[1] - bounds[0]):  # (the third of equal chunks)
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
    return list(range(*bounds))


@pytest.mark.parametrize("helper", ["in_workers", "started"])
def test_a_worker_killed_stops_the_command_instead_of_hanging_it(helper: str):
    """multiprocessing.Pool replaces a dead worker and never answers the task it held: the command waited
    for ever. Now every pending task fails and the caller gets WorkerLost (an OSError: the CLI says
    "cannot go on", exit 2)."""
    import threading

    from kompile.parallel import WorkerLost, in_workers, started

    taken: list = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            if helper == "in_workers":
                in_workers(2, (), _dies_on_its_third_chunk, 400, taken.append)
            else:
                with started(2, (), _dies_on_its_third_chunk, 400) as results:
                    taken.extend(results())
        except BaseException as exc:
            raised.append(exc)

    waiting = threading.Thread(target=run, daemon=True)  # (a hang fails the test, not the suite)
    waiting.start()
    waiting.join(60)
    assert not waiting.is_alive(), "the command waits for ever for the dead worker's answer"
    assert len(raised) == 1 and isinstance(raised[0], WorkerLost) and "killed by a signal" in str(raised[0])
    assert taken == list(range(len(taken))) and len(taken) < 400  # (in order, up to the lost chunk)


def test_a_build_whose_worker_is_killed_writes_nothing(tmp_path: Path, monkeypatch):
    """A cold build on every core, one worker killed: WorkerLost, and the tree is as it was (what was
    staged is removed), so the next build starts from a clean slate."""
    import os
    import signal

    import kompile.compiler
    from kompile import api
    from kompile.parallel import WorkerLost

    root = generate_fleet(tmp_path / "fleet", COUNT)
    before = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
    check_chunk = kompile.compiler._check_chunk

    def dies_in_the_middle(bounds: tuple[int, int]) -> list:
        if bounds[0] <= COUNT // 2 < bounds[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        return check_chunk(bounds)

    # (Tasks are sent by name; forked workers inherit the replacement.)
    dies_in_the_middle.__module__, dies_in_the_middle.__qualname__ = "kompile.compiler", "_check_chunk"
    monkeypatch.setattr(kompile.compiler, "_check_chunk", dies_in_the_middle)
    with pytest.raises(WorkerLost):  # (a hang here is caught by the tests above, which wait 60 s at most)
        api.build(root)
    assert sorted(str(path.relative_to(root)) for path in root.rglob("*")) == before
    monkeypatch.undo()
    assert api.build(root).plan.added  # (and a build afterwards writes the tree)


KILLED_WORKER = """
import os, signal, sys
import kompile.compiler
from kompile.cli import main

check_chunk = kompile.compiler._check_chunk

def _check_chunk(bounds):
    if bounds[0] <= {middle} < bounds[1]:
        os.kill(os.getpid(), signal.SIGKILL)
    return check_chunk(bounds)

kompile.compiler._check_chunk = _check_chunk
_check_chunk.__module__ = "kompile.compiler"
sys.argv = ["kompile", "build"]
main()
"""


def test_the_cli_says_a_worker_was_killed_and_exits_2(tmp_path: Path):
    import subprocess

    root = generate_fleet(tmp_path / "fleet", COUNT)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER.format(middle=COUNT // 2)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("kompile: cannot go on: a worker process ended before it finished")
    assert "Traceback" not in done.stderr and not (root / "overlays").exists()


def _children() -> set[int]:
    """This process's children that have not been reaped (zombies included)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == me:
                    found.add(int(entry.name))
    return found


def _pid_and(value: object) -> tuple[int, object]:
    return os.getpid(), value


def _raises() -> None:
    raise KompileError([Diagnostic(Code.MANIFEST, "read in the forked process", Span("x.json", 3, 4))])


def _dies() -> tuple[int, str]:
    if os.getpid() != PARENT:
        os._exit(9)  # (before answering: as a process killed while it reads)
    return os.getpid(), "answered here"


def _unpicklable() -> object:
    return (os.getpid(), lambda: None) if os.getpid() != PARENT else (os.getpid(), "answered here")


PARENT = os.getpid()


def test_ahead_answers_from_a_forked_process_and_raises_what_it_raised():
    from kompile.parallel import ahead

    before = _children()
    with ahead(functools.partial(_pid_and, {"key": [1, 2]})) as answer:
        pid, value = answer()
        assert pid != os.getpid() and value == {"key": [1, 2]}
        assert answer() == (pid, value)  # (asked again: the same answer, not a second run)
    with ahead(_raises) as answer, pytest.raises(KompileError) as caught:
        answer()
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == "read in the forked process" and diagnostic.span == Span("x.json", 3, 4)
    assert _children() == before  # (each reaped)


@pytest.mark.parametrize("task", [_dies, _unpicklable])
def test_ahead_runs_the_task_here_when_the_process_cannot_answer(task):
    from kompile.parallel import ahead

    before = _children()
    with ahead(task) as answer:
        assert answer() == (os.getpid(), "answered here")
    assert _children() == before


def _sleeps() -> None:
    time.sleep(60)


def test_leaving_ahead_unanswered_stops_the_process():
    """An error before the answer is asked for (a bad spec, Ctrl-C): the process, which only reads, is
    stopped and reaped at once, not waited for."""
    from kompile.parallel import ahead

    before = _children()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), ahead(_sleeps):
        raise KeyboardInterrupt
    assert time.monotonic() - started < 10 and _children() == before


def test_changes_seen_ahead_of_another_index_are_not_taken(tmp_path: Path, monkeypatch):
    """The forked process read the index at one moment, the parent later: if another build rewrote it
    between the two, what the process saw is dropped and the changes are looked at again."""
    import kompile.index
    from kompile import api
    from kompile.index_file import Changes, changes_since_index, inputs_seen

    monkeypatch.setattr(kompile.index, "RACY_SECONDS", 0)  # (files a moment old are trusted)
    root = generate_fleet(tmp_path / "fleet", 20)
    api.build(root)
    spec = root / "environments" / f"{environment_name(3)}.yaml"
    before = spec.stat().st_mtime_ns
    spec.write_text(spec.read_text() + "\n")
    os.utime(spec, ns=(before + 10**6, before + 10**6))
    real = changes_since_index(root)
    assert real is not None and real.changed == {f"environments/{spec.name}"}
    stale = Changes("0" * 64, real.paths, [], set())  # (what another index said: nothing changed)
    seen = inputs_seen(root, lambda: stale)
    assert seen is not None and seen.changes.changed == real.changed
    assert inputs_seen(root, lambda: real).changes.changed == real.changed


def test_ahead_in_a_process_with_threads_runs_the_task_here():
    """A process forked while another thread holds a lock (an import's) can wait for it for ever, and the
    caller with it: a host process with threads runs the task itself."""
    import threading

    from kompile.parallel import ahead

    release = threading.Event()
    other = threading.Thread(target=release.wait, daemon=True)
    other.start()
    try:
        before = _children()
        with ahead(functools.partial(_pid_and, "x")) as answer:
            assert answer() == (os.getpid(), "x") and _children() == before
    finally:
        release.set()
        other.join()
    with ahead(functools.partial(_pid_and, "x")) as answer:  # (alone again: forked)
        assert answer()[0] != os.getpid()


@pytest.mark.parametrize("asked", [True, False])
def test_ahead_where_sigchld_is_ignored(asked: bool):
    """SIGCHLD ignored (inherited across exec, or a host's choice): the system reaps the process itself,
    and a build must not then fail, after writing, on the wait for it."""
    import signal

    from kompile.parallel import ahead

    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        with ahead(functools.partial(_pid_and, "x")) as answer:
            if asked:
                assert answer()[1] == "x"
            else:
                time.sleep(0.2)  # (the process has answered and gone)
    finally:
        signal.signal(signal.SIGCHLD, previous)


@pytest.mark.parametrize("call", ["fork", "pipe"])
def test_ahead_with_no_process_or_file_to_spare_runs_the_task_here(call: str, monkeypatch):
    """A limit of processes (EAGAIN) or of open files (EMFILE): the task runs in the caller, where it
    made `kompile build --env` stop with "cannot go on"."""
    import errno

    from kompile.parallel import ahead

    def refused(*args):
        raise OSError(errno.EAGAIN if call == "fork" else errno.EMFILE, "refused")

    opened = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, call, refused)
    with ahead(functools.partial(_pid_and, "x")) as answer:
        assert answer() == (os.getpid(), "x")
    assert len(os.listdir("/proc/self/fd")) == opened  # (the pipe closed)
