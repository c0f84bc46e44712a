"""ICP: how likely each account is to buy from a division in the next window, and why."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db, fmt, safe, why

st.title("ICP — division propensity")
st.caption("Calibrated probability that each account buys from the division within the window after the "
           "cutoff, from that division's model. Buyers already buy the division; the rest are whitespace.")
why.stop_unless_icp("scores.icp_scores")

cutoffs = db.query("SELECT DISTINCT cutoff_date FROM scores.icp_scores ORDER BY 1 DESC")["cutoff_date"].to_list()
left, right = st.columns(2)
cutoff = left.selectbox("Cutoff", cutoffs, index=0, help="The latest cutoff is the as-of date of the data")
divisions = db.query("SELECT DISTINCT division FROM scores.icp_scores WHERE cutoff_date = ? ORDER BY 1",
                     [cutoff])["division"].to_list()
division = right.selectbox("Division", divisions)

scores = db.query("SELECT * FROM scores.icp_scores WHERE cutoff_date = ? AND division = ?", [cutoff, division])
if scores.is_empty():
    st.info("No scores for this cutoff and division.")
    st.stop()
has_buyer = "is_buyer" in scores.columns
scores = scores.with_columns(
    (pl.when(pl.col("is_buyer")).then(pl.lit("already buys")).otherwise(pl.lit("never bought"))
     if has_buyer else pl.lit("all")).alias("segment"))

c1, c2, c3, c4 = st.columns(4)
c1.metric("Accounts scored", f"{scores.height:,}", border=True)
c2.metric("Mean propensity", fmt.pct(scores['propensity'].mean()), border=True)
c3.metric("Top-decile mean", fmt.pct(scores.filter(pl.col('decile') == 1)['propensity'].mean()), border=True)
version = str(scores["model_version"][0])
c4.metric("Model version", "v" + version.rsplit("/", 1)[-1], border=True, help=f"MLflow registered model {version}")

st.subheader(":material/bar_chart: Score distribution", divider="gray")
hist = (alt.Chart(scores.select("propensity", "segment").to_pandas())
        .mark_bar(opacity=0.8)
        .encode(x=alt.X("propensity:Q", bin=alt.Bin(maxbins=30), title="propensity"),
                y=alt.Y("count():Q", title="accounts", stack=True),
                color=alt.Color("segment:N", title=None, legend=alt.Legend(orient="bottom")),
                tooltip=["segment", "count()"])
        .properties(height=260))
st.altair_chart(hist, width="stretch")

lcol, rcol = st.columns([3, 2], gap="large")
with lcol:
    st.subheader(":material/leaderboard: Top accounts", divider="gray")
    only_new = st.toggle("Only accounts that never bought the division", value=False) if has_buyer else False
    top = scores.filter(~pl.col("is_buyer")) if only_new else scores
    top = fmt.with_names(top, account="account_id") if "account_name" not in top.columns else top.with_columns(
        pl.coalesce("account_name", "account_id").alias("account"))
    cols = [c for c in ("account", "propensity", "decile", "segment") if c in top.columns]
    safe.dataframe(top.sort("propensity", descending=True).head(25).select(cols), hide_index=True, width="stretch",
                 column_config={"account": "Account", "decile": "Decile", "segment": "Segment",
                                "propensity": st.column_config.ProgressColumn("Propensity", format="percent",
                                                                             min_value=0, max_value=1)})
with rcol:
    st.subheader(":material/psychology: What drives the model", divider="gray")
    if db.table_exists("validation.icp_feature_importance"):
        imp = db.query("SELECT feature, share FROM validation.icp_feature_importance WHERE cutoff_date = ? "
                       "AND division = ? ORDER BY share DESC LIMIT 15", [cutoff, division])
        if imp.is_empty():
            st.caption("No feature importance recorded for this model.")
        else:
            imp = imp.with_columns(pl.col("feature").str.replace("^rank__", "")).with_columns(
                pl.col("feature").map_elements(fmt.feature, return_dtype=pl.String).alias("name"))
            chart = (alt.Chart(imp.to_pandas()).mark_bar(cornerRadiusEnd=3)
                     .encode(x=alt.X("share:Q", title="share of split gain", axis=alt.Axis(format="%")),
                             y=alt.Y("name:N", sort="-x", title=None, axis=alt.Axis(labelLimit=300)),
                             tooltip=[alt.Tooltip("name:N", title="feature"), alt.Tooltip("feature:N", title="column"),
                                      alt.Tooltip("share:Q", format=".1%")])
                     .properties(height=alt.Step(22)))
            st.altair_chart(chart, width="stretch")
            champ = (db.query("SELECT champion FROM validation.icp_models WHERE cutoff_date = ? AND division = ?",
                              [cutoff, division])["champion"].to_list() if db.table_exists("validation.icp_models")
                     else [])
            part = {"blend": " The champion here is the blend: the LightGBM model shown is half of it, the "
                             "logistic model the other half.",
                    "baseline_logistic": " The champion here is the logistic model: this chart is the LightGBM "
                                         "challenger's.",
                    "baseline_rfm": " The champion here is the RFM rule: this chart is the LightGBM challenger's."}
            st.caption("Gain share per feature of the LightGBM model (features ranked within each cutoff). Division "
                       "activity, buying months and cross-division affinity usually lead."
                       + (part.get(champ[0], "") if champ else ""))
    else:
        st.caption("`validation.icp_feature_importance` not built yet.")
