"""How fast is kompile, measured against the cost floor and against kustomize, in one run.

    python benchmarks/bench.py                    # N = 1000 and 5000: growth, not one point
    python benchmarks/bench.py --large            # and 10000 (about 30 minutes on 2 cores)
    python benchmarks/bench.py --sizes 10 --kustomize-sample 3

For each N it generates N environments from the canonical example (benchmarks/fleet.py) and times,
each as its own process, as a user runs them: `kompile build` into an empty tree, `build` again with
nothing changed, `check` with nothing changed (fast path and the default full recompile), and after
one environment's spec changed: `diff`, and `build --env` of that environment.
Beside them, in the same run: (a) the floor, a process that only parses the same specs with libyaml's
CSafeLoader and emits the same objects with CSafeDumper, and (b) `kubectl kustomize` over a sample of
the overlays, one process each. It prints seconds and the ratios the targets are stated in. The
machine is shared and noisy: compare the ratios, which are measured side by side, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bytecode import compile_bytecode, environment  # noqa: E402

from fleet import EXAMPLE, environment_name, generate_fleet  # noqa: E402

KOMPILE = [sys.executable, "-m", "kompile"]


# Runs a command and prints its wall seconds, its peak RSS and its exit code. A small interpreter of its
# own starts it: the peak RSS of a process forked from this benchmark would count the benchmark's own
# pages (mapped until exec), and the seconds are measured around the command alone.
RSS_PROBE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
)


def timed(command: list[str], expect: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one process."""
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, *command], capture_output=True, text=True, env=_env(), check=True
    )
    seconds, rss, code = result.stdout.split()
    if int(code) not in expect:
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return float(seconds), int(rss)


SETTLE = 30.0  # seconds settle() waits at most (--settle)


def settle() -> None:
    """Flush what was written, then wait (at most SETTLE seconds) until the disk is idle again, where
    Linux says (/proc/pressure/io): a file system still writing back or freeing a hundred thousand files
    creates files several times more slowly. The cold builds and the floor's writes, which a ratio
    compares, each start from this state."""
    os.sync()
    pressure = Path("/proc/pressure/io")
    started = time.monotonic()
    while time.monotonic() - started < SETTLE:
        try:  # some avg10=0.12 avg60=... (percent of the last 10 s)
            busy = float(pressure.read_text().split("avg10=", 1)[1].split()[0])
        except (OSError, IndexError, ValueError):
            return  # no figure here (no such file, or the kernel does not track it): flushed is all
        if busy < 2.0:
            return
        time.sleep(0.5)


def cold_builds(specs: Path, runs: int, scratch: Path | None = None) -> dict:
    """`kompile build` into an empty output tree, and the floor it is compared with, measured in turns:
    each round a cold build, then the floor's parse and emit, then its write. The machine's speed drifts
    over minutes (other tenants, a disk writing back), so a ratio of figures taken minutes apart says
    more about the drift than about kompile; taken in turns, the best of each come from the same
    conditions. Each build builds a fresh copy of the specs with what was written before flushed, and
    nothing is deleted until the benchmark ends: a file system still freeing a deleted tree of a hundred
    thousand files creates files several times more slowly (ten times the system time at 10,000
    environments), which is the machine's cost, not kompile's. Returns the best of each, the largest
    peak RSS, every round's ratio and the first tree built (without scratch: the builds alone)."""
    builds, rss, floors, writes, first = [], 0, [], [], None
    for attempt in range(runs):
        copy = Path(tempfile.mkdtemp(prefix=f"{specs.name}-cold-", dir=specs.parent))
        for folder in ("environments", "secrets"):
            if (specs / folder).is_dir():
                shutil.copytree(specs / folder, copy / folder)
        git(copy, "init", "-q")  # a config repo is a git repo; its first build writes only new folders
        settle()
        seconds, peak = timed([*KOMPILE, "build", "--root", str(copy)])
        builds.append(seconds)
        rss = max(rss, peak)
        first = first or copy
        if scratch is not None:
            if attempt == 0:
                objects, files = floor_inputs(first, scratch)
            floors.append(inner_seconds(FLOOR, first, objects))
            settle()  # (into a new folder each time, deleted when the benchmark ends)
            writes.append(inner_seconds(WRITE, files, scratch / f"written-{attempt}"))
    if scratch is None:
        return {"build_cold": min(builds), "rss": rss, "root": first}
    startup = min(timed([sys.executable, "-c", "import yaml"])[0] for _ in range(3))
    ratios = [b / (startup + f + w) for b, f, w in zip(builds, floors, writes, strict=True)]
    return {
        "build_cold": min(builds),
        "rss": rss,
        "floor": startup + min(floors),
        "write_floor": min(writes),
        "round_ratios": ratios,
        "root": first,
    }


