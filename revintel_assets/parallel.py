"""Work split across cores: the forecast engine (chunks of reps) and TreeSHAP of every open deal
(blocks of rows) both go through `map_tasks`, which runs tasks in this process and in a pool of
loky worker processes (loky: joblib's process executor), or, for work that releases the GIL
(TreeSHAP: LightGBM's C code), in threads of this process.

Why split at all: LightGBM computes TreeSHAP on one core whatever `num_threads` says (measured:
CPU time equals wall time at 2 threads), so rows go in blocks, one call per thread (its C code
runs without the GIL); the engine's numpy scatter/bincount hold the GIL, so its chunks need
processes. Why loky rather than forking this process: the Dagster process runs threads, and
forking a threaded process can leave a child stuck on a lock another thread held (libgomp after
fork did hang); loky starts clean interpreters, keeps them for the next call (a reusable
executor: the start-up, ~0.5 s, is paid once per process) and re-raises a worker's exception
here. Tasks are pickled, so a task gets only the slices of the inputs it needs; results over
1 MB come back through files in /dev/shm rather than loky's pipe.

A task's result depends on its arguments only (seeded per task, never per worker), and callers
assemble results in task order, so any worker count gives the same numbers as one process.

Past one machine (issue 17): with a Dask cluster configured (`REVINTEL_CLUSTER=tcp://HOST:PORT`,
`revintel run --cluster`, the `compute` resource's `cluster` in the launchpad) every task of
`map_tasks` goes to that cluster instead (`dask.distributed` futures, results in task order),
whatever the local worker count or input size: the user asked for the cluster. The workers need
the same revintel installed (they import the task functions); each task runs with one BLAS /
OpenMP thread there, as in the local pool, so the numbers are the same whichever backend ran it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from joblib.externals.loky import get_reusable_executor

MIN_ROWS_PER_WORKER = 20_000  # below this, splitting rows costs more than it saves


def workers() -> int:
    """Cores this process may use (REVINTEL_WORKERS overrides; 1 = everything in this process)."""
    # imported here: pool processes import this module too, and need no pydantic-settings (0.15 s)
    from revintel_resources.settings import settings

    chosen = settings().workers
    return chosen if chosen else max(1, min(len(os.sched_getaffinity(0)), 8))


_SCOPE: list[str | None] = []  # cluster addresses chosen by runs (`using`), innermost last


def cluster() -> str | None:
    """The Dask scheduler tasks go to: the run's choice (`using`), else REVINTEL_CLUSTER; None or
    "" = this machine."""
    if _SCOPE:
        return _SCOPE[-1] or None
    from revintel_resources.settings import settings

    return settings().cluster


@contextmanager
def using(address: str | None):
    """Send the tasks of `map_tasks` inside this block to the Dask cluster at `address` ("" = this
    machine; None = the settings' choice). The `compute` resource opens it around a step's work,
    so a run's `--cluster` reaches the kernels without touching the environment."""
    if address is None:
        yield
        return
    _SCOPE.append(address)
    try:
        yield
    finally:
        _SCOPE.pop()


_STEPS: list[bool] = []  # per open Dagster step (`step`): does it take the `compute` resource?


@contextmanager
def step(compute=None):
    """A Dagster step's body (resources.warehouse_step opens it): map_tasks inside it sends its tasks
    where the step's `compute` resource says (a run's --cluster, the launchpad's compute.cluster). A
    step without one must not call map_tasks, which then fails loudly: plan_job's quota attainment
    took no compute resource, so its engine's tasks ignored --cluster (an audit of the cluster)."""
    _STEPS.append(compute is not None)
    try:
        with compute.active() if compute is not None else contextlib.nullcontext():
            yield
    finally:
        _STEPS.pop()


def map_tasks(fn: Callable, tasks: Sequence[tuple], n_workers: int | None = None, *,
              threads: bool = False, here: bool = True) -> Iterator:
    """fn(*task) for every task, yielded in task order, on up to n_workers processes (default
    `workers()`): this one and n_workers - 1 pool processes. With one worker or one task
    everything runs here, lazily, nothing pickled. here=False: n_workers pool processes run every
    task and this one only builds tasks (LazyTasks) and takes the results: for a caller with its
    own work between tasks (reading the next tasks' rows, writing results), which would otherwise
    leave the pool waiting while this process ran a task of its own.

    fn must be a module-level function (a worker imports it; a closure is pickled whole, with
    everything it refers to) and its arguments picklable: give each task only the slices it
    needs. threads=True says fn releases the GIL (LightGBM's C code): then threads of this
    process run it, nothing is pickled. Issue 17 (a Dask cluster) plugs in here: the tasks are
    already self-contained (module-level fn, per-task arguments, results in task order), so
    with a cluster configured (`cluster()`) they all go to it, in task order."""
    if _STEPS and not _STEPS[-1]:
        raise RuntimeError(f"map_tasks({getattr(fn, '__name__', fn)}) in a step without the `compute` resource: "
                           "its tasks would ignore the run's --cluster; give the asset `compute: ComputeResource`")
    address = cluster()
    if address and tasks and not _on_a_worker():
        return _on_cluster(address, fn, tasks)
    k = min(n_workers or workers(), len(tasks))
    if k <= 1:
        return (fn(*t) for t in tasks)
    if threads:
        return _in_threads(fn, tasks, k)
    return _with_pool(fn, tasks, k - 1) if here else _with_pool(fn, tasks, k, run_here=False)


def _on_a_worker() -> bool:
    """Is this a Dask worker running one of our tasks? Its nested map_tasks (a past date's engine)
    runs here: a worker that submitted to its own cluster (REVINTEL_CLUSTER in its environment)
    would wait on tasks queued behind it."""
    import sys

    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
        return True
    except ValueError:
        return False


class ClusterError(RuntimeError):
    """The Dask cluster cannot run the run's tasks (lost, or no worker able to): said in revintel's
    words, with the address, not as a library's ConnectionResetError or an endless wait."""


# A task waits at most this long for a worker able to run it (none joined, the only one died, every
# one paused at its memory limit): the run waited for ever, saying only which step was running.
NO_WORKER_S = 120.0
_POLL_S = 5.0

_CLIENTS: dict = {}


def _client(address: str):
    """One distributed.Client per scheduler for this process (connecting costs ~0.3 s)."""
    from distributed import Client

    client = _CLIENTS.get(address)
    if client is None or client.status not in ("running", "connecting", "newly-created"):
        try:
            client = _CLIENTS[address] = Client(address, timeout="30s", set_as_default=False)
        except (OSError, ValueError) as exc:  # e.g. the scheduler went away between two steps
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: "
                               f"{_first_line(exc)}") from exc
    return client


