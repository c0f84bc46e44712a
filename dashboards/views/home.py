"""Home: what was loaded, how big and how fresh each analyst table is, what was quarantined."""

from __future__ import annotations

import datetime as dt
import json

import altair as alt
import polars as pl
import streamlit as st

from dashboards import as_of as as_of_banner, safe
from dashboards import db
from dashboards.safe import code, md

ANALYST_SCHEMAS = ("star", "features", "scores", "forecast", "validation")
HEADLINE = [  # (metric label, table)
    ("Opportunities", "star.fact_opportunity"),
    ("Accounts", "star.dim_account"),
    ("Transactions", "star.fact_transactions"),
    ("Quarantined rows", "star.quarantine"),
]

st.title("Home")
st.caption("What the published analyst warehouse holds right now: the source it was loaded "
           "from, every table's size and freshness, and the rows that were quarantined.")
db.require_data()


def source_files(files) -> list[str] | None:
    """The file names in meta.source.files: a JSON object (name -> what was read) or list, a list, or a
    comma-separated string; None when unknown. (A JSON string is not split on its commas.)"""
    if files is None:
        return None
    if isinstance(files, str):
        try:
            files = json.loads(files)
        except ValueError:
            return [f.strip() for f in files.split(",") if f.strip()]
    if isinstance(files, dict):
        return [str(f) for f in files]
    if isinstance(files, (list, tuple)):
        return [str(f.get("name", f)) if isinstance(f, dict) else str(f) for f in files]
    return None


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _age(ts: dt.datetime | None, now: dt.datetime) -> str:
    if ts is None:
        return ""
    if ts.tzinfo is None:  # naive timestamps are written in UTC
        ts = ts.replace(tzinfo=dt.UTC)
    s = (now - ts).total_seconds()
    if s < 0:
        return "just now"
    for limit, unit, div in ((90, "s", 1), (90 * 60, "min", 60), (36 * 3600, "h", 3600)):
        if s < limit:
            return f"{s / div:.0f} {unit} ago"
    return f"{s / 86400:.0f} d ago"


# ---------------------------------------------------------------- table sizes and freshness
tables = db.list_tables().filter(
    pl.col("schema").is_in(ANALYST_SCHEMAS) & (pl.col("kind") == "table")
)
if tables.is_empty():
    counts = pl.DataFrame(schema={"schema": pl.String, "name": pl.String, "rows": pl.Int64})
else:
    def _lit(x: str) -> str:
        return "'" + x.replace("'", "''") + "'"

    def _ident(x: str) -> str:
        return '"' + x.replace('"', '""') + '"'

    counts = db.query(
        " UNION ALL ".join(
            f"SELECT {_lit(s)} AS schema, {_lit(n)} AS name, COUNT(*)::BIGINT AS rows "
            f"FROM {_ident(s)}.{_ident(n)}"
            for s, n in tables.select("schema", "name").iter_rows()
        )
    )
row_count = {f"{s}.{n}": r for s, n, r in counts.iter_rows()}

has_log = db.table_exists("meta.table_log")
if has_log and not counts.is_empty():
    log = db.query(
        "SELECT table_name, max(written_at) AS written_at FROM meta.table_log GROUP BY ALL"
    )
    # table_log names tables qualified ("star.dim_account") or bare ("dim_account").
    log = log.with_columns(
        pl.col("table_name").str.split(".").list.last().alias("bare"),
        pl.col("table_name").str.contains(r"\.").alias("qualified"),
    )
    q = log.filter(pl.col("qualified")).select(
        pl.col("table_name").alias("key"), "written_at"
    )
    b = log.filter(~pl.col("qualified")).select("bare", "written_at")
    freshness = (
        counts.with_columns((pl.col("schema") + "." + pl.col("name")).alias("key"))
        .join(q, on="key", how="left")
        .join(b, left_on="name", right_on="bare", how="left", suffix="_bare")
        .select(
            "schema",
            "name",
            "rows",
            pl.coalesce("written_at", "written_at_bare").alias("written_at"),
        )
    )
else:
    freshness = counts.with_columns(pl.lit(None, dtype=pl.Datetime).alias("written_at"))

