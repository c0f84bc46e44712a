"""`revintel demo --no-serve` for real, as a user runs it, then the analyst file read from
another process, read-only, as an analyst would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _read_only(db: Path, sql: str) -> list:
    code = ("import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(json.dumps(con.execute(sys.argv[2]).fetchall(), default=str))")
    out = subprocess.run([sys.executable, "-c", code, str(db), sql], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def demo_run(demo_data):
    data, stdout, _ = demo_data
    return data, stdout


@pytest.mark.slow
def test_demo_materializes_the_graph_and_publishes(demo_run):
    data, stdout = demo_run
    assert "Done in" in stdout and "deal_scoring_job" in stdout
    db = data / "warehouse" / "revintel.duckdb"
    summary = json.loads((data / "demo" / "truth" / "summary.json").read_text())
    counts = dict(_read_only(db, "SELECT 'opps', count(*) FROM star.fact_opportunity UNION ALL "
                                 "SELECT 'accounts', count(*) FROM star.dim_account UNION ALL "
                                 "SELECT 'lines', count(*) FROM star.fact_transactions WHERE source = 'sales_log' "
                                 "UNION ALL SELECT 'quarantine', count(*) FROM star.quarantine"))
    assert counts["opps"] == summary["opportunities"]
    assert counts["accounts"] == summary["accounts"]
    assert counts["lines"] == summary["transaction_lines"]
    assert counts["quarantine"] == 0
    # everything in the warehouse is also in MLflow and Dagster's home under the same data dir
    assert (data / "mlflow" / "mlflow.db").exists() and (data / "dagster_home" / "dagster.yaml").exists()


@pytest.mark.slow
def test_demo_scores_every_open_deal_with_calibrated_probabilities(demo_run):
    data, _ = demo_run
    db = data / "warehouse" / "revintel.duckdb"
    (as_of,), = _read_only(db, "SELECT export_date FROM meta.source")
    open_deals = _read_only(db, f"SELECT count(*) FROM features.deal_snapshot WHERE as_of_date = '{as_of}'")[0][0]
    scored = _read_only(db, f"SELECT count(*), min(win_probability), max(win_probability), min(risk_score), "
                            f"max(risk_score), count(DISTINCT risk_category) FROM scores.deal_scores "
                            f"WHERE as_of_date = '{as_of}'")[0]
    assert scored[0] == open_deals > 0
    assert 0 <= scored[1] <= scored[2] <= 1 and 0 <= scored[3] <= scored[4] <= 100 and scored[5] >= 3
    explained = _read_only(db, f"SELECT count(DISTINCT opportunity_id) FROM scores.deal_explanations "
                               f"WHERE as_of_date = '{as_of}'")[0][0]
    assert explained == open_deals
    metrics = {r[0] for r in _read_only(db, "SELECT DISTINCT model_name FROM validation.model_metrics "
                                            "WHERE division = 'all'")}
    assert {"win_probability", "baseline_base_rate", "baseline_stage", "baseline_naive_bayes"} <= metrics
    # the outlook of the export date, and the outlook judged on past quarters (by the judges' job,
    # not the nightly) beside its baseline
    (outlook,), = _read_only(db, f"SELECT count(*) FROM scores.deal_outlook WHERE as_of_date = '{as_of}'")
    assert outlook == 2 * open_deals
    judged = {r[0] for r in _read_only(db, "SELECT DISTINCT model_name FROM validation.model_metrics "
                                           f"WHERE model_family = 'outlook' AND cutoff_date = '{as_of}'")}
    assert {"deal_outlook_win_in_period", "baseline_expected_close_win_in_period"} <= judged
    # the demo's export date is a quarter's last day (2025-12-31): "this quarter" is the next one, as the
    # forecast's, so its deals can close in it (it was the ending quarter: every p_win_in_period 0)
    (p_this,), = _read_only(db, "SELECT avg(p_win_in_period) FROM scores.deal_outlook "
                                f"WHERE as_of_date = '{as_of}' AND period = 'this_quarter'")
    assert p_this > 0.01
    # a metric undefined on its rows (an empty bin's mean, an AUC over one class) is left out, not NaN
    assert _read_only(db, "SELECT count(*) FROM validation.model_metrics WHERE isnan(value)")[0][0] == 0
