"""Pipeline Risk: every open deal on an as-of date, its win probability, risk, drivers and next step."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import as_of as as_of_banner
from dashboards import db, safe
from dashboards import deals_data as dd

st.title("Pipeline Risk")
st.caption("Every deal open on the as-of date: its calibrated win probability, a 0–100 risk score "
           "(likely loss + stalling in its stage + value at stake), what drives the risk and what to do next.")
db.require_tables(dd.SCORES)

dates = dd.as_of_dates()
if not dates:
    st.info(f"`{dd.SCORES}` has no rows yet.", icon=":material/hourglass_empty:")
    st.stop()

top = st.columns([1.1, 2, 1.6], gap="medium")
as_of = top[0].selectbox("As of", dates, index=0, format_func=str,
                         help="Dates with scores; the latest is the export date of the data")
as_of_banner.warn_if_past_the_data(as_of)
deals = dd.scored_deals(as_of)


def values(col: str) -> list:
    return sorted(v for v in deals[col].unique().to_list() if v is not None)


present = [c for c in dd.CATEGORIES if c in set(deals["risk_category"].to_list())]
cats = top[1].multiselect("Risk category", present, placeholder="All categories")
lo, hi = top[2].slider("Risk score", 0, 100, (0, 100), help="0 = safest, 100 = riskiest")

filters = {}
boxes = st.columns(6)
for box, (label, col) in zip(boxes, [("Account", "account"), ("Rep", "rep"), ("Manager", "manager"),
                                     ("Region", "region"), ("Product", "product"), ("Division", "division")]):
    opts = values(col)
    filters[col] = box.multiselect(label, opts, placeholder="All", disabled=not opts,
                                   help=None if opts else f"No {label.lower()} in this warehouse")

view = deals.filter(pl.col("risk_score").is_between(lo, hi))
if cats:
    view = view.filter(pl.col("risk_category").is_in(cats))
for col, chosen in filters.items():
    if chosen:
        view = view.filter(pl.col(col).is_in(chosen))

# ---------------------------------------------------------------- summary
value = float(view["amount"].sum() or 0) if view.height else 0.0
at_risk = float(view.filter(pl.col("risk_category").is_in(dd.AT_RISK))["amount"].sum() or 0) if view.height else 0.0
m = st.columns(4)
m[0].metric("Open deals", f"{view.height:,}", border=True,
            help=None if view.height == deals.height else f"{deals.height:,} open on {as_of} before filters")
m[1].metric("Pipeline value", f"{value:,.0f}", border=True, help="Sum of the amounts of the deals shown")
m[2].metric("At-risk value", f"{at_risk:,.0f}", border=True,
            delta=f"{at_risk / value:.0%} of pipeline" if value else None, delta_color="off", delta_arrow="off",
            help="Value of the deals in the High and Critical risk categories")
m[3].metric("Avg win probability", dd.pct(view["win_probability"].mean()) if view.height else "—", border=True,
            help="Mean win probability of the deals shown")
st.caption(dd.model_note(deals["model_version"].unique().to_list(), as_of))

if view.is_empty():
    st.info("No open deal matches these filters.", icon=":material/filter_alt_off:")
    st.stop()

# ---------------------------------------------------------------- value by risk category
by_cat = (view.group_by("risk_category").agg(pl.col("amount").sum().alias("value"), pl.len().alias("deals"))
          .filter(pl.col("risk_category").is_in(dd.CATEGORIES))
          .with_columns(pl.format("{} deal{} · {}", "deals", pl.when(pl.col("deals") == 1).then(pl.lit(""))
                                  .otherwise(pl.lit("s")), pl.col("value").map_elements(
              lambda v: f"{v:,.0f}", return_dtype=pl.String)).alias("text")))
top_value = max(float(by_cat["value"].max() or 0), 1.0)
bars = alt.Chart(by_cat.to_pandas()).encode(
    x=alt.X("value:Q", title="pipeline value", axis=alt.Axis(labelExpr=dd.COMPACT, tickCount=6),
            scale=alt.Scale(domain=[0, top_value * 1.25])),  # room for the labels
    y=alt.Y("risk_category:N", title=None, sort=dd.CATEGORIES[::-1], axis=alt.Axis(labelFontWeight="bold")),
    tooltip=[alt.Tooltip("risk_category:N", title="risk"), alt.Tooltip("deals:Q"),
             alt.Tooltip("value:Q", format=",.0f")])
chart = (bars.mark_bar(cornerRadiusEnd=3).encode(
             color=alt.Color("risk_category:N", legend=None, scale=alt.Scale(
                 domain=list(dd.CATEGORY_COLORS), range=list(dd.CATEGORY_COLORS.values()))))
         + bars.mark_text(align="left", dx=6, fontSize=12).encode(text="text:N")
         ).properties(height=alt.Step(30))
st.subheader(":material/stacked_bar_chart: Value by risk category", divider="gray")
st.altair_chart(chart, width="stretch")

# ---------------------------------------------------------------- the deals
st.subheader(":material/table_rows: Open deals", divider="gray")
table = view.with_columns(
    (pl.lit(f"deal-detail?as_of={as_of}&deal=") + pl.col("opportunity_id")).alias("deal"),
    (pl.col("win_probability") * 100).alias("win_pct"),
).select("deal", "account", "risk_score", "risk_category", "win_pct", "amount", "recommended_action",
         "risk_drivers", "stage", "rep", "product", "expected_close_date", "model_version")


def _category_style(v: str) -> str:
    color = dd.CATEGORY_COLORS.get(v)
    return f"color: {color}; font-weight: 600" if color else ""


st.dataframe(
    table.to_pandas().style.map(_category_style, subset=["risk_category"]),
    hide_index=True, width="stretch", height=min(38 + 35 * table.height, 560),
    column_config={
        "deal": st.column_config.LinkColumn("Deal", display_text=r"deal=([^&]+)$", pinned=True,
                                            help="Open the deal's detail page"),
        "account": "Account", "rep": "Rep", "product": "Product", "stage": "Stage",
        "amount": st.column_config.NumberColumn("Amount", format="localized"),
        "win_pct": st.column_config.NumberColumn("Win probability", format="%.0f%%"),
        "risk_score": st.column_config.ProgressColumn("Risk score", format="%.1f", min_value=0, max_value=100,
                                                      color="red"),
        "risk_category": "Risk",
        "risk_drivers": st.column_config.TextColumn("Risk drivers", width="large"),
        "recommended_action": st.column_config.TextColumn("Recommended action", width="large"),
        "expected_close_date": st.column_config.DateColumn("Expected close"),
        "model_version": "Model version",
    })
csv = view.select(pl.lit(as_of).alias("as_of_date"), pl.exclude("account_name", "rep_name", "product_name"))
st.download_button("Download CSV", safe.csv_bytes(csv), file_name=f"pipeline_risk_{as_of}.csv",
                   mime="text/csv", icon=":material/download:")
