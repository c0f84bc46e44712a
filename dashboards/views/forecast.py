"""Forecast: what will we book this week / month, and how sure are we? P10-P90 band, P50 line,
booked actuals, the deals behind the spread, and how often past ranges held (backtests)."""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from dashboards import as_of as as_of_banner, safe
from dashboards import db, fmt, forecast_whatif, segments
from dashboards import deals_data as dd
from dashboards.filters import note_dropped
from dashboards.safe import md
from revintel_assets.defs.forecast import whatif
from revintel_assets.rules import UNASSIGNED

st.title("Revenue Forecast")
st.caption("Booked revenue = won amounts by close date. The band is P10–P90 of the simulations (their number "
           "is below; past as-of dates are stored with fewer): 8 periods in 10 should land inside it. Backtests "
           "below say how often it did.")
db.require_tables("forecast.revenue_forecast")

as_ofs = db.query("SELECT DISTINCT as_of_date FROM forecast.revenue_forecast ORDER BY 1 DESC")["as_of_date"].to_list()
c1, c2, c3, c4 = st.columns([1.2, 1, 1, 1.6])
as_of = c1.selectbox("As of", as_ofs, format_func=str)
period_type = c2.segmented_control("Period", ["week", "month"], default="week") or "week"
# the horizon reaches as far as the forecast was stored (13 weeks by default), never a fixed 12
stored = db.scalar("SELECT count(*) FROM forecast.revenue_forecast WHERE as_of_date = ? AND period_type = 'week' "
                   "AND segment_type = 'total'", [as_of]) or 0
if db.table_exists("forecast.deal_contributions"):
    stored = max(stored, db.scalar("SELECT max(horizon_weeks) FROM forecast.deal_contributions WHERE as_of_date = ?",
                                   [as_of]) or 0)
max_h = max(int(stored), 4)
horizon = c3.slider("Horizon (weeks)", min(4, max_h), max_h, max_h, help=f"Up to the {max_h} weeks stored")
as_of_banner.warn_if_past_the_data(as_of)
CURRENCY = fmt.currency()
data_last = as_of_banner.data_last_date() or as_of
seg_types = db.query("SELECT DISTINCT segment_type FROM forecast.revenue_forecast WHERE as_of_date = ?",
                     [as_of])["segment_type"].to_list()
order = [t for t in ("total", "region", "manager", "rep", "division") if t in seg_types]
with c4:
    s1, s2 = st.columns(2)
    seg_type = s1.selectbox("Segment", order)
    segs = db.query("SELECT DISTINCT segment FROM forecast.revenue_forecast WHERE as_of_date = ? AND segment_type = ? "
                    "ORDER BY 1", [as_of, seg_type])["segment"].to_list()
    rep_names = fmt.names("star.dim_rep", "rep_id", "rep_name") if seg_type == "rep" else {}
    segment = s2.selectbox(seg_type.capitalize(), segs, label_visibility="visible",
                           format_func=lambda v: rep_names.get(v, v))
note_dropped(f"forecast_{seg_type}", seg_type.capitalize(), segs, segment)

horizon_end = as_of + dt.timedelta(days=1) - dt.timedelta(days=(as_of + dt.timedelta(days=1)).weekday()) \
    + dt.timedelta(weeks=horizon) - dt.timedelta(days=1)
fc = db.query("SELECT * FROM forecast.revenue_forecast WHERE as_of_date = ? AND period_type = ? AND segment_type = ? "
              "AND segment = ? AND first_day <= ? ORDER BY period_start", [as_of, period_type, seg_type, segment,
                                                                          horizon_end])

# booked actuals by whole period, drawn only for periods the data covers to their last day: the week
# (or month) holding the as-of date is one period, booked so far + the forecast of its rest, never a
# partial actual or a partial forecast drawn as a drop
trunc = "week" if period_type == "week" else "month"
length = "INTERVAL 7 DAY" if period_type == "week" else "INTERVAL 1 MONTH"
# a missing rep, division, region or manager is the forecast's 'Unassigned' segment
seg_filter = {"total": "TRUE", "rep": "coalesce(o.rep_id, ?) = ?", "division": "coalesce(o.division, ?) = ?",
              "region": "coalesce(r.region, ?) = ?", "manager": "coalesce(r.manager, ?) = ?"}[seg_type]
