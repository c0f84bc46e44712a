"""parallel.map_tasks / map_rows: the same numbers as one process, whatever the number of workers."""

import os
from pathlib import Path

import numpy as np
import pytest

from revintel_assets import parallel


def _row_stats(part: np.ndarray, scale: float) -> np.ndarray:  # module level: workers import it
    return np.column_stack([part.sum(axis=1), part.max(axis=1), part[:, 0] * scale])


def test_map_rows_equal_one_process(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 10)
    x = np.random.default_rng(0).normal(size=(1001, 4))
    one = parallel.map_rows(_row_stats, x, 0.5, out_cols=3, n_workers=1)
    assert np.array_equal(one, _row_stats(x, 0.5))
    for k in (2, 3):
        assert np.array_equal(parallel.map_rows(_row_stats, x, 0.5, out_cols=3, n_workers=k), one)
        assert np.array_equal(parallel.map_rows(_row_stats, x, 0.5, out_cols=3, n_workers=k, threads=True), one)
    assert parallel.map_rows(_row_stats, x[:0], 0.5, out_cols=3, n_workers=2).shape == (0, 3)


def test_map_tasks_keeps_task_order():
    tasks = [(i, np.full(300_000, i)) for i in range(7)]  # 2.4 MB arrays: memory-mapped by joblib
    assert list(parallel.map_tasks(_sum, tasks, 2)) == [i * 300_000 for i in range(7)]
    assert list(parallel.map_tasks(_sum, tasks, 1)) == [i * 300_000 for i in range(7)]


def _sum(i: int, a: np.ndarray) -> int:
    return int(a.sum())


def _where(i: int, frame) -> tuple[int, int, list]:
    import os

    return i, os.getpid(), frame.to_dicts()


def test_the_next_task_runs_here_and_the_pool_takes_the_ones_after_it():
    """The caller runs the task it needs next when nobody has taken it (no round trip; a win
    model's judging overlaps the pool's fit of the next cutoff), the pool the one after it; a
    polars frame reaches the pool process whole (it travels as an Arrow table)."""
    import os

    import polars as pl

    frames = [pl.DataFrame({"a": [i, i + 1], "s": ["x", None], "d": [None, 1.5]}) for i in range(2)]
    out = list(parallel.map_tasks(_where, [(i, f) for i, f in enumerate(frames)], 2))
    assert [i for i, _, _ in out] == [0, 1]
    assert out[0][1] == os.getpid() and out[1][1] != os.getpid()
    assert [rows for _, _, rows in out] == [f.to_dicts() for f in frames]


def _pid_or_fail(fail: bool) -> int:
    import os

    if fail:
        raise ValueError("generation failed")
    return os.getpid()


def test_in_background_runs_in_a_pool_process_and_reraises_there_or_here_with_one_worker(monkeypatch):
    import os

    assert parallel.in_background(_pid_or_fail, False)() != os.getpid()  # the caller went on meanwhile
    with pytest.raises(ValueError, match="generation failed"):
        parallel.in_background(_pid_or_fail, True)()
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    assert parallel.in_background(_pid_or_fail, False)() == os.getpid()


def _sum_once_released(i: int, a: np.ndarray, gate: str, caller: int) -> int:
    """_sum, but a pool process waits until the caller opens the gate (a file): the pool's tasks
    stay in flight while the caller's first result is checked, however fast the pool is."""
    import os
    import time

    deadline = time.monotonic() + 60
    while os.getpid() != caller and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(a.sum())


def test_lazy_tasks_are_built_when_taken_each_once(tmp_path):
    """The ICP fits' rows are read when their task is taken: before the first result only the
    task this process runs and the ones queued for the pool exist, and each is built once."""
    import os

    built, gate = [], str(tmp_path / "open")

    def build(i):
        built.append(i)
        return i, np.full(10, i), gate, os.getpid()

    results = parallel.map_tasks(_sum_once_released, parallel.LazyTasks(range(9), build), 2)
    assert next(results) == 0 and len(built) == 3  # task 0 here, two queued for the pool
    open(gate, "w").close()
    assert [0, *results] == [i * 10 for i in range(9)]
    assert sorted(built) == list(range(9))  # each once (the pool's first two before task 0)
    assert list(parallel.map_tasks(_sum_once_released, parallel.LazyTasks(range(3), build), 1)) == [0, 10, 20]


def _pid(i: int) -> tuple[int, int]:
    return i, os.getpid()


