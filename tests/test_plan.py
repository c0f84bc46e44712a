"""Issue 16: quotas as an input, fiscal quarters, forecast categories, attainment and the chance of
making the quota (from the forecast engine's own sims), and its honesty on past quarters."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

import synthetic  # tests/synthetic.py
from conftest import assert_reconciled, build_star
from revintel_assets.defs.forecast import backtest, probabilities, simulate, timing
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.plan import attainment as A
from revintel_assets.defs.plan import honesty
from revintel_assets.demo.generator import generate_company
from revintel_assets.rules import (fiscal_quarter_start, fiscal_quarter_start_expr, fiscal_quarter_start_sql,
                                   forecast_category_expr)
from test_import_salesforce import ACCOUNT, OPPORTUNITY, U_ANN, U_BOB, USER, write


def test_fiscal_quarter_rule_is_one_rule_in_python_polars_and_sql():
    days = [dt.date(2023, 12, 1) + dt.timedelta(days=i) for i in range(800)]
    con = duckdb.connect()
    for fy in range(1, 13):
        py = [fiscal_quarter_start(d, fy) for d in days]
        pol = pl.DataFrame({"d": days}).select(fiscal_quarter_start_expr(pl.col("d"), fy))["d"].to_list()
        sql = [r[0] for r in con.execute(f"SELECT {fiscal_quarter_start_sql('d', fy)} FROM unnest(?::DATE[]) t(d)",
                                         [days]).fetchall()]
        assert py == pol == sql, fy
        for d, q in zip(days, py):
            assert q.day == 1 and (q.month - fy) % 3 == 0 and q <= d
            assert (d.year - q.year) * 12 + d.month - q.month < 3


def test_days_to_quarter_end_counts_to_the_fiscal_quarters_end(tmp_path):
    """The win model's quarter-end feature follows settings.fiscal_year_start_month as every quarter
    of the product does (reps push deals at their fiscal quarter's end, not the calendar's)."""
    from conftest import build_star
    from revintel_assets.defs.deals.snapshot import snapshot_sql
    write(tmp_path / "sf", "Opportunity.csv", OPPORTUNITY)
    con = duckdb.connect()
    build_star(con, tmp_path / "sf")
    dates = "SELECT DATE '2024-01-15' AS as_of_date UNION ALL SELECT DATE '2024-02-01'"
    got = {fy: dict(con.execute(f"SELECT DISTINCT as_of_date, days_to_quarter_end FROM ({snapshot_sql(dates, fy_start_month=fy)})")
                    .fetchall()) for fy in (1, 2, 12)}
    jan15, feb1 = dt.date(2024, 1, 15), dt.date(2024, 2, 1)
    assert got[1] == {jan15: 77, feb1: 60}  # to 2024-04-01
    assert got[2] == {jan15: 17, feb1: 90}  # to 2024-02-01, then to 2024-05-01
    assert got[12] == {jan15: 46, feb1: 29}  # to 2024-03-01 (quarters Dec-Feb, Mar-May, ...)


def test_forecast_category_rule():
    stages = pl.Series(["Won", "Lost", "Negotiation", "Proposal", "Engaging", "Prospecting", "Custom"])
    assert pl.select(forecast_category_expr(pl.lit(stages))).to_series().to_list() == [
        "Closed", "Omitted", "Commit", "Best Case", "Pipeline", "Pipeline", "Pipeline"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plan-demo")
    generate_company(out, scale=0.05, seed=42, progress=False)
    return out


def test_demo_writes_realistic_quotas(demo):
    q = pl.read_csv(demo / "quotas.csv", try_parse_dates=True)
    assert q.columns == ["owner_type", "owner", "period_start", "period_type", "amount"]
    assert set(q["owner_type"]) == {"rep", "manager", "region", "total"}
    assert set(q["period_type"]) == {"quarter"} and all(d.day == 1 and d.month % 3 == 1 for d in q["period_start"])
    assert q["period_start"].max() == dt.date(2026, 1, 1)  # the quarter after the export is planned too
    # a rep's quota is a stretch above what the rep books: per rep, quotas vs won amounts over 2024-2025
    deals = pl.read_csv(demo / "sales_pipeline.csv", try_parse_dates=True).filter(
        (pl.col("deal_stage") == "Won") & (pl.col("close_date") >= dt.date(2024, 1, 1)))
    won = deals.group_by("sales_agent").agg(pl.col("close_value").sum().alias("won"))
    quota = q.filter((pl.col("owner_type") == "rep") & (pl.col("period_start").is_between(
        dt.date(2024, 1, 1), dt.date(2025, 10, 1)))).group_by("owner").agg(pl.col("amount").sum())
    ratio = quota.join(won, left_on="owner", right_on="sales_agent")
    ratio = (ratio["amount"] / ratio["won"]).median()
    assert 0.9 < ratio < 1.6, ratio
    # managers carry less than the sum of their reps' quotas (over-assignment), the total less than the regions
    by_type = q.filter(pl.col("period_start") == dt.date(2025, 7, 1)).group_by("owner_type").agg(pl.col("amount").sum())
    s = dict(by_type.iter_rows())
    assert s["total"] < s["region"] < s["manager"] < s["rep"]


def _demo_source(demo: Path, tmp_path: Path, quotas: str) -> Path:
    src = tmp_path / "src"
    shutil.copytree(demo, src, ignore=shutil.ignore_patterns("truth"))
    (src / "quotas.csv").write_text(quotas)
    return src


def test_quotas_csv_import_quarantines_bad_rows_and_reconciles(demo, tmp_path):
    teams = pl.read_csv(demo / "sales_teams.csv")
    rep, manager, region = teams.row(0)
    src = _demo_source(demo, tmp_path, "\n".join([
        "owner_type,owner,period_start,period_type,amount",
        f"rep,{rep},2024-01-01,quarter,1000",  # 2
        f"manager,{manager},2024-01-01,quarter,5000",  # 3
        f"region,{region},2024-02-01,month,300",  # 4
        "total,,2024-01-01,quarter,9000",  # 5
        "boss,x,2024-01-01,quarter,10",  # 6
        "rep,Nobody Here,2024-01-01,quarter,10",  # 7
        f"rep,{rep},2024-02-01,quarter,10",  # 8: not a fiscal quarter start
        f"rep,{rep},2024-13-01,quarter,10",  # 9
        f"rep,{rep},2024-04-01,quarter,-5",  # 10
        f"rep,{rep},2024-04-01,week,5",  # 11
        f"Rep,{rep.upper()},2024-01-01,quarter,1200",  # 12: the same owner and quarter again
    ]) + "\n")
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.files["quotas.csv"]["raw_rows"] == 11
    got = con.execute("SELECT owner_type, owner, period_type, period_start::VARCHAR, period_end::VARCHAR, amount "
                      "FROM star.quotas ORDER BY source_line").fetchall()
    assert got == [("rep", rep, "quarter", "2024-01-01", "2024-03-31", 1000.0),
                   ("manager", manager, "quarter", "2024-01-01", "2024-03-31", 5000.0),
                   ("region", region, "month", "2024-02-01", "2024-02-29", 300.0),
                   ("total", "total", "quarter", "2024-01-01", "2024-03-31", 9000.0)]
    q = dict(con.execute("SELECT line_number, reason FROM star.quarantine WHERE source_file = 'quotas.csv'").fetchall())
    assert set(q) == {6, 7, 8, 9, 10, 11, 12}
    assert "owner_type 'boss' is not one of rep, manager, region, total" in q[6]
    assert "'Nobody Here' is not a rep" in q[7]
    assert "2024-02-01 is not the first day of a quarter" in q[8] and "month 1" in q[8]
    assert "'2024-13-01' is not a date" in q[9]
    assert "negative" in q[10] and "'week' is not one of month, quarter" in q[11]
    assert "already on line 2 with other contents" in q[12]
    assert_reconciled(con)


def test_quarters_follow_the_fiscal_year_setting(demo, tmp_path):
    from revintel_assets.defs.ingest.source import import_source
    rep = pl.read_csv(demo / "sales_teams.csv").row(0)[0]
    src = _demo_source(demo, tmp_path, "owner_type,owner,period_start,period_type,amount\n"
                                       f"rep,{rep},2024-02-01,quarter,10\nrep,{rep},2024-01-01,quarter,10\n")
    con = duckdb.connect()
    report = import_source(con, src, fy_start_month=2)
    assert report.files["quotas.csv"]["quarantined"] == {"period_start_not_a_period_start": 1}
    assert con.execute("SELECT period_start::VARCHAR FROM staging.quotas").fetchall() == [("2024-02-01",)]


def test_malformed_quotas_file_stops_with_a_clear_message(demo, tmp_path):
    src = _demo_source(demo, tmp_path, "owner_type,owner,period_start,period_type\nrep,x,2024-01-01,quarter\n")
    with pytest.raises(SourceError) as err:
        build_star(duckdb.connect(), src)
    assert "quotas.csv" in str(err.value) and "amount" in str(err.value)


def test_salesforce_forecasting_quota(tmp_path):
    src = tmp_path / "sfdc"
    write(src, "Opportunity.csv", OPPORTUNITY, bom=True)
    write(src, "Account.csv", ACCOUNT)
    write(src, "User.csv", USER)
    write(src, "ForecastingQuota.csv",
          "Id,QuotaOwnerId,StartDate,QuotaAmount,IsAmount,IsQuantity,PeriodId\r\n"
          f"0J95g0000000001AAA,{U_ANN},2024-01-01,50000,true,false,0265g0000000001\r\n"  # 2
          f"0J95g0000000002AAA,{U_ANN},2024-04-01,55000.50,true,false,0265g0000000002\r\n"  # 3
          f"0J95g0000000003AAA,{U_BOB[:15]},2024-04-01,40000,true,false,0265g0000000002\r\n"  # 4: 15-char id
          f"0J95g0000000004AAA,{U_BOB},2024-04-01,12,false,true,0265g0000000002\r\n"  # 5: quantity quota
          "0J95g0000000005AAA,0055g00000ZedXXAAQ,2024-04-01,1,true,false,0265g0000000002\r\n"  # 6: unknown user
          f"0J95g0000000006AAA,{U_ANN.lower()},2024-07-01,1,true,false,0265g0000000003\r\n")  # 7: ids are case-sensitive
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.files["ForecastingQuota.csv"]["period_type"] == "quarter"
    assert con.execute("SELECT owner, period_start::VARCHAR, amount FROM star.quotas ORDER BY source_line").fetchall() == [
        (U_ANN[:15], "2024-01-01", 50000.0), (U_ANN[:15], "2024-04-01", 55000.5), (U_BOB[:15], "2024-04-01", 40000.0)]
    q = dict(con.execute("SELECT line_number, reason FROM star.quarantine WHERE source_file = 'ForecastingQuota.csv'")
             .fetchall())
    assert set(q) == {5, 6, 7} and "quantity quota" in q[5] and "is not a rep" in q[6]
    # the quota owners are the opportunities' owners: the rep ids the forecast segments by
    assert {r[0] for r in con.execute("SELECT owner FROM star.quotas").fetchall()} <= {
        r[0] for r in con.execute("SELECT rep_id FROM star.dim_rep").fetchall()}


def test_forecasting_quota_as_a_workbook_is_read_like_the_csv(tmp_path):
    """CONTRACT §2: any file may come as .xlsx. ForecastingQuota.xlsx was ignored without a word
    (no quotas, nothing quarantined; an audit's all-.xlsx Salesforce export)."""
    import xlsxwriter

    src = tmp_path / "sfdc"
    write(src, "Opportunity.csv", OPPORTUNITY, bom=True)
    write(src, "Account.csv", ACCOUNT)
    write(src, "User.csv", USER)
    wb = xlsxwriter.Workbook(str(src / "ForecastingQuota.xlsx"))
    ws, day = wb.add_worksheet("Export"), wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, ["Id", "QuotaOwnerId", "StartDate", "QuotaAmount"])
    for r, (owner, month, amount) in enumerate([(U_ANN, 1, 50000), (U_ANN, 4, 55000.5), (U_BOB, 4, 40000)], start=1):
        ws.write_row(r, 0, [f"0J9{r}", owner])
        ws.write_datetime(r, 2, dt.datetime(2024, month, 1), day)
        ws.write_number(r, 3, amount)
    wb.close()
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.files["ForecastingQuota.xlsx"]["raw_rows"] == 3
    assert con.execute("SELECT owner, period_start::VARCHAR, amount FROM star.quotas ORDER BY source_line").fetchall() == [
        (U_ANN[:15], "2024-01-01", 50000.0), (U_ANN[:15], "2024-04-01", 55000.5), (U_BOB[:15], "2024-04-01", 40000.0)]
    assert_reconciled(con)