params = [] if seg_type == "total" else [UNASSIGNED, segment]
look_back = as_of - dt.timedelta(weeks=horizon)
actual = pl.DataFrame(schema={"period_start": pl.Date, "actual": pl.Float64})
booked_so_far = pl.DataFrame(schema={"period_start": pl.Date, "booked": pl.Float64})
if db.table_exists("star.fact_opportunity"):
    try:
        # every period of the window, 0 where nothing was won (an audit: the line ran straight over a rep's
        # empty weeks, reading as revenue every week)
        actual = db.query(
            f"WITH periods AS (SELECT unnest(generate_series(date_trunc('{trunc}', ?::DATE), ?::DATE, {length}))::DATE "
            f"AS period_start), won AS (SELECT date_trunc('{trunc}', o.close_date)::DATE AS period_start, o.amount "
            "FROM star.fact_opportunity o LEFT JOIN star.dim_rep r USING (rep_id) "
            f"WHERE o.is_won AND o.close_date >= date_trunc('{trunc}', ?::DATE) AND o.close_date <= ? AND {seg_filter}) "
            "SELECT p.period_start, coalesce(sum(w.amount), 0)::DOUBLE AS actual FROM periods p LEFT JOIN won w "
            f"USING (period_start) WHERE (p.period_start + {length})::DATE - 1 <= ? GROUP BY 1 ORDER BY 1",
            [look_back, horizon_end, look_back, horizon_end, *params, data_last])
        booked_so_far = db.query(
            f"SELECT date_trunc('{trunc}', ?::DATE)::DATE AS period_start, coalesce(sum(o.amount), 0)::DOUBLE AS booked "
            "FROM star.fact_opportunity o LEFT JOIN star.dim_rep r USING (rep_id) "
            f"WHERE o.is_won AND o.close_date >= date_trunc('{trunc}', ?::DATE) AND o.close_date <= ? AND {seg_filter}",
            [as_of, as_of, as_of, *params])
    except Exception:  # an older star schema without close_date or dim_rep: no actuals line
        pass
# the forecast's first period starts the day after the as-of date: add what that period already booked
partial = fc.filter(pl.col("first_day").cast(pl.Date) > pl.col("period_start").cast(pl.Date)).height > 0
if partial and booked_so_far.height:
    so_far = float(booked_so_far["booked"][0] or 0.0)
    start = booked_so_far["period_start"][0]
    fc = fc.with_columns(pl.when(pl.col("period_start").cast(pl.Date) == start).then(pl.col(c) + so_far)
                         .otherwise(pl.col(c)).alias(c) for c in ("p10", "p50", "p90", "mean"))
else:
    so_far = 0.0
date_axis = alt.Axis(format="%b %d, %Y" if period_type == "week" else "%B %Y", labelAngle=0, labelOverlap=True)

k = st.columns(4)
first = fc.head(1).to_dicts()[0] if len(fc) else None
if first:
    k[0].metric(f"This {period_type} (P50)", fmt.money_card(first['p50'], CURRENCY),
                help=fmt.money(first['p50'], CURRENCY)
                + (f", including {fmt.money(so_far, CURRENCY)} already booked this {period_type}" if partial else ""))
    k[1].metric("P10 – P90", f"{fmt.money_short(first['p10'], CURRENCY)} – {fmt.money_short(first['p90'], CURRENCY)}")
k[2].metric(f"{len(fc)} {period_type}{'' if len(fc) == 1 else 's'}: mean total",
            fmt.money_card(fc['mean'].sum(), CURRENCY) if len(fc) else "—",
            help=fmt.money(fc['mean'].sum(), CURRENCY) if len(fc) else None)
k[3].metric("Simulations", f"{int(fc['n_sims'][0]):,}" if len(fc) and "n_sims" in fc.columns else "—")

