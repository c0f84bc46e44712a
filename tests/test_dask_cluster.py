"""Issue 17: the whole graph with its heavy kernels on a real Dask cluster (a `dask scheduler` and
two `dask worker` processes on 127.0.0.1) gives the same analyst tables as a local run, and the
workers really ran the forecast engine's chunks, the TreeSHAP blocks and the model fits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.compare_warehouses import compare
from tests.cli_run import run_demo
from tests.conftest import tasks_run


@pytest.fixture
def local_demo(request) -> Path:
    """The session's `revintel demo --no-serve --scale 0.1`, run on this machine's cores;
    REVINTEL_DASK_LOCAL_DEMO reuses another finished one (its data directory)."""
    prebuilt = os.environ.get("REVINTEL_DASK_LOCAL_DEMO")
    return Path(prebuilt) if prebuilt else request.getfixturevalue("demo_data")[0]


@pytest.mark.slow
def test_demo_on_a_dask_cluster_equals_local(local_demo, dask_cluster, tmp_path):
    local = local_demo
    before = tasks_run(dask_cluster)
    run_demo(tmp_path / "data", "--cluster", dask_cluster, timeout=3600)
    after = tasks_run(dask_cluster)

    def ran(counts, name):
        return sum(w.get(name, 0) for w in counts.values())
    # the --cluster option reached the kernels: the workers executed the engine's chunks (every
    # backtest origin, the latest forecast), the forecasts of the past dates, each a task, and the
    # TreeSHAP blocks of every scored date
    assert ran(after, "simulate_chunk") - ran(before, "simulate_chunk") > 0, after
    assert ran(after, "forecast_past_date") - ran(before, "forecast_past_date") > 0, after
    assert ran(after, "tree_shap") - ran(before, "tree_shap") > 0, after
    # and the model fits: every training cutoff's win model and every ICP cutoff x division
    assert ran(after, "fit_win_model") - ran(before, "fit_win_model") > 0, after
    assert ran(after, "fit_division") - ran(before, "fit_division") > 0, after
    assert sum(1 for w in after.values() if sum(w.values())) == 2, after  # both workers took tasks

    assert (local / "warehouse" / "revintel.duckdb").exists(), f"no finished local demo in {local}"
    # each run generated its own copy of the demo (same seed): the files are the same, byte for
    # byte, so the folder's name (meta.source.source_path) is the one thing that may differ
    ours, theirs = tmp_path / "data" / "demo", local / "demo"
    files = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file())
    assert all((ours / f).read_bytes() == (theirs / f).read_bytes() for f in files)
    problems = compare(str(local / "warehouse" / "revintel.duckdb"),
                       str(tmp_path / "data" / "warehouse" / "revintel.duckdb"), ignore=frozenset({"source_path"}))
    assert problems == []
