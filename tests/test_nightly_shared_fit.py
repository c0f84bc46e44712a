"""The nightly on the session's demo (`revintel demo --scale 0.1`), as the schedule runs it: the
forecast, the deal outlook and the quota attainment of the date use one timing model, the
forecast's (fitted once, on the first Monday of the date's 4-week block), and the snapshot and
score checks read the run's date only."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from revintel_assets.defs.forecast import history

REPO = Path(__file__).resolve().parents[1]
NIGHTLY = textwrap.dedent("""
    import json, sys, warnings
    warnings.filterwarnings("ignore")
    from revintel_assets.defs.forecast import timing
    from revintel_assets.definitions import load
    from revintel_resources.instance import dagster_instance, run_tags
    cutoffs, fit = [], timing.fit
    def recording(snapshots, cutoff, *args, **kwargs):
        cutoffs.append(str(cutoff))
        return fit(snapshots, cutoff, *args, **kwargs)
    timing.fit = recording  # every timing fit of the run, whichever asset asks for it
    result = load().resolve_job_def("nightly_rescore_job").execute_in_process(
        instance=dagster_instance(), partition_key=sys.argv[1], raise_on_error=True, tags=run_tags(),
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    checks = {e.check_name: {k: v.value for k, v in e.metadata.items()} for e in result.get_asset_check_evaluations()}
    print(json.dumps({"cutoffs": cutoffs, "checks": checks}, default=str))
""")


def test_the_nightly_fits_one_timing_model_and_checks_its_own_date(demo_data, tmp_path):
    src, _, env = demo_data
    data = tmp_path / "data"
    shutil.copytree(src, data)
    env = {**env, "REVINTEL_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")}
    con = duckdb.connect(str(data / "warehouse" / ".work" / "revintel.duckdb"), read_only=True)
    try:
        as_of = con.execute("SELECT max(as_of_date) FROM features.deal_snapshot").fetchone()[0]
    finally:
        con.close()
    proc = subprocess.run([sys.executable, "-c", NIGHTLY, str(as_of)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    block = history.timing_cutoff(as_of, history.REFIT_TIMING_WEEKS)
    assert block <= as_of and block.weekday() == 0 and (as_of - block) < dt.timedelta(weeks=4)
    # forecast, outlook and attainment all ran (the job's selection) and asked for one model, fitted once
    assert out["cutoffs"] == [str(block)], out["cutoffs"]
    assert out["checks"]["snapshot_keys_unique"]["dates"] == str(as_of)
    assert out["checks"]["every_open_deal_scored"]["checked"] == str(as_of)
    assert out["checks"]["every_open_deal_scored"]["dates"] == 1
