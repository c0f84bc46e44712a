"""Row-parallel numpy work in forked processes, for the one step of the nightly run that is
CPU-bound in a single thread: TreeSHAP of every open deal (LightGBM computes it on one core here,
whatever `num_threads` says; measured: CPU time equals wall time at 2 threads).

Threads would not help (the work holds the GIL between LightGBM calls, and LightGBM's OpenMP
threads spin-wait on a busy box), so the rows are split into one contiguous block per worker,
each computed by a forked child into anonymous shared memory. Same numbers as one process: each
row's result depends on that row only.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable

import numpy as np

MIN_ROWS_PER_WORKER = 20_000  # below this a fork costs more than it saves


def workers() -> int:
    """Cores this process may use (REVINTEL_WORKERS overrides; 1 = no fork)."""
    env = os.environ.get("REVINTEL_WORKERS")
    return max(1, int(env)) if env else max(1, min(len(os.sched_getaffinity(0)), 8))


def forked_rows(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, out_cols: int,
                n_workers: int | None = None) -> np.ndarray:
    """fn(x) for a 2-D float64 result with `out_cols` columns, rows split across forked workers."""
    n = len(x)
    k = min(n_workers or workers(), n // MIN_ROWS_PER_WORKER)
    if k <= 1 or not hasattr(os, "fork"):
        return np.asarray(fn(x), dtype=np.float64).reshape(n, out_cols)
    buf = mmap.mmap(-1, max(n * out_cols * 8, 8))
    out = np.frombuffer(buf, dtype=np.float64, count=n * out_cols).reshape(n, out_cols)
    bounds = np.linspace(0, n, k + 1).astype(int)
    pids = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # one child per core, never one per row
        pid = os.fork()
        if pid == 0:  # child: its block, then leave at once (no atexit handlers, no cleanup)
            code = 0
            try:
                out[lo:hi] = np.asarray(fn(x[lo:hi]), dtype=np.float64).reshape(hi - lo, out_cols)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
    if failed:
        raise RuntimeError(f"worker process(es) {failed} failed")
    return out.copy()  # an ordinary array; the shared buffer is released with `buf`
