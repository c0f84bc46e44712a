"""The Forecast page in a real browser, on tables the forecast code itself produced (synthetic CRM)."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from browser import analyst_db_path, build_analyst_db, chromium, render_page, streamlit_server
from revintel_assets.defs.forecast import backtest, model, probabilities, simulate, timing
import synthetic  # tests/synthetic.py: a fixture, not product code
from revintel_assets.defs.forecast.periods import calendar

AS_OF = dt.date(2024, 9, 30)


def forecast_tables() -> dict[str, pl.DataFrame]:
    snaps, opps, reps = synthetic.history(n_deals=2000, seed=4)
    labelled = snaps.filter(pl.col("is_won").is_not_null())
    fn = probabilities.stage_baseline(labelled)
    rows = snaps.filter(pl.col("as_of_date") == AS_OF)
    p, _ = fn(AS_OF, rows)
    deals = rows.with_columns(pl.Series("win_probability", p))
    cal = calendar(AS_OF, 13)
    frame, prep, _ = model.forecast(deals, timing.fit(snaps, AS_OF), cal, reps, opps, 1000, 1, 0.1, 0.2)
    frame = frame.with_columns(pl.lit(1000).alias("n_sims"))
    origins = [AS_OF - dt.timedelta(weeks=20 + k) for k in range(4)]
    bt = []
    for o in origins:
        org = backtest.prepare_origin(o, snaps, opps, reps, fn, timing.fit(snaps, o), 13)
        x = backtest.run_sims(org, 500, 1)
        bt.append(backtest.evaluate_origin(org, x, simulate.shock(500, org.cal.atom_week_all, 0.1, 0.2, 1)))
    bt = pl.concat(bt).with_columns(pl.lit(AS_OF).alias("backtest_as_of"))
    metrics = backtest.metrics(bt).with_columns(pl.lit(AS_OF).alias("cutoff_date"), pl.lit("forecast").alias("model_family"),
                                                pl.lit("all").alias("division"), pl.lit("holdout").alias("split"))
    return {"forecast.revenue_forecast": frame, "forecast.deal_contributions": model.deal_contributions(prep),
            "forecast.forecast_backtest": bt, "validation.model_metrics": metrics,
            "star.dim_rep": reps, "star.fact_opportunity": opps}


@pytest.mark.browser
def test_forecast_page(tmp_path):
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, base=True)
    con = duckdb.connect(str(analyst_db_path(data_dir)))
    try:
        con.execute("DROP TABLE star.fact_opportunity")
        for schema in ("forecast", "validation"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, frame in forecast_tables().items():
            con.register("src", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM src")
            con.unregister("src")
    finally:
        con.close()
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "forecast", name="forecast", expect_text="Deals that drive the spread",
                           timeout=60)
    assert "Traceback" not in text and "Not built yet" not in text
    assert "Revenue Forecast" in text and "P10 – P90" in text
    assert "Backtests: was the range right as often as it claims?" in text
    assert "Coverage over time" in text and "forecast vs actual" in text
    assert "P50 pinball loss vs weighted pipeline" in text
    assert "Largest single source of spread: D00" in text  # the deals behind the spread
    # an open-deals-only export without amounts: nothing booked, nothing forecast in any backtested
    # period. Every [0, 0] range covered its 0 and the page said 100 %; it now says there is nothing to judge
    con = duckdb.connect(str(analyst_db_path(data_dir)))
    try:
        con.execute("UPDATE forecast.forecast_backtest SET p10 = 0, p50 = 0, p90 = 0, actual = 0")
    finally:
        con.close()
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "forecast", name="forecast_nothing_to_judge",
                           expect_text="the backtest has nothing to judge", timeout=60)
    assert "Coverage over time" not in text and "Traceback" not in text