def test_forecasting_quota_periods_are_told_apart_per_owner(tmp_path):
    """One org, one rep on monthly quotas and one on quarterly: each owner's start dates say which
    (decided once for the file, the quarterly ones were stored as monthly quotas)."""
    src = tmp_path / "sfdc"
    write(src, "Opportunity.csv", OPPORTUNITY, bom=True)
    write(src, "Account.csv", ACCOUNT)
    write(src, "User.csv", USER)
    write(src, "ForecastingQuota.csv", "Id,QuotaOwnerId,StartDate,QuotaAmount\r\n"
          + "".join(f"0J9{i},{U_ANN},2024-0{m}-01,10000\r\n" for i, m in enumerate((1, 2, 3)))
          + "".join(f"0J9{i + 5},{U_BOB},2024-0{m}-01,60000\r\n" for i, m in enumerate((1, 4, 7))))
    con = duckdb.connect()
    report = build_star(con, src)
    f = report.files["ForecastingQuota.csv"]
    assert f["period_type"] == "mixed" and f["period_types"] == {"month": 3, "quarter": 3}
    got = dict(con.execute("SELECT owner, list(DISTINCT period_type) FROM star.quotas GROUP BY 1").fetchall())
    assert got == {U_ANN[:15]: ["month"], U_BOB[:15]: ["quarter"]}
    assert_reconciled(con)


