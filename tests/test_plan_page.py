"""The Plan page in a real browser, on tables the plan code itself produced (synthetic CRM)."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

import synthetic  # tests/synthetic.py: a fixture, not product code
from browser import analyst_db_path, build_analyst_db, chromium, render_page, streamlit_server
from revintel_assets.defs.forecast import backtest, probabilities, timing
from revintel_assets.defs.plan import attainment, honesty

AS_OF = dt.date(2024, 8, 12)


def plan_tables() -> dict[str, pl.DataFrame]:
    snaps, opps, reps = synthetic.history(n_deals=2000, seed=4)
    fn = probabilities.stage_baseline(snaps.filter(pl.col("is_won").is_not_null()))
    o = backtest.prepare_origin(AS_OF, snaps, opps, reps, fn, timing.fit(snaps, AS_OF), 13)
    quotas = pl.DataFrame({"owner_type": ["rep"] * 8 + ["total"], "owner": [f"rep{i}" for i in range(8)] + ["total"],
                           "period_type": "quarter", "period_start": dt.date(2024, 7, 1),
                           "amount": [250_000.0] * 8 + [2_300_000.0]})
    frame, deals = attainment.attainment(o, quotas, opps, 1000, 3, 0.1, 0.2, 1, workers=1)
    # the honesty metrics from judged rows of past origins of the same CRM (2 quarters)
    rows = []
    for origin, kind, qs in honesty.origins(snaps["as_of_date"].unique().to_list(), AS_OF, 1, max_quarters=2):
        org = backtest.prepare_origin(origin, snaps, opps, reps, fn, timing.fit(snaps, origin), 13)
        r, _ = attainment.attainment(org, quotas.with_columns(pl.lit(qs).alias("period_start")), opps, 500, 3, 0.1,
                                     0.2, 1, workers=1, quarter_start=qs)
        pers = attainment.periods(origin, 1, qs)
        labels, groups = attainment.segment_labels(org.prep.segments)
        made = attainment.booked(opps, pers[0].end, pers, org.prep.segments, groups)[:, 0]
        actual = pl.DataFrame({"period_start": [qs] * len(labels), "segment_type": [t for t, _ in labels],
                               "segment": [s for _, s in labels], "booked_in_quarter": made})
        rows.append(honesty.judged(r, actual).with_columns(pl.lit(kind).alias("origin_kind"),
                                                           pl.lit("walk_forward").alias("shock")))
    metrics = honesty.metrics(pl.concat(rows)).with_columns(
        pl.lit(AS_OF).alias("cutoff_date"), pl.lit("quota_attainment").alias("model_family"),
        pl.lit("all").alias("division"), pl.lit("quota_attainment@x").alias("model_version"))
    return {"forecast.quota_attainment": frame, "forecast.plan_deals": deals, "validation.model_metrics": metrics,
            "star.dim_rep": reps}


@pytest.mark.browser
def test_plan_page(tmp_path):
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, base=True)
    tables = plan_tables()
    con = duckdb.connect(str(analyst_db_path(data_dir)))
    try:
        con.execute("DROP TABLE IF EXISTS star.dim_rep")
        for schema in ("forecast", "validation"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, frame in tables.items():
            con.register("src", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM src")
            con.unregister("src")
    finally:
        con.close()
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "plan", name="plan", expect_text="Were past chances honest?", timeout=60)
    assert "Traceback" not in text and "Not built yet" not in text
    assert "Plan: will we make the number?" in text and "FY2024 Q3" in text
    assert "Chance of making it" in text and "revintel vs the call" in text
    total = tables["forecast.quota_attainment"].filter((pl.col("segment_type") == "total")
                                                       & (pl.col("period") == "quarter")).row(0, named=True)
    assert f"{total['p_hit_quota']:.0%}" in text and f"{total['quota']:,.0f}" in text
    assert "Largest contribution to the spread" in text and "Biggest swing deal: D" in text
    n70 = int(tables["validation.model_metrics"].filter(
        (pl.col("metric") == "bin_70_90_n") & (pl.col("period_type") == "all") & (pl.col("segment_type") == "all")
        & (pl.col("model_name") == "p_hit_quota"))["value"][0])
    assert f"of {n70}** " not in text and f"of {n70} were made" in text
    assert np.isfinite(total["p50"])