def close_clients() -> None:
    """Close this process's connections to Dask schedulers (`revintel ui` checks the address, then only
    serves: its connection stayed open for as long as it ran)."""
    while _CLIENTS:
        _CLIENTS.popitem()[1].close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def code_fingerprint() -> str:
    """A hash of revintel's code (every .py of its packages): a worker whose differs runs other
    code, and its results need not be this machine's (CONTRACT §1: identical whichever backend)."""
    import hashlib
    from pathlib import Path

    if not _FINGERPRINT:
        digest = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]
        for package in ("revintel_assets", "revintel_resources"):
            for path in sorted((root / package).rglob("*.py")):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        _FINGERPRINT.append(digest.hexdigest()[:16])
    return _FINGERPRINT[0]


_FINGERPRINT: list[str] = []


def worker_problems(address: str) -> list[str]:
    """What keeps the cluster's workers from running revintel's tasks, one sentence per worker (none:
    fine). A worker that could not import revintel died on its first task and the run waited for
    ever; one with other code would give other numbers."""
    client = _client(address)

    def probe():  # local, so that cloudpickle ships it by value: it must load where revintel does not
        import importlib

        try:
            return importlib.import_module("revintel_assets.parallel").code_fingerprint()
        except Exception as exc:  # noqa: BLE001 (whatever keeps revintel from loading there)
            return f"!{type(exc).__name__}: {exc}"

    ours, problems = code_fingerprint(), []
    for worker, answer in sorted(client.run(probe, on_error="return").items()):
        if isinstance(answer, BaseException):
            problems.append(f"worker {worker} failed the check: {type(answer).__name__}: {_first_line(answer)}")
        elif answer.startswith("!"):
            problems.append(f"worker {worker} cannot import revintel ({answer[1:][:160]}): start it where revintel "
                            "is installed (the same PYTHONPATH or virtualenv)")
        elif answer != ours:
            problems.append(f"worker {worker} runs other revintel code (fingerprint {answer}, here {ours}): its "
                            "results would not be this machine's; install the same revision there")
    return problems


