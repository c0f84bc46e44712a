"""The forecast is stored for every as-of date, each made from what was known on it, and
forecast_accuracy scores each past forecast against what star.fact_opportunity says was booked.

Real assets (revenue_forecast, forecast_accuracy) on a real DuckDB warehouse and an (empty) MLflow
store, over a range of as-of dates in one run, on a synthetic CRM."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest
import synthetic  # tests/synthetic.py

from revintel_assets import parallel
from revintel_assets.defs.forecast import accuracy, history
from revintel_assets.defs.forecast.periods import calendar

DATES = [dt.date(2024, 7, 1) + dt.timedelta(weeks=k) for k in range(12)] + [dt.date(2024, 11, 25)]
PLANT_AFTER = dt.date(2024, 8, 12)  # the planted booking is created after this date


def _tables(plant: bool) -> dict[str, pl.DataFrame]:
    snaps, opps, reps = synthetic.history(n_deals=1500, seed=5)
    products = opps.select("product_id", "list_price").unique("product_id")
    if plant:  # a big deal created after PLANT_AFTER and won inside its forecasts' horizon
        created, won = PLANT_AFTER + dt.timedelta(days=3), PLANT_AFTER + dt.timedelta(days=30)
        row = opps.filter(pl.col("is_won").fill_null(False)).head(1).with_columns(
            pl.lit("PLANTED").alias("opportunity_id"), pl.lit(created).alias("created_date"),
            pl.lit(won).alias("close_date"), pl.lit(True).alias("is_won"), pl.lit(5_000_000.0).alias("amount"))
        opps = pl.concat([opps, row.select(opps.columns)])
        snap = snaps.filter(pl.col("opportunity_id") == snaps["opportunity_id"][0]).head(1)
        later = [d for d in snaps["as_of_date"].unique().sort().to_list() if created <= d < won]
        snaps = pl.concat([snaps] + [snap.with_columns(
            pl.lit("PLANTED").alias("opportunity_id"), pl.lit(d).alias("as_of_date"), pl.lit(created).alias("created_date"),
            pl.lit(won).alias("outcome_date"), pl.lit(True).alias("is_won"), pl.lit(5_000_000.0).alias("amount"),
            pl.lit("Negotiation").alias("stage")) for d in later])
    fact = opps.drop("list_price").with_columns(pl.col("is_won").is_not_null().alias("is_closed"))
    return {"features.deal_snapshot": snaps.filter(pl.col("as_of_date").is_in(DATES) | (pl.col("as_of_date") < DATES[0])),
            "star.fact_opportunity": fact, "star.dim_rep": reps, "star.dim_product": products}


def _run(tmp_path, monkeypatch, plant: bool, label: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    from revintel_assets.defs.deals.partitions import as_of_dates
    from revintel_assets.defs.forecast.assets import forecast_accuracy, revenue_forecast
    from revintel_resources.compute import ComputeResource
    from revintel_resources.resources import WarehouseResource
    from revintel_resources.tracking import MLflowResource
    from revintel_resources.warehouse import Warehouse

    data = tmp_path / ("plant" if plant else "base")
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(data))
    wh = Warehouse.from_env()
    tables = _tables(plant)
    for name, frame in tables.items():
        wh.write(name, frame)
    if not plant:  # contributions in the layout before 2026-12 (a row per deal and horizon): replaced, not mixed in
        wh.write("forecast.deal_contributions", pl.DataFrame({
            "as_of_date": [dt.date(2023, 1, 2)] * 2, "opportunity_id": ["OLD", "OLD"], "horizon_weeks": [4, 5],
            "p_in_horizon": [0.1, 0.2]}))
    instance = dg.DagsterInstance.ephemeral()
    keys = [str(d) for d in DATES]
    instance.add_dynamic_partitions(as_of_dates.name, keys)
    result = dg.materialize(
        [revenue_forecast, forecast_accuracy], instance=instance,
        resources={"warehouse": WarehouseResource(), "mlflow_tracking": MLflowResource(), "compute": ComputeResource()},
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        run_config={"ops": {"revenue_forecast": {"config": {"n_sims": 400}}}})
    assert result.success
    runs_contributions[label] = wh.query("SELECT * FROM forecast.deal_contributions ORDER BY as_of_date, opportunity_id")
    return (wh.query("SELECT * FROM forecast.revenue_forecast ORDER BY ALL"),
            wh.query("SELECT * FROM forecast.forecast_accuracy"), tables["star.fact_opportunity"])


runs_contributions: dict[str, pl.DataFrame] = {}  # forecast.deal_contributions after each run, by its name
runs_one_process: list = []  # the base run again, every date in this process


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        base = _run(tmp_path_factory.mktemp("hist"), mp, plant=False, label="base")
        planted = _run(tmp_path_factory.mktemp("hist"), mp, plant=True, label="planted")
        mp.setenv("REVINTEL_WORKERS", "1")  # what the pool's processes must reproduce
        runs_one_process.append(_run(tmp_path_factory.mktemp("hist"), mp, plant=False, label="one process"))
    finally:
        mp.undo()
    return base, planted


def test_a_forecast_for_every_as_of_date_with_the_calls(runs):
    (fc, _, _), _ = runs
    assert sorted(fc["as_of_date"].unique().to_list()) == DATES  # one range run, every date
    assert set(fc["period_type"]) == {"week", "month", "quarter"}
    q = fc.filter((pl.col("period_type") == "quarter") & (pl.col("segment_type") == "total"))
    assert q.height == len(DATES)
    for r in q.iter_rows(named=True):  # the rest of the quarter of as_of + 1
        cal = calendar(r["as_of_date"], 13)
        assert r["period_start"] == cal.quarter and r["first_day"] == r["as_of_date"] + dt.timedelta(days=1)
        assert r["p10"] <= r["p50"] <= r["p90"]
        assert r["timing_cutoff"] == history.timing_cutoff(r["as_of_date"], 4) <= r["as_of_date"]
    assert (fc["weighted_pipeline"] >= 0).all() and fc["weighted_pipeline"].sum() > 0
    # commit: the rule in rules.py when declared, else NULL (never made up)
    assert fc["commit"].is_null().all() == (history.commit_category() is None)


def test_contributions_are_one_row_per_open_deal_and_date_and_replace_the_old_layout(runs):
    del runs  # the runs have happened
    c = runs_contributions["base"]
    assert "p_within_weeks" in c.columns and "OLD" not in c["opportunity_id"].to_list()
    assert sorted(c["as_of_date"].unique().to_list()) == DATES
    assert c.select("as_of_date", "opportunity_id").is_duplicated().sum() == 0
    assert (c["p_within_weeks"].list.len() == 13).all()
    assert c["expected_revenue"].sum() > 0


def test_dates_forecast_in_worker_processes_equal_one_process(runs):
    """The past dates of a range go out as tasks (forecast/tasks.py) to the pool's processes; with
    one worker every date runs in this process. Same rows bit for bit, contributions included."""
    (base, base_acc, _), _ = runs
    (single, single_acc, _), = runs_one_process
    assert parallel.workers() > 1  # the base run had a pool (this box has 2 cores)
    assert base.equals(single) and base.height > 0
    assert runs_contributions["base"].equals(runs_contributions["one process"])
    assert base_acc.sort(pl.all()).equals(single_acc.sort(pl.all()))


def test_a_future_booking_does_not_change_earlier_forecasts(runs):
    (base, base_acc, _), (planted, planted_acc, _) = runs
    cols = ["as_of_date", "period_type", "period_start", "segment_type", "segment", "p10", "p50", "p90", "mean",
            "weighted_pipeline"]
    before = [d for d in DATES if d <= PLANT_AFTER]
    after = [d for d in DATES if d > PLANT_AFTER + dt.timedelta(days=3)]

    def pick(frame, dates):
        return frame.filter(pl.col("as_of_date").is_in(dates)).select(cols).sort(cols[:5])

    assert pick(base, before).equals(pick(planted, before))  # bit for bit: nothing later was read
    assert not pick(base, after).equals(pick(planted, after))  # ... while later dates see the deal
    # the booking is scored against the earlier forecasts whose period it falls in
    key = ["as_of_date", "period_type", "period_start", "segment_type", "segment", "model_name"]
    joined = base_acc.join(planted_acc, on=key, suffix="_p").filter(
        (pl.col("as_of_date") <= PLANT_AFTER) & (pl.col("segment_type") == "total")
        & (pl.col("model_name") == "revenue_forecast") & (pl.col("period_type") == "quarter"))
    assert len(joined) and (joined["p50"] == joined["p50_p"]).all()
    assert ((joined["actual_p"] - joined["actual"]) == 5_000_000.0).any()


def test_accuracy_reconciles_with_fact_opportunity(runs):
    (fc, acc, fact), _ = runs
    evaluated = DATES[-1]
    assert set(acc["model_name"]) == set(accuracy.MODELS)
    assert (acc["last_day"] <= evaluated).all() and (acc["evaluated_as_of"] == evaluated).all()
    # CONTRACT §3's weeks_before_period_end: whole weeks from the as-of date to the period's last day
    days = (acc["last_day"] - acc["as_of_date"]).dt.total_days()
    assert (acc["weeks_before_period_end"] == days // 7).all() and acc["weeks_before_period_end"].min() >= 0
    scored = acc.filter(pl.col("model_name") == "revenue_forecast")
    over = fc.filter(pl.col("last_day") <= evaluated)
    assert scored.height == over.height  # every stored forecast row whose period is over, once per caller
    amount = fact.join(_tables(False)["star.dim_product"], on="product_id", how="left").with_columns(
        pl.col("amount").fill_null(pl.col("list_price")))
    won = amount.filter(pl.col("is_won").fill_null(False))
    for r in scored.filter(pl.col("segment_type") == "total").iter_rows(named=True):
        inside = won.filter(pl.col("close_date").is_between(r["first_day"], r["last_day"]))["amount"].sum()
        assert r["actual"] == pytest.approx(inside, abs=0.01)
        start = min(r["period_start"], r["first_day"])
        before = won.filter((pl.col("close_date") >= start) & (pl.col("close_date") < r["first_day"]))["amount"].sum()
        assert r["booked_before"] == pytest.approx(before, abs=0.01)
    # segments add up to the total: regions partition the reps, divisions the deals
    tot = scored.filter(pl.col("segment_type") == "total").select("as_of_date", "period_type", "period_start", "actual")
    for stype in ("region", "division"):
        parts = scored.filter(pl.col("segment_type") == stype).group_by("as_of_date", "period_type", "period_start").agg(
            pl.col("actual").sum().alias("parts"))
        j = tot.join(parts, on=["as_of_date", "period_type", "period_start"])
        assert len(j) == len(tot) and ((j["actual"] - j["parts"]).abs() < 0.01).all()
    # scores: coverage / errors as defined, point calls have no range
    rf = scored.filter(pl.col("p50").is_not_null())
    assert (rf["covered"] == ((rf["p10"] <= rf["actual"]) & (rf["actual"] <= rf["p90"]))).all()
    wp = acc.filter(pl.col("model_name") == "weighted_pipeline")
    assert wp["covered"].is_null().all() and (wp["pinball_p50"] - wp["abs_error"] / 2).abs().max() < 1e-6
    table = accuracy.summary(acc.filter(pl.col("period_type") == "quarter") .filter(pl.col("segment_type") == "total"),
                             ["week_of_quarter"])
    assert table["week_of_quarter"].min() >= 1 and table.filter(pl.col("model_name") == "revenue_forecast")["n"].sum() \
        == scored.filter((pl.col("period_type") == "quarter") & (pl.col("segment_type") == "total")).height


def test_walk_forward_tuning_uses_only_horizons_over_before_the_date():
    import numpy as np

    from revintel_assets.defs.forecast import backtest

    origins = [dt.date(2024, 1, 1) + dt.timedelta(weeks=k) for k in range(10)]
    ends = [calendar(o, 13).days[-1] for o in origins]
    rng = np.random.default_rng(0)
    n = len(backtest.SHOCK_GRID)
    hits = [np.stack([rng.integers(0, 10, (n, 2)), np.full((n, 2), 10)], axis=2) for _ in origins]
    as_of = dt.date(2025, 1, 6)
    window = 6
    grids = backtest.walk_forward_grids(origins, hits, 13, as_of, window)
    for (tuned_for,), g in grids.group_by(["tuned_for"]):
        used = ([h for h, e in zip(hits, ends) if e < tuned_for] if tuned_for != as_of else hits)[-window:]
        assert g["chosen"].sum() == 1 and g["n_origins"][0] == len(used) >= backtest.MIN_PRIOR_ORIGINS
        sh, sw, _ = backtest.choose_shock(sum(used))
        assert g.filter("chosen").select("sigma_horizon", "sigma_week").row(0) == (sh, sw)
    # the first choice comes only once MIN_PRIOR_ORIGINS horizons are over, the day after the last of them ends
    assert grids["tuned_for"].min() == sorted(ends)[backtest.MIN_PRIOR_ORIGINS - 1] + dt.timedelta(days=1)


def test_the_backtest_judges_the_forecasts_timing_models_and_the_forecast_reuses_them(tmp_path, monkeypatch):
    """Each backtest origin is forecast with the timing model the forecast of that date uses
    (history.timing_cutoff: the first Monday of its 4-week block, before the origin), so the backtest
    judges production's timing, and a forecast run in the same process (as `revintel run` runs its
    jobs) takes those fits instead of fitting them again: it fits only the blocks no origin reached."""
    from revintel_assets.defs.deals.partitions import as_of_dates
    from revintel_assets.defs.forecast import timing
    from revintel_assets.defs.forecast.assets import forecast_backtest, revenue_forecast
    from revintel_resources.compute import ComputeResource
    from revintel_resources.resources import WarehouseResource
    from revintel_resources.tracking import MLflowResource
    from revintel_resources.warehouse import Warehouse

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path))
    wh = Warehouse.from_env()
    for name, frame in _tables(False).items():
        wh.write(name, frame)
    instance = dg.DagsterInstance.ephemeral()
    keys = [str(d) for d in DATES]
    instance.add_dynamic_partitions(as_of_dates.name, keys)
    resources = {"warehouse": WarehouseResource(), "mlflow_tracking": MLflowResource(), "compute": ComputeResource()}
    fits: list[dt.date] = []
    real_fit = timing.fit
    monkeypatch.setattr(timing, "fit", lambda rows, cutoff, *a, **k: fits.append(cutoff) or real_fit(rows, cutoff, *a, **k))
    assert dg.materialize([forecast_backtest], instance=instance, resources=resources, partition_key=keys[-1],
                          run_config={"ops": {"forecast_backtest": {"config": {"backtest_sims": 1_300}}}}).success
    origins = sorted(wh.query("SELECT DISTINCT as_of_date FROM forecast.forecast_backtest")["as_of_date"].to_list())
    judged = {history.timing_cutoff(o, 4) for o in origins}
    assert len(origins) >= 4 and judged <= set(fits)  # every origin's block fitted (timing validation fits more)
    assert all(history.timing_cutoff(o, 4) <= o for o in origins)
    fits.clear()
    assert dg.materialize([revenue_forecast], instance=instance, resources=resources,
                          tags={"dagster/asset_partition_range_start": keys[0],
                                "dagster/asset_partition_range_end": keys[-1]},
                          run_config={"ops": {"revenue_forecast": {"config": {"n_sims": 400}}}}).success
    needed = {history.timing_cutoff(d, 4) for d in DATES}
    assert needed & judged  # the two share blocks, so the count below says something
    assert sorted(fits) == sorted(needed - judged)  # each block the backtest did not fit, once


def test_the_backtest_reads_the_deal_scores_the_forecast_of_each_origin_read(tmp_path, monkeypatch):
    """An origin with stored deal scores is forecast from them (their probability, close date and
    model version), as the forecast and the quota honesty of that date are; an origin without falls
    back to the probability rule of its date, as they do."""
    from revintel_assets.defs.deals.partitions import as_of_dates
    from revintel_assets.defs.forecast.assets import forecast_backtest
    from revintel_resources.compute import ComputeResource
    from revintel_resources.resources import WarehouseResource
    from revintel_resources.tracking import MLflowResource
    from revintel_resources.warehouse import Warehouse

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path))
    wh = Warehouse.from_env()
    tables = _tables(False)
    for name, frame in tables.items():
        wh.write(name, frame)
    snaps = tables["features.deal_snapshot"]
    scored_dates = DATES[:7]  # the earlier origins have stored scores, the later ones not
    wh.write("scores.deal_scores", snaps.filter(pl.col("as_of_date").is_in(scored_dates)).select(
        "as_of_date", "opportunity_id", pl.lit(0.9).alias("win_probability"), "expected_close_date",
        ("stored@" + pl.col("as_of_date").cast(pl.Utf8)).alias("model_version")))
    instance = dg.DagsterInstance.ephemeral()
    keys = [str(d) for d in DATES]
    instance.add_dynamic_partitions(as_of_dates.name, keys)
    resources = {"warehouse": WarehouseResource(), "mlflow_tracking": MLflowResource(), "compute": ComputeResource()}
    assert dg.materialize([forecast_backtest], instance=instance, resources=resources, partition_key=keys[-1],
                          run_config={"ops": {"forecast_backtest": {"config": {"backtest_sims": 1_300}}}}).success
    used = wh.query("SELECT DISTINCT as_of_date, win_model_version FROM forecast.forecast_backtest")
    assert used.height == used["as_of_date"].n_unique() >= 4
    with_scores = used.filter(pl.col("as_of_date").is_in(scored_dates))
    assert with_scores.height >= 2 and with_scores.height < used.height  # both kinds of origin judged
    for o, version in used.iter_rows():
        assert version == (f"stored@{o}" if o in scored_dates else f"baseline_stage@{o}"), (o, version)


def test_a_source_without_a_commit_stage_has_no_commit_call(tmp_path, monkeypatch):
    """MavenTech's stages (Prospecting, Engaging, Won, Lost) never map to Commit: its commit call was a
    constant 0 on 45,072 forecast rows, which read as a call and, judged, looked more accurate than the
    weighted pipeline (an analyst-table audit). Without a commit stage the call is NULL (CONTRACT §3)."""
    import duckdb

    from revintel_assets.rules import HAS_COMMIT_SQL

    con = duckdb.connect()
    con.execute("CREATE SCHEMA features; CREATE TABLE features.deal_snapshot AS "
                "SELECT * FROM (VALUES ('Prospecting'), ('Engaging'), ('Won')) t(stage)")
    assert con.execute(HAS_COMMIT_SQL).fetchone() == (False,)
    con.execute("INSERT INTO features.deal_snapshot VALUES ('Negotiation')")
    assert con.execute(HAS_COMMIT_SQL).fetchone() == (True,)

    from revintel_assets import rules

    monkeypatch.setattr(rules, "HAS_COMMIT_SQL", "SELECT false AS has_commit")  # the synthetic CRM has one
    fc, acc, _ = _run(tmp_path, monkeypatch, plant=False, label="no commit")
    assert fc["commit"].is_null().all() and fc["weighted_pipeline"].sum() > 0
    commit = acc.filter(pl.col("model_name") == "commit")
    assert len(commit) and commit["p50"].is_null().all() and commit["error"].is_null().all()


def test_the_forecasts_commit_on_the_export_date_is_the_crms_call():
    """An audit: on the export date forecast.revenue_forecast's commit (the stage rule: every
    Negotiation deal) read 973,818 and forecast.quota_attainment's (the CRM's category: 12 of them
    marked Omitted) 737,999 for the same quarter. The CRM's category now wins in both."""
    deals = pl.DataFrame({"opportunity_id": ["a", "b", "c", "d"],
                          "stage": ["Negotiation", "Negotiation", "Proposal", "Engaging"]})
    rule = deals.select(history.commit_category()).to_series().to_list()
    assert rule == ["Commit", "Commit", "Best Case", "Pipeline"]
    crm = deals.select(history.commit_category({"b": "Omitted", "d": "Commit"})).to_series().to_list()
    assert crm == ["Commit", "Omitted", "Best Case", "Commit"]  # a deal the CRM does not name keeps the rule