def test_hubspot_forecast_category_column_is_kept(tmp_path):
    src = tmp_path / "hs"
    write(src, "deals.csv", "Record ID,Deal Name,Deal Stage,Create Date,Amount,Forecast category\n"
                            "1,A,Appointment Scheduled,2024-01-02,100,Commit\n"
                            "2,B,Qualified To Buy,2024-01-02,100,Not forecasted\n"
                            "3,C,Contract Sent,2024-01-02,100,\n")
    con = duckdb.connect()
    build_star(con, src, "hubspot")
    assert con.execute("SELECT opportunity_id, forecast_category FROM star.fact_opportunity ORDER BY 1").fetchall() == [
        ("1", "Commit"), ("2", "Omitted"), ("3", "Commit")]  # 3: no category given, Negotiation -> Commit


# ------------------------------------------------------------------ attainment (synthetic CRM)
AS_OF = dt.date(2024, 8, 12)  # mid quarter: something booked already


@pytest.fixture(scope="module")
def origin():
    snaps, opps, reps = synthetic.history(n_deals=2000, seed=4)
    fn = probabilities.stage_baseline(snaps.filter(pl.col("is_won").is_not_null()))
    return backtest.prepare_origin(AS_OF, snaps, opps, reps, fn, timing.fit(snaps, AS_OF), 13), opps


