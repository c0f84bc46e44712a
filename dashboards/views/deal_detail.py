"""Deal Detail: one open deal — its score, risk, next step, what moved the score, and its history."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import as_of as as_of_banner, safe
from dashboards import db, fmt
from dashboards.safe import code, md
from dashboards import deals_data as dd
from dashboards import deal_trend
from revintel_assets.defs.deals.explain import NO_EFFECT

st.title("Deal Detail")
st.caption("One open deal as scored on the as-of date: win probability, risk and its drivers, the recommended "
           "action, the features that moved the score most, and the deal's change history.")
db.require_tables(dd.SCORES)

dates = dd.as_of_dates()
if not dates:
    st.info(f"`{dd.SCORES}` has no rows yet.", icon=":material/hourglass_empty:")
    st.stop()

pick = st.columns([1, 3], gap="medium")
as_of_banner.warn_if_unscored_request(dates)  # before the widget, which drops an unknown ?as_of= silently
as_of = pick[0].selectbox("As of", dates, index=0, format_func=str, key="as_of", bind="query-params")
as_of_banner.warn_if_past_the_data(as_of)
deals = dd.scored_deals(as_of)  # highest risk first
if deals.is_empty():
    st.info(f"No deal was open on {as_of}.")
    st.stop()
label = {r["opportunity_id"]: f"{r['opportunity_id']} · {r['account']} · {r['risk_category']} "
                              f"{r['risk_score']:g}" for r in deals.iter_rows(named=True)}
ids = list(label)
wanted = st.query_params.get("deal")  # ?deal=<opportunity_id>, e.g. from a Pipeline Risk link
deal_id = pick[1].selectbox("Deal (highest risk first)", ids, index=ids.index(wanted) if wanted in label else 0,
                            # one widget per as-of date: a kept widget showed the previous date's risk in its
                            # label; the deal itself carries over through ?deal=
                            format_func=label.get, key=f"deal_pick_{as_of}")
if wanted and wanted not in label:
    st.warning(f"Deal {code(wanted)} is not among the deals open on {as_of}; showing the highest-risk deal instead.",
               icon=":material/search_off:")
st.query_params["deal"] = deal_id  # the URL always names the deal shown: shareable
d = deals.filter(pl.col("opportunity_id") == deal_id).row(0, named=True)

# ---------------------------------------------------------------- the deal
color = dd.BADGE_COLORS.get(d["risk_category"], "gray")
# every value from the data goes into Markdown as literal text (safe.md): no links, images, directives
st.subheader(f"{md(d['opportunity_id'])} — {md(d['account'])} &nbsp;:{color}-badge[{md(d['risk_category'])} risk]")
rep = d["rep"] + (f" (manager {d['manager']}" + (f", {d['region']}" if d["region"] else "") + ")"
                  if d["manager"] else (f" ({d['region']})" if d["region"] else ""))
product = (d["product"] or "—") + (f" ({d['division']})" if d["division"] and d["division"] != d["product"] else "")
st.markdown(f"**Account** {md(d['account'])} &nbsp;·&nbsp; **Rep** {md(rep)} &nbsp;·&nbsp; **Product** {md(product)} "
            f"&nbsp;·&nbsp; **Stage** {md(d['stage'])}")
close = d["expected_close_date"]
days = (close - as_of).days if close else None
due = (None if days is None else f"{-days} day{'s' * (days != -1)} overdue" if days < 0 else "today" if days == 0
       else f"in {days} day{'s' * (days != 1)}")
m = st.columns(4)
m[0].metric("Win probability", dd.pct(d["win_probability"]), border=True, help="Calibrated probability of a win")
m[1].metric("Risk score", f"{d['risk_score']:g} / 100", border=True,
            help="Low < 30 ≤ Medium < 50 ≤ High < 70 ≤ Critical")
m[2].metric("Amount", fmt.money(d["value"]), border=True,
            delta="list price: no amount yet" if d["value_is_estimate"] else None, delta_color="off", delta_arrow="off",
            help="A deal without an amount is valued at its product's list price, on every page")
estimated = d["expected_close_estimated"] is True
m[3].metric("Expected close" + (f" — {dd.ESTIMATED_CLOSE}" if estimated else ""), str(close or "—"), border=True,
            delta=due, delta_color="inverse" if days is not None and days < 0 else "off", delta_arrow="off",
            help="The CRM gave no expected close date known on the as-of date: the as-of date plus the median time "
                 "to win from the deal's stage" if estimated else "The CRM's expected close date known on the as-of date")

left, right = st.columns(2, gap="large")
with left:
    st.markdown("**:material/report: Risk drivers**")
    drivers = [x.strip() for x in (d["risk_drivers"] or "").split(";") if x.strip()]
    st.markdown("\n".join(f"- {md(x)}" for x in drivers) or "- no risk signal")
with right:
    st.markdown("**:material/task_alt: Recommended action**")
    st.info(md(d["recommended_action"]) or "—", icon=":material/arrow_forward:")
st.caption(dd.model_note([d["model_version"]], as_of, dd.closed_by(as_of)))
# as Pipeline Risk says it: a probability every deal of the date shares ranks nothing (an audit: MavenTech's
# Deal Detail showed 68.1 % as "that stage's rate" on every deal)
flat = dd.flat_note(deals["win_probability"], as_of, deals["model_version"].unique().to_list())
if flat:
    st.warning(flat, icon=":material/warning:")

# ---------------------------------------------------------------- what moved the score
st.subheader(":material/balance: What moved the win probability", divider="gray")
ex = dd.explanations(as_of, deal_id)
products = fmt.names("star.dim_product", "product_id", "product_name")  # names for both value lists below
if ex.is_empty():
    st.caption(f"No explanation for this deal in `{dd.EXPLANATIONS}`.")
else:
    ex = ex.with_columns(
        pl.struct("feature", "feature_value").map_elements(
            lambda r: dd.feature_label(r["feature"], r["feature_value"], products), return_dtype=pl.String).alias("label"),
        pl.struct("feature", "feature_value", "contribution").map_elements(
            lambda r: dd.explain_sentence(r["feature"], r["feature_value"], r["contribution"], products),
            return_dtype=pl.String).alias("sentence"),
        pl.when(pl.col("contribution") >= NO_EFFECT).then(pl.lit("raises"))
        .when(pl.col("contribution") <= -NO_EFFECT).then(pl.lit("lowers")).otherwise(pl.lit("no effect")).alias("effect"))
    ccol, tcol = st.columns([3, 2], gap="large")
    bars = (alt.Chart(ex.to_pandas()).mark_bar(cornerRadiusEnd=3)
            .encode(x=alt.X("contribution:Q", title="contribution (log-odds)"),
                    y=alt.Y("label:N", sort=ex["label"].to_list(), title=None, axis=alt.Axis(labelLimit=260)),
                    color=alt.Color("effect:N", title="win probability",
                                    scale=alt.Scale(domain=["raises", "lowers", "no effect"],
                                                    range=[dd.RAISES, dd.LOWERS, "#999999"]),
                                    legend=alt.Legend(orient="bottom", direction="horizontal", titleOrient="left")),
                    tooltip=[alt.Tooltip("label:N", title="feature"), alt.Tooltip("contribution:Q", format="+.3f"),
                             alt.Tooltip("sentence:N", title="meaning")])
            .properties(height=alt.Step(30)))
    ccol.altair_chart(bars + alt.Chart().mark_rule(color="#888").encode(x=alt.datum(0)), width="stretch")
    mark = {"raises": ":green[▲]", "lowers": ":red[▼]", "no effect": ":gray[•]"}
    tcol.markdown("\n".join(f"- {mark[effect]} {md(e)}" for effect, e in ex.select("effect", "sentence").iter_rows()))
    st.caption(dd.BASELINE_CAVEAT if dd.is_baseline(d["model_version"]) else dd.SHAP_CAVEAT)

deal_trend.render(deal_id, as_of, products)  # the score on every as-of date, and why it moved

# ---------------------------------------------------------------- history
st.subheader(":material/history: History", divider="gray")
hist, events = dd.history(deal_id)
if hist.is_empty():
    st.caption(f"No change events for this deal in `{dd.HISTORY}`." if db.table_exists(dd.HISTORY)
               else f"`{dd.HISTORY}` is not built yet: no change history to show.")
    st.stop()
lanes = [lane for lane in dd.LANES if not events.is_empty() and lane in set(events["lane"].to_list())]
base = alt.Chart(events.to_pandas()).encode(
    x=alt.X("changed_at:T", title=None, scale=alt.Scale(padding=40),
            axis=alt.Axis(format="%b %Y", labelOverlap=True)),
    y=alt.Y("lane:N", sort=lanes, title=None, axis=alt.Axis(labelFontWeight="bold", labelPadding=8)),
    color=alt.Color("lane:N", legend=None, scale=alt.Scale(domain=dd.LANES, range=["#1f77b4", "#ef6c00", "#6a3d9a"])))
timeline = alt.layer(
    base.mark_line(strokeWidth=2, opacity=0.35).encode(detail="lane:N"),
    base.mark_point(filled=True, size=90, opacity=1).encode(
        tooltip=[alt.Tooltip("changed_at:T", title="date"), alt.Tooltip("detail:N", title="change")]),
    base.transform_filter("datum.above").mark_text(dy=-15, fontSize=11).encode(text="label:N"),
    base.transform_filter("!datum.above").mark_text(dy=16, fontSize=11).encode(text="label:N"),
    alt.Chart().mark_rule(strokeDash=[4, 3], color="#888").encode(
        x=alt.datum(alt.DateTime(year=as_of.year, month=as_of.month, date=as_of.day))),
).properties(height=alt.Step(56))
st.altair_chart(timeline, width="stretch")
st.caption(f"Each dot is a change (hover for details); the dashed line is the as-of date ({as_of}) — "
           "changes after it were not known when the deal was scored.")
shown = fmt.as_text(hist.select("changed_at", "stage", "expected_close_date", "amount", "change"),
                    {"expected_close_date": lambda d: str(d)[:10], "amount": fmt.money})  # "—", never "None", where unknown
safe.dataframe(shown, hide_index=True,
             width="stretch", height=min(38 + 35 * hist.height, 600), column_config={
                 "changed_at": st.column_config.DateColumn("Date"), "stage": "Stage",
                 "expected_close_date": "Expected close",
                 "amount": f"Amount ({fmt.currency()})",
                 "change": st.column_config.TextColumn("Change", width="large")})