if len(fc):
    band = alt.Chart(fc.to_pandas()).mark_area(opacity=0.25, color="#4c78a8").encode(
        x=alt.X("period_start:T", title=f"{period_type} starting", axis=date_axis),
        y=alt.Y("p10:Q", title=f"booked revenue ({CURRENCY})", axis=alt.Axis(labelExpr=fmt.money_axis(CURRENCY))),
        y2="p90:Q",
        tooltip=["period_start:T", alt.Tooltip("p10:Q", format=",.0f"), alt.Tooltip("p50:Q", format=",.0f"),
                 alt.Tooltip("p90:Q", format=",.0f"), alt.Tooltip("mean:Q", format=",.0f")])
    p50 = alt.Chart(fc.to_pandas()).mark_line(point=True, color="#4c78a8").encode(x="period_start:T", y="p50:Q")
    layers = [band, p50]
    if len(actual):
        layers.append(alt.Chart(actual.to_pandas()).mark_line(point=True, color="#e45756", strokeDash=[4, 2]).encode(
            x="period_start:T", y="actual:Q", tooltip=["period_start:T", alt.Tooltip("actual:Q", format=",.0f")]))
    st.altair_chart(alt.layer(*layers).properties(height=320), width="stretch")
    st.caption("Blue band: P10–P90; blue line: P50; red dashed: revenue actually booked, in whole periods. "
               + (f"The {period_type} holding the as-of date counts what it booked by then "
                  f"({fmt.money(so_far, CURRENCY)}) plus the forecast of its remaining days." if partial else ""))
    safe.dataframe(fc.select(pl.col("period_start", "first_day", "last_day").cast(pl.Date).cast(pl.Utf8), "p10", "p50", "p90", "mean"),
                 hide_index=True,
                 width="stretch", column_config={"period_start": "Period", "first_day": "Forecast from",
                                                 "last_day": "to",
                                                 **{c: fmt.money_column(c.upper() if c != "mean" else "Mean", CURRENCY)
                                                    for c in ("p10", "p50", "p90", "mean")}})
else:
    st.info("No forecast rows for this selection.")

# ------------------------------------------------------------------ what if?
st.subheader(":material/tune: What if?", divider="gray")
if not forecast_whatif.available():
    st.info("The what-if needs the forecast's deal contributions and the deal snapshots of this date.")
else:
    wi_base, wi_sims = forecast_whatif.base(as_of, seg_type, segment)
    whose = "the whole company" if seg_type == "total" else f"{seg_type} {segment}"  # not "total total"
    st.caption(f"{len(wi_base.deals):,} open deals of {whose}, recomputed with the forecast's own engine "
               f"({wi_sims:,} simulations, seeded, nothing saved). A moved or new deal closes on its date if won."
               + ("" if seg_type == "total" else " A segment is simulated on its own, so its unedited figures "
                  "differ from the stored forecast's by Monte Carlo noise (about 1 %); the changes shown are "
                  "against this same simulation."))
    picks = forecast_whatif.choices(wi_base)
    names = {r["opportunity_id"]: f"{r['opportunity_id']} · {r['rep_id']} · {r['stage']} · "
                                  f"{fmt.money(r['amount'], CURRENCY)}"
             for r in picks.iter_rows(named=True)}
    w1, w2, w3 = st.columns(3)
    leave_out = w1.multiselect("Leave out deals", list(names), format_func=names.get, key="wi_exclude")
    move = w2.selectbox("Move the close date of", [None, *names], format_func=lambda o: names.get(o, "—"),
                        key="wi_move")
    move_to = w2.date_input("to", value=as_of + dt.timedelta(days=60), key="wi_move_to", disabled=move is None)
    override = w3.selectbox("Override the win probability of", [None, *names], format_func=lambda o: names.get(o, "—"),
                            key="wi_prob_deal")
    prob = w3.slider("to", 0.0, 1.0, 0.9, 0.05, key="wi_prob", disabled=override is None)
    a1, a2, a3 = st.columns(3)
    new_amount = a1.number_input("Add a hypothetical deal: amount", min_value=0.0, value=0.0, step=10_000.0,
                                 key="wi_new_amount")
    new_close = a2.date_input("closing on", value=as_of + dt.timedelta(days=30), key="wi_new_close")
    new_prob = a3.slider("with win probability", 0.0, 1.0, 0.5, 0.05, key="wi_new_prob")
    edits = whatif.Edits(
        exclude=frozenset(leave_out), close_dates={move: move_to} if move else {},
        probabilities={override: prob} if override else {},
        added=(whatif.NewDeal(new_amount, new_close, new_prob, wi_base.reps[0] if wi_base.reps else None),)
        if new_amount > 0 else ())
    quota_left = forecast_whatif.remaining_quota(as_of, seg_type, segment)
    before = whatif.recompute(wi_base, whatif.Edits(), wi_sims, quota=quota_left)
    after = whatif.recompute(wi_base, edits, wi_sims, quota=quota_left) if edits != whatif.Edits() else before
    ptype = "quarter" if "quarter" in before["period_type"].to_list() else "month"
    b0, a0 = (f.filter(pl.col("period_type") == ptype).row(0, named=True) for f in (before, after))
    label = "rest of the quarter" if ptype == "quarter" else "this month"
    m = st.columns(4)
    for col, key in zip(m, ("p10", "p50", "p90")):
        col.metric(f"What-if {key.upper()} ({label})", fmt.money(a0[key], CURRENCY),
                   delta=fmt.money(a0[key] - b0[key], CURRENCY))
    if a0.get("p_hit_quota") is not None:
        m[3].metric("Chance of making the quota", f"{a0['p_hit_quota']:.0%}",
                    delta=f"{(a0['p_hit_quota'] - b0['p_hit_quota']) * 100:+.0f} pts")
    else:
        m[3].metric("Deals simulated", f"{a0['deals']:,}", delta=f"{a0['deals'] - b0['deals']:+,}")
    months = after.filter(pl.col("period_type") == "month").join(
        before.filter(pl.col("period_type") == "month").select("period_start", pl.col("p50").alias("p50_before")),
        on="period_start")
    safe.dataframe(months.select(pl.col("period_start").cast(pl.Utf8).alias("month"), "p50_before",
                               pl.col("p10"), pl.col("p50").alias("p50_what_if"), "p90"),
                 hide_index=True, width="stretch",
                 column_config={c: fmt.money_column(c.replace("_", " "), CURRENCY)
                                for c in ("p50_before", "p10", "p50_what_if", "p90")})

