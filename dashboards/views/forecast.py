"""Forecast: what will we book this week / month, and how sure are we? P10-P90 band, P50 line,
booked actuals, the deals behind the spread, and how often past ranges held (backtests)."""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from dashboards import as_of as as_of_banner
from dashboards import db, forecast_whatif
from revintel_assets.defs.forecast import whatif

st.title("Revenue Forecast")
st.caption("Booked revenue = won amounts by close date. The band is P10–P90 of 10,000 simulations: "
           "8 periods in 10 should land inside it. Backtests below say how often it did.")
db.require_tables("forecast.revenue_forecast")

as_ofs = db.query("SELECT DISTINCT as_of_date FROM forecast.revenue_forecast ORDER BY 1 DESC")["as_of_date"].to_list()
c1, c2, c3, c4 = st.columns([1.2, 1, 1, 1.6])
as_of = c1.selectbox("As of", as_ofs, format_func=str)
period_type = c2.segmented_control("Period", ["week", "month"], default="week") or "week"
horizon = c3.slider("Horizon (weeks)", 4, 12, 12)
as_of_banner.warn_if_past_the_data(as_of)
seg_types = db.query("SELECT DISTINCT segment_type FROM forecast.revenue_forecast WHERE as_of_date = ?",
                     [as_of])["segment_type"].to_list()
order = [t for t in ("total", "region", "manager", "rep", "division") if t in seg_types]
with c4:
    s1, s2 = st.columns(2)
    seg_type = s1.selectbox("Segment", order)
    segs = db.query("SELECT DISTINCT segment FROM forecast.revenue_forecast WHERE as_of_date = ? AND segment_type = ? "
                    "ORDER BY 1", [as_of, seg_type])["segment"].to_list()
    segment = s2.selectbox(seg_type.capitalize(), segs, label_visibility="visible")

horizon_end = as_of + dt.timedelta(days=1) - dt.timedelta(days=(as_of + dt.timedelta(days=1)).weekday()) \
    + dt.timedelta(weeks=horizon) - dt.timedelta(days=1)
fc = db.query("SELECT * FROM forecast.revenue_forecast WHERE as_of_date = ? AND period_type = ? AND segment_type = ? "
              "AND segment = ? AND first_day <= ? ORDER BY period_start", [as_of, period_type, seg_type, segment,
                                                                          horizon_end])

# booked actuals: the periods before the as-of date (context) and, for a past as-of date, inside the horizon
trunc = "week" if period_type == "week" else "month"
seg_filter = {"total": "TRUE", "rep": "o.rep_id = ?", "division": "o.division = ?",
              "region": "r.region = ?", "manager": "r.manager = ?"}[seg_type]
params = [] if seg_type == "total" else [segment]
look_back = as_of - dt.timedelta(weeks=horizon)
actual = pl.DataFrame(schema={"period_start": pl.Date, "actual": pl.Float64})
if db.table_exists("star.fact_opportunity"):
    try:
        actual = db.query(
            f"SELECT date_trunc('{trunc}', o.close_date)::DATE AS period_start, sum(o.amount) AS actual "
            "FROM star.fact_opportunity o LEFT JOIN star.dim_rep r USING (rep_id) "
            f"WHERE o.is_won AND o.close_date > ? AND o.close_date <= ? AND {seg_filter} GROUP BY 1 ORDER BY 1",
            [look_back, horizon_end, *params])
    except Exception:  # an older star schema without close_date or dim_rep: no actuals line
        pass

k = st.columns(4)
first = fc.head(1).to_dicts()[0] if len(fc) else None
if first:
    k[0].metric(f"This {period_type} (P50)", f"{first['p50']:,.0f}")
    k[1].metric("P10 – P90", f"{first['p10'] / 1e3:,.0f}k – {first['p90'] / 1e3:,.0f}k")