QUOTAS = pl.DataFrame({
    "owner_type": ["rep"] * 8 + ["manager", "total"],
    "owner": [f"rep{i}" for i in range(8)] + ["mgr1", "total"],
    "period_type": ["quarter"] * 10, "period_start": [dt.date(2024, 7, 1)] * 10,
    "amount": [250_000.0] * 8 + [1_000_000.0, 2_300_000.0]})


def test_attainment_reconciles_and_comes_from_the_engines_draws(origin):
    o, opps = origin
    frame, deals = A.attainment(o, QUOTAS, opps, 1000, 3, 0.1, 0.2, 1, workers=1)
    quarter = frame.filter(pl.col("period") == "quarter")
    total = quarter.filter(pl.col("segment_type") == "total").row(0, named=True)
    # booked to date = won amount closed from the quarter's start to the as-of date
    won = opps.filter(pl.col("is_won").fill_null(False) & pl.col("close_date").is_between(dt.date(2024, 7, 1), AS_OF))
    assert total["booked_to_date"] == pytest.approx(won["amount"].sum()) and total["booked_to_date"] > 0
    assert total["period_label"] == "FY2024 Q3" and total["period_end"] == dt.date(2024, 9, 30)
    # p_hit_quota is the share of the engine's own sims (same seed: the same draws) reaching the quota
    res = simulate.simulate(o.prep.engine, 1000, 3, workers=1)
    shock = simulate.shock(1000, o.cal.atom_week_all, 0.1, 0.2, 3)
    pt = A.atom_periods(o, A.periods(AS_OF, 1))[0]
    sims = (res.rep_grid.sum(axis=0).astype(np.float32) * shock.astype(np.float32)) @ pt + total["booked_to_date"]
    assert 0.05 < total["p_hit_quota"] < 0.95
    assert total["p_hit_quota"] == pytest.approx(float((sims >= 2_300_000).mean()), abs=1e-9)
    assert total["p50"] == pytest.approx(float(np.quantile(sims, 0.5)), rel=1e-5)
    # a manager's chance comes from the manager's own sims: not the reps' chances added or averaged
    mgr = quarter.filter(pl.col("segment") == "mgr1").row(0, named=True)
    reps = quarter.filter(pl.col("segment").is_in([f"rep{i}" for i in range(4, 8)]))["p_hit_quota"]
    assert mgr["quota_source"] == "given" and mgr["p_hit_quota"] not in (reps.sum(), reps.mean(), reps.product())
    mgr0 = quarter.filter(pl.col("segment") == "mgr0").row(0, named=True)  # no quota of its own: its reps' sum
    assert mgr0["quota"] == 1_000_000.0 and mgr0["quota_source"] == "sum of reps"
    # coverage and the call
    assert total["coverage_ratio"] == pytest.approx(total["open_pipeline"] / (2_300_000 - total["booked_to_date"]))
    assert total["booked_to_date"] <= total["commit"] <= total["best_case"]
    assert total["gap_to_plan"] == pytest.approx(2_300_000 - total["p50"])
    assert set(deals["forecast_category"]) <= {"Commit", "Best Case", "Pipeline"}
    # a quota at the median is made in about half of the sims
    at_median = QUOTAS.with_columns(pl.lit(total["p50"]).alias("amount"))
    again, _ = A.attainment(o, at_median, opps, 1000, 3, 0.1, 0.2, 1, workers=1)
    p = again.filter((pl.col("segment_type") == "total") & (pl.col("period") == "quarter"))["p_hit_quota"][0]
    assert 0.45 <= p <= 0.55


