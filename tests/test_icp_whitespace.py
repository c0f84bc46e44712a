"""scores.whitespace: only never-bought pairs without an open opportunity, ranked, with a rep."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
from icp_fixtures import DIVISIONS, random_star

from revintel_assets.defs.icp.features import feature_sql
from revintel_assets.defs.icp.whitespace import CAP_QUANTILE, rep_view_sql, whitespace_sql

CUTOFF, WINDOW = dt.date(2024, 6, 1), 6


def test_whitespace_rules():
    con = duckdb.connect()
    random_star(con, n_accounts=400)
    con.execute("CREATE SCHEMA features; CREATE SCHEMA scores")
    con.execute(f"CREATE TABLE features.customer_division AS {feature_sql(CUTOFF, DIVISIONS, WINDOW, dt.date(2024, 12, 31))}")
    con.execute("""CREATE TABLE scores.icp_scores AS SELECT cutoff_date, division, account_id,
                   (hash(account_id || division) % 1000) / 1000.0 AS propensity FROM features.customer_division""")
    ws = con.sql(whitespace_sql(CUTOFF, WINDOW)).pl()
    feats = con.sql("SELECT * FROM features.customer_division").pl()
    open_pairs = con.sql(f"""SELECT DISTINCT account_id, division FROM star.fact_opportunity
        WHERE created_date <= DATE '{CUTOFF}' AND (close_date IS NULL OR close_date > DATE '{CUTOFF}')""").pl()
    assert open_pairs.height > 0

    keys = ["account_id", "division"]
    owned = feats.filter(pl.col("is_buyer")).select(keys)
    assert owned.height > 0 and ws.join(owned, on=keys).is_empty()           # bought divisions excluded
    assert ws.join(open_pairs, on=keys).is_empty()                             # open-opportunity pairs excluded
    expected = feats.filter(~pl.col("is_buyer")).select(keys).join(open_pairs, on=keys, how="anti")
    assert ws.height == expected.height                                        # every other pair is there

    ws = ws.sort("rank_overall")
    assert ws["rank_overall"].to_list() == list(range(1, ws.height + 1))
    assert ws["whitespace_score"].is_sorted(descending=True)
    assert (ws["whitespace_score"] - ws["propensity"] * ws["expected_value"]).abs().max() < 1e-9
    firsts = ws.filter(pl.col("rank_in_account") == 1)
    assert firsts.height == ws["account_id"].n_unique()
    best = ws.group_by("account_id").agg(pl.col("whitespace_score").max())
    assert firsts.select("account_id", "whitespace_score").sort("account_id").equals(best.sort("account_id"))

    caps = (feats.filter(pl.col("div_monetary_12m") > 0).group_by("division")
            .agg(pl.col("div_monetary_12m").quantile(CAP_QUANTILE, "linear").alias("cap")))
    over = ws.join(caps, on="division").filter(pl.col("expected_value") > pl.col("cap") * WINDOW / 12 + 1e-6)
    assert over.is_empty() and (ws["expected_value"] > 0).all()
    assert ws["rep_id"].null_count() == 0 and ws["region"].null_count() == 0

    con.execute(f"CREATE TABLE scores.whitespace AS {whitespace_sql(CUTOFF, WINDOW)}")
    con.execute(rep_view_sql())
    per_rep = con.sql("SELECT rep_id, count(*) AS n, max(rank_for_rep) AS worst FROM scores.whitespace_by_rep "
                      "GROUP BY 1").pl()
    assert per_rep["n"].max() <= 10 and per_rep["worst"].max() <= 10