# ------------------------------------------------------------------ the deals behind the spread
st.subheader(":material/scatter_plot: Deals that drive the spread", divider="gray")
if db.table_exists("forecast.deal_contributions"):
    cond, seg_params = segments.segment_filter(seg_type, segment)
    # one row per deal: the chosen horizon's chance is element `horizon` of p_within_weeks
    deals = db.query(f"SELECT *, amount * p_in_horizon AS expected_revenue, "
                     f"amount * sqrt(greatest(p_in_horizon * (1 - p_in_horizon), 0)) AS sd_revenue FROM ("
                     f"SELECT opportunity_id, account_id, rep_id, division, stage, amount, win_probability, "
                     f"p_within_weeks[?] AS p_in_horizon FROM forecast.deal_contributions WHERE as_of_date = ?{cond}) "
                     "ORDER BY sd_revenue DESC, opportunity_id LIMIT 15", [horizon, as_of, *seg_params])
    st.caption(f"Open deals whose outcome moves the next {horizon} weeks the most: sd = amount × √(p(1−p)), "
               "p = chance it is won *and* closes inside the horizon. A deal without an amount counts at its "
               "product's list price, as on Pipeline Risk, and without either at the mean amount of its division's "
               "wins in the year before (Pipeline Risk counts it as 0).")
    deals = fmt.with_names(deals, account="account_id", rep="rep_id")
    # the win probabilities behind the spread: said when the stage baseline gave them (MavenTech's 68.14 % on
    # every deal was listed here without a word, where Pipeline Risk and Deal Detail say it)
    versions = fc["win_model_version"].unique().to_list() if "win_model_version" in fc.columns else []
    if any(dd.is_baseline(v) for v in versions):
        st.caption(dd.model_note(versions, as_of, dd.closed_by(as_of)))
    if len(deals):
        top = deals.row(0, named=True)
        account = "no account" if top["account"] == fmt.NO_ACCOUNT else top["account"]  # not "((no account), ..."
        st.markdown(f"Largest single source of spread: **{md(top['opportunity_id'])}** ({md(account)}, "
                    f"{md(top['rep'])}, {md(top['stage'])}), amount {md(fmt.money(top['amount'], CURRENCY))}, "
                    f"{fmt.pct(top['p_in_horizon'])} chance to book inside the horizon, "
                    f"sd {md(fmt.money(top['sd_revenue'], CURRENCY))}.")
    safe.dataframe(deals.select("opportunity_id", "account", "rep", "division", "stage", "amount", "win_probability",
                              "p_in_horizon", "expected_revenue", "sd_revenue"),
                 hide_index=True, width="stretch", column_config={
        "opportunity_id": "Deal", "account": "Account", "rep": "Rep", "division": "Division", "stage": "Stage",
        "amount": fmt.money_column("Amount", CURRENCY),
        "expected_revenue": fmt.money_column("Expected", CURRENCY),
        "sd_revenue": fmt.money_column("Spread (sd)", CURRENCY),
        "win_probability": st.column_config.ProgressColumn("Win probability", min_value=0, max_value=1, format="percent"),
        "p_in_horizon": st.column_config.ProgressColumn("Books in horizon", min_value=0, max_value=1, format="percent")})

