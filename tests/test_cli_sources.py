"""Issue 13 item 5: every kind of source completes the whole graph through the CLI with exit 0
and plain-language messages: a CRM-only Salesforce export (no history, load-date CreatedDate)
and a transactions-only log (UCI Online Retail II headers, a SKU map with an unmapped SKU and a
non-product division). Each runs `revintel run --source DIR --no-serve` as a user does (a
subprocess with its own REVINTEL_DATA_DIR); a whole-graph run takes 1-5 minutes."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.test_contract_tables import contract_tables_hold

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


ICP_TABLES = ("features.customer_division", "scores.icp_scores", "scores.whitespace", "validation.holdout_gains")
DEAL_TABLES = ("features.deal_snapshot", "scores.deal_scores", "scores.deal_explanations", "scores.pipeline_changes",
               "scores.pipeline_waterfall", "scores.deal_outlook", "scores.deal_alerts", "forecast.quota_attainment",
               "forecast.plan_deals", "forecast.forecast_accuracy", "forecast.revenue_forecast",
               "forecast.forecast_backtest")


def run_cli(source: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "REVINTEL_AS_OF", "REVINTEL_SOURCE",
                                                           "REVINTEL_MAPPING", "REVINTEL_FORMAT")}
    env["REVINTEL_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "revintel_assets.cli", "run", "--source", str(source), "--no-serve", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    (data / "run.log").write_text(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-8000:]}")
    return proc


def query(data: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse" / "revintel.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_crm_only_salesforce_export_completes_and_scores(tmp_path):
    data = tmp_path / "data"
    proc = run_cli(FIXTURES / "salesforce_no_history", data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out and "CatalogException" not in out
    # 'Stage 7 (legacy)' with IsClosed false is an open deal, kept at Prospecting (it was quarantined)
    assert query(data, "SELECT count(*) FROM star.quarantine") == [(0,)]
    assert query(data, "SELECT count(*), count(*) FILTER (WHERE is_closed) FROM star.fact_opportunity") == [(50, 32)]
    # the open deals are scored as of the export date (18), and on every earlier as-of date: one row per open deal
    assert query(data, "SELECT count(*) FROM scores.deal_scores WHERE as_of_date = DATE '2024-05-04'") == [(18,)]
    assert query(data, "SELECT count(*) FROM scores.deal_scores") == query(data, "SELECT count(*) FROM features.deal_snapshot")
    assert query(data, "SELECT export_date::VARCHAR FROM meta.source") == [("2024-05-04",)]
    # no transactions, no ICP; 32 closed deals, too few for a win model (no calibration bins): those
    # contract tables are there, empty (docs/CONTRACT.md §3)
    kinds = contract_tables_hold(data / "warehouse" / "revintel.duckdb")
    assert {t for t, k in kinds.items() if k == "placeholder"} == {*ICP_TABLES, "validation.calibration_bins"}


def test_an_as_of_after_the_data_scores_as_of_the_data(tmp_path):
    """--as-of a year past the export's last date: nothing is scored or forecast past the data
    (docs/CONTRACT.md §4); the run says it scored as of the last date (it scored 53 weekly dates of
    no data, its forecast reaching a year on)."""
    data = tmp_path / "data"
    proc = run_cli(FIXTURES / "salesforce_no_history", data, "--as-of", "2025-05-04")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "--as-of 2025-05-04 is after the data's last date 2024-05-04: scored as of 2024-05-04" in out
    for table in ("scores.deal_scores", "features.deal_snapshot", "forecast.revenue_forecast"):
        assert query(data, f"SELECT max(as_of_date)::VARCHAR FROM {table}") == [("2024-05-04",)], table
    assert "export date: 2024-05-04 (the as-of date)" in out


def transactions_only(folder: Path, customers: int = 12, months: int = 9) -> Path:
    """An Online Retail II-style log: a dozen customers over 9 months (too little for any ICP model:
    the run must say so and exit 0), 4 product divisions, postage (Non-product in the SKU map) and
    one SKU the map does not name.

    Not tested here, because the fix is outside the import code: with more data (36 customers,
    15 months) some division models train and some do not, and icp/assets.py::division_propensity
    fails writing validation.icp_models (model_version typed from an all-NULL first cutoff as
    INTEGER, then VARCHAR) — the same TypeError as issue 13's demo-then-MavenTech run."""
    rng = random.Random(7)
    folder.mkdir(parents=True)
    skus = {f"{d[:3].upper()}{k}": d for d in ("Home Decor", "Kitchen", "Garden", "Toys") for k in range(3)}
    rows, invoice = [], 500000
    for month in range(months):
        for c in range(customers):
            if rng.random() < 0.45:
                continue
            invoice += 1
            day = dt.datetime(2010, 1, 4, 9) + dt.timedelta(days=30 * month + rng.randint(0, 27), minutes=rng.randint(0, 500))
            divisions = ["Home Decor", "Kitchen"] + (["Garden"] if c % 3 == 0 else []) + (["Toys"] if c % 4 == 0 else [])
            for _ in range(rng.randint(1, 4)):
                sku = rng.choice([s for s, d in skus.items() if d in divisions])
                rows.append([invoice, sku, sku.lower(), rng.randint(1, 24), day.strftime("%Y-%m-%d %H:%M:%S"),
                             f"{rng.uniform(0.5, 12):.2f}", f"{12000 + c}.0", "United Kingdom"])
            rows.append([invoice, "POST", "POSTAGE", 1, day.strftime("%Y-%m-%d %H:%M:%S"), "18.00", f"{12000 + c}.0",
                         "United Kingdom"])
            if rng.random() < 0.1:
                rows.append([invoice, "99999X", "MYSTERY", 1, day.strftime("%Y-%m-%d %H:%M:%S"), "3.00",
                             f"{12000 + c}.0", "United Kingdom"])
    rows.append([invoice + 1, "HOM1", "x", 1, "2010-06-30 10:00:00", "2.00", "", "United Kingdom"])  # no customer
    with open(folder / "online_retail_II.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"])
        w.writerows(rows)
    with open(folder / "sku_divisions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["stock_code", "description", "division"])
        w.writerows([[s, s.lower(), d] for s, d in skus.items()] + [["POST", "POSTAGE", "Non-product"]])
    return folder


def test_transactions_only_log_completes_and_skips_deals_with_a_reason(tmp_path):
    src = transactions_only(tmp_path / "tx")
    data = tmp_path / "data"
    proc = run_cli(src, data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    assert "deal_scoring_job: skipped, the source has no dated opportunities" in proc.stdout
    assert query(data, "SELECT reason, count(*) FROM star.quarantine GROUP BY 1") == [
        ("customer_id is empty: the line cannot be attributed to an account", 1)]
    unmapped = query(data, "SELECT sku, lines FROM star.unmapped_skus")
    assert len(unmapped) == 1 and unmapped[0][0] == "99999X"
    divisions = {r[0] for r in query(data, "SELECT division FROM features.icp_divisions")}
    assert divisions == {"Home Decor", "Kitchen", "Garden", "Toys"}  # never Non-product nor Unmapped SKUs
    sellable = dict(query(data, "SELECT division, bool_and(sellable) FROM star.dim_product GROUP BY 1"))
    assert sellable["Non-product"] is False and sellable["Unmapped SKUs"] is False
    # no deals, and too little for an ICP model: the deal, forecast, score and validation tables are there,
    # empty (docs/CONTRACT.md §3)
    kinds = contract_tables_hold(data / "warehouse" / "revintel.duckdb")
    assert {t for t, k in kinds.items() if k == "placeholder"} == {*DEAL_TABLES, *ICP_TABLES, "validation.model_metrics",
                                                                   "validation.calibration_bins"} - {
        "features.customer_division"}


def test_hubspot_export_completes_and_scores(tmp_path):
    data = tmp_path / "data"
    proc = run_cli(FIXTURES / "hubspot", data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    assert query(data, "SELECT source_format FROM meta.source") == [("hubspot",)]
    assert query(data, "SELECT count(*) FROM star.fact_opportunity") == [(39,)]
    assert [r[1] for r in query(data, "SELECT reason, count(*) FROM star.quarantine GROUP BY 1")] == [1]
    assert query(data, "SELECT count(*) FROM scores.deal_scores WHERE as_of_date = "
                       "(SELECT max(as_of_date) FROM scores.deal_scores)") == [(15,)]
    assert "icp_features_job: skipped, no ICP division and cutoff" in proc.stdout


def test_too_little_maventech_variant_completes(tmp_path):
    """Four deals in a MavenTech-style export with created_on, In_Progress and no sector /
    office_location / series: imports without a mapping, and too little data is a warning, not a
    crash (deal_outlook used to fail on an empty metrics frame)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_import_variants import maventech_variant

    src = maventech_variant(tmp_path / "mt")
    data = tmp_path / "data"
    proc = run_cli(src, data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    assert "win_probability not trained" in proc.stdout
    assert "icp_whitespace_job: skipped, no ICP model cutoff" in proc.stdout
    assert query(data, "SELECT count(*) FROM star.fact_opportunity") == [(4,)]
    assert query(data, "SELECT count(*) FROM star.quarantine") == [(0,)]
    assert query(data, "SELECT count(*) FROM scores.deal_scores WHERE as_of_date = "
                       "(SELECT max(as_of_date) FROM scores.deal_scores)") == [(2,)]


def test_an_export_with_no_deal_open_on_any_date_completes(tmp_path):
    """An audit: one HubSpot deal, won on the export date, left features.deal_snapshot empty and the
    win model's time windows crashed on it (TypeError: date - NoneType, exit 1). Too little data is a
    warning (CONTRACT §4)."""
    src = tmp_path / "hs"
    src.mkdir()
    (src / "deals.csv").write_text("Record ID,Deal Name,Deal Stage,Amount,Close Date,Create Date,Deal owner\n"
                                   "152837000001,Deal 0,Closed Won,75000,2023-07-15 10:22,2023-06-16 09:00,Ann Lee\n")
    data = tmp_path / "data"
    proc = run_cli(src, data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    assert "win_probability not trained for cutoff 2023-07-15: no deal was open on any as-of date" in proc.stdout
    assert query(data, "SELECT count(*) FROM star.fact_opportunity") == [(1,)]
    assert query(data, "SELECT count(*) FROM scores.deal_scores") == [(0,)]


def test_every_transaction_line_quarantined_is_a_warning_not_a_crash(tmp_path):
    """A tidy log whose every line lacks its customer: nothing reaches star.fact_transactions (its
    months are never registered), and the ICP plan used to fail reading that table (exit 1, no
    analyst file to find the quarantine in). Now: exit 0, the quarantine published, the ICP says why."""
    src = tmp_path / "tx"
    src.mkdir()
    lines = "".join(f",2024-01-{i % 28 + 1:02d},A{i % 3},1,10.5\n" for i in range(30))
    (src / "transactions.csv").write_text("customer_id,order_date,sku,quantity,amount\n" + lines)
    data = tmp_path / "data"
    proc = run_cli(src, data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "CatalogException" not in out and "Traceback" not in out
    assert "every one was quarantined" in proc.stdout
    assert query(data, "SELECT count(*), min(line_number), max(line_number) FROM star.quarantine") == [(30, 2, 31)]
    assert query(data, "SELECT count(*) FROM features.icp_cutoffs") == [(0,)]


def test_an_as_of_before_the_data_is_refused_in_one_line(tmp_path):
    """--as-of 1990-01-01 on a 2023-24 export crashed in the win model's windows (TypeError, exit 1):
    refused at the import, with the dates the data covers, before the data directory changes."""
    data = tmp_path / "data"
    proc = run_cli(FIXTURES / "salesforce_no_history", data, "--as-of", "1990-01-01")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-4000:]
    assert "Traceback" not in out and "TypeError" not in out
    assert "--as-of 1990-01-01 is before the first date in the source (" in proc.stderr
    assert "to 2024-05-04" in proc.stderr
    # refused inside the import's transaction: the staging tables hold nothing of this source (a review)
    with duckdb.connect(str(data / "warehouse" / ".work" / "revintel.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'staging'").fetchone()[0] == 0


def test_arguments_that_are_not_what_they_should_be_get_one_line_each(capsys, tmp_path):
    from revintel_assets.cli import main

    for argv, said in ((["run", "--source", str(tmp_path), "--as-of", "31/12/2025"], "expected a date written YYYY-MM-DD"),
                       (["run", "--source", str(tmp_path), "--as-of", "2025-13-45"], "expected a date written YYYY-MM-DD"),
                       (["generate", "--out", str(tmp_path / "x"), "--scale", "0"], "expected a number above 0"),
                       (["generate", "--out", str(tmp_path / "x"), "--scale", "inf"], "expected a number above 0")):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own exit
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and said in err and "Traceback" not in err, (argv, err)
    (tmp_path / "file").write_text("x")
    assert main(["generate", "--out", str(tmp_path / "file")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_a_launchpad_as_of_that_is_no_date_is_refused_naming_the_field():
    """`resources: source: config: as_of: 2025/12/01` from the launchpad wrote every asset, then
    failed a check with a bare 'Invalid isoformat string' (an audit): refused where it is given."""
    import pydantic
    import pytest

    from revintel_resources.source import SourceResource

    assert SourceResource(as_of="2025-12-01").as_of_override().isoformat() == "2025-12-01"
    for bad in ("2025/12/01", "2025-13-45"):
        with pytest.raises(pydantic.ValidationError, match="source.as_of: expected a date written YYYY-MM-DD"):
            SourceResource(as_of=bad)
