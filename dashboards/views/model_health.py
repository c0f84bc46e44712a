"""Model Health: holdout metrics of every model (deals and ICP) beside their baselines, gains,
calibration, and how the metrics move across cutoffs."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db, fmt, safe
from dashboards import drift as drift_mod
from revintel_assets.defs.deals.snapshot import FEATURES_NUMERIC

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
# a metric a model has no value for (a forecast model's AUC) reads "—", not "None"
safe.dataframe(fmt.as_text(wide.select([c for c in ["model_family", "division", "model_name", "cutoff_date", *HEADLINE]
                                      if c in wide.columns]), {m: ("{:,.0f}" if m in ("n", "positives") else "{:.3f}").format for m in HEADLINE}),
             hide_index=True, width="stretch")

# no trained deal model beat the stage baseline: said here as on Pipeline Risk (MavenTech: the table showed
# the win model's 0.467 beside the baselines without a word on what scores the deals)
scorer = (db.scalar("SELECT model_version FROM scores.deal_scores ORDER BY as_of_date DESC LIMIT 1")
          if db.table_exists("scores.deal_scores") else None)
deal_auc = latest.filter((pl.col("model_family") == "deals") & (pl.col("model_name") == "win_probability")
                         & (pl.col("metric") == "auc"))
if scorer and str(scorer).startswith("baseline_stage") and deal_auc.height:
    auc = float(deal_auc["value"][0])
    st.info(f"No trained win model beat the stage baseline, which scores the deals (`{scorer}`): the latest, "
            f"cut off {str(deal_auc['cutoff_date'][0])[:10]}, ranks held-out deals at AUC {auc:.3f}"
            + (", no better than chance: the export carries no win signal it could learn" if auc < 0.55 else "")
            + ".", icon=":material/info:")

families = sorted(holdout["model_family"].unique().to_list())
st.caption("Models with holdout metrics: " + "; ".join(
    f"**{f}**: " + ", ".join(sorted(holdout.filter(pl.col("model_family") == f)["model_name"].unique().to_list()))
    for f in families))
k1, k2 = st.columns(2)
# the deal model first: it is what Pipeline Risk and Deal Detail show
family = k1.selectbox("Model family", families, index=families.index("deals") if "deals" in families else 0)
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
        st.caption("`validation.holdout_gains` is not in the warehouse: no model has written holdout gains yet, or "
                   "none that writes them could be trained on this source (the run's warnings say why).")
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
        st.caption("`validation.calibration_bins` is not in the warehouse: no model has written calibration bins yet, "
                   "or none that writes them could be trained on this source (the run's warnings say why).")

st.subheader(":material/timeline: Metrics across cutoffs", divider="gray")
chosen = holdout.filter((pl.col("model_family") == family) & (pl.col("division") == division))
# the metrics this family has (the forecast family's coverage, not an AUC that then had "No values")
metric = st.selectbox("Metric", [m for m in HEADLINE if m in chosen["metric"].unique().to_list()]
                      or [m for m in chosen["metric"].unique().sort().to_list()])
trend = chosen.filter(pl.col("metric") == metric)
if trend.is_empty():
    st.caption("No values for this metric.")
else:
    line = (alt.Chart(trend.select("cutoff_date", "model_name", "value").to_pandas()).mark_line(point=True)
            .encode(x=alt.X("cutoff_date:T", title="cutoff", axis=alt.Axis(format="%b %d, %Y", labelOverlap=True)), y=alt.Y("value:Q", title=metric, axis=alt.Axis(format=".2f"),
                                                                   scale=alt.Scale(zero=False)),
                    color=alt.Color("model_name:N", title=None, legend=alt.Legend(orient="bottom")),
                    tooltip=["model_name", "cutoff_date", alt.Tooltip("value:Q", format=".3f")])
            .properties(height=260))
    st.altair_chart(line, width="stretch")

# ---------------------------------------------------------------- champion history
st.subheader(":material/workspace_premium: Champion history", divider="gray")
st.caption("Which model scored the deals on each as-of date: a trained version only once it beat the baselines "
           "(and the previous champion) on held-out rows; until then the stage baseline.")
if db.table_exists("scores.deal_scores"):
    champions = db.query("""
        SELECT split_part(model_version, '@', 1) AS model_version, min(as_of_date) AS first_date,
               max(as_of_date) AS last_date, count(DISTINCT as_of_date) AS dates, count(*) AS deals_scored
        FROM scores.deal_scores GROUP BY 1 ORDER BY 2 DESC""")  # the stage baseline is one row, not one per date
    trained = (metrics.filter((pl.col("model_family") == "deals") & (pl.col("model_name") == "win_probability"))
               .group_by("model_version").agg(pl.col("cutoff_date").max().alias("trained_on")))
    champions = champions.join(trained, on="model_version", how="left").with_columns(
        pl.when(pl.col("model_version").str.starts_with("baseline_stage"))
        .then(pl.lit("stage baseline (no trained model had beaten it)"))
        .otherwise(pl.lit("LightGBM win-probability model")).alias("what"))
    safe.dataframe(fmt.as_text(champions.select("model_version", "what", "trained_on", "first_date", "last_date", "dates",
                                              "deals_scored"), {"trained_on": lambda d: str(d)[:10]}),  # the stage baseline: "—"
                 hide_index=True, width="stretch", column_config={
        "model_version": "Deal model", "what": "What it is", "trained_on": "Training cutoff",
        "first_date": st.column_config.DateColumn("Champion from", format="YYYY-MM-DD"),
        "last_date": st.column_config.DateColumn("to", format="YYYY-MM-DD"),
        "dates": "As-of dates", "deals_scored": "Deals scored"})
else:
    st.caption("`scores.deal_scores` is not built yet.")
if db.table_exists("validation.icp_models"):
    cols = set(db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'validation' "
                        "AND table_name = 'icp_models'")["column_name"].to_list())
    if "champion" in cols:
        icp = db.query("SELECT cutoff_date, division, champion, champion_reason FROM validation.icp_models "
                       "WHERE status = 'trained' ORDER BY cutoff_date DESC, division")
        with st.expander(f"ICP champions ({icp.height} cutoff × division models)"):
            safe.dataframe(icp, hide_index=True, width="stretch", column_config={
                "cutoff_date": st.column_config.DateColumn("Cutoff", format="YYYY-MM-DD"), "division": "Division",
                "champion": "Champion", "champion_reason": st.column_config.TextColumn("Why", width="large")})

# ---------------------------------------------------------------- drift
st.subheader(":material/swap_calls: Drift: today's open deals against what the champion learned from", divider="gray")
if not (db.table_exists("features.deal_snapshot") and db.table_exists("scores.deal_scores")):
    st.caption("Needs `features.deal_snapshot` and `scores.deal_scores`.")
    st.stop()
latest = db.scalar("SELECT max(as_of_date) FROM scores.deal_scores")
version = db.scalar("SELECT any_value(model_version) FROM scores.deal_scores WHERE as_of_date = ?", [latest])
cutoff_row = metrics.filter(pl.col("model_version") == version)["cutoff_date"]
cutoff = cutoff_row.max() if len(cutoff_row) else latest
if hasattr(cutoff, "date"):
    cutoff = cutoff.date()
# reference: the year of snapshots before the champion's cutoff, less the last 13 weeks (their outcomes
# were not yet known to train on); current: the deals open on the latest as-of date
import datetime as _dt  # noqa: E402

ref_end = cutoff - _dt.timedelta(weeks=13)
ref_start = ref_end - _dt.timedelta(days=365)
have = set(db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'features' "
                    "AND table_name = 'deal_snapshot'")["column_name"].to_list())
# features that differ between any two windows by construction: the calendar's, and the usual days in
# a stage, a running median per stage that creeps with time (a year's weekly values binned in deciles
# put today's, a fraction of a day later, all in the top bin: PSI 4.3, a "major shift", on a demo whose
# world does not change; an audit)
BY_CONSTRUCTION = {"days_to_quarter_end", "month_of_year", "stage_norm_days"}
feats = [f for f in FEATURES_NUMERIC if f in have and f not in BY_CONSTRUCTION]
select = ", ".join(f"{f}::DOUBLE AS {f}" for f in feats)
reference = db.query(f"SELECT {select} FROM features.deal_snapshot WHERE as_of_date > ? AND as_of_date <= ? "
                     "USING SAMPLE reservoir(20000 ROWS) REPEATABLE (7)", [ref_start, ref_end])
cur_start = latest - _dt.timedelta(weeks=13)
current = db.query(f"SELECT {select} FROM features.deal_snapshot WHERE as_of_date > ? AND as_of_date <= ? "
                   "USING SAMPLE reservoir(20000 ROWS) REPEATABLE (7)", [cur_start, latest])
if reference.is_empty() or current.is_empty():
    st.caption(f"Not enough history before {ref_end} to compare with: no drift measured.")
    st.stop()
table = drift_mod.feature_drift(reference, current, feats).with_columns(
    pl.col("feature").map_elements(fmt.feature, return_dtype=pl.String).alias("name"))
shifted = table.filter(pl.col("psi") >= drift_mod.MODERATE)
d1, d2, d3 = st.columns(3)
d1.metric("Features compared", f"{table.height}", border=True)
d2.metric("Moderate or major shift", f"{shifted.height}", border=True,
          help="PSI ≥ 0.1 (moderate) or ≥ 0.25 (major)")
d3.metric("Largest shift (PSI)", f"{table['psi'][0]:.2f}" if table.height else "—", border=True,
          delta=table["name"][0] if table.height else None, delta_color="off", delta_arrow="off")
chart = (alt.Chart(table.head(15).to_pandas()).mark_bar(cornerRadiusEnd=3)
         .encode(x=alt.X("psi:Q", title="population stability index (PSI)"),
                 y=alt.Y("name:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
                 color=alt.Color("level:N", title=None, scale=alt.Scale(
                     domain=["stable", "moderate shift", "major shift"], range=["#54a24b", "#f58518", "#e45756"]),
                     legend=alt.Legend(orient="bottom")),
                 tooltip=["name", "feature", alt.Tooltip("psi:Q", format=".3f"), "level"])
         .properties(height=alt.Step(20)))
st.altair_chart(chart, width="stretch")
st.caption(f"Reference: {reference.height:,} open-deal snapshots from {ref_start} to {ref_end} (the year before the "
           f"champion `{version}`'s cutoff {cutoff}, less the 13 weeks whose outcomes were still open); current: {current.height:,} "
           f"snapshots of the 13 weeks to {latest}. Calendar features (days to quarter end, month) and the usual "
           "days in a stage (a running median that creeps with time) are left out: two windows differ in them "
           "by construction. PSI < 0.1 stable, 0.1–0.25 moderate, > 0.25 major.")