k[2].metric(f"{len(fc)} {period_type}s: mean total", f"{fc['mean'].sum():,.0f}" if len(fc) else "—")
k[3].metric("Simulations", f"{int(fc['n_sims'][0]):,}" if len(fc) and "n_sims" in fc.columns else "—")

if len(fc):
    band = alt.Chart(fc.to_pandas()).mark_area(opacity=0.25, color="#4c78a8").encode(
        x=alt.X("period_start:T", title=period_type), y=alt.Y("p10:Q", title="booked revenue"), y2="p90:Q",
        tooltip=["period_start:T", alt.Tooltip("p10:Q", format=",.0f"), alt.Tooltip("p50:Q", format=",.0f"),
                 alt.Tooltip("p90:Q", format=",.0f"), alt.Tooltip("mean:Q", format=",.0f")])
    p50 = alt.Chart(fc.to_pandas()).mark_line(point=True, color="#4c78a8").encode(x="period_start:T", y="p50:Q")
    layers = [band, p50]
    if len(actual):
        layers.append(alt.Chart(actual.to_pandas()).mark_line(point=True, color="#e45756", strokeDash=[4, 2]).encode(
            x="period_start:T", y="actual:Q", tooltip=["period_start:T", alt.Tooltip("actual:Q", format=",.0f")]))
    st.altair_chart(alt.layer(*layers).properties(height=320), width="stretch")
    st.caption("Blue band: P10–P90; blue line: P50; red dashed: revenue actually booked. "
               "The first period is partial (it starts the day after the as-of date).")
    st.dataframe(fc.select(pl.col("period_start", "first_day", "last_day").cast(pl.Date).cast(pl.Utf8), "p10", "p50", "p90", "mean"),
                 hide_index=True,
                 width="stretch", column_config={c: st.column_config.NumberColumn(format="%,.0f")
                                                 for c in ("p10", "p50", "p90", "mean")})
else:
    st.info("No forecast rows for this selection.")

# ------------------------------------------------------------------ what if?
st.subheader(":material/tune: What if?", divider="gray")
if not forecast_whatif.available():
    st.info("The what-if needs the forecast's deal contributions and the deal snapshots of this date.")
else:
    wi_base, wi_sims = forecast_whatif.base(as_of, seg_type, segment)
    st.caption(f"{len(wi_base.deals):,} open deals of {seg_type} {segment}, recomputed with the forecast's own engine "
               f"({wi_sims:,} simulations, seeded, nothing saved). A moved or new deal closes on its date if won.")
    picks = forecast_whatif.choices(wi_base)
    names = {r["opportunity_id"]: f"{r['opportunity_id']} · {r['rep_id']} · {r['stage']} · {r['amount']:,.0f}"
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
        col.metric(f"What-if {key.upper()} ({label})", f"{a0[key]:,.0f}", delta=f"{a0[key] - b0[key]:,.0f}")
    if a0.get("p_hit_quota") is not None:
        m[3].metric("Chance of making the quota", f"{a0['p_hit_quota']:.0%}",
                    delta=f"{(a0['p_hit_quota'] - b0['p_hit_quota']) * 100:+.0f} pts")
    else:
        m[3].metric("Deals simulated", f"{a0['deals']:,}", delta=f"{a0['deals'] - b0['deals']:+,}")
    months = after.filter(pl.col("period_type") == "month").join(
        before.filter(pl.col("period_type") == "month").select("period_start", pl.col("p50").alias("p50_before")),
        on="period_start")
    st.dataframe(months.select(pl.col("period_start").cast(pl.Utf8).alias("month"), "p50_before",
                               pl.col("p10"), pl.col("p50").alias("p50_what_if"), "p90"),
                 hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%,.0f")
                                for c in ("p50_before", "p10", "p50_what_if", "p90")})

