"""Deal Detail's trend and *why it moved*: the deal's win probability and risk on every as-of date
it was scored, and the change in its SHAP contributions between two of those dates.

Only each date's top features are stored (scores.deal_explanations, top 5 by |contribution|), so a
feature missing on one date counts as 0 there: its contribution then was smaller than that date's
fifth. The move is exact for the probability and risk; the per-feature split is as stored.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db
from dashboards import deals_data as dd
from dashboards.safe import md
from revintel_resources.glossary import feature_name


def trend(opportunity_id: str) -> pl.DataFrame:
    """The deal on every as-of date it was scored (open), oldest first."""
    return db.query(f"SELECT as_of_date, win_probability::DOUBLE AS win_probability, risk_score::DOUBLE AS risk_score, "
                    f"risk_category, model_version FROM {dd.SCORES} WHERE opportunity_id = ? ORDER BY as_of_date",
                    [opportunity_id])


def contributions(opportunity_id: str, dates: list[dt.date]) -> pl.DataFrame:
    if not db.table_exists(dd.EXPLANATIONS):
        return pl.DataFrame(schema={"as_of_date": pl.Date, "feature": pl.String, "feature_value": pl.String,
                                    "contribution": pl.Float64})
    return db.query(f"SELECT as_of_date, feature, feature_value::VARCHAR AS feature_value, contribution::DOUBLE AS "
                    f"contribution FROM {dd.EXPLANATIONS} WHERE opportunity_id = ? AND as_of_date IN (?, ?)",
                    [opportunity_id, *dates])


def moved(contrib: pl.DataFrame, before: dt.date, after: dt.date) -> pl.DataFrame:
    """Per feature stored on either date: its value and contribution then and now and the change
    (now - then), a feature absent on a date counting 0 there (`listed`: on both / then / now);
    largest movers first."""
    side = {name: contrib.filter(pl.col("as_of_date") == d).select(
        "feature", pl.col("feature_value").alias(f"value_{name}"), pl.col("contribution").alias(f"c_{name}"))
        for name, d in (("then", before), ("now", after))}
    both = side["then"].join(side["now"], on="feature", how="full", coalesce=True)
    return both.with_columns(
        pl.when(pl.col("c_then").is_null()).then(pl.lit("now only"))
        .when(pl.col("c_now").is_null()).then(pl.lit("then only")).otherwise(pl.lit("both")).alias("listed"),
        pl.col("c_then", "c_now").fill_null(0.0),
    ).with_columns((pl.col("c_now") - pl.col("c_then")).alias("change")).sort(
        pl.col("change").abs(), "feature", descending=[True, False])


def _value(feature: str, v: str | None, products: dict[str, str]) -> str:
    """As the explanation above prints it ("46%", "September", the product's name; an audit found
    "0.51", "9" and "APX-ENT" here); "—" where that date did not store it (not in its top 5)."""
    return "—" if v is None else dd.feature_value(feature, v, products)


def _chart(t: pl.DataFrame, as_of: dt.date) -> alt.LayerChart:
    base = alt.Chart(t.with_columns(
        pl.col("model_version").str.split("@").list.first().str.replace("baseline_stage", "stage baseline")
        .alias("scored by")).to_pandas()).encode(
        x=alt.X("as_of_date:T", title="as-of date", axis=alt.Axis(format="%b %d, %Y", labelAngle=0, tickCount=6)))
    tip = [alt.Tooltip("as_of_date:T", title="as of", format="%Y-%m-%d"),
           alt.Tooltip("win_probability:Q", title="win probability", format=".0%"),
           alt.Tooltip("risk_score:Q", title="risk score", format=".1f"), "risk_category:N", "scored by:N"]
    p = base.mark_line(point=True, color="#1f77b4").encode(
        y=alt.Y("win_probability:Q", title="win probability", axis=alt.Axis(format="%", titleColor="#1f77b4"),
                scale=alt.Scale(domain=[0, 1])), tooltip=tip)
    r = base.mark_line(point=True, color="#c62828", strokeDash=[5, 3]).encode(
        y=alt.Y("risk_score:Q", title="risk score (0-100)", axis=alt.Axis(titleColor="#c62828"),
                scale=alt.Scale(domain=[0, 100])), tooltip=tip)
    now = alt.Chart().mark_rule(color="#888", strokeDash=[2, 2]).encode(
        x=alt.datum(alt.DateTime(year=as_of.year, month=as_of.month, date=as_of.day)))
    return alt.layer(p, r, now).resolve_scale(y="independent").properties(height=260)


def render(opportunity_id: str, as_of: dt.date, products: dict[str, str]) -> None:
    """The trend chart and the why-it-moved comparison, under Deal Detail's explanation."""
    st.subheader(":material/trending_up: Trend and why it moved", divider="gray")
    t = trend(opportunity_id)
    if t.height < 2:
        st.caption(f"This deal was scored on {t.height} as-of date(s) only: a trend needs two.")
        return
    st.altair_chart(_chart(t, as_of), width="stretch")
    st.caption(f"Win probability (solid, left axis) and risk score (dashed, right axis) on each of the "
               f"{t.height} as-of dates the deal was open, {t['as_of_date'][0]} to {t['as_of_date'][-1]}; "
               "each date scored by the model that was champion then (hover a point for it).")

    dates = t["as_of_date"].to_list()
    now_default = as_of if as_of in dates else dates[-1]
    pick = st.columns(2)
    after = pick[1].selectbox("Compare as of", dates[::-1], index=dates[::-1].index(now_default), key="trend_to")
    earlier = [d for d in dates if d < after]
    if not earlier:
        st.caption(f"No earlier scored date than {after} to compare with.")
        return
    before = pick[0].selectbox("with the earlier date", earlier[::-1], index=0, key="trend_from")
    row = {d: r for d, r in zip(dates, t.iter_rows(named=True)) if d in (before, after)}
    b, a = row[before], row[after]
    dp = (a["win_probability"] - b["win_probability"]) * 100
    m = st.columns(3)
    m[0].metric(f"Win probability {after}", dd.pct(a["win_probability"]), f"{dp:+.1f} points since {before}",
                border=True)
    m[1].metric(f"Risk score {after}", f"{a['risk_score']:g}", f"{a['risk_score'] - b['risk_score']:+.1f} since {before}",
                delta_color="inverse", border=True)
    m[2].metric("Risk category", a["risk_category"], f"was {b['risk_category']}", delta_color="off",
                delta_arrow="off", border=True)

    mv = moved(contributions(opportunity_id, [before, after]), before, after)
    if mv.is_empty():
        st.caption(f"No stored explanation for this deal on {before} or {after}.")
        return
    mv = mv.with_columns(pl.col("feature").map_elements(feature_name, return_dtype=pl.String).alias("name"),
                         pl.when(pl.col("change") >= 0).then(pl.lit("raised")).otherwise(pl.lit("lowered"))
                         .alias("effect"))
    ccol, tcol = st.columns([3, 2], gap="large")
    bars = (alt.Chart(mv.to_pandas()).mark_bar(cornerRadiusEnd=3).encode(
        x=alt.X("change:Q", title=f"change in contribution, {before} → {after} (log-odds)"),
        y=alt.Y("name:N", sort=mv["name"].to_list(), title=None, axis=alt.Axis(labelLimit=260)),
        color=alt.Color("effect:N", title="win probability", legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=["raised", "lowered"], range=[dd.RAISES, dd.LOWERS])),
        tooltip=["name:N", alt.Tooltip("c_then:Q", format="+.3f", title=str(before)),
                 alt.Tooltip("c_now:Q", format="+.3f", title=str(after)), alt.Tooltip("change:Q", format="+.3f")])
        .properties(height=alt.Step(28)))
    ccol.altair_chart(bars + alt.Chart().mark_rule(color="#888").encode(x=alt.datum(0)), width="stretch")
    tcol.markdown("\n".join(
        f"- {':green' if r['change'] >= 0 else ':red'}[{'▲' if r['change'] >= 0 else '▼'} {r['change']:+.2f}] "
        f"**{md(r['name'])}**: {md(_value(r['feature'], r['value_then'], products))} → "
        f"{md(_value(r['feature'], r['value_now'], products))}"
        + ("" if r["listed"] == "both" else f" *(in the top 5 on {before if r['listed'] == 'then only' else after} only)*")
        for r in mv.head(8).iter_rows(named=True)))
    notes = ["Change in each feature's TreeSHAP contribution (log-odds), largest movers first. Only each date's top 5 "
             "features are stored; a feature in the top 5 on one date only counts as 0 on the other."]
    if b["model_version"] != a["model_version"]:
        notes.append(f"The two dates were scored by different models ({md(b['model_version'])} then, "
                     f"{md(a['model_version'])} now), so part of the move is the change of model.")
    st.caption(" ".join(notes))
