"""Range runs over as-of dates work in batches of ROWS_PER_PASS snapshot rows (scale 100 ran out
of memory holding every date at once), and the snapshot backfill in statements of up to
SNAPSHOT_ROWS_PER_STATEMENT rows (one statement spilled): batch sizes that cut the demo's dates
into many batches must write exactly the rows of one pass."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from benchmarks.compare_warehouses import compare
from revintel_assets.defs.deals.partitions import date_batches

ROOT = Path(__file__).resolve().parents[1]
JOBS = ["deal_snapshot_job", "deal_scoring_job", "pipeline_job", "forecast_job"]
BATCHED = ["features.deal_snapshot", "scores.deal_scores", "scores.deal_explanations", "scores.pipeline_changes", "scores.pipeline_waterfall",
           "scores.deal_alerts", "forecast.revenue_forecast", "forecast.deal_contributions", "forecast.forecast_accuracy"]
RERUN = f"""
import sys
import revintel_assets.defs.deals.assets as deals, revintel_assets.defs.forecast.assets as forecast
import revintel_assets.defs.deals.partitions as partitions
deals.ROWS_PER_PASS = forecast.ROWS_PER_PASS = 1500
deals.SNAPSHOT_ROWS_PER_STATEMENT = 5_000
partitions.snapshot_batches.__defaults__ = (1500,)
from revintel_assets import orchestrate
from revintel_assets.definitions import load
orchestrate.materialize_all(load(), say=lambda s: None, jobs={JOBS!r})
"""


def test_date_batches_cut_by_rows_and_keep_every_date():
    d = [dt.date(2025, 1, i) for i in range(1, 8)]
    batches = date_batches(d, {d[0]: 5, d[1]: 5, d[2]: 20, d[3]: 1}, 10)
    assert batches == [d[:2], d[2:3], d[3:]]  # a date over the budget is a batch alone; empty dates count 0
    assert date_batches([], {}, 10) == []


def test_small_batches_write_what_one_pass_writes(demo_data, tmp_path):
    data, _, env = demo_data
    copy = tmp_path / "data"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("demo", "digests"))
    env = {**env, "REVINTEL_DATA_DIR": str(copy), "DAGSTER_HOME": str(copy / "dagster_home")}
    proc = subprocess.run([sys.executable, "-c", RERUN], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, after = data / "warehouse" / "revintel.duckdb", copy / "warehouse" / "revintel.duckdb"
    assert compare(str(before), str(after)) == []
    con = duckdb.connect(str(after), read_only=True)
    try:
        writes = dict(con.execute(f"SELECT table_name, count(*) FROM meta.table_log WHERE run_id IN "
                                  f"(SELECT run_id FROM meta.table_log GROUP BY 1 ORDER BY max(written_at) DESC LIMIT {len(JOBS)}) "
                                  "GROUP BY 1").fetchall())
    finally:
        con.close()
    assert all(writes.get(t, 0) > 3 for t in BATCHED), writes  # it did run in batches
