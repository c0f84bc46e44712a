"""Issue 17: the whole graph with its heavy kernels on a real Dask cluster (a `dask scheduler` and
two `dask worker` processes on 127.0.0.1) gives the same analyst tables as a local run, and the
workers really ran the forecast engine's chunks and the TreeSHAP blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.compare_warehouses import compare
from tests.conftest import tasks_run

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_on_a_dask_cluster_equals_local(demo_data, dask_cluster, tmp_path):
    local, _, env = demo_data  # `revintel demo --no-serve --scale 0.1` on this machine's cores
    env = {k: v for k, v in env.items() if k not in ("DAGSTER_HOME", "REVINTEL_CLUSTER")}
    env["REVINTEL_DATA_DIR"] = str(tmp_path / "data")
    before = tasks_run(dask_cluster)
    proc = subprocess.run([sys.executable, "-m", "revintel_assets.cli", "demo", "--no-serve", "--scale", "0.1",
                           "--cluster", dask_cluster], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = tasks_run(dask_cluster)

    def ran(counts, name):
        return sum(w.get(name, 0) for w in counts.values())
    # the --cluster option reached the kernels: the workers executed the engine's chunks (forecast
    # and every backtest origin) and the TreeSHAP blocks of every scored date
    assert ran(after, "simulate_chunk") - ran(before, "simulate_chunk") > 0, after
    assert ran(after, "tree_shap") - ran(before, "tree_shap") > 0, after
    assert sum(1 for w in after.values() if sum(w.values())) == 2, after  # both workers took tasks

    problems = compare(str(local / "warehouse" / "revintel.duckdb"),
                       str(tmp_path / "data" / "warehouse" / "revintel.duckdb"))
    assert problems == []
