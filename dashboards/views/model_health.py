"""Model Health: holdout metrics of every model (deals and ICP) beside their baselines, gains,
calibration, and how the metrics move across cutoffs."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db

HEADLINE = ["auc", "pr_auc", "brier", "ece", "lift_top_decile", "precision_at_k", "value_capture_top_decile",
            "oracle_auc", "n", "positives"]

st.title("Model Health")
st.caption("Every metric is measured on rows the model never saw, split by time; baselines are "
           "evaluated on exactly the same rows.")
db.require_tables("validation.model_metrics")

metrics = db.query("SELECT * FROM validation.model_metrics")
if "segment" in metrics.columns:  # ICP adds a never-bought segment; the headline is all rows
    metrics = metrics.filter(pl.col("segment").is_null() | (pl.col("segment") == "all"))
if "model_family" not in metrics.columns:
    metrics = metrics.with_columns(model_family=pl.lit("all"))
metrics = metrics.with_columns(pl.col("model_family").fill_null("other"), pl.col("division").fill_null("all"))
holdout = metrics.filter(pl.col("split") == "holdout")
if holdout.is_empty():
    st.info("No holdout metrics yet.")
    st.stop()

# ---------------------------------------------------------------- latest holdout of every model
st.subheader(":material/fact_check: Latest holdout of every model", divider="gray")
latest = holdout.join(holdout.group_by("model_family").agg(pl.col("cutoff_date").max().alias("latest")),
                      on="model_family").filter(pl.col("cutoff_date") == pl.col("latest"))
wide = (latest.filter(pl.col("metric").is_in(HEADLINE))
        .pivot(on="metric", index=["model_family", "division", "model_name", "cutoff_date"], values="value",
               aggregate_function="first")
        .sort("model_family", "division", "model_name").with_columns(pl.col("cutoff_date").cast(pl.Date).cast(pl.Utf8)))
st.dataframe(wide.select([c for c in ["model_family", "division", "model_name", "cutoff_date", *HEADLINE]
                          if c in wide.columns]), hide_index=True, width="stretch",
             column_config={m: st.column_config.NumberColumn(format="%.3f") for m in HEADLINE[:-2]})

families = sorted(holdout["model_family"].unique().to_list())
st.caption("Models with holdout metrics: " + "; ".join(
    f"**{f}**: " + ", ".join(sorted(holdout.filter(pl.col("model_family") == f)["model_name"].unique().to_list()))
    for f in families))
k1, k2 = st.columns(2)
family = k1.selectbox("Model family", families, index=families.index("icp") if "icp" in families else 0)
divs = sorted(holdout.filter(pl.col("model_family") == family)["division"].unique().to_list())
division = k2.selectbox("Division", divs)
scope = latest.filter((pl.col("model_family") == family) & (pl.col("division") == division))
cutoff = scope["cutoff_date"].max()

g_col, c_col = st.columns(2, gap="large")
with g_col:
    st.subheader(":material/trending_up: Gains / lift", divider="gray")
    if db.table_exists("validation.holdout_gains"):
        gains = db.query("SELECT * FROM validation.holdout_gains WHERE cutoff_date = ? AND division = ?",
                         [cutoff, division])
        if gains.is_empty():
            st.caption("No gains table for this model.")
        else:
            chart = (alt.Chart(gains.to_pandas()).mark_line(point=True)
                     .encode(x=alt.X("decile:O", title="decile (1 = top 10 %)"),
                             y=alt.Y("lift:Q", title="lift over the base rate"),
                             color=alt.Color("model_name:N", title=None, legend=alt.Legend(orient="bottom")),
                             tooltip=["model_name", "decile", alt.Tooltip("lift:Q", format=".2f"),
                                      alt.Tooltip("cumulative_capture:Q", format=".1%")])
                     .properties(height=280))
            st.altair_chart(chart, width="stretch")
    else:
        st.caption("`validation.holdout_gains` not built yet.")
with c_col:
    st.subheader(":material/straighten: Calibration", divider="gray")
    if db.table_exists("validation.calibration_bins"):
        bins = db.query("SELECT * FROM validation.calibration_bins WHERE cutoff_date = ? AND division = ?",
                        [cutoff, division])
        if "split" in bins.columns:
            bins = bins.filter(pl.col("split").is_null() | (pl.col("split") == "holdout"))
        if bins.is_empty():
            st.caption("No calibration bins for this model.")
        else:
            diag = alt.Chart(pl.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}).to_pandas()).mark_line(
                strokeDash=[4, 4], color="grey").encode(x="x:Q", y="y:Q")
            pts = (alt.Chart(bins.to_pandas()).mark_line(point=True)
                   .encode(x=alt.X("mean_predicted:Q", title="mean predicted", scale=alt.Scale(domain=[0, 1])),
                           y=alt.Y("observed_rate:Q", title="observed rate", scale=alt.Scale(domain=[0, 1])),
                           color=alt.Color("model_name:N", title=None, legend=alt.Legend(orient="bottom")),
                           tooltip=["model_name", "bin", "n", alt.Tooltip("mean_predicted:Q", format=".2f"),
                                    alt.Tooltip("observed_rate:Q", format=".2f")])
                   .properties(height=280))
            st.altair_chart(diag + pts, width="stretch")
    else:
        st.caption("`validation.calibration_bins` not built yet.")

st.subheader(":material/timeline: Metrics across cutoffs", divider="gray")
metric = st.selectbox("Metric", [m for m in HEADLINE if m in holdout["metric"].unique().to_list()])
trend = holdout.filter((pl.col("model_family") == family) & (pl.col("division") == division)
                       & (pl.col("metric") == metric))
if trend.is_empty():
    st.caption("No values for this metric.")
else:
    line = (alt.Chart(trend.select("cutoff_date", "model_name", "value").to_pandas()).mark_line(point=True)
            .encode(x=alt.X("cutoff_date:T", title="cutoff"), y=alt.Y("value:Q", title=metric, axis=alt.Axis(format=".2f"),
                                                                   scale=alt.Scale(zero=False)),
                    color=alt.Color("model_name:N", title=None, legend=alt.Legend(orient="bottom")),
                    tooltip=["model_name", "cutoff_date", alt.Tooltip("value:Q", format=".3f")])
            .properties(height=260))
    st.altair_chart(line, width="stretch")