def test_a_group_quota_is_summed_only_from_a_complete_set_of_reps(origin):
    """A manager without a quota of its own takes the sum of its reps' only when every rep has one:
    summed over the reps that have one, it was set against every rep's bookings (an adversarial
    fixture's total of 32.5k from two reps against 38k booked by three others)."""
    o, opps = origin
    partial = QUOTAS.filter(pl.col("owner") != "rep5")  # rep5 reports to mgr1, which has its own quota
    partial = partial.filter(pl.col("owner") != "rep0")  # rep0 reports to mgr0, which has none
    frame, _ = A.attainment(o, partial, opps, 200, 3, 0.0, 0.0, 1, workers=1)
    q = frame.filter(pl.col("period") == "quarter")
    mgr0 = q.filter(pl.col("segment") == "mgr0").row(0, named=True)
    assert mgr0["quota"] is None and mgr0["quota_source"] == "none: 1 of 4 reps without a quota"
    assert mgr0["p_hit_quota"] is None or mgr0["p_hit_quota"] != mgr0["p_hit_quota"]  # NULL or NaN
    mgr1 = q.filter(pl.col("segment") == "mgr1").row(0, named=True)
    assert mgr1["quota"] == 1_000_000.0 and mgr1["quota_source"] == "given"


def test_quarter_quota_from_monthly_quotas(origin):
    o, opps = origin
    months = pl.DataFrame({"owner_type": "total", "owner": "", "period_type": "month",
                           "period_start": [dt.date(2024, 7, 1), dt.date(2024, 8, 1), dt.date(2024, 9, 1)],
                           "amount": [100.0, 200.0, 300.0]})
    frame, _ = A.attainment(o, months, opps, 200, 3, 0.0, 0.0, 1, workers=1)
    total = frame.filter(pl.col("segment_type") == "total").sort("period")
    assert total["quota"].to_list() == [200.0, 600.0]  # August; the quarter
    assert total["quota_source"].to_list() == ["given", "sum of months"]


