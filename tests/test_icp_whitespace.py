"""scores.whitespace: only never-bought pairs without an open opportunity, ranked, with a rep, valued by
what a first purchase was worth in the training windows."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
from icp_fixtures import DIVISIONS, random_star

from revintel_assets.defs.icp.features import feature_sql
from revintel_assets.defs.icp.whitespace import (REP_VIEW, CAP_QUANTILE, VALUE_MIN_ROWS, ValueModel, fit_value, rep_view_sql,
                                                 whitespace_sql)

CUTOFF, WINDOW = dt.date(2024, 6, 1), 6


def _scored_star() -> duckdb.DuckDBPyConnection:
    """A random star, its features at CUTOFF and made-up ICP scores."""
    con = duckdb.connect()
    random_star(con, n_accounts=400)
    con.execute("CREATE SCHEMA features; CREATE SCHEMA scores")
    con.execute(f"CREATE TABLE features.customer_division AS {feature_sql(CUTOFF, DIVISIONS, WINDOW, dt.date(2024, 12, 31))}")
    con.execute("""CREATE TABLE scores.icp_scores AS SELECT cutoff_date, division, account_id,
                   (hash(account_id || division) % 1000) / 1000.0 AS propensity FROM features.customer_division""")
    return con


def test_whitespace_rules():
    con = _scored_star()
    ws = con.sql(whitespace_sql(CUTOFF, WINDOW)[0]).pl()
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

    con.execute(f"CREATE TABLE scores.whitespace AS {whitespace_sql(CUTOFF, WINDOW)[0]}")
    con.execute(f"CREATE VIEW {REP_VIEW} AS {rep_view_sql()}")
    per_rep = con.sql("SELECT rep_id, count(*) AS n, max(rank_for_rep) AS worst FROM scores.whitespace_by_rep "
                      "GROUP BY 1").pl()
    assert per_rep["n"].max() <= 10 and per_rep["worst"].max() <= 10


def test_rows_of_equal_score_are_ranked_by_propensity():
    """An audit: a CRM whose won deals carry no amount values every whitespace row at 0; the ranks
    then followed the account ids (an account's first recommendation its least likely division)."""
    con = _scored_star()
    con.execute("UPDATE features.customer_division SET is_buyer = false, open_opps = 0")
    nothing = ValueModel(level=-1e4, elasticity=0.0, offsets={}, rows=0)  # what a first purchase of amount 0 fits
    sql, params = whitespace_sql(CUTOFF, WINDOW, nothing)
    ws = con.sql(sql, params=params).pl()
    assert ws.height > 100 and (ws["whitespace_score"] == 0).all()
    assert ws.sort("rank_overall")["propensity"].is_sorted(descending=True)
    per_account = ws.sort("account_id", "rank_in_account").group_by("account_id", maintain_order=True).agg("propensity")
    assert all(pl.Series(p).is_sorted(descending=True) for p in per_account["propensity"].to_list())
    con.execute(f"CREATE TABLE scores.whitespace AS {sql}", params)
    con.execute(f"CREATE VIEW {REP_VIEW} AS {rep_view_sql()}")
    by_rep = con.sql("SELECT rep_id, rank_for_rep, propensity FROM scores.whitespace_by_rep ORDER BY rep_id, rank_for_rep").pl()
    assert all(pl.Series(p).is_sorted(descending=True)
               for p in by_rep.group_by("rep_id", maintain_order=True).agg("propensity")["propensity"].to_list())


def test_first_purchase_value_is_fitted_not_assumed():
    """fit_value recovers the mean of a first purchase: its elasticity to the account's spend and
    the divisions' levels, from log-normal amounts (the share-of-wallet rule assumes elasticity 1)."""
    rng = np.random.default_rng(3)
    n = 3000
    division = rng.choice(["A", "B", "C"], n)
    spend = rng.lognormal(7, 1.2, n)
    level = pl.Series(division).replace_strict({"A": 0.0, "B": 1.0, "C": -0.5}).to_numpy()
    amount = np.exp(1.5 + level + 0.3 * np.log1p(spend) + rng.normal(0, 0.5, n))
    rows = pl.DataFrame({"division": division, "account_id": [f"a{i}" for i in range(n)], "monetary_12m": spend,
                         "label_amount": amount})
    v = fit_value(rows)
    assert abs(v.elasticity - 0.3) < 0.03
    assert abs((v.offsets["B"] - v.offsets["A"]) - 1.0) < 0.08 and abs((v.offsets["C"] - v.offsets["A"]) + 0.5) < 0.08
    assert abs(v.level + v.offsets["A"] - (1.5 + 0.5 ** 2 / 2)) < 0.06  # the mean of a log-normal, not its median
    assert fit_value(rows.head(VALUE_MIN_ROWS - 1)) is None


def test_whitespace_values_pairs_by_the_fitted_model():
    con = _scored_star()
    odd = "O'Brien \"x\"); DROP TABLE scores.icp_scores; --"  # a division name is data, never SQL
    value = ValueModel(level=-1.0, elasticity=0.5, offsets={DIVISIONS[0]: 1.0, odd: 3.0}, rows=100)
    sql, params = whitespace_sql(CUTOFF, WINDOW, value)
    ws = con.sql(sql, params=params).pl()
    old = con.sql(whitespace_sql(CUTOFF, WINDOW)[0]).pl()
    assert ws.select("account_id", "division").sort("account_id", "division").equals(
        old.select("account_id", "division").sort("account_id", "division"))  # same pairs, valued differently
    feats = con.sql("SELECT account_id, division, monetary_12m FROM features.customer_division").pl()
    got = ws.join(feats, on=["account_id", "division"])
    want = np.exp(-1.0 + np.where(got["division"] == DIVISIONS[0], 1.0, 0.0)
                  + 0.5 * np.log1p(got["monetary_12m"].fill_null(0).clip(0, None).to_numpy()))
    assert np.allclose(got["expected_value"].to_numpy(), want, rtol=1e-9)
    assert (ws["whitespace_score"] - ws["propensity"] * ws["expected_value"]).abs().max() < 1e-9
    assert con.sql("SELECT count(*) FROM scores.icp_scores").fetchall()[0][0] > 0


def test_too_few_never_bought_accounts_give_their_size_not_metrics():
    """An audit: AUC 1.0 or 0.1 on 8-11 never-bought rows, ECE 0.28 on 5 rows without a buyer, were
    stored as results; and a top-25 of 20 whitespace rows gave every ranking the same figures."""
    import datetime as dt

    import numpy as np
    import polars as pl

    from revintel_assets.defs.icp.evaluate import evaluate
    from revintel_assets.defs.icp.whitespace import whitespace_holdout_metrics

    rng = np.random.default_rng(3)
    n = 400
    is_buyer = np.arange(n) >= 30  # 30 never-bought accounts
    label = np.where(is_buyer, rng.random(n) < 0.6, np.arange(n) < 5)  # 5 of them buy
    rows = pl.DataFrame({"account_id": [f"A{i}" for i in range(n)], "label": label, "is_buyer": is_buyer,
                         "label_amount": np.where(label, 100.0, np.nan)})
    full = evaluate(rows, {"m": rng.random(n)}, dt.date(2024, 1, 1), "X", versions={"m": "m"}, split="holdout")
    out = full["metrics"]
    # an audit: the bins carried no split, so `WHERE split = 'holdout'` dropped every ICP bin (CONTRACT §3 key)
    assert full["bins"]["split"].unique().to_list() == ["holdout"] and full["bins"]["n"].sum() == n
    never = dict(out.filter(pl.col("segment") == "never_bought").select("metric", "value").iter_rows())
    assert never == {"n": 30.0, "positives": 5.0}
    assert {"auc", "ece", "brier"} <= set(out.filter(pl.col("segment") == "all")["metric"])
    rows = rows.with_columns(label=pl.Series(np.where(is_buyer, label, np.arange(n) < 20)))
    never = set(evaluate(rows[:60].vstack(rows[30:60]), {"m": rng.random(90)}, dt.date(2024, 1, 1), "X",
                         versions={"m": "m"})["metrics"].filter(pl.col("segment") == "never_bought")["metric"])
    assert "auc" not in never  # 20 buyers, 10 non-buyers
    ws = pl.DataFrame({"whitespace_score": rng.random(60), "propensity": rng.random(60), "expected_value": rng.random(60),
                       "label": rng.random(60) < 0.2, "label_amount": rng.random(60) * 100, "is_buyer": [False] * 60,
                       "cutoff_date": [dt.date(2024, 1, 1)] * 60,
                       **{c: rng.random(60) for c in ("div_recency_days", "div_frequency_12m", "div_monetary_12m",
                                                       "recency_days", "frequency_12m", "monetary_12m")}})
    assert {k for _, k, _, _ in whitespace_holdout_metrics(ws)} == {25}  # 60 rows: a top 25, no top 100


def test_a_division_the_account_returned_goods_of_is_not_whitespace():
    """An audit: 167 Online Retail pairs recommended a division the customer had only returned goods of
    before the cutoff (bought before the log began)."""
    con = _scored_star()
    con.execute("UPDATE features.customer_division SET is_buyer = false, open_opps = 0")
    keys = ["account_id", "division"]
    returned = con.sql(f"""SELECT DISTINCT account_id, division FROM star.fact_transactions
        WHERE order_date <= DATE '{CUTOFF}' AND (quantity < 0 OR amount < 0)""").pl()
    every = con.sql("SELECT account_id, division FROM features.customer_division").pl()
    ws = con.sql(whitespace_sql(CUTOFF, WINDOW)[0]).pl()
    assert returned.height > 50 and ws.join(returned, on=keys).is_empty()
    assert ws.height == every.join(returned, on=keys, how="anti").height  # every other pair is there