def test_pool_only_tasks_run_in_the_pool_built_in_order():
    """here=False (the forecast's past dates, the backtest's origins): every task runs in a pool
    process, none in this one, results in task order, and the tasks are built in task order (a
    builder reading dates' rows in order relies on it)."""
    built = []

    def build(i):
        built.append(i)
        return (i,)

    out = list(parallel.map_tasks(_pid, parallel.LazyTasks(range(9), build), 2, here=False))
    assert [i for i, _ in out] == list(range(9)) and built == list(range(9))
    assert os.getpid() not in {pid for _, pid in out}
    assert len({pid for _, pid in out}) <= 2
    assert [pid for _, pid in parallel.map_tasks(_pid, [(0,)], 2, here=False)] == [os.getpid()]  # one task: here


def _interval(i: int) -> tuple[int, float, float]:
    import time

    start = time.monotonic()
    time.sleep(0.15)
    return os.getpid(), start, time.monotonic()


def _growth_limit(i: int) -> int:
    from joblib.externals.loky import process_executor

    return process_executor._MAX_MEMORY_LEAK_SIZE


def test_the_pool_never_shrinks_and_keeps_its_depth():
    """A call wanting fewer pool processes than the pool has keeps them all (shrinking ended a
    worker that had imported the model code; the next larger call started a fresh one), and has
    no more tasks in flight than its depth (one process here and a pool of one: two)."""
    list(parallel.map_tasks(_pid, [(i,) for i in range(6)], 3, here=False))  # a pool of 3
    before = set(parallel._pool(1)._processes)
    assert len(before) == 3
    out = list(parallel.map_tasks(_interval, [(i,) for i in range(8)], 2))  # here + one pool process
    assert set(parallel._pool(1)._processes) == before  # no worker ended, none started
    pooled = sorted((s, e) for pid, s, e in out if pid != os.getpid())
    assert pooled and all(c[0] >= a[1] for a, c in zip(pooled, pooled[2:]))  # never three at a time
    assert [pid for pid, _, _ in out].count(os.getpid()) >= 1
    # loky's restart of a worker that grew by 300 MB is moved by the model code's imports (~290 MB)
    assert set(parallel.map_tasks(_growth_limit, [(i,) for i in range(4)], 3, here=False)) == {parallel.WORKER_GROWTH_LIMIT}


def _frames(i: int, n: int):
    import polars as pl

    rng = np.random.default_rng(i)
    frame = pl.DataFrame({"id": [f"OPP-{j:08d}" for j in range(n)], "x": rng.random(n),
                          "w": rng.random((n, 3)).tolist(), "s": [None if j % 7 else "a" for j in range(n)]})
    return frame.with_columns(pl.col("w").cast(pl.List(pl.Float64))), frame.head(2), np.arange(n, dtype=np.int64) + i


def test_large_results_come_back_through_files_equal():
    """A pool task's frames and arrays over SPILL_BYTES come back through /dev/shm files (a frame
    as Arrow IPC, mapped here), equal to the ones computed here, and their files are removed; a
    small frame goes through the pipe as it is."""
    import tempfile

    folder = tempfile.mkdtemp()
    spilled = parallel._spilling(folder, _frames, 3, 150_000)
    assert [type(a) for a in spilled] == [parallel._SpilledFrame, type(_frames(3, 150_000)[1]), parallel._Spilled]
    back = parallel._unspill(spilled)
    assert os.listdir(folder) == []
    for got, want in zip(back, _frames(3, 150_000)):
        assert got.equals(want) if hasattr(want, "equals") else np.array_equal(got, want)
    out = list(parallel.map_tasks(_frames, [(i, 150_000) for i in range(4)], 2, here=False))
    for i, got in enumerate(out):
        assert all(g.equals(w) if hasattr(w, "equals") else np.array_equal(g, w) for g, w in zip(got, _frames(i, 150_000)))


def _boom(part):
    raise ValueError("no")


def test_a_failing_worker_raises_its_error(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 10)
    for threads in (False, True):
        with pytest.raises(ValueError, match="no"):
            parallel.map_rows(_boom, np.zeros((100, 2)), out_cols=2, n_workers=2, threads=threads)


def test_treeshap_in_workers_equals_one_process(monkeypatch):
    """In threads, or in pool processes (the booster pickled as its model text): the same
    contributions, bit for bit."""
    import lightgbm as lgb

    from revintel_assets.defs.deals import win_model

    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 5))
    y = (x[:, 0] + rng.normal(size=3000) > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1}, lgb.Dataset(x, y), 30)
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 500)
    one = parallel.map_rows(win_model._tree_shap, x, booster, 30, out_cols=7, n_workers=1)
    assert one.shape == (3000, 7)  # 5 features, the bias, the raw score
    for threads in (True, False):  # threads (what explain() uses) and pool processes
        assert np.array_equal(parallel.map_rows(win_model._tree_shap, x, booster, 30, out_cols=7, n_workers=2,
                                                threads=threads), one)