def test_past_quarters_without_a_quota_are_left_out_of_the_judged_rows(origin):
    """A quotas file covering only some of the past quarters (the usual one): the quarters without a
    quota are not judged, and the judged rows of the others still stack (the run failed on a
    Null-typed column of the uncovered quarter: 'type String is incompatible with expected type Null')."""
    o, opps = origin
    covered, _ = A.attainment(o, QUOTAS, opps, 200, 3, 0.0, 0.0, 1, workers=1)
    later = QUOTAS.with_columns(pl.lit(dt.date(2026, 1, 1)).alias("period_start"))  # not this origin's quarter
    uncovered, _ = A.attainment(o, later, opps, 200, 3, 0.0, 0.0, 1, workers=1)
    actual = pl.DataFrame({"period_start": [dt.date(2024, 7, 1)], "segment_type": ["total"], "segment": ["total"],
                           "booked_in_quarter": [1.0]})
    # the older quarters first, as the origins run: the uncovered one leads
    judged = honesty.stack([honesty.judged(uncovered, actual), honesty.judged(covered, actual)])
    assert judged.height == honesty.judged(covered, actual).height > 0
    assert judged["quota"].null_count() == 0


def test_honesty_origins_and_bins():
    mondays = [dt.date(2023, 1, 2) + dt.timedelta(weeks=k) for k in range(120)]
    got = honesty.origins(mondays, dt.date(2025, 3, 31), 1, max_quarters=3)
    assert got == [(dt.date(2024, 6, 24), "start", dt.date(2024, 7, 1)), (dt.date(2024, 8, 12), "mid", dt.date(2024, 7, 1)),
                   (dt.date(2024, 9, 30), "start", dt.date(2024, 10, 1)), (dt.date(2024, 11, 18), "mid", dt.date(2024, 10, 1)),
                   (dt.date(2024, 12, 30), "start", dt.date(2025, 1, 1)), (dt.date(2025, 2, 17), "mid", dt.date(2025, 1, 1))]
    # honest probabilities: the made rate of each bin sits near its predicted mean; counts add up
    rng = np.random.default_rng(0)
    p = rng.random(4000)
    rows = pl.DataFrame({"p_hit_quota": p, "made": rng.random(4000) < p, "baseline_p": (p > 0.5).astype(float),
                         "segment_type": "rep", "origin_kind": "start", "shock": "walk_forward",
                         "as_of_date": dt.date(2024, 1, 1), "period_start": dt.date(2024, 1, 1)})
    m = honesty.metrics(rows).filter((pl.col("period_type") == "all") & (pl.col("segment_type") == "all"))
    v = {(r["model_name"], r["metric"]): r["value"] for r in m.iter_rows(named=True)}
    assert sum(v[("p_hit_quota", f"bin_{lo}_{hi}_n")] for lo, hi in ((0, 10), (10, 30), (30, 50), (50, 70), (70, 90), (90, 100))) == 4000
    assert abs(v[("p_hit_quota", "bin_70_90_made_rate")] - v[("p_hit_quota", "bin_70_90_predicted_mean")]) < 0.04
    assert v[("p_hit_quota", "brier")] < v[("baseline_weighted_pipeline", "brier")]
    assert set(m["split"]) == {"holdout"}


