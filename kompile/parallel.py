"""Work spread over the cores: forked processes that read what the parent holds (copy on write, set
just before forking) and send back only their results, taken in order whatever the schedule.

The pool is concurrent.futures' rather than multiprocessing.Pool: when a worker dies (the
out-of-memory killer, a `kill -9`), Pool quietly starts another and the task it held is never
answered, so the command would wait for ever; this one fails every pending task, and the command
stops with WorkerLost (nothing written: a build removes what it staged)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

# Below this many items (environments, spec files), starting processes costs more than it saves.
PARALLEL_MIN = 200
# Items per task given to a worker: what the parent receives at once (an environment's files) stays small.
CHUNK_MAX = 50

_job: tuple | None = None  # what forked workers read


class WorkerLost(OSError):
    """A worker process ended before it answered: killed by a signal (often the out-of-memory killer)."""

    def __init__(self) -> None:
        super().__init__(
            "a worker process ended before it finished its share (killed by a signal, such as the "
            "out-of-memory killer's); nothing was written"
        )


def cores(count: int) -> int:
    """How many processes share this many items (0: this one, alone: too few items, one core, no fork,
    or a daemonic process, such as a caller's own pool worker, which may not have children)."""
    return _processes() if count >= PARALLEL_MIN else 0


def _processes() -> int:
    """How many processes may share work here (0: one core, no fork, or a daemonic process)."""
    workers = min(os.cpu_count() or 1, 8)
    if (
        workers < 2
        or "fork" not in multiprocessing.get_all_start_methods()
        or multiprocessing.current_process().daemon
    ):
        return 0
    return workers


def job() -> tuple:
    """What the parent gave its workers (in a worker)."""
    assert _job is not None
    return _job


def in_workers(workers: int, shared: tuple, task: Callable, count: int, keep: Callable) -> None:
    """task((start, end)) over chunks of range(count) in forked workers (which read `shared` through
    job()), each item of each chunk's result handed to keep in order."""
    global _job
    _job = shared
    try:
        chunks = _chunks(workers, count)
        with _pool(workers) as pool:
            # A finished chunk waits in the parent until it is taken, files and all: a build, which
            # writes each file as it comes, takes them more slowly than the workers make them. So only
            # a few chunks are handed out ahead (map would hand out every one), taken in order.
            pending: deque[Future] = deque()
            for index, bounds in enumerate(chunks):
                pending.append(pool.submit(task, bounds))
                while pending and (len(pending) > 2 * workers or index == len(chunks) - 1):
                    for result in pending.popleft().result():
                        keep(result)
    finally:
        _job = None


@contextmanager
def started(workers: int, shared: tuple, task: Callable, count: int) -> Iterator[Callable[[], list]]:
    """task((start, end)) over chunks of range(count), started in forked workers at once (they read
    `shared` through job()) while the caller goes on; yields what waits for every chunk's items, in
    order. For results that are small: the parent holds them all."""
    global _job
    _job = shared
    try:
        with _pool(workers) as pool:
            futures = [pool.submit(task, bounds) for bounds in _chunks(workers, count)]
            yield lambda: [item for future in futures for item in future.result()]
    finally:
        _job = None


@contextmanager
def ahead(task: Callable[[], object]) -> Iterator[Callable[[], object]]:
    """task() started at once in a forked process while the caller goes on (a build of one environment
    imports the compiler meanwhile, on one core, while the other reads the index and stats every spec);
    yields what waits for its answer, or raises what it raised (an answer is pickled: keep it small).
    Where no process can be forked, or it dies before it answers, the task runs here when asked: the
    answer is the same, only later. Leaving the block stops the process if it is still at work (it only
    reads)."""
    # (A process forked while another thread holds a lock, an import's say, may wait for it for ever: a
    # host process with threads runs the task itself; so does one with no process or file to spare.)
    forked = _forked() if _processes() and threading.active_count() == 1 else None
    if forked is None:
        yield task
        return
    pid, readable, writable = forked
    if pid == 0:  # (the process forked: it answers, then leaves without running the parent's exit code)
        try:
            os.close(readable)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                outcome = (True, task())
            except Exception as exc:
                outcome = (False, exc)
            try:
                answer = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
            except Exception:
                answer = b""  # (the parent runs the task itself)
            with open(writable, "wb") as pipe:
                pipe.write(answer)
        finally:
            os._exit(0)
    os.close(writable)
    pipe = open(readable, "rb")  # noqa: SIM115 (closed on leaving, answered or not)
    answered: list[tuple[bool, object]] = []

    def answer() -> object:
        if not answered:
            try:
                outcome = pickle.loads(pipe.read())
            except Exception:  # nothing, or cut short: the process died, or could not send its answer
                outcome = None
            answered.append(outcome or (True, task()))
        done, value = answered[0]
        if not done:
            raise value  # type: ignore[misc]
        return value

    try:
        yield answer
    finally:
        pipe.close()
        # (Where SIGCHLD is ignored, the system has reaped the process already: nothing to stop or wait for.)
        with suppress(ProcessLookupError, ChildProcessError):
            if not answered:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _forked() -> tuple[int, int, int] | None:
    """(fork()'s answer, a pipe's read and write ends), or None when the system has no process or file
    descriptor to spare (EAGAIN under a limit of processes, EMFILE)."""
    try:
        readable, writable = os.pipe()
    except OSError:
        return None
    try:
        return os.fork(), readable, writable
    except OSError:
        os.close(readable)
        os.close(writable)
        return None


def _chunks(workers: int, count: int) -> list[tuple[int, int]]:
    step = min(-(-count // (workers * 8)), CHUNK_MAX)
    return [(start, min(start + step, count)) for start in range(0, count, step)]


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Forked workers that leave Ctrl-C to the parent, which exits with 130 once (each worker would print
    its own traceback). On any error, what was not started is dropped and the workers end with the
    share they hold (a chunk: at most CHUNK_MAX environments)."""
    from concurrent.futures import ProcessPoolExecutor  # (not for the commands that never spread work)
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        workers,
        multiprocessing.get_context("fork"),
        initializer=signal.signal,
        initargs=(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        yield pool
    except BrokenProcessPool:  # (from any task's result, and from submitting after)
        pool.shutdown(wait=False, cancel_futures=True)
        raise WorkerLost() from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