# ------------------------------------------------------------------ the deals behind the spread
st.subheader(":material/scatter_plot: Deals that drive the spread", divider="gray")
if db.table_exists("forecast.deal_contributions"):
    col = {"total": None, "rep": "rep_id", "division": "division"}.get(seg_type, "rep_id")
    where, p = "as_of_date = ? AND horizon_weeks = ?", [as_of, horizon]
    if seg_type in ("rep", "division"):
        where += f" AND {col} = ?"
        p.append(segment)
    elif seg_type in ("region", "manager"):
        where += f" AND rep_id IN (SELECT rep_id FROM star.dim_rep WHERE {seg_type} = ?)"
        p.append(segment)
    deals = db.query(f"SELECT opportunity_id, account_id, rep_id, division, stage, amount, win_probability, "
                     f"p_in_horizon, expected_revenue, sd_revenue FROM forecast.deal_contributions WHERE {where} "
                     "ORDER BY sd_revenue DESC LIMIT 15", p)
    st.caption(f"Open deals whose outcome moves the next {horizon} weeks the most: sd = amount × √(p(1−p)), "
               "p = chance it is won *and* closes inside the horizon.")
    if len(deals):
        top = deals.row(0, named=True)
        st.markdown(f"Largest single source of spread: **{top['opportunity_id']}** ({top['rep_id']}, {top['stage']}), "
                    f"amount {top['amount']:,.0f}, {top['p_in_horizon']:.0%} chance to book inside the horizon, "
                    f"sd {top['sd_revenue']:,.0f}.")
    st.dataframe(deals, hide_index=True, width="stretch", column_config={
        "amount": st.column_config.NumberColumn(format="%,.0f"),
        "expected_revenue": st.column_config.NumberColumn(format="%,.0f"),
        "sd_revenue": st.column_config.NumberColumn("spread (sd)", format="%,.0f"),
        "win_probability": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f"),
        "p_in_horizon": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")})

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
        b3.metric("P50 pinball loss vs weighted pipeline", f"{vals['revenue_forecast']:,.0f}",
                  delta=f"{vals['revenue_forecast'] - vals['baseline_weighted_pipeline']:,.0f} vs baseline",
                  delta_color="inverse")

left, right = st.columns(2, gap="large")
with left:
    rule = alt.Chart(pl.DataFrame({"y": [0.8]}).to_pandas()).mark_rule(color="grey", strokeDash=[4, 4]).encode(y="y:Q")
    line = alt.Chart(cov.to_pandas()).mark_line(point=True).encode(
        x=alt.X("as_of_date:T", title="origin"), y=alt.Y("coverage:Q", scale=alt.Scale(domain=[0, 1]),
                                                         title="share of periods inside P10–P90"),
        tooltip=["as_of_date:T", alt.Tooltip("coverage:Q", format=".0%"), "rows:Q"])
    st.altair_chart((line + rule).properties(height=280, title="Coverage over time"), width="stretch")
with right:
    # per origin, its first full period (the partial first one is short): forecast vs actual for the segment
    one = bt.filter(pl.col("segment") == segment).filter(pl.col("period_start") > pl.col("as_of_date")).sort(
        "as_of_date", "period_start").group_by("as_of_date", maintain_order=True).first()
    if len(one):
        pdf = one.to_pandas()
        base = alt.Chart(pdf).encode(x=alt.X("as_of_date:T", title="origin"))
        chart = alt.layer(
            base.mark_area(opacity=0.25, color="#4c78a8").encode(y=alt.Y("p10:Q", title="revenue"), y2="p90:Q"),
            base.mark_line(color="#4c78a8").encode(y="p50:Q"),
            base.mark_line(point=True, color="#e45756", strokeDash=[4, 2]).encode(y="actual:Q"),
            base.mark_line(color="#999999", strokeDash=[2, 2]).encode(y="baseline_weighted_pipeline:Q"))
        st.altair_chart(chart.properties(height=280, title=f"Next full {period_type}: forecast vs actual ({segment})"),
                        width="stretch")
        st.caption("Band P10–P90, blue P50, red booked, grey dotted weighted pipeline (baseline).")
