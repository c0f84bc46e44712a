"""Plan: will we make the number? Per segment of the quarter (or month): quota, booked, the reps'
call (commit, best case), the forecast's P10 / P50 / P90 and the chance of making the quota,
coverage; the deals that decide it; and how honest past chances were."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st
from scipy.special import ndtr

from dashboards import as_of as as_of_banner
from dashboards import db, fmt, safe, segments
from revintel_assets import rules

st.title("Plan: will we make the number?")
st.caption("Quota next to what is booked, the reps' call (Commit; Commit + Best Case) and revintel's forecast of the "
           "period total (P10–P90 of the forecast engine's simulations). The chance of making it is the share of "
           "simulations that reach the quota; a manager's chance comes from the manager's own simulations.")
db.require_tables("forecast.quota_attainment")

as_ofs = db.query("SELECT DISTINCT as_of_date FROM forecast.quota_attainment ORDER BY 1 DESC")["as_of_date"].to_list()
c1, c2, c3 = st.columns([1.2, 1, 1.4])
as_of = c1.selectbox("As of", as_ofs, format_func=str)
period = c2.segmented_control("Period", ["quarter", "month"], default="quarter") or "quarter"
as_of_banner.warn_if_past_the_data(as_of)
plan = db.query("SELECT * FROM forecast.quota_attainment WHERE as_of_date = ? AND period = ?", [as_of, period])
types = [t for t in ("total", "region", "manager", "rep") if t in set(plan["segment_type"].to_list())]
seg_type = c3.segmented_control("Segments", types, default="manager" if "manager" in types else types[0]) or types[0]
if plan.is_empty():
    st.info("No plan rows for this as-of date.")
    st.stop()

total = plan.filter(pl.col("segment_type") == "total").row(0, named=True)
st.subheader(f"{total['period_label']}: {total['period_start']} – {total['period_end']}", divider="gray")


CURRENCY = fmt.currency()  # read once per render: fmt.currency() queries the warehouse


def money(v) -> str:
    return "—" if v is None else fmt.money(v, CURRENCY)  # with its currency (CONTRACT §3)


def card(v) -> str:
    return "—" if v is None else fmt.money_card(v, CURRENCY)


k = st.columns(5)
k[0].metric("Quota", card(total["quota"]), help=money(total["quota"]))
k[1].metric("Booked to date", card(total["booked_to_date"]),
            help=f"{money(total['booked_to_date'])}: won amount closed from the period start to the as-of date")
k[2].metric("Forecast P50", card(total["p50"]),
            help=f"{money(total['p50'])}; P10 {money(total['p10'])} – P90 {money(total['p90'])}")
k[3].metric("Chance of making it", "—" if total["p_hit_quota"] is None else f"{total['p_hit_quota']:.0%}")
k[4].metric("Coverage", "—" if total["coverage_ratio"] is None else f"{total['coverage_ratio']:.1f}×",
            help="Open pipeline expected by the period end / quota still to book")
if total["quota"] is None:
    other = db.query("SELECT DISTINCT period FROM forecast.quota_attainment WHERE as_of_date = ? AND period <> ? "
                     "AND quota IS NOT NULL ORDER BY 1", [as_of, period])["period"].to_list()
    if other:  # the quotas were loaded, for other periods: say so rather than ask for the file again
        st.info(f"The quotas loaded are per {' and '.join(other)}, none per {period}: no attainment or chance of "
                f"making it for a {period}. The forecast and the reps' call are shown without.")
    # only when no quota row was kept: with some kept, this period simply has none (a re-check: one
    # bad row read "every one of its 1 rows was quarantined" beside 221 quotas)
    elif not (db.table_exists("star.quotas") and db.scalar("SELECT count(*) FROM star.quotas")) and (
            rejected := rules.quarantined_quotas_note(db.query(rules.QUARANTINED_QUOTAS_SQL).rows())):
        st.warning(f"No quota for the total in this period: {rejected}. The forecast and the reps' call are shown "
                   "without.")
    else:
        st.info("No quota for the total in this period: load quotas.csv (or Salesforce ForecastingQuota.csv) to see "
                "attainment and the chance of making it. The forecast and the reps' call are shown without.")

rows = plan.filter(pl.col("segment_type") == seg_type).sort("p_hit_quota", "segment", nulls_last=True)
st.markdown(f"**Per {seg_type}: revintel vs the call**")
chart_rows = rows.select("segment", "quota", "booked_to_date", "commit", "best_case", "p10", "p50", "p90").to_pandas()
# every segment named: a fixed height squeezed five managers into three labels (Vega drops overlapping ones)
base = alt.Chart(chart_rows).encode(y=alt.Y("segment:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False)))
layers = [base.mark_bar(opacity=0.3, color="#4c78a8", height=14).encode(x=alt.X("p10:Q", title=f"period total ({CURRENCY})"), x2="p90:Q",
                                                                         tooltip=["segment", alt.Tooltip("p10:Q", format=",.0f"),
                                                                                  alt.Tooltip("p50:Q", format=",.0f"),
                                                                                  alt.Tooltip("p90:Q", format=",.0f")]),
          base.mark_tick(color="#4c78a8", thickness=3, size=18).encode(x="p50:Q"),
          base.mark_point(color="#f58518", shape="diamond", filled=True, size=80).encode(
              x="commit:Q", tooltip=[alt.Tooltip("commit:Q", format=",.0f")]),
          base.mark_point(color="#f58518", shape="triangle-right", size=80).encode(
              x="best_case:Q", tooltip=[alt.Tooltip("best_case:Q", format=",.0f")]),
          base.mark_tick(color="#e45756", thickness=2, size=26).encode(x="quota:Q", tooltip=[
              alt.Tooltip("quota:Q", format=",.0f")])]
st.altair_chart(alt.layer(*layers).properties(height=alt.Step(34)), width="stretch")
st.caption("Blue bar: P10–P90 of the period total, blue tick: P50; orange diamond: Commit, orange triangle: "
           "Commit + Best Case; red tick: quota.")
money_cols = ("quota", "booked_to_date", "commit", "best_case", "weighted_pipeline", "p10", "p50", "p90", "gap_to_plan",
              "open_pipeline")
# a column no segment has a value in (the quota's for a month, with quarterly quotas; the call without
# Commit / Best Case deals) is left out: every cell read "None"
safe.dataframe(rows.select([c for c in ("segment", "quota", "booked_to_date", "commit", "best_case", "weighted_pipeline",
                                      "p10", "p50", "p90", "p_hit_quota", "coverage_ratio", "gap_to_plan",
                                      "open_pipeline")
                          if rows[c].null_count() < rows.height]),
             hide_index=True, width="stretch", column_config={
                 **{c: fmt.money_column(c.replace("_", " "), CURRENCY) for c in money_cols},
                 "booked_to_date": fmt.money_column("booked", CURRENCY),
                 "p_hit_quota": st.column_config.ProgressColumn("chance of making it", min_value=0, max_value=1,
                                                                format="%.2f"),
                 "coverage_ratio": st.column_config.NumberColumn("coverage", format="%.1f×"),
                 "gap_to_plan": fmt.money_column("gap to plan (quota − P50)", CURRENCY)})

# ------------------------------------------------------------------ the deals that decide it
IN_PLAY = 0.1  # the gap table: deals with at least this chance to be won inside the period
SHOWN = ["opportunity_id", "rep_id", "forecast_category", "amount", "p_in_period", "expected_in_period", "sd_in_period"]
st.subheader(":material/manage_search: The deals that decide it", divider="gray")
segment = st.selectbox(f"{seg_type.capitalize()}", rows["segment"].to_list())
if db.table_exists("forecast.plan_deals"):
    cond, seg_params = segments.segment_filter(seg_type, segment)
    where, params = "as_of_date = ? AND period = ?" + cond, [as_of, period, *seg_params]
    deals = db.query(f"SELECT opportunity_id, rep_id, stage, forecast_category, amount, win_probability, "
                     f"expected_close_date, p_in_period, expected_in_period, sd_in_period, upside "
                     f"FROM forecast.plan_deals WHERE {where}", params)
    row = rows.filter(pl.col("segment") == segment).row(0, named=True)
    # what one deal does to the chance: P(make it | won in the period) - P(make it | not), the segment's
    # total taken as normal with the simulations' mean and P10-P90 width (sd = width / 2.563)
    sd = max((row["p90"] - row["p10"]) / 2.563, 1.0)
    if row["quota"] is not None and len(deals):
        a, p = deals["amount"].fill_null(0).to_numpy(), deals["p_in_period"].to_numpy()
        gap = row["mean"] - row["quota"]
        deals = deals.with_columns(pl.Series("chance_swing", ndtr((gap + a * (1 - p)) / sd) - ndtr((gap - a * p) / sd)))
    else:
        deals = deals.with_columns(pl.lit(None, dtype=pl.Float64).alias("chance_swing"))
    if row["quota"] is not None:
        short = row["quota"] - row["booked_to_date"]
        st.markdown(f"**{safe.md(segment)}**: quota {money(row['quota'])}, booked {money(row['booked_to_date'])}, "
                    f"{money(max(short, 0))} still to book; forecast P50 {money(row['p50'])}, "
                    f"chance of making it **{row['p_hit_quota']:.0%}**.")
    cfg = {"opportunity_id": "deal", "rep_id": "rep", "forecast_category": "forecast category",
           "amount": fmt.money_column("amount", CURRENCY),
           "expected_in_period": fmt.money_column("expected", CURRENCY),
           "sd_in_period": fmt.money_column("spread (sd)", CURRENCY),
           "upside": fmt.money_column("adds if won", CURRENCY),
           "chance_swing": st.column_config.ProgressColumn("chance swing", min_value=0, max_value=1, format="%.2f"),
           "win_probability": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f"),
           "p_in_period": st.column_config.ProgressColumn("p in period", min_value=0, max_value=1, format="%.2f")}
    left, right = st.container(), st.container()  # stacked: both tables need the width
    with left:
        st.markdown("**Largest contribution to the spread** (amount × √(p(1−p)))")
        safe.dataframe(deals.sort("sd_in_period", descending=True).select(SHOWN).head(10), hide_index=True,
                     width="stretch", column_config=cfg)
    gap_key = "chance_swing" if row["quota"] is not None else "expected_in_period"
    in_play = deals.filter(pl.col("p_in_period") >= IN_PLAY).sort(gap_key, descending=True, nulls_last=True)
    with right:
        st.markdown(f"**Largest contribution to the gap** (deals with at least {IN_PLAY:.0%} chance in the period: "
                    "how much winning it, rather than not, moves the chance of making the quota)")
        safe.dataframe(in_play.select(*SHOWN[:-2], gap_key, "upside").head(10), hide_index=True, width="stretch",
                     column_config=cfg)
    if len(in_play):
        top = in_play.row(0, named=True)
        swing = "" if top["chance_swing"] is None else f"; winning it moves the chance by {top['chance_swing']:.0%}"
        st.caption(f"Biggest swing deal: {safe.md(top['opportunity_id'])} ({safe.md(top['rep_id'])}, "
                   f"{safe.md(top['stage'])}, {safe.md(top['forecast_category'])}), {money(top['amount'])}, {top['p_in_period']:.0%} chance to be won "
                   f"inside the period{swing}. The swing takes the {seg_type}'s total as normal (mean and P10–P90 of "
                   "the simulations): a guide to where to look, not a re-simulation.")

# ------------------------------------------------------------------ honesty
st.subheader(":material/fact_check: Were past chances honest?", divider="gray")
if not db.table_exists("validation.model_metrics"):
    st.info("No validation yet.")
    st.stop()
cutoff = db.scalar("SELECT max(cutoff_date) FROM validation.model_metrics WHERE model_family = 'quota_attainment' "
                   "AND cutoff_date <= ?", [as_of])
mm = db.query("SELECT model_name, metric, value, split FROM validation.model_metrics WHERE model_family = "
              "'quota_attainment' AND cutoff_date = ? AND period_type = 'all' AND segment_type = 'all'", [cutoff]) \
    if cutoff else pl.DataFrame()
if mm.is_empty():
    st.info("Not judged yet: it needs quotas and past quarters with snapshots before them.")
    st.stop()
v = {(r["model_name"], r["metric"]): r["value"] for r in mm.iter_rows(named=True)}
bins = [(0, 10), (10, 30), (30, 50), (50, 70), (70, 90), (90, 100)]
table = pl.DataFrame({
    "revintel said": [f"{lo}–{hi} %" for lo, hi in bins],
    "pairs": [int(v.get(("p_hit_quota", f"bin_{lo}_{hi}_n"), 0)) for lo, hi in bins],
    "made": [int(v.get(("p_hit_quota", f"bin_{lo}_{hi}_made"), 0)) for lo, hi in bins],
    "predicted": [v.get(("p_hit_quota", f"bin_{lo}_{hi}_predicted_mean")) for lo, hi in bins],
    "made rate": [v.get(("p_hit_quota", f"bin_{lo}_{hi}_made_rate")) for lo, hi in bins]})
b70 = table.row(4, named=True)
st.markdown(f"Of the (segment, quarter) pairs where revintel said **70–90 %**, **{b70['made']} of {b70['pairs']}** "
            f"were made, computed at each past quarter's start and middle from what was known then "
            f"({int(v.get(('p_hit_quota', 'n_quarters'), 0))} quarters, split: {mm['split'][0]}).")
h1, h2 = st.columns([1.3, 1], gap="large")
with h1:
    safe.dataframe(table, hide_index=True, width="stretch", column_config={
        "predicted": st.column_config.NumberColumn(format="%.2f"),
        "made rate": st.column_config.NumberColumn(format="%.2f")})
with h2:
    st.metric("Brier score of p_hit_quota", f"{v.get(('p_hit_quota', 'brier'), float('nan')):.3f}",
              delta=f"{v.get(('p_hit_quota', 'brier'), 0) - v.get(('baseline_weighted_pipeline', 'brier'), 0):+.3f} "
                    "vs weighted pipeline ≥ quota", delta_color="inverse")
    cal = table.filter(pl.col("pairs") > 0).to_pandas()
    diag = alt.Chart(pl.DataFrame({"x": [0.0, 1.0]}).to_pandas()).mark_line(color="grey", strokeDash=[4, 4]).encode(
        x="x:Q", y="x:Q")
    pts = alt.Chart(cal).mark_circle(color="#4c78a8").encode(
        x=alt.X("predicted:Q", scale=alt.Scale(domain=[0, 1]), title="predicted chance"),
        y=alt.Y("made rate:Q", scale=alt.Scale(domain=[0, 1]), title="share made"), size="pairs:Q",
        tooltip=["revintel said", "pairs", "made"])
    st.altair_chart((diag + pts).properties(height=220), width="stretch")