# the latest scores are what every page shows first: say so when they are dated past the data
if "scores.deal_scores" in row_count:
    as_of_banner.warn_if_past_the_data(db.scalar("SELECT max(as_of_date) FROM scores.deal_scores"))

# ---------------------------------------------------------------- headline metrics
cols = st.columns(len(HEADLINE))
for col, (label, table) in zip(cols, HEADLINE):
    col.metric(label, _fmt_int(row_count.get(table)), border=True,
               help=f"Rows in `{table}`" if table in row_count else f"`{table}` not built yet")

# ---------------------------------------------------------------- source + quarantine
left, right = st.columns([2, 3], gap="large")

with left:
    st.subheader(":material/folder_open: Loaded source", divider="gray")
    if not db.table_exists("meta.source"):
        st.caption("No `meta.source` table in this warehouse.")
    else:
        src = db.query("SELECT * FROM meta.source LIMIT 1")
        if src.is_empty():
            st.caption("`meta.source` is empty.")
        else:
            row = src.row(0, named=True)
            file_list = source_files(row.get("files"))
            files_txt = "—" if file_list is None else f"{len(file_list):,}"
            file_list = file_list or []
            lines = [
                ("Path", code(row.get('source_path', '—'))),
                ("Format", f"**{md(row.get('source_format', '—'))}**"),
                ("Export date", str(row.get("export_date", "—"))),
                ("Loaded at", str(row.get("loaded_at", "—"))[:19]),
                ("Files", files_txt),
            ]
            st.markdown("\n".join(f"- {k}: {v}" for k, v in lines))
            if file_list:
                with st.expander("Files read"):
                    st.markdown("\n".join(f"- {code(f)}" for f in file_list))

with right:
    st.subheader(":material/report: Quarantined rows", divider="gray")
    if "star.quarantine" not in row_count:
        st.caption("No `star.quarantine` table in this warehouse.")
    elif row_count["star.quarantine"] == 0:
        st.success("No quarantined rows: every raw row made it into the star schema.",
                   icon=":material/check_circle:")
    else:
        by = db.query(
            "SELECT reason, source_file, COUNT(*)::BIGINT AS rows FROM star.quarantine "
            "GROUP BY ALL ORDER BY rows DESC, reason, source_file"
        )
        order = (  # reasons, most rows first
            by.group_by("reason").agg(pl.col("rows").sum())
            .sort(["rows", "reason"], descending=[True, False]).get_column("reason").to_list()
        )
        chart = (
            alt.Chart(by.to_pandas())
            .mark_bar(cornerRadiusEnd=3)
            .encode(
                x=alt.X("sum(rows):Q", title="rows", axis=alt.Axis(tickMinStep=1, format="~s")),
                y=alt.Y("reason:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
                color=alt.Color("source_file:N", title="file",
                                legend=alt.Legend(orient="bottom", direction="horizontal",
                                                  titleOrient="left")),
                tooltip=["reason", "source_file", "rows"],
            )
            .properties(height=alt.Step(26))  # a fixed height would squash the bars
        )
        st.altair_chart(chart, width="stretch")
        st.table(
            by.rename({"reason": "Reason", "source_file": "File", "rows": "Rows"})
            .to_pandas()
            .set_index("Reason")
            .style.format({"Rows": "{:,}"})
        )

# ---------------------------------------------------------------- analyst tables
st.subheader(":material/table: Analyst tables", divider="gray")
if freshness.is_empty():
    st.caption("No analyst tables yet.")
else:
    now = dt.datetime.now(dt.UTC)
    shown = freshness.sort("schema", "name").with_columns(
        pl.col("written_at").dt.strftime("%Y-%m-%d %H:%M").fill_null("—").alias("last written"),
        pl.col("written_at")
        .map_elements(lambda t: _age(t, now), return_dtype=pl.String)
        .fill_null("—")
        .alias("age"),
    )
    if not has_log:
        st.caption("No `meta.table_log` in this warehouse: freshness unknown.")
    safe.dataframe(
        shown.select(
            "schema",
            pl.col("name").alias("table"),
            "rows",
            "last written",
            "age",
        ),
        hide_index=True,
        width="stretch",
        height="auto",
        column_config={
            "rows": st.column_config.NumberColumn(format="localized"),
        },
    )
