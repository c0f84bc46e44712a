"""What changed: the pipeline waterfall between an as-of date and the one before it, by segment
and period, and the deals behind every bar."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db, fmt, safe
from dashboards import deals_data as dd
from revintel_assets.defs.deals.snapshot import LOGGED_SHARE_SQL
from revintel_assets.defs.pipeline.changes import (DATES_SQL, deal_rows_sql, empty_waterfall_sql, no_change_log_note,
                                                     pairs_sql, why_empty)
from revintel_assets.rules import UNASSIGNED
from revintel_resources.settings import settings

ORDER = ["start", "new", "pulled_in", "amount_entered", "amount_up", "won", "lost", "pushed_out", "amount_down", "end"]
LABELS = {"start": "Start", "new": "New", "pulled_in": "Pulled in", "amount_entered": "Amount entered", "amount_up": "Amount up", "won": "Won",
          "lost": "Lost", "pushed_out": "Pushed out", "amount_down": "Amount down", "end": "End",
          "stage_advanced": "Stage advanced", "stage_back": "Stage moved back", "unchanged": "Unchanged"}

CURRENCY = fmt.currency()

st.title("What changed")
st.caption("The open pipeline expected to close in the period (this quarter's includes the deals whose expected "
           "close has passed, still open), on the date before and on the chosen date, and every movement in "
           "between. Start + the movements = end, to the cent.")
db.require_tables("scores.pipeline_waterfall", "features.deal_snapshot")

dates = db.query("SELECT DISTINCT as_of_date FROM scores.pipeline_waterfall ORDER BY 1 DESC")["as_of_date"].to_list()
if not dates:  # say why rather than show an empty chart (e.g. an export without expected close dates)
    latest = (db.scalar("SELECT max(as_of_date) FROM features.deal_snapshot")
              if db.table_exists("features.deal_snapshot") else None)
    snapshot_dates = db.query(DATES_SQL)["as_of_date"].to_list() if latest else []
    reason = (db.query(empty_waterfall_sql(pairs_sql([str(latest)], snapshot_dates), settings().fiscal_year_start_month))
              .rows(named=True) if latest else [])
    st.info(f"No pipeline waterfall{f' as of {latest}' if latest else ''}: {why_empty(reason[0] if reason else None)}.")
    st.stop()
f1, f2, f3, f4 = st.columns([1.3, 1.2, 1.2, 2])
as_of = f1.selectbox("As of", dates, index=0)
# the quarters of the as-of date as every page counts them (the one holding the day after it): named,
# so that stepping the as-of date onto a quarter's last day does not silently change what is shown
bounds = dd.quarter_bounds(as_of)
period = f2.selectbox("Period", ["this_quarter", "next_quarter"],
                      format_func=lambda p: f"{dd.PERIOD_LABELS[p]} ({dd.quarter_label(bounds[p][0])})")
seg_type = f3.selectbox("Segment", ["total", "region", "manager", "rep", "division"], format_func=str.capitalize)
wf = db.query("SELECT * FROM scores.pipeline_waterfall WHERE as_of_date = ? AND period = ? AND segment_type = ?",
              [as_of, period, seg_type])
segments = sorted(wf["segment"].unique().to_list())
segment = f4.selectbox(seg_type.capitalize(), segments, index=0) if seg_type != "total" else "total"
if seg_type != "total":  # one total per date, whatever it is named (before 2026-12-07: 'all')
    wf = wf.filter(pl.col("segment") == segment)
if wf.is_empty():
    st.info("No pipeline in this period and segment on either date.")
    st.stop()
compare = wf["compare_date"][0]
amount = {r["category"]: r["amount"] for r in wf.iter_rows(named=True)}
deals = {r["category"]: r["deals"] for r in wf.iter_rows(named=True)}

if not deals.get("start") and deals.get("new") and db.table_exists("star.fact_opportunity_history"):
    note = no_change_log_note(db.scalar(LOGGED_SHARE_SQL) or 0.0, 0, deals["new"])
    if note:
        st.warning(note)

m1, m2, m3, m4 = st.columns(4)
start_amount, end_amount = amount.get('start', 0), amount.get('end', 0)
m1.metric(f"Pipeline on {compare}", fmt.money_card(start_amount, CURRENCY), border=True,
          help=fmt.money(start_amount, CURRENCY))
m2.metric(f"Pipeline on {as_of}", fmt.money_card(end_amount, CURRENCY), help=fmt.money(end_amount, CURRENCY),
          delta=fmt.money_card(end_amount - start_amount, CURRENCY), border=True)
m3.metric("Won", fmt.money_card(-amount.get('won', 0), CURRENCY), border=True,
          help=f"{deals.get('won', 0)} deals, {fmt.money(-amount.get('won', 0), CURRENCY)}")
lost = -(amount.get('lost', 0) + amount.get('pushed_out', 0))
m4.metric("Lost or pushed out", fmt.money_card(lost, CURRENCY), border=True,
          help=f"{fmt.money(lost, CURRENCY)}, net of deals pushed into the period from an earlier quarter (a negative "
               "figure: more came in than left)")

# a waterfall: each movement a bar from the running total before it to the one after it
bars, running = [], 0.0
for cat in ORDER:
    value = float(amount.get(cat, 0.0))
    if cat in ("start", "end"):
        bars.append({"step": LABELS[cat], "top": value, "bottom": 0.0, "amount": value, "kind": "level"})
        running = value
    elif value:
        # next quarter gains what this one pushes out (and loses what is pulled into this one): the bar
        # says which way it went, not the deal's category alone (a green "Pushed out" read as a loss)
        step = {("pushed_out", True): "Pushed in (from an earlier quarter)",
                ("pulled_in", False): "Pulled into an earlier quarter"}.get((cat, value > 0), LABELS[cat])
        bars.append({"step": step, "top": max(running, running + value), "bottom": min(running, running + value),
                     "amount": value, "kind": "up" if value > 0 else "down"})
        running += value
frame = pl.DataFrame(bars).to_pandas()
chart = (alt.Chart(frame).mark_bar()
         .encode(x=alt.X("step:N", sort=[b["step"] for b in bars], title=None, axis=alt.Axis(labelAngle=0)),
                 y=alt.Y("bottom:Q", title=f"pipeline ({CURRENCY})", stack=None), y2=alt.Y2("top:Q"),
                 color=alt.Color("kind:N", scale=alt.Scale(domain=["level", "up", "down"],
                                                          range=["#4c78a8", "#54a24b", "#e45756"]), legend=None),
                 tooltip=[alt.Tooltip("step:N"), alt.Tooltip("amount:Q", format=",.0f")])
         .properties(height=320))
st.altair_chart(chart, width="stretch")

st.subheader(":material/list: The deals behind each bar", divider="gray")
cats = [c for c in LABELS if c not in ("start", "end") and deals.get(c)]
chosen = st.selectbox("Movement", cats, format_func=lambda c: f"{LABELS[c]} ({deals.get(c, 0)} deals)")
# the deals the bar counts: its period's deal rows as the waterfall builds them (changes.deal_rows_sql),
# for this date's pair only. The list read the per-deal changes table, one category per deal whatever the
# period: "Lost (23 deals)" held 43, and a bar of 273 pushed-out deals listed 4,367 at a quarter's start
pairs = pairs_sql([str(as_of)], db.query(DATES_SQL)["as_of_date"].to_list())
changes = db.query(f"SELECT d.*, r.manager, r.region FROM ({deal_rows_sql(pairs, settings().fiscal_year_start_month)}) d "
                   "LEFT JOIN star.dim_rep r USING (rep_id) WHERE d.period = ? AND d.category = ? "
                   "ORDER BY d.opportunity_id", [period, chosen])
if seg_type != "total":
    col = {"rep": "rep_id"}.get(seg_type, seg_type)
    changes = changes.filter(pl.col(col).fill_null(UNASSIGNED) == segment)  # as the waterfall names a missing one
safe.dataframe(changes.select("opportunity_id", "account_id", "rep_id", "division", "stage_before", "stage_after",
                            "amount_before", "amount_after", "expected_close_before", "expected_close_after"),
             hide_index=True, width="stretch",
             column_config={**{c: st.column_config.DateColumn(format="YYYY-MM-DD")
                               for c in ("expected_close_before", "expected_close_after")},
                            "amount_before": fmt.money_column("amount before", CURRENCY),
                            "amount_after": fmt.money_column("amount after", CURRENCY)})
st.caption("Each deal is listed under the movement its bar counts it in, once per period (a deal pushed from this "
           "quarter into the next is pushed out of this one's pipeline and pushed into the next one's).")
