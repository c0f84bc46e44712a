"""Work split across forked processes writing into anonymous shared memory: the forecast engine
(chunks of reps) and TreeSHAP of every open deal (blocks of rows). LightGBM computes TreeSHAP on
one core here whatever `num_threads` says (measured: CPU time equals wall time at 2 threads), and
numpy's scatter/bincount hold the GIL, so threads would not use the second core; processes do.
"""

from __future__ import annotations

import mmap
import os
import traceback
from collections.abc import Callable

import numpy as np

from revintel_resources.settings import settings

MIN_ROWS_PER_WORKER = 20_000  # below this a fork costs more than it saves


def workers() -> int:
    """Cores this process may use (REVINTEL_WORKERS overrides; 1 = no fork)."""
    chosen = settings().workers
    return chosen if chosen else max(1, min(len(os.sched_getaffinity(0)), 8))


def shared(shape: tuple, dtype=np.float64) -> np.ndarray:
    """A zeroed array in anonymous shared memory (visible to forked children)."""
    n = int(np.prod(shape))
    size = n * np.dtype(dtype).itemsize
    return np.frombuffer(mmap.mmap(-1, max(size, 8)), dtype=dtype, count=n).reshape(shape)


def run_forked(n_workers: int, work: Callable[[int], None], what: str = "worker") -> None:
    """work(0) .. work(n_workers - 1), each in a forked child; raises if any child failed. The
    children must write their results into `shared` arrays."""
    pids = []
    for w in range(n_workers):  # a couple of processes, never one per row
        pid = os.fork()
        if pid == 0:  # child: its share, then leave at once (no atexit handlers, no cleanup)
            code = 0
            try:
                work(w)
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
    if failed:
        raise RuntimeError(f"{what} process(es) {failed} failed")


def forked_rows(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, out_cols: int,
                n_workers: int | None = None) -> np.ndarray:
    """fn(x) for a 2-D float64 result with `out_cols` columns, one contiguous block of rows per
    worker. Same numbers as one process: each row's result depends on that row only."""
    n = len(x)
    k = min(n_workers or workers(), n // MIN_ROWS_PER_WORKER)
    if k <= 1 or not hasattr(os, "fork"):
        return np.asarray(fn(x), dtype=np.float64).reshape(n, out_cols)
    out = shared((n, out_cols))
    bounds = np.linspace(0, n, k + 1).astype(int)

    def block(w: int) -> None:
        lo, hi = bounds[w], bounds[w + 1]
        out[lo:hi] = np.asarray(fn(x[lo:hi]), dtype=np.float64).reshape(hi - lo, out_cols)

    run_forked(k, block)
    return out.copy()  # an ordinary array, not a view of the shared mapping
