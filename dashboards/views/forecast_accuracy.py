"""Forecast accuracy: every stored forecast (one per as-of date) against what was then booked. Does
the call get better as the quarter goes on, does revintel beat the weighted pipeline and the
commit category, and which segments does it over- or under-call?"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db, safe
from revintel_assets.defs.forecast.accuracy import summary

st.title("Forecast Accuracy")
st.caption("Each past forecast, made with only what was known on its date, against the revenue booked once its "
           "period was over. Error and bias are relative to the period's whole bookings (for the quarter: booked "
           "before the forecast + after it), so week 12 is judged on the same quarter total as week 1.")
db.require_tables("forecast.forecast_accuracy")

c1, c2 = st.columns(2)
types = db.query("SELECT DISTINCT period_type FROM forecast.forecast_accuracy")["period_type"].to_list()
first = "quarter" if "quarter" in types else (types[0] if types else None)
# a segmented control can be clicked off: the default then, as on the other pages (it showed "no
# forecast has a period that is over yet" over 87 quarter forecasts)
period_type = c1.segmented_control("Period", [t for t in ("quarter", "month", "week") if t in types],
                                   default=first) or first
seg_types = db.query("SELECT DISTINCT segment_type FROM forecast.forecast_accuracy")["segment_type"].to_list()
seg_type = c2.selectbox("Segments for the bias view", [t for t in ("manager", "region", "rep", "division")
                                                       if t in seg_types] or ["total"])
acc = db.query("SELECT * FROM forecast.forecast_accuracy WHERE period_type = ? AND segment_type IN ('total', ?)",
               [period_type, seg_type])
if acc.is_empty():
    st.info("No forecast has a period that is over yet: accuracy needs forecasts older than their horizon.")
    st.stop()
evaluated = acc["evaluated_as_of"].max()
total = acc.filter(pl.col("segment_type") == "total")
st.markdown(f"**{total['as_of_date'].n_unique()} forecasts** scored (as-of dates {total['as_of_date'].min()} .. "
            f"{total['as_of_date'].max()}), outcomes known on {evaluated}.")

# ------------------------------------------------------------------ better as the quarter goes on?
st.subheader(":material/trending_down: Does the call get better as the quarter goes on?", divider="gray")
by_week = summary(total, ["week_of_quarter"])
named = {"revenue_forecast": "revintel P50", "weighted_pipeline": "weighted pipeline", "commit": "commit category"}
chart = by_week.filter(pl.col("wape").is_not_null()).with_columns(pl.col("model_name").replace(named).alias("caller"))
left, right = st.columns(2, gap="large")
with left:
    st.altair_chart(alt.Chart(chart.to_pandas()).mark_line(point=True).encode(
        x=alt.X("week_of_quarter:O", title="week of the quarter"), y=alt.Y("wape:Q", title="error of the call (WAPE)",
                                                                            axis=alt.Axis(format="%")),
        color=alt.Color("caller:N", title=None), tooltip=["caller", "week_of_quarter", alt.Tooltip("wape:Q", format=".1%"),
                                                          alt.Tooltip("bias:Q", format="+.1%"), "n"]).properties(
        height=300, title="Error of the call by week of the quarter"), width="stretch")
with right:
    cov = by_week.filter(pl.col("model_name") == "revenue_forecast")
    rule = alt.Chart(pl.DataFrame({"y": [0.8]}).to_pandas()).mark_rule(color="grey", strokeDash=[4, 4]).encode(y="y:Q")
    st.altair_chart((alt.Chart(cov.to_pandas()).mark_bar(opacity=0.7).encode(
        x=alt.X("week_of_quarter:O", title="week of the quarter"),
        y=alt.Y("coverage_p10_p90:Q", title="inside P10–P90", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["week_of_quarter", alt.Tooltip("coverage_p10_p90:Q", format=".0%"), "n"]) + rule).properties(
        height=300, title="How often the range held (target 80 %)"), width="stretch")
if total.filter(pl.col("model_name") == "commit")["p50"].null_count() == total.filter(pl.col("model_name") == "commit").height:
    st.caption("The commit category has no call here: the source has no forecast categories (shown as empty, "
               "never made up).")
safe.dataframe(by_week.with_columns(pl.col("model_name").replace(named).alias("caller")).select(
    "week_of_quarter", "caller", "n", "wape", "bias", "coverage_p10_p90", "pinball_p50"), hide_index=True,
    width="stretch", column_config={
        "wape": st.column_config.NumberColumn("error (WAPE)", format="percent"),
        "bias": st.column_config.NumberColumn("bias (+ over-called)", format="percent"),
        "coverage_p10_p90": st.column_config.NumberColumn("P10–P90 coverage", format="percent"),
        "pinball_p50": st.column_config.NumberColumn("pinball P50", format="%,.0f")})

# ------------------------------------------------------------------ which segments are over/under-called
st.subheader(":material/balance: Which segments are over- or under-called?", divider="gray")
segs = summary(acc.filter(pl.col("segment_type") == seg_type), ["segment"]).filter(pl.col("bias").is_not_null())
if segs.is_empty():
    st.info(f"No {seg_type} segment has a scored forecast.")
else:
    view = segs.with_columns(pl.col("model_name").replace(named).alias("caller"),
                             pl.when(pl.col("bias") > 0).then(pl.lit("over-called")).otherwise(pl.lit("under-called"))
                             .alias("direction"))
    st.altair_chart(alt.Chart(view.to_pandas()).mark_bar().encode(
        y=alt.Y("segment:N", sort="-x", title=seg_type), x=alt.X("bias:Q", title="bias of P50 (share of bookings)",
                                                                  axis=alt.Axis(format="%")),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["over-called", "under-called"],
                                                        range=["#e45756", "#4c78a8"])),
        row=alt.Row("caller:N", title=None), tooltip=["segment", "caller", alt.Tooltip("bias:Q", format="+.1%"),
                                                      alt.Tooltip("wape:Q", format=".1%"), "n"]).properties(
        height=max(120, 18 * view["segment"].n_unique())), width="stretch")
    worst = view.filter(pl.col("model_name") == "revenue_forecast").sort(pl.col("bias").abs(), descending=True).head(1)
    if len(worst):
        w = worst.row(0, named=True)
        st.markdown(f"Most {w['direction']}: **{safe.md(w['segment'])}**, revintel's P50 {w['bias']:+.0%} of what it booked "
                    f"over {w['n']} {period_type} forecasts.")