def best_of(command: list[str], runs: int, expect: tuple[int, ...] = (0,)) -> tuple[float, int]:
    samples = [timed(command, expect) for _ in range(runs)]
    return min(s[0] for s in samples), max(s[1] for s in samples)


PYCACHE: Path | None = None  # kompile's bytecode, compiled once (see bytecode.py); set by main()


def _env() -> dict[str, str]:
    return {**environment(dict(os.environ), PYCACHE), "NO_COLOR": "1"}


def git(root: Path, *args: str) -> None:
    # (No automatic gc: one started in the background by a commit would run during the measurements.)
    subprocess.run(["git", "-C", str(root), "-c", "gc.auto=0", *args], check=True, capture_output=True)


def commit_all(root: Path) -> None:
    """Commit the tree, as a team commits kompile's output beside the specs."""
    git(root, "add", "-A")
    git(root, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "build")


FLOOR = """
import pickle, sys, time, yaml
from pathlib import Path
specs = sorted(Path(sys.argv[1], "environments").glob("*.yaml")) + sorted(Path(sys.argv[1], "secrets").rglob("*.yaml"))
objects = pickle.loads(Path(sys.argv[2]).read_bytes())
started = time.perf_counter()
for path in specs:
    yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
for obj in objects:
    yaml.dump(obj, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)
print(time.perf_counter() - started)
"""


def floor_inputs(root: Path, scratch: Path) -> tuple[Path, Path]:
    """What the floor reads, from a built tree: every object kompile wrote (pickled, for the floor to emit
    again) and every file's bytes (for it to write again)."""
    import yaml

    objects = [
        doc
        for path in sorted(root.rglob("*.yaml"))
        if path.parts[len(root.parts)] in ("bases", "overlays", "gitops")
        for doc in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader)
        if doc is not None
    ]
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).parts[0] in ("bases", "overlays", "gitops")
    }
    (scratch / "objects.pickle").write_bytes(pickle.dumps(objects))
    (scratch / "files.pickle").write_bytes(pickle.dumps(files))
    return scratch / "objects.pickle", scratch / "files.pickle"


def inner_seconds(script: str, *args: Path) -> float:
    """The seconds a script run in its own interpreter reports for its own work (start-up excluded)."""
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, check=True
    )
    return float(result.stdout)


WRITE = """
import os, pickle, sys, time
from pathlib import Path
files = pickle.loads(Path(sys.argv[1]).read_bytes())
target = Path(sys.argv[2])
started = time.perf_counter()
for folder in sorted({os.path.dirname(path) for path in files}):
    os.makedirs(target / folder, exist_ok=True)
for path, data in files.items():
    with open(target / path, "wb") as handle:
        handle.write(data)
print(time.perf_counter() - started)
"""