def test_maventech_forecast_category_through_a_mapping(demo, tmp_path):
    """A CRM column holding the reps' call is kept for open deals (a mapping names it); closed deals
    stay Closed / Omitted, and deals without one get the stage rule."""
    src = _demo_source(demo, tmp_path, "owner_type,owner,period_start,period_type,amount\n")
    pipe = pl.read_csv(src / "sales_pipeline.csv", infer_schema_length=0)
    pipe.with_columns(pl.when(pl.col("opportunity_id").str.slice(-1).is_in(["1", "2"])).then(pl.lit("best case"))
                      .otherwise(None).alias("Call")).write_csv(src / "sales_pipeline.csv")
    (src / "revintel_mapping.yaml").write_text("columns:\n  sales_pipeline.csv:\n    forecast_category: Call\n")
    con = duckdb.connect()
    build_star(con, src)
    rows = con.execute("SELECT right(opportunity_id, 1) IN ('1', '2') AS called, is_closed, is_won, stage, "
                       "forecast_category FROM star.fact_opportunity").fetchall()
    for called, closed, won, stage, cat in rows:
        if closed:
            assert cat == ("Closed" if won else "Omitted")
        elif called:
            assert cat == "Best Case"
        else:
            assert cat == {"Negotiation": "Commit", "Proposal": "Best Case"}.get(stage, "Pipeline")
    assert any(c and not closed for c, closed, *_ in rows)


def test_no_call_without_a_commit_or_best_case_deal():
    """MavenTech's stages and categories are never Commit or Best Case: the plan showed a commit and a
    best case of 0 (its booked to date) beside a forecast whose commit was NULL (an app audit)."""
    import duckdb

    from revintel_assets.rules import HAS_CALL_SQL

    con = duckdb.connect()
    con.execute("CREATE SCHEMA features; CREATE SCHEMA star")
    con.execute("CREATE TABLE features.deal_snapshot AS SELECT * FROM (VALUES ('Prospecting'), ('Engaging')) t(stage)")
    con.execute("CREATE TABLE star.fact_opportunity AS SELECT 'Pipeline' AS forecast_category")
    assert con.execute(HAS_CALL_SQL).fetchone() == (False,)
    con.execute("INSERT INTO star.fact_opportunity VALUES ('Best Case')")  # the CRM's own category
    assert con.execute(HAS_CALL_SQL).fetchone() == (True,)
    con.execute("DELETE FROM star.fact_opportunity WHERE forecast_category = 'Best Case'")
    con.execute("INSERT INTO features.deal_snapshot VALUES ('Negotiation')")  # a commit stage
    assert con.execute(HAS_CALL_SQL).fetchone() == (True,)


def test_a_quota_file_whose_rows_were_all_quarantined_is_not_called_missing():
    """An audit: under a February fiscal year every calendar-quarter row of quotas.csv was quarantined
    (rightly), and the run and the Plan page then asked for quotas.csv to be loaded."""
    import duckdb

    from revintel_assets import rules

    con = duckdb.connect()
    con.execute("CREATE SCHEMA star; CREATE TABLE star.quarantine (source_file VARCHAR, line_number BIGINT, "
                "raw_row VARCHAR, reason VARCHAR)")
    assert rules.quarantined_quotas_note(con.execute(rules.QUARANTINED_QUOTAS_SQL).fetchall()) is None
    start = "period_start 2025-01-01 does not begin a fiscal quarter"
    con.executemany("INSERT INTO star.quarantine VALUES (?, ?, '', ?)",
                    [("quotas.csv", i, start) for i in range(2, 262)] + [("quotas.csv", 262, "amount is negative")]
                    + [("sales_pipeline.csv", 5, "unknown stage"), ("old_quotas.csv", 3, "x")])
    note = rules.quarantined_quotas_note(con.execute(rules.QUARANTINED_QUOTAS_SQL).fetchall())
    assert note == f"quotas.csv was read, but every one of its 261 rows was quarantined (star.quarantine), e.g. {start}"
