"""Work split across worker processes with joblib: the forecast engine (chunks of reps) and
TreeSHAP of every open deal (blocks of rows) both go through `map_tasks`.

Why processes: LightGBM computes TreeSHAP on one core here whatever `num_threads` says
(measured: CPU time equals wall time at 2 threads), and numpy's scatter/bincount hold the GIL,
so threads would not use the second core. Why joblib's loky backend rather than forking: the
Dagster process runs threads, and forking a threaded process can deadlock a child on a lock some
other thread held (libgomp after fork did hang); loky starts clean interpreters, keeps them for
the next call (reusable executor: the start-up is paid once per process), memory-maps large numpy
arguments instead of copying them, and re-raises a worker's exception here.

A task's result depends on its arguments only (seeded per task, never per worker), and callers
assemble results in task order, so any worker count gives the same numbers as one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from joblib import Parallel, delayed

from revintel_resources.settings import settings

MIN_ROWS_PER_WORKER = 20_000  # below this a block costs more to ship than it saves


def workers() -> int:
    """Cores this process may use (REVINTEL_WORKERS overrides; 1 = everything in this process)."""
    chosen = settings().workers
    return chosen if chosen else max(1, min(len(os.sched_getaffinity(0)), 8))


def map_tasks(fn: Callable, tasks: Sequence[tuple], n_workers: int | None = None) -> Iterator:
    """fn(*task) for every task, yielded in task order, on up to n_workers processes (default
    `workers()`). With one worker or one task everything runs here, lazily, nothing pickled.

    fn should be a module-level function (a worker imports it; a closure is pickled whole with
    everything it refers to); pass large arrays as arguments, where joblib memory-maps those over
    1 MB instead of pickling them. The backend is joblib's current one: loky unless the caller
    set another with `joblib.parallel_config` (issue 17: a Dask cluster plugs in there)."""
    k = min(n_workers or workers(), len(tasks))
    if k <= 1:
        return (fn(*t) for t in tasks)
    # generator: results are taken (and can be freed) one by one, in order, while later tasks run
    return Parallel(n_jobs=k, return_as="generator")(delayed(fn)(*t) for t in tasks)


def map_rows(fn: Callable, x: np.ndarray, *args, out_cols: int, n_workers: int | None = None) -> np.ndarray:
    """fn(x, *args) for a 2-D float64 result with `out_cols` columns, computed as one contiguous
    block of rows per worker. Same numbers as one process: each row's result depends on that row
    only. `args` (a model...) travel once per block, i.e. once per worker."""
    n = len(x)
    k = min(n_workers or workers(), n // MIN_ROWS_PER_WORKER)
    bounds = np.linspace(0, n, max(k, 1) + 1).astype(int)
    blocks = map_tasks(fn, [(x[lo:hi], *args) for lo, hi in zip(bounds[:-1], bounds[1:])], k)
    return np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, out_cols) for b in blocks])