def kustomize_per_overlay(root: Path, names: list[str], sample: int) -> float | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None or sample == 0:
        return None
    step = max(1, len(names) // sample)
    chosen = names[::step][:sample]
    times = [timed([kubectl, "kustomize", str(root / "overlays" / name)])[0] for name in chosen]
    return statistics.mean(times)


def measure(size: int, sample: int, runs: int, scratch_root: Path) -> dict:
    # (Its trees stay until the benchmark ends: see cold_builds.)
    scratch = Path(tempfile.mkdtemp(prefix=f"kompile-bench-{size}-", dir=scratch_root))
    specs = generate_fleet(scratch / "repo", size)
    names = sorted(p.stem for p in (specs / "environments").glob("*.yaml") if p.stem != "app")
    cold = cold_builds(specs, runs, scratch)
    build_cold, rss_cold, root = cold["build_cold"], cold["rss"], cold["root"]
    # The commands after the first build run where a team runs them: in a git repo with the output
    # committed (build warns about uncommitted output in the folders it writes, which asks git).
    commit_all(root)
    settle()
    build_noop, rss_noop = best_of([*KOMPILE, "build", "--root", str(root)], runs)
    check_fast, rss_check = timed([*KOMPILE, "check", "--fast", "--root", str(root)])  # reads, records
    check_warm, _ = best_of([*KOMPILE, "check", "--fast", "--root", str(root)], runs)  # remembered
    check_full, rss_full = best_of([*KOMPILE, "check", "--root", str(root)], runs)
    kustomize = kustomize_per_overlay(root, names, sample)
    name = environment_name(0) if size > 3 else "staging"
    changed = root / "environments" / f"{name}.yaml"
    changed.write_text(changed.read_text().replace('tag: "1.', 'tag: "2.', 1))
    diff_one, rss_diff = best_of([*KOMPILE, "diff", "--root", str(root)], runs, expect=(1,))
    # Each build of one environment follows a change to its spec (one timing each: a second run would
    # find nothing to do), the best of three, as the other commands are timed.
    build_one, rss_one = float("inf"), 0
    for major in range(2, 5):
        if major > 2:
            changed.write_text(changed.read_text().replace(f'tag: "{major - 1}.', f'tag: "{major}.', 1))
        seconds, rss = timed([*KOMPILE, "build", "--env", name, "--root", str(root)])
        build_one, rss_one = min(build_one, seconds), max(rss_one, rss)
    return {
        "environments": size,
        "build_cold": build_cold,
        "build_noop": build_noop,
        "check_fast": check_fast,
        "check_fast_remembered": check_warm,
        "check_full": check_full,
        "diff_one_change": diff_one,
        "build_env_one_change": build_one,
        "floor": cold["floor"],
        "write_floor": cold["write_floor"],
        "cold_floor_rounds": cold["round_ratios"],
        "kustomize_per_overlay": kustomize,
        "peak_rss_mib": max(rss_cold, rss_noop, rss_check, rss_full, rss_diff, rss_one) / 1024,
        "peak_rss_cold_mib": rss_cold / 1024,
    }


def _hydration_mode(root: Path, mode: str) -> None:
    app = root / "environments" / "app.yaml"
    text = app.read_text()
    marker = "    tool: argocd"
    head, _, tail = text.partition(marker)
    tail = tail.split("\n", 1)[1]
    tail = "\n".join(line for line in tail.split("\n") if not line.startswith("    hydration:"))
    app.write_text(f"{head}{marker}\n    hydration: {{mode: {mode}}}\n{tail}")


def hydration(size: int, runs: int, scratch_root: Path) -> dict:
    """What hydration adds per environment: rendered/<env>/manifest.yaml in a cold build, and
    `kompile hydrate` committing every environment's branch (then again, with nothing changed)."""
    # (Its trees stay until the benchmark ends: see cold_builds.)
    scratch_dir = tempfile.mkdtemp(prefix=f"kompile-bench-hydrate-{size}-", dir=scratch_root)
    root = generate_fleet(Path(scratch_dir) / "repo", size)
    plain = cold_builds(root, runs)["build_cold"]
    _hydration_mode(root, "rendered")
    rendered = cold_builds(root, runs)
    rendered, rss = rendered["build_cold"], rendered["rss"]
    figures = {"environments": size, "build_cold_plain": plain, "build_cold_rendered": rendered}
    figures["rendered_peak_rss_mib"] = rss / 1024
    _hydration_mode(root, "branches")
    subprocess.run([*KOMPILE, "build", "--quiet", "--root", str(root)], check=True, env=_env())
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    for key in ("GIT_AUTHOR", "GIT_COMMITTER"):  # hydrate's commits need an identity
        os.environ.setdefault(f"{key}_NAME", "bench")
        os.environ.setdefault(f"{key}_EMAIL", "bench@example.com")
    figures["hydrate_first"], _ = timed([*KOMPILE, "hydrate", "--root", str(root)])
    figures["hydrate_unchanged"], _ = best_of([*KOMPILE, "hydrate", "--root", str(root)], runs)
    return figures


def startup(runs: int) -> dict:
    python = best_of([sys.executable, "-c", "pass"], runs)[0]
    version = best_of([*KOMPILE, "--version"], runs)[0]
    with tempfile.TemporaryDirectory(prefix="kompile-bench-example-") as scratch:
        root = Path(scratch)
        for folder in ("environments", "secrets"):
            shutil.copytree(EXAMPLE / folder, root / folder)
        validate = best_of([*KOMPILE, "validate", "--root", str(root)], runs)[0]
    return {"python_pass": python, "version": version, "validate_example": validate}


def report_hydration(h: dict) -> str:
    n = h["environments"]
    extra = 1000 * (h["build_cold_rendered"] - h["build_cold_plain"]) / n
    line = (
        f"hydration at N={n}: cold build {h['build_cold_plain']:.2f}s, with rendered/ {h['build_cold_rendered']:.2f}s "
        f"({h['build_cold_rendered'] / h['build_cold_plain']:.2f}x, {extra:+.2f} ms per environment)"
    )
    if "hydrate_first" in h:
        line += (
            f"; kompile hydrate {h['hydrate_first']:.2f}s ({1000 * h['hydrate_first'] / n:.1f} ms per environment),"
            f" again unchanged {h['hydrate_unchanged']:.2f}s ({1000 * h['hydrate_unchanged'] / n:.1f} ms per environment)"
        )
    return line


def report(rows: list[dict], start: dict) -> str:
    lines = [
        f"kompile benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]} (seconds are wall time, best of the runs)",
        "kompile's bytecode compiled once, as pip installs it; every command after the cold build runs in a git repo "
        "with the output committed",
        "",
        f"{'N':>6} {'floor':>6} {'build':>6} {'cold/':>6} {'ms per':>6} {'noop':>6} {'check':>6} {'check':>6} "
        f"{'check':>6} {'diff 1':>6} {'build':>6} {'kustomize/':>11} {'peak':>7}",
        f"{'':>6} {'+write':>6} {'cold':>6} {'floor':>6} {'env':>6} {'build':>6} {'fast':>6} {'fast 2':>6} "
        f"{'full':>6} {'change':>6} {'--env':>6} {'kompile/env':>11} {'RSS MiB':>7}",
    ]
    for r in rows:
        floor_all = r["floor"] + r["write_floor"]
        per_env = r["build_noop"] / r["environments"]
        ratio = (
            f"{r['kustomize_per_overlay'] / per_env:10.1f}x" if r["kustomize_per_overlay"] else f"{'n/a':>11}"
        )
        lines.append(
            f"{r['environments']:>6} {floor_all:6.2f} {r['build_cold']:6.2f} {r['build_cold'] / floor_all:5.2f}x "
            f"{1000 * r['build_cold'] / r['environments']:6.2f} {r['build_noop']:6.2f} {r['check_fast']:6.2f} "
            f"{r['check_fast_remembered']:6.2f} {r['check_full']:6.2f} {r['diff_one_change']:6.2f} {r['build_env_one_change']:6.2f} "
            f"{ratio} {r['peak_rss_mib']:7.1f}"
        )
    for before, after in zip(rows, rows[1:], strict=False):
        slope = (after["build_cold"] - before["build_cold"]) / (
            after["environments"] - before["environments"]
        )
        growth = (after["build_cold"] / after["environments"]) / (
            before["build_cold"] / before["environments"]
        )
        rss = (after["peak_rss_mib"] - before["peak_rss_mib"]) / (
            after["environments"] - before["environments"]
        )
        lines.append(
            f"slope {before['environments']} -> {after['environments']}: {1000 * slope:.2f} ms per added environment; "
            f"cost per environment x{growth:.2f}; {1024 * rss:.1f} KiB of peak RSS per added environment"
        )
    lines.append(
        "cold/floor of each round (a cold build, then the floor, in turns): "
        + "; ".join(
            f"N={r['environments']} " + " ".join(f"{x:.2f}x" for x in r["cold_floor_rounds"]) for r in rows
        )
    )
    lines += [
        "",
        f"start-up: python -c pass {start['python_pass']:.3f}s; kompile --version {start['version']:.3f}s "
        f"({start['version'] / start['python_pass']:.1f}x); kompile validate on the example {start['validate_example']:.3f}s "
        f"({start['validate_example'] / start['python_pass']:.1f}x)",
        "floor +write: parse the specs (CSafeLoader) and emit the same objects (CSafeDumper) in one process, plus "
        "writing the same files into an empty folder, each measured right after a cold build (best of each over "
        "the rounds); check full recompiles (the default), check fast trusts the "
        "manifest (fast: the first run, which reads every file and records their identities; fast 2: the next "
        "runs, which find every identity unchanged); diff 1 change and build --env after one environment's spec changed; kustomize/kompile compares "
        "one `kubectl kustomize` per overlay with kompile's time per environment in a noop build",
        "targets at every N up to 10000: cold/floor <= 1.5; cost per environment at 10000 <= 1.2x that at 1000; "
        "peak RSS < 300 MiB; check fast < 1 s; diff 1 change < 2 s; build --env < 0.5 s",
    ]
    return "\n".join(lines)


def main() -> None:
    global SETTLE, PYCACHE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000", help="comma-separated environment counts")
    parser.add_argument("--large", action="store_true", help="add N = 10000 (long)")
    parser.add_argument(
        "--kustomize-sample", type=int, default=10, help="overlays to build with kubectl kustomize"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="repetitions of each warm measurement (best is kept)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument(
        "--hydrate-size", type=int, default=1000, help="environments for the hydration figures (0: skip)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE,
        help="seconds to wait at most for an idle disk before each cold build and floor write (0: flush only)",
    )
    args = parser.parse_args()
    SETTLE = args.settle
    sizes = [int(n) for n in args.sizes.split(",")] + ([10000] if args.large else [])
    with tempfile.TemporaryDirectory(prefix="kompile-bench-") as scratch:
        PYCACHE = compile_bytecode(Path(scratch) / "pycache")
        rows = [measure(n, args.kustomize_sample, args.runs, Path(scratch)) for n in sizes]
        start = startup(args.runs)
        hydrated = hydration(args.hydrate_size, args.runs, Path(scratch)) if args.hydrate_size else None
    print(report(rows, start))
    if hydrated:
        print(report_hydration(hydrated))
    if args.json:
        print(json.dumps({"sizes": rows, "startup": start, "hydration": hydrated}, indent=2))


if __name__ == "__main__":
    main()
