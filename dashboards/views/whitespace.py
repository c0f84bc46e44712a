"""Whitespace: divisions an account has never bought, ranked by propensity × expected value."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import db, fmt, safe, why

ALL = "All"

st.title("Whitespace")
st.caption("Every account × division the account has never bought (and has no open opportunity in), "
           "scored propensity × value if bought: what a first purchase of that division brought in the training "
           "windows, fitted to the account's spend (the share similar accounts spend there when too few first "
           "purchases were made). Equal scores go to the likelier purchase.")
why.stop_unless_icp("scores.whitespace")

cutoffs = db.query("SELECT DISTINCT cutoff_date FROM scores.whitespace ORDER BY 1 DESC")["cutoff_date"].to_list()
ws = db.query("SELECT * FROM scores.whitespace WHERE cutoff_date = ?", [cutoffs[0]])
CURRENCY = fmt.currency()


def _named(frame: pl.DataFrame) -> pl.DataFrame:
    """Rep and account names beside (not instead of) the ids the filters and the CSV keep."""
    frame = fmt.with_names(frame, rep="rep_id")
    if "account_name" in frame.columns:
        return frame.with_columns(pl.coalesce("account_name", "account_id").alias("account"))
    return fmt.with_names(frame, account="account_id")


ws = _named(ws)


def options(col: str) -> list:
    if col not in ws.columns:
        return []
    return sorted(v for v in ws[col].unique().to_list() if v is not None)


f1, f2, f3, f4, f5 = st.columns([1.5, 2, 1.4, 1.2, 1.2])
cutoff = f1.selectbox("Cutoff", cutoffs, index=0)
if cutoff != cutoffs[0]:
    ws = _named(db.query("SELECT * FROM scores.whitespace WHERE cutoff_date = ?", [cutoff]))
chosen_divs = f2.multiselect("Division", options("division"), placeholder="All divisions")
filters = {col: box.selectbox(label, [ALL, *options(col)])
           for box, label, col in ((f3, "Rep", "rep"), (f4, "Region", "region"), (f5, "Sector", "sector"))}

view = ws
if chosen_divs:
    view = view.filter(pl.col("division").is_in(chosen_divs))
for col, value in filters.items():
    if value != ALL:
        view = view.filter(pl.col(col) == value)

m1, m2, m3 = st.columns(3)
m1.metric("Open pairs", f"{view.height:,}", border=True)
m2.metric("Expected value (sum of propensity × value)",
          fmt.money((view['whitespace_score'].sum() if view.height else 0), CURRENCY), border=True)
m3.metric("Accounts", f"{view['account_id'].n_unique() if view.height else 0:,}", border=True)

if view.is_empty():
    st.info("No whitespace matches these filters.")
    st.stop()

st.subheader(":material/stacked_bar_chart: Expected value by division", divider="gray")
by_div = view.group_by("division").agg(pl.col("whitespace_score").sum().alias("expected"),
                                        pl.len().alias("pairs")).sort("expected", descending=True)
chart = (alt.Chart(by_div.to_pandas()).mark_bar(cornerRadiusEnd=3)
         .encode(x=alt.X("expected:Q", title=f"sum of propensity × expected value ({CURRENCY})",
                         axis=alt.Axis(labelExpr=fmt.money_axis(CURRENCY))),
                 y=alt.Y("division:N", sort="-x", title=None),
                 tooltip=["division", alt.Tooltip("expected:Q", format=",.0f", title=f"expected ({CURRENCY})"), "pairs"])
         .properties(height=alt.Step(24)))
st.altair_chart(chart, width="stretch")

st.subheader(":material/target: Best opportunities", divider="gray")
cols = [c for c in ("rank_overall", "account", "division", "propensity", "expected_value",
                    "whitespace_score", "rank_in_account", "rep", "region", "sector", "country") if c in view.columns]
table = view.sort("rank_overall").select(cols)  # the table's ranking: equal scores by propensity
# a transaction log has no regions or sectors: a dash, not "None" in every row
table = table.with_columns(pl.col(c).cast(pl.Utf8).fill_null("—") for c in ("rep", "region", "sector", "country")
                           if c in table.columns)
safe.dataframe(table.head(200), hide_index=True, width="stretch",
             column_config={"rank_overall": "Rank", "account": "Account", "division": "Division", "rep": "Rep",
                            "region": "Region", "sector": "Sector", "country": "Country",
                            "rank_in_account": "Rank in account",
                            "propensity": st.column_config.ProgressColumn("Propensity", format="percent",
                                                                         min_value=0, max_value=1),
                            "expected_value": fmt.money_column("Value if bought", CURRENCY),
                            "whitespace_score": fmt.money_column("Whitespace score", CURRENCY)})
csv_cols = [c for c in ("rank_overall", "account_id", "account", "division", "propensity", "expected_value",
                        "whitespace_score", "rank_in_account", "rep_id", "rep", "region", "sector", "country")
            if c in view.columns]
table = view.sort("whitespace_score", descending=True).select(csv_cols).with_columns(pl.lit(CURRENCY).alias("currency"))
st.download_button("Download CSV", safe.csv_bytes(table), file_name=f"whitespace_{cutoff}.csv",
                   mime="text/csv", icon=":material/download:")