# ------------------------------------------------------------------ backtests
st.subheader(":material/history: Backtests: was the range right as often as it claims?", divider="gray")
if not db.table_exists("forecast.forecast_backtest"):
    st.info("No backtests yet.")
    st.stop()
bt_as_of = db.scalar("SELECT max(backtest_as_of) FROM forecast.forecast_backtest")
bt = db.query("SELECT * FROM forecast.forecast_backtest WHERE backtest_as_of = ? AND period_type = ? "
              "AND segment_type = ?", [bt_as_of, period_type, seg_type])
if bt.is_empty():
    st.info("No backtest rows for this selection.")
    st.stop()
if not (bt["p90"].abs().sum() or bt["actual"].abs().sum()):  # backtest.metrics: such a coverage tests nothing
    st.info(f"Nothing was booked and nothing forecast in any backtested period ({bt['as_of_date'].n_unique()} "
            "origins): the deals have no value or none has closed yet, so the backtest has nothing to judge.",
            icon=":material/info:")
    st.stop()
cov = bt.group_by("as_of_date").agg(pl.col("covered").mean().alias("coverage"), pl.len().alias("rows")).sort("as_of_date")
overall = float(bt["covered"].mean())
b1, b2, b3 = st.columns(3)
b1.metric(f"P10–P90 coverage ({seg_type}, {period_type})", f"{overall:.0%}", help="Target: 80 % (70–90 % is fine)")
b2.metric("Origins", f"{cov.height}")
if db.table_exists("validation.model_metrics"):
    mm = db.query("SELECT model_name, metric, value FROM validation.model_metrics WHERE model_family = 'forecast' "
                  "AND cutoff_date = ? AND period_type = ? AND segment_type = ? AND metric = 'pinball_p50'",
                  [bt_as_of, period_type, seg_type])
    vals = dict(zip(mm["model_name"].to_list(), mm["value"].to_list()))
    if "revenue_forecast" in vals and "baseline_weighted_pipeline" in vals:
        b3.metric("P50 pinball loss vs weighted pipeline", fmt.money(vals['revenue_forecast'], CURRENCY),
                  delta=f"{fmt.money(vals['revenue_forecast'] - vals['baseline_weighted_pipeline'], CURRENCY)} vs baseline",
                  delta_color="inverse")

left, right = st.columns(2, gap="large")
with left:
    rule = alt.Chart(pl.DataFrame({"y": [0.8]}).to_pandas()).mark_rule(color="grey", strokeDash=[4, 4]).encode(y="y:Q")
    line = alt.Chart(cov.to_pandas()).mark_line(point=True).encode(
        x=alt.X("as_of_date:T", title="origin", axis=alt.Axis(format="%b %d, %Y", labelOverlap=True)), y=alt.Y("coverage:Q", scale=alt.Scale(domain=[0, 1]),
                                                         title="share of periods inside P10–P90"),
        tooltip=["as_of_date:T", alt.Tooltip("coverage:Q", format=".0%"), "rows:Q"])
    st.altair_chart((line + rule).properties(height=280, title="Coverage over time"), width="stretch")
with right:
    # per origin, its first full period (the partial first one is short): forecast vs actual for the segment
    one = bt.filter(pl.col("segment") == segment).filter(pl.col("period_start") > pl.col("as_of_date")).sort(
        "as_of_date", "period_start").group_by("as_of_date", maintain_order=True).first()
    if len(one):
        pdf = one.to_pandas()
        base = alt.Chart(pdf).encode(x=alt.X("as_of_date:T", title="origin",
                                             axis=alt.Axis(format="%b %d, %Y", labelOverlap=True)))
        chart = alt.layer(
            base.mark_area(opacity=0.25, color="#4c78a8").encode(
                y=alt.Y("p10:Q", title=f"revenue ({CURRENCY})", axis=alt.Axis(labelExpr=fmt.money_axis(CURRENCY))),
                y2="p90:Q"),
            base.mark_line(color="#4c78a8").encode(y="p50:Q"),
            base.mark_line(point=True, color="#e45756", strokeDash=[4, 2]).encode(y="actual:Q"),
            base.mark_line(color="#999999", strokeDash=[2, 2]).encode(y="baseline_weighted_pipeline:Q"))
        st.altair_chart(chart.properties(height=280, title=f"Next full {period_type}: forecast vs actual ({rep_names.get(segment, segment)})"),
                        width="stretch")
        st.caption("Band P10–P90, blue P50, red booked, grey dotted weighted pipeline (baseline).")
