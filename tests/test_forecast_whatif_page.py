"""The Forecast page's what-if and the Forecast Accuracy page in a real browser (headless
Chromium), on tables the forecast code itself produced from a synthetic CRM."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import polars as pl
import pytest
import synthetic  # tests/synthetic.py

from browser import analyst_db_path, build_analyst_db, chromium, render_page, screenshot, streamlit_server, \
    wait_until_rendered
from revintel_assets.defs.forecast import accuracy, history, model, probabilities, timing
from revintel_assets.defs.forecast.periods import calendar

AS_OF = dt.date(2024, 9, 30)
PAST = [AS_OF - dt.timedelta(weeks=k) for k in range(27, 13, -1)]  # a quarter's weeks, all over by AS_OF


def _tables() -> dict[str, pl.DataFrame]:
    snaps, opps, reps = synthetic.history(n_deals=2000, seed=4)
    fn = probabilities.stage_baseline(snaps.filter(pl.col("is_won").is_not_null()))
    frames, contributions = [], []
    for d in [*PAST, AS_OF]:
        rows = snaps.filter(pl.col("as_of_date") == d).drop("outcome_date", "is_won")
        p, _ = fn(d, rows)
        deals = rows.with_columns(pl.Series("win_probability", p))
        frame, prep, _ = history.forecast_date(calendar(d, 13), deals, timing.fit(snaps, d), reps, opps, 500, 1,
                                               (0.1, 0.2))
        frames.append(frame.with_columns(pl.lit(500).alias("n_sims"), pl.lit(0.1).alias("sigma_horizon"),
                                         pl.lit(0.2).alias("sigma_week"), pl.lit("baseline").alias("win_model_version"),
                                         pl.lit(d).alias("timing_cutoff")))
        contributions.append(model.deal_contributions(prep))
    return {"forecast.revenue_forecast": pl.concat(frames), "forecast.deal_contributions": pl.concat(contributions),
            "features.deal_snapshot": snaps, "star.dim_rep": reps, "star.fact_opportunity": opps.drop("list_price"),
            "star.dim_product": opps.select("product_id", "list_price").unique("product_id")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("whatif") / "data"
    build_analyst_db(data_dir, base=True)
    con = duckdb.connect(str(analyst_db_path(data_dir)))
    try:
        con.execute("DROP TABLE star.fact_opportunity")
        for schema in ("forecast", "features"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, frame in _tables().items():
            con.register("src", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM src")
            con.unregister("src")
        con.execute(f"CREATE TABLE forecast.forecast_accuracy AS {accuracy.scored_sql(len(PAST))}",
                    [*PAST, AS_OF, AS_OF])  # the asset's own SQL
    finally:
        con.close()
    return data_dir


def _metric(page, label: str) -> float:
    text = page.locator("[data-testid='stMetric']", has_text=label).first.inner_text()
    return float(re.search(r"\n[^\d\n-]*(-?[\d,.]+)", text).group(1).replace(",", ""))  # after its currency


@pytest.mark.browser
def test_what_if_recomputes_the_forecast(data_dir):
    with streamlit_server(data_dir) as url, chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        try:
            page.goto(f"{url}/forecast", wait_until="domcontentloaded")
            wait_until_rendered(page, expect_text=["What if?", "What-if P50 (rest of the quarter)"], timeout=90)
            p50, p90 = _metric(page, "What-if P50"), _metric(page, "What-if P90")
            box = page.get_by_label("Add a hypothetical deal: amount")
            box.fill("2000000")
            box.press("Enter")
            # a deal closing in 30 days at 50 %: about half the simulations book 2M more
            for _ in range(60):  # the rerun recomputes: poll until the figures move (or give up)
                page.wait_for_timeout(1000)
                wait_until_rendered(page, expect_text="What-if P50", timeout=60)
                if _metric(page, "What-if P90") != p90:
                    break
            new_p50, new_p90 = _metric(page, "What-if P50"), _metric(page, "What-if P90")
            screenshot(page, "forecast_whatif")
            text = page.locator("body").inner_text()
        finally:
            ctx.close()
    assert "Traceback" not in text
    assert new_p90 > p90 + 1.5e6  # the upper end books it
    assert new_p50 >= p50
    assert "Deals simulated" in text  # no quota table: the deal count stands in for the chance
    assert "open deals of the whole company" in text and "total total" not in text


@pytest.mark.browser
def test_forecast_accuracy_page(data_dir):
    expect = ["Does the call get better as the quarter goes on?", "Which segments are over- or under-called?"]
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "forecast-accuracy", name="forecast_accuracy", expect_text=expect, timeout=60)
        # the period control clicked off (a second click on the chosen period): the default again,
        # not "no forecast has a period that is over yet" over the forecasts just shown
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        try:
            page.goto(f"{url}/forecast-accuracy", wait_until="domcontentloaded")
            wait_until_rendered(page, expect_text=expect, timeout=60)
            page.locator("[data-testid='stButtonGroup'] button", has_text="quarter").first.click()
            page.wait_for_timeout(1000)
            wait_until_rendered(page, expect_text="Does the call get better", timeout=60)
            clicked_off = page.locator("body").inner_text()
        finally:
            ctx.close()
    assert "Traceback" not in text
    assert f"{len(PAST)} forecasts" in text and "weighted pipeline" in text and "revintel P50" in text
    assert "Most over-called" in text or "Most under-called" in text
    assert f"{len(PAST)} forecasts" in clicked_off and "No forecast has a period that is over yet" not in clicked_off