def test_engine_on_a_dask_cluster_equals_local(dask_cluster, monkeypatch):
    """The forecast engine's chunks through a real Dask cluster (scheduler + 2 workers on
    127.0.0.1), chosen by REVINTEL_CLUSTER: bit-identical to this machine, and the workers did run them."""
    from revintel_assets.defs.forecast import simulate
    from tests import synthetic
    from tests.conftest import tasks_run

    inp = synthetic.engine_input(n_deals=20_000, n_atoms=16, seed=1)
    groups = (np.arange(inp.n_reps)[None, :] % 3 == np.arange(3)[:, None]).astype(float)
    local = simulate.simulate_blocks(inp, 2000, 3, groups=groups, keep_reps=True, workers=2)
    before = sum(w.get("simulate_chunk", 0) for w in tasks_run(dask_cluster).values())
    monkeypatch.setenv("REVINTEL_CLUSTER", dask_cluster)
    assert parallel.cluster() == dask_cluster
    remote = simulate.simulate_blocks(inp, 2000, 3, groups=groups, keep_reps=True, workers=2)
    after = tasks_run(dask_cluster)
    assert sum(w.get("simulate_chunk", 0) for w in after.values()) > before  # the setting was not ignored
    for name in ("group_grid", "division_grid", "rep_grid"):
        assert np.array_equal(getattr(local, name), getattr(remote, name)), name
    assert local.bookings == remote.bookings
    # a run's own choice ("" = this machine) wins over the environment
    with parallel.using(""):
        assert parallel.cluster() is None
        assert list(parallel.map_tasks(_sum, [(1, np.ones(3))], 2)) == [3]


def test_a_cluster_gets_lazy_tasks_a_window_ahead_not_all_at_once(dask_cluster):
    """On a cluster (two workers of one thread: a window of four) a LazyTasks task is built when
    it is submitted, a few ahead of the result taken, in task order; results come in task order.
    (operator.neg: the scheduler unpickles tasks, and it cannot import this test module.)"""
    import operator

    built = []

    def build(i):
        built.append(i)
        return (i,)

    with parallel.using(dask_cluster):
        results = parallel.map_tasks(operator.neg, parallel.LazyTasks(range(12), build))
        assert next(results) == 0 and built == [0, 1, 2, 3]  # not all twelve
        assert list(results) == [-i for i in range(1, 12)] and built == list(range(12))


def test_a_process_that_loads_the_definitions_calls_blas_with_one_thread():
    """A Dagster process (CLI run, run worker) loads the definitions before any step: from then on
    every BLAS library, loaded already (numpy's) or later (scipy's, on first use), has one thread,
    while OpenMP (LightGBM) keeps the machine's cores. Run in a fresh interpreter: the limit is
    process-wide."""
    import json
    import subprocess
    import sys

    code = ("import json, numpy; from threadpoolctl import threadpool_info\n"
            "before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
            "from revintel_assets.definitions import load; load()\n"
            "import scipy.linalg, sklearn.linear_model, lightgbm\n"
            "info = threadpool_info()\n"
            "print(json.dumps({'before': before, 'blas': [i['num_threads'] for i in info if i['user_api'] == 'blas'],"
            " 'openmp': [i['num_threads'] for i in info if i['user_api'] == 'openmp']}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    env={**os.environ, "OPENBLAS_NUM_THREADS": "", "MKL_NUM_THREADS": ""}
                                    ).stdout.strip().splitlines()[-1])
    cores = len(os.sched_getaffinity(0))
    assert out["before"] == [cores]  # numpy's BLAS starts with every core: the limit is what changes it
    assert len(out["blas"]) >= 2 and set(out["blas"]) == {1}
    assert out["openmp"] and set(out["openmp"]) == {cores}


_ORPHAN = """
import os, sys, time
from revintel_assets import parallel
def pid(i): return os.getpid()
print(" ".join(str(p) for p in {p for p in parallel.map_tasks(pid, [(i,) for i in range(6)], 3, here=False)}), flush=True)
time.sleep(60)
"""


def test_pool_processes_exit_when_their_parent_is_killed(tmp_path):
    """`kill -9` of a run left its loky workers running for good (460 MB each at scale 0.1); each
    watches its parent and exits when it is gone."""
    import subprocess
    import sys
    import time

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": repo})
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers and all(os.path.exists(f"/proc/{w}") for w in workers)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{w}") for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if os.path.exists(f"/proc/{w}")]
    for w in alive:
        os.kill(w, 9)
    assert alive == []
