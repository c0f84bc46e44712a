"""Pipeline Risk: every open deal on an as-of date, its win probability, risk, drivers and next step."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import polars as pl
import streamlit as st

from dashboards import as_of as as_of_banner
from dashboards import db, fmt, safe
from dashboards import deals_data as dd
from dashboards.filters import note_dropped
from revintel_assets.rules import OPEN_STAGES

st.title("Pipeline Risk")
st.caption("Every deal open on the as-of date: its calibrated win probability, a 0–100 risk score "
           "(likely loss + stalling in its stage + value at stake), what drives the risk and what to do next.")
db.require_tables(dd.SCORES)

dates = dd.as_of_dates()
if not dates:
    st.info(f"`{dd.SCORES}` has no rows yet.", icon=":material/hourglass_empty:")
    st.stop()

CURRENCY = fmt.currency()
top = st.columns([1, 2.6, 1.8, 1.4], gap="medium")
as_of = top[0].selectbox("As of", dates, index=0, format_func=str,
                         help="Dates with scores; the latest is the export date of the data")
as_of_banner.warn_if_past_the_data(as_of)
deals = dd.scored_deals(as_of)
period = top[1].segmented_control(
    "View", ["all", *dd.PERIOD_LABELS], default="all", key="period",
    format_func=lambda p: "All open deals" if p == "all" else dd.PERIOD_LABELS[p],
    help="This / next quarter: each deal's chance to be won inside the quarter (scores.deal_outlook), "
         "to be won later (slip) or lost") or "all"
bounds = dd.quarter_bounds(as_of)
if period != "all":
    outlook = dd.outlook(as_of, period)
    if outlook.is_empty():
        # the outlook is computed for the latest as-of date (and a few past ones it is judged on), not for
        # every date the list offers: say which have it (an audit: 153 of 154 dates told to materialize it)
        held = (db.query(f"SELECT DISTINCT as_of_date FROM {dd.OUTLOOK} ORDER BY 1 DESC")["as_of_date"].to_list()
                if db.table_exists(dd.OUTLOOK) else [])
        if held:
            st.info(f"The quarter view is kept for the as-of date(s) the deal outlook was computed on: "
                    f"{', '.join(map(str, held[:5]))}{' …' if len(held) > 5 else ''}; pick one of them under As of, "
                    "or All open deals for this date.", icon=":material/event_busy:")
        else:
            st.info(f"`{dd.OUTLOOK}` has no rows yet: the quarter view needs the deal outlook "
                    "(materialize scores/deal_outlook).", icon=":material/hourglass_empty:")
        st.stop()
    deals = deals.join(outlook, on="opportunity_id", how="inner")
    p_win = pl.col("p_win_in_period")
else:
    p_win = pl.col("win_probability")
deals = deals.with_columns((pl.col("value") * p_win).alias("expected"),
                           dd.close_period(as_of).alias("close_period"))


def values(col: str) -> list:
    return sorted(v for v in deals[col].unique().to_list() if v is not None)


present = [c for c in dd.CATEGORIES if c in set(deals["risk_category"].to_list())]
cats = top[2].multiselect("Risk category", present, placeholder="All categories")
lo, hi = top[3].slider("Risk score", 0, 100, (0, 100), help="0 = safest, 100 = riskiest")

second = st.columns([2, 2.4, 2.4], gap="medium")
stages = second[0].multiselect("Stage", [s for s in OPEN_STAGES if s in set(deals["stage"].to_list())]
                               + [s for s in values("stage") if s not in OPEN_STAGES], placeholder="All stages")
periods_present = [p for p in ["Past due", "Due today", f"This quarter ({dd.quarter_label(bounds['this_quarter'][0])})",
                               f"Next quarter ({dd.quarter_label(bounds['next_quarter'][0])})", "Later",
                               "No close date"] if p in set(deals["close_period"].to_list())]
close_periods = second[1].multiselect("Expected close", periods_present, placeholder="Any close date",
                                      help="The deal's expected close date against the as-of date's quarter")
top_value = float(deals["value"].max() or 0.0)
step = 10 ** max(0, len(f"{int(top_value)}") - 3)
ceiling = float(-(-top_value // step) * step) if top_value else 1.0
amount_range = second[2].slider(f"Amount ({CURRENCY})", 0.0, ceiling, (0.0, ceiling), step=float(step),
                                format="%.0f",
                                help="The deal's amount; deals without one are valued at their product's list price")

filters = {}
boxes = st.columns(6)
for box, (label, col) in zip(boxes, [("Account", "account"), ("Rep", "rep"), ("Manager", "manager"),
                                     ("Region", "region"), ("Product", "product"), ("Division", "division")]):
    opts = values(col)
    filters[col] = box.multiselect(label, opts, placeholder="All", disabled=not opts,
                                   help=None if opts else f"No {label.lower()} in this warehouse")
    note_dropped(f"risk_{col}", label, opts, filters[col])

view = deals.filter(pl.col("risk_score").is_between(lo, hi) & pl.col("value").is_between(*amount_range))
if cats:
    view = view.filter(pl.col("risk_category").is_in(cats))
if stages:
    view = view.filter(pl.col("stage").is_in(stages))
if close_periods:
    view = view.filter(pl.col("close_period").is_in(close_periods))
for col, chosen in filters.items():
    if chosen:
        view = view.filter(pl.col(col).is_in(chosen))

# ---------------------------------------------------------------- summary
value = float(view["value"].sum() or 0) if view.height else 0.0
at_risk = float(view.filter(pl.col("risk_category").is_in(dd.AT_RISK))["value"].sum() or 0) if view.height else 0.0
expected = float(view["expected"].sum() or 0) if view.height else 0.0
estimated = view.filter(pl.col("value_is_estimate"))
m = st.columns(5)
m[0].metric("Open deals", f"{view.height:,}", border=True,
            help=None if view.height == deals.height else f"{deals.height:,} open on {as_of} before filters")
m[1].metric("Pipeline value", fmt.money_short(value, CURRENCY), border=True,
            help=f"{fmt.money(value, CURRENCY)}: the sum of the amounts of the deals shown; a deal without an "
                 "amount counts at its product's list price")
m[2].metric("At-risk value", fmt.money_short(at_risk, CURRENCY), border=True,
            delta=f"{fmt.pct(at_risk / value)} of pipeline" if value else None, delta_color="off", delta_arrow="off",
            help=f"{fmt.money(at_risk, CURRENCY)}: the value of the deals in the High and Critical risk categories")
if period == "all":
    m[3].metric("Expected value", fmt.money_short(expected, CURRENCY), border=True,
                help=f"{fmt.money(expected, CURRENCY)}: the sum of value × win probability")
    m[4].metric("Avg win probability", fmt.pct(view["win_probability"].mean()) if view.height else "—", border=True,
                help="Mean win probability of the deals shown")
else:
    q = dd.quarter_label(bounds[period][0])
    slip = float((view["value"] * view["p_slip"]).sum() or 0) if view.height else 0.0
    m[3].metric(f"Expected in {q}", fmt.money_short(expected, CURRENCY), border=True,
                help=f"{fmt.money(expected, CURRENCY)}: the sum of value × the chance the deal is won inside {q}")
    m[4].metric(f"Slips past {q}", fmt.money_short(slip, CURRENCY), border=True,
                help=f"{fmt.money(slip, CURRENCY)}: the sum of value × the chance the deal is won, but after {q}")
st.caption(dd.model_note(deals["model_version"].unique().to_list(), as_of, dd.closed_by(as_of)))
flat = dd.flat_note(deals["win_probability"], as_of, deals["model_version"].unique().to_list())
if flat:
    st.warning(flat, icon=":material/warning:")
if period != "all" and bounds[period][1] - as_of <= dt.timedelta(days=1):
    st.info(f"{dd.quarter_label(bounds[period][0])} ends on the as-of date: no deal can close in it any more, so "
            "nothing is expected in it. Look at the next quarter.", icon=":material/event_busy:")
if estimated.height:
    st.caption(f"{estimated.height:,} of these deals have no amount yet; each is valued at its product's list price "
               f"({fmt.money(float(estimated['value'].sum()), CURRENCY)} in all), here, on Forecast and on What Changed.")

if view.is_empty():
    st.info("No open deal matches these filters.", icon=":material/filter_alt_off:")
    st.stop()

# ---------------------------------------------------------------- value by risk category
by_cat = (view.group_by("risk_category").agg(pl.col("value").sum().alias("value"), pl.len().alias("deals"))
          .filter(pl.col("risk_category").is_in(dd.CATEGORIES)).sort("risk_category"))
by_cat = by_cat.with_columns(pl.Series("text", [
    f"{n} deal{'' if n == 1 else 's'} · {fmt.money(v, CURRENCY)}" for n, v in by_cat.select("deals", "value").iter_rows()],
    dtype=pl.String))
top_bar = max(float(by_cat["value"].max() or 0), 1.0)
bars = alt.Chart(by_cat.to_pandas()).encode(
    x=alt.X("value:Q", title=f"pipeline value ({CURRENCY})", axis=alt.Axis(labelExpr=fmt.money_axis(CURRENCY), tickCount=6),
            scale=alt.Scale(domain=[0, top_bar * 1.25])),  # room for the labels
    y=alt.Y("risk_category:N", title=None, sort=dd.CATEGORIES[::-1], axis=alt.Axis(labelFontWeight="bold")),
    tooltip=[alt.Tooltip("risk_category:N", title="risk"), alt.Tooltip("deals:Q"),
             alt.Tooltip("text:N", title="value")])
chart = (bars.mark_bar(cornerRadiusEnd=3).encode(
             color=alt.Color("risk_category:N", legend=None, scale=alt.Scale(
                 domain=list(dd.CATEGORY_COLORS), range=list(dd.CATEGORY_COLORS.values()))))
         + bars.mark_text(align="left", dx=6, fontSize=12).encode(text="text:N")
         ).properties(height=alt.Step(30))
st.subheader(":material/stacked_bar_chart: Value by risk category", divider="gray")
st.altair_chart(chart, width="stretch")

# ---------------------------------------------------------------- the deals
st.subheader(":material/table_rows: Open deals", divider="gray")
quarter_cols = [] if period == "all" else ["p_win_in_period_pct", "p_slip_pct"]
table = view.with_columns(
    (pl.lit(f"deal-detail?as_of={as_of}&deal=") + pl.col("opportunity_id")).alias("deal"),
    fmt.pct_expr("win_probability").alias("win_pct"),
    pl.when(pl.col("value_is_estimate")).then(pl.lit("list price (no amount yet)")).otherwise(pl.lit("amount"))
    .alias("valued_at"),
    pl.when(pl.col("expected_close_estimated")).then(pl.lit(dd.ESTIMATED_CLOSE))
    .when(pl.col("expected_close_estimated").not_()).then(pl.lit("CRM")).alias("close_date_from"),
    *([] if period == "all" else [fmt.pct_expr("p_win_in_period").alias("p_win_in_period_pct"),
                                  fmt.pct_expr("p_slip").alias("p_slip_pct")]),
).select("deal", "account", "risk_score", "risk_category", "win_pct", *quarter_cols, "value",
         "risk_drivers", "recommended_action", "stage", "rep", "manager", "product", "expected_close_date",
         "close_date_from", "close_period", "valued_at", "model_version")


def _category_style(v: str) -> str:
    color = dd.CATEGORY_COLORS.get(v)
    return f"color: {color}; font-weight: 600" if color else ""


# the category's colour is a pandas Styler, which Streamlit refuses past pandas' styler.render.max_elements
# (262,144 cells: 15,000 deals at scale 10 crashed the page and took its download with it); the category
# is written in the cell, so a larger table goes without the colour
shown = safe.shown(table).to_pandas()  # formula-like cells as the other grids (safe.dataframe)
if shown.size <= pd.get_option("styler.render.max_elements"):
    shown = shown.style.map(_category_style, subset=["risk_category"])
st.dataframe(
    shown,
    hide_index=True, width="stretch", height=min(38 + 35 * table.height, 560),
    column_config={
        "deal": st.column_config.LinkColumn("Deal", display_text=r"deal=([^&]+)$", pinned=True,
                                            help="Open the deal's detail page"),
        "account": "Account", "rep": "Rep", "manager": "Manager", "product": "Product", "stage": "Stage",
        "value": fmt.money_column("Amount", CURRENCY, help="Deals without an amount: their product's list price"),
        "valued_at": "Valued at",
        "win_pct": st.column_config.TextColumn("Win probability", width="small"),
        "p_win_in_period_pct": st.column_config.TextColumn(
            f"Won in {dd.quarter_label(bounds[period][0])}" if period != "all" else "",
            help="Chance the deal is won inside the quarter"),
        "p_slip_pct": st.column_config.TextColumn("Slips", help="Chance the deal is won, but after the quarter"),
        "risk_score": st.column_config.ProgressColumn("Risk score", format="%.1f", min_value=0, max_value=100,
                                                      color="red"),
        "risk_category": "Risk",
        "risk_drivers": st.column_config.TextColumn("Risk drivers", width="large"),
        "recommended_action": st.column_config.TextColumn("Recommended action", width="large"),
        "expected_close_date": st.column_config.DateColumn("Expected close", format="YYYY-MM-DD"),
        "close_date_from": st.column_config.TextColumn(
            "Close date from", help="CRM: the CRM's expected close date known on the as-of date. Estimated: the CRM "
                                    "gave none, so the as-of date plus the median time to win from the deal's stage"),
        "close_period": "Close period",
        "model_version": "Model version",
    })
csv = view.select(pl.lit(as_of).alias("as_of_date"), pl.lit(CURRENCY).alias("currency"),
                  pl.exclude("account_name", "rep_name", "product_name"))
st.download_button("Download CSV", safe.csv_bytes(csv), file_name=f"pipeline_risk_{as_of}.csv",
                   mime="text/csv", icon=":material/download:")

# ---------------------------------------------------------------- reps and managers
st.subheader(":material/groups: Reps and managers", divider="gray")
by = st.segmented_control("Roll up by", ["rep", "manager"], default="rep", key="rollup_by",
                          format_func=str.capitalize) or "rep"
if by == "manager" and view["manager"].is_null().all():
    st.caption("This warehouse has no managers (`star.dim_rep.manager`): rolled up by rep instead.")
    by = "rep"
roll = dd.rollup(view, dd.rep_history(as_of), by)
# a push is a change of the CRM's expected close date: a source that gives none (MavenTech) cannot show one
no_close_dates = deals.height > 0 and deals["expected_close_estimated"].fill_null(False).all()
# without them the column is left out (its empty cells printed "None"); the caption says why
shown = [by, "deals", "pipeline", "expected", "at_risk", "at_risk_share", "win_rate", "won", "closed",
         *([] if no_close_dates else ["slips"])]
expected_label = "Expected" if period == "all" else f"Expected in {dd.quarter_label(bounds[period][0])}"
safe.dataframe(
    roll.with_columns(fmt.pct_expr("win_rate").alias("win_rate"), fmt.pct_expr("at_risk_share").alias("at_risk_share"))
    .select(shown).to_pandas(),
    hide_index=True, width="stretch", height=min(38 + 35 * roll.height, 460),
    column_config={
        by: st.column_config.TextColumn(by.capitalize(), pinned=True), "deals": "Open deals",
        "pipeline": fmt.money_column("Pipeline", CURRENCY),
        "expected": fmt.money_column(expected_label, CURRENCY,
                                     help="Sum of value × win probability (in the quarter, for a quarter view)"),
        "at_risk": fmt.money_column("At risk", CURRENCY, help="Value of High and Critical deals"),
        "at_risk_share": st.column_config.TextColumn("At risk %"),
        "win_rate": st.column_config.TextColumn("Win rate", help=f"Won / closed among deals closed by {as_of}"),
        "won": "Won", "closed": "Closed",
        "slips": st.column_config.NumberColumn(
            f"Slips ({dd.SLIP_WINDOW_DAYS // 7} wk)",
            help=f"Deals whose close date was pushed out of its quarter in the {dd.SLIP_WINDOW_DAYS} days to {as_of} "
                 "(scores.pipeline_changes)"),
    })
st.caption("Pipeline, expected and at-risk value cover the open deals shown above (the filters apply); win rate "
           f"and slips are each {by}'s record up to {as_of}."
           + (" Slips are not counted: the source gives no expected close dates, so no push can be seen."
              if no_close_dates else ""))