def _on_cluster(address: str, fn: Callable, tasks: Sequence[tuple]) -> Iterator:
    """Tasks submitted ahead of the results taken, two per worker thread of the cluster (the
    scheduler balances them over its workers), results yielded in task order. Not all at once: a
    LazyTasks task is built when submitted (a forecast range's 153 past dates, 43 MB each at scale
    100), and the workers need only enough queued to stay busy. pure=False: a task is never merged
    with an equal-looking one; the key names the function, so the scheduler's dashboard and task
    counts say what ran."""
    client = _client(address)
    name = getattr(fn, "__name__", "task").lstrip("_") or "task"
    window = max(4, 2 * sum(client.nthreads().values()))
    futures: deque = deque()
    submitted = 0
    try:
        for _ in range(len(tasks)):
            while submitted < len(tasks) and len(futures) < window:
                futures.append(client.submit(_one_thread, fn, *tasks[submitted], pure=False,
                                             key=f"revintel-{name}-{uuid.uuid4().hex}"))
                submitted += 1
            yield _result(client, address, futures.popleft(), name)  # re-raises the task's exception here
    finally:  # stopped early or failed: free the workers of what is left
        if client.status == "running":
            client.cancel(list(futures))


def _result(client, address: str, future, name: str):
    """The task's result, waited for in slices: a cluster where no worker can run it (none, or every
    one paused) for NO_WORKER_S, or a scheduler that went away, ends the wait with a ClusterError."""
    import time

    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    stuck = None
    while True:
        try:
            return future.result(timeout=_POLL_S)
        except TimeoutError:
            pass
        except (CommClosedError, ConnectionError, FutureCancelledError) as exc:  # cancelled: the connection lost
            raise ClusterError(f"lost the Dask scheduler at {address} while {name} ran: {type(exc).__name__}: "
                               f"{_first_line(exc)}; the steps before this one kept their tables") from exc
        if client.status != "running":
            raise ClusterError(f"lost the Dask scheduler at {address} while {name} ran (the client is "
                               f"{client.status}); the steps before this one kept their tables")
        try:
            workers = client.scheduler_info()["workers"].values()
        except (OSError, CommClosedError) as exc:
            raise ClusterError(f"lost the Dask scheduler at {address} while {name} ran: {type(exc).__name__}: "
                               f"{_first_line(exc)}") from exc
        # able: running, or paused while it still executes a task (a busy worker over its memory pause
        # level finishes what it runs: a re-check saw a healthy 40 s task called stalled)
        if any(w.get("status", "running") == "running"
               or (w.get("metrics") or {}).get("task_counts", {}).get("executing", 0) > 0 for w in workers):
            stuck = None
            continue
        stuck = stuck or time.monotonic()
        if time.monotonic() - stuck >= NO_WORKER_S:
            paused = sum(w.get("status") == "paused" for w in workers)
            state = (f"its {paused} worker(s) paused and idle (a memory limit below what revintel's imports take, "
                     "~400 MB?)" if paused else "no worker (none started, or every one died: see the workers' "
                     "logs, e.g. one that cannot import revintel)")
            future.cancel()
            raise ClusterError(f"the Dask cluster at {address} had {state} for {NO_WORKER_S:.0f} s while {name} "
                               "waited; start workers (`dask worker ADDRESS`) or leave --cluster out")


def _one_thread(fn: Callable, *args):
    """On a Dask worker: fn(*args) with one BLAS / OpenMP thread, like the local pool's processes
    (a worker's threads are the parallelism)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return fn(*args)


class LazyTasks(Sequence):
    """Tasks for map_tasks built when they are taken, each once (not kept): `build(key)` for each
    of `keys`. The pool starts on its first task while this process builds the next, and only the
    tasks in flight are in memory (the ICP fits' training rows, read from the warehouse)."""

    def __init__(self, keys: Sequence, build: Callable[..., tuple]):
        self.keys, self.build = list(keys), build

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple:
        if isinstance(i, slice):
            raise TypeError("LazyTasks builds one task at a time")
        return self.build(self.keys[i])


def in_background(fn: Callable, *args) -> Callable[[], object]:
    """Start fn(*args) in a pool process of this machine (never a cluster) and return a call that
    waits for its result (re-raising its exception). This process goes on meanwhile: the demo's
    generation runs while it imports the libraries and loads the definitions. With one worker,
    fn runs here, now. The pool process stays for the run's tasks (a reusable executor)."""
    k = workers()
    if k <= 1:
        result = fn(*args)
        return lambda: result
    future = _pool(k - 1).submit(fn, *args)
    return future.result


def _in_threads(fn: Callable, tasks: Sequence[tuple], k: int) -> Iterator:
    with ThreadPoolExecutor(k) as pool:
        yield from pool.map(lambda t: fn(*t), tasks)


# Worker processes are one core each: the processes are the parallelism (and OpenMP / BLAS
# pools in every worker would oversubscribe the box).
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def one_blas_thread() -> None:
    """This whole process calls BLAS with one thread, as the workers do (ONE_THREAD). revintel's
    parallelism is processes (the pool, a Dask cluster) and LightGBM's own threads; the products it
    hands BLAS are small (timing fits, period sums), and OpenBLAS's threads spin after every call:
    9 % of `forecast_job`'s CPU at scale 10 (perf), a core taken from the pool's workers on a
    2-core box. Dagster processes call it when they load the definitions."""
    from threadpoolctl import threadpool_limits

    # the BLAS libraries loaded from now on read the environment (scipy's, on first use), those
    # loaded already (numpy's) take threadpoolctl's limit
    os.environ.update({k: v for k, v in ONE_THREAD.items() if k != "OMP_NUM_THREADS"})
    threadpool_limits(1, user_api="blas")


# loky restarts a worker whose memory grew by 300 MB since its first task, counting what it
# imported after it: the demo's first task is the generator, and the model code it imports next
# (LightGBM, scikit-learn, numba: 87 -> 374 MiB measured) restarted the worker after the first
# fit, to import it all again. The allowance is moved by the imports' size: a worker that holds
# on to 300 MB of a task's memory is still recycled (a `revintel run`'s first task is the import).
WORKER_GROWTH_LIMIT = 600 << 20


def _worker_init() -> None:
    """In each pool process, at its start: the growth allowance above, and a watch on the parent."""
    import threading

    from joblib.externals.loky import process_executor

    process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_LIMIT
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="revintel-parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    """A `revintel run` killed with SIGKILL left its pool processes running for good (460 MB each,
    an operations audit); a worker whose parent is gone (it was re-parented) exits."""
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _pool(n: int):
    """loky's reusable executor: the same processes from call to call (they exit after 5 idle
    minutes). It never shrinks: shrinking ends a worker that has imported the model code, and
    the next call wanting more starts a fresh one to import it again (the forecast steps ask for
    a pool of 2, the others for 1: four worker starts in the demo, ~2 s of imports each). A call
    asking for fewer keeps as many tasks in flight as before (`_with_pool`'s depth), so the
    queued one may run at once on the extra process."""
    size = max(n, _SIZE[0])
    _SIZE[0] = size
    return get_reusable_executor(max_workers=size, timeout=300, env=ONE_THREAD, initializer=_worker_init)


_SIZE = [0]  # the pool's size so far


def warm_up(fn: Callable, n_workers: int | None = None, *, here: bool = True) -> None:
    """Start the pool processes now and have them import fn's module, while this process does
    something else first (the engine: its random draws), so that tasks do not wait for them.
    here: as map_tasks' (False: a pool of n_workers processes)."""
    k = n_workers or workers()
    if k > 1 and not cluster():
        n = k - 1 if here else k
        pool = _pool(n)
        for _ in range(n):
            pool.submit(importlib.import_module, fn.__module__)


def _with_pool(fn: Callable, tasks: Sequence[tuple], n_pool: int, run_here: bool = True) -> Iterator:
    """Tasks are taken in order: by this process (unless not run_here) when the next result to
    yield is a task nobody has taken yet, or is not ready yet; otherwise by the pool (kept fed with
    tasks; without run_here they are built strictly in task order). Why not
    joblib.Parallel: it leaves this process idle, ships every result back (the engine's chunk
    grids: ~800 MB for 10,000 sims x 100,000 deals: +13-20 % CPU measured) and will not start a
    pool of one. Here the results of tasks run here need no shipping, and a worker slow to start
    just takes fewer tasks."""
    pool = _pool(n_pool)
    folder = tempfile.mkdtemp(prefix="revintel-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    # a second task queued per worker keeps it busy while this process finishes one of its own;
    # with a task or two per process, one each (else the pool would hold them all)
    depth = n_pool * (2 if len(tasks) > 2 * (n_pool + 1) else 1)
    futures, here, taken = {}, {}, 0  # task index -> pool future / result computed here; tasks taken
    try:
        for i in range(len(tasks)):
            while i not in here:
                # the task needed next and not given out yet is run here, the pool takes the ones after
                # it: the caller gets it without a round trip and works on it (a win model's judging)
                # while the pool fits the next (win_model_job's 2 cutoffs: the larger fit in the pool)
                mine = run_here and taken == i
                taken += mine
                while taken < len(tasks) and sum(not f.done() for f in futures.values()) < depth:
                    futures[taken] = pool.submit(_spilling, folder, fn, *map(_as_arrow, tasks[taken]))
                    taken += 1
                if mine:
                    here[i] = fn(*tasks[i])
                elif i in futures and (futures[i].done() or taken == len(tasks) or not run_here):
                    here[i] = _unspill(futures.pop(i).result())  # re-raises the worker's exception
                elif taken < len(tasks):
                    here[taken] = fn(*tasks[taken])
                    taken += 1
            yield here.pop(i)
    finally:  # stopped early or failed: drop what has not started
        for f in futures.values():
            f.cancel()
        shutil.rmtree(folder, ignore_errors=True)


SPILL_BYTES = 1 << 20


@dataclass(frozen=True)
class _ArrowFrame:
    table: object  # a pyarrow.Table


def _as_arrow(arg):
    """A polars DataFrame argument travels to a pool process as its Arrow table: pickling a polars
    frame serialises it (~350 MB/s measured on a 20 MB ICP training frame: 58 ms), an Arrow table
    pickles its buffers as they are (16 ms). The worker gets the same frame back (_from_arrow)."""
    import polars as pl

    return _ArrowFrame(arg.to_arrow()) if isinstance(arg, pl.DataFrame) else arg


def _from_arrow(arg):
    if not isinstance(arg, _ArrowFrame):
        return arg
    import polars as pl

    return pl.from_arrow(arg.table)


@dataclass(frozen=True)
class _Spilled:
    path: str
    dtype: str
    shape: tuple


@dataclass(frozen=True)
class _SpilledFrame:
    path: str  # an uncompressed Arrow IPC file


def _spilling(folder: str, fn: Callable, *args):
    """In a pool process: fn(*args), with every array or polars frame over SPILL_BYTES in the
    result (itself, or an item of a result tuple) written to a file in `folder` (tmpfs) instead of
    the pipe. A 16 MB chunk grid through loky's pipe costs four copies and hundreds of wake-ups of
    both processes (measured: 2.2 s of CPU per 800 MB; through a file 0.9 s). A frame goes as an
    uncompressed Arrow IPC file, which the caller maps instead of unpickling (a past date's
    forecast at scale 100: 71 MB of frames, 153 dates; a 35 MB frame pickled in 0.1-0.25 s and
    unpickled in 0.06 s, written in 0.03 s and mapped in 0.005 s)."""
    import polars as pl

    def spill(a):
        path = os.path.join(folder, uuid.uuid4().hex)
        if isinstance(a, pl.DataFrame) and a.estimated_size() >= SPILL_BYTES:
            a.write_ipc(path, compression="uncompressed")
            return _SpilledFrame(path)
        if not isinstance(a, np.ndarray) or a.nbytes < SPILL_BYTES:
            return a
        a.tofile(path)
        return _Spilled(path, a.dtype.str, a.shape)
    out = fn(*map(_from_arrow, args))
    return tuple(spill(a) for a in out) if type(out) is tuple else spill(out)


def _unspill(out):
    """Here: the spilled arrays and frames mapped back (arrays read-only; the file is gone once
    they are)."""
    def load(a):
        if isinstance(a, _SpilledFrame):
            import polars as pl
            import pyarrow as pa

            # mapped, not read: a 35 MB frame in 5 ms (unpickled 60 ms, pl.read_ipc 80-120 ms)
            frame = pl.from_arrow(pa.ipc.open_file(pa.memory_map(a.path)).read_all())
            os.unlink(a.path)  # as an array's: the mapping keeps the data
            return frame
        if not isinstance(a, _Spilled):
            return a
        m = np.memmap(a.path, dtype=a.dtype, mode="r", shape=a.shape)
        os.unlink(a.path)  # the mapping keeps the data until the array is dropped
        return m
    return tuple(load(a) for a in out) if type(out) is tuple else load(out)


def map_rows(fn: Callable, x: np.ndarray, *args, out_cols: int, n_workers: int | None = None,
             threads: bool = False) -> np.ndarray:
    """fn(x, *args) for a 2-D float64 result with `out_cols` columns, computed as one contiguous
    block of rows per worker (`threads`: see map_tasks). Same numbers as one process: each row's
    result depends on that row only."""
    n = len(x)
    # on a cluster, as many blocks as the rows allow (up to 64): its workers are not this machine's
    k = min(64 if cluster() else n_workers or workers(), n // MIN_ROWS_PER_WORKER)
    bounds = np.linspace(0, n, max(k, 1) + 1).astype(int)
    blocks = map_tasks(fn, [(x[lo:hi], *args) for lo, hi in zip(bounds[:-1], bounds[1:])], k, threads=threads)
    return np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, out_cols) for b in blocks])
