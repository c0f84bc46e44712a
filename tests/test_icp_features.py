"""features.customer_division: no leakage (time travel), label semantics, divisions from data."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest
from icp_fixtures import DIVISIONS, random_star, travel_back
from polars.testing import assert_frame_equal

from revintel_assets.defs.icp.features import (LABELS, divisions_sql, feature_columns, feature_sql, ledger_tables,
                                              model_features)

AS_OF = dt.date(2024, 12, 31)


def features(con, cutoff, divisions=DIVISIONS, window=6, as_of=AS_OF) -> pl.DataFrame:
    return con.sql(feature_sql(cutoff, divisions, window, as_of)).pl()


@pytest.mark.parametrize("cutoff", [dt.date(2024, 3, 1), dt.date(2024, 6, 17)])
def test_time_travel_features_identical(cutoff):
    """Delete every source row dated after the cutoff, rebuild: every feature is unchanged."""
    con = duckdb.connect()
    random_star(con)
    before = features(con, cutoff)
    assert before["label"].sum() > 0 and before["open_opps"].sum() > 0 and before["lost_opps_12m"].sum() > 0
    travel_back(con, cutoff)
    after = features(con, cutoff)
    cols = [c for c in before.columns if c not in LABELS]
    assert_frame_equal(before.select(cols), after.select(cols))
    assert after["label"].sum() == 0  # the future is gone; only the label saw it


@pytest.mark.parametrize("cutoff", [dt.date(2024, 3, 1), dt.date(2024, 6, 17), dt.date(2024, 12, 31)])
def test_ledger_built_once_gives_the_same_rows(cutoff):
    """The features step builds the purchase ledger once for all cutoffs (ledger_tables); a cutoff's
    rows from it equal the statement that computes the ledger itself, and the active months (from
    each month's first and last purchase day) equal a distinct count of the months with a purchase."""
    con = duckdb.connect()
    random_star(con)
    con.execute("ATTACH ':memory:' AS ledger")
    for create in ledger_tables("ledger"):
        con.execute(create)
    built = con.sql(feature_sql(cutoff, DIVISIONS, 6, AS_OF, ledger="ledger")).pl()
    assert_frame_equal(built, features(con, cutoff))
    c = f"DATE '{cutoff.isoformat()}'"
    direct = con.sql(f"""
        WITH buys AS (SELECT account_id, division, order_date FROM star.fact_transactions
                      WHERE order_date <= {c} AND division IS NOT NULL
                      GROUP BY ALL HAVING sum(amount) FILTER (WHERE amount > 0) > 0)
        SELECT account_id, division,
               count(DISTINCT date_trunc('month', order_date)) FILTER (WHERE order_date > {c} - INTERVAL 12 MONTH)
                   AS div_active_months_12m,
               count(DISTINCT date_trunc('month', order_date)) FILTER (WHERE order_date > {c} - INTERVAL 24 MONTH)
                   AS div_active_months_24m
        FROM buys GROUP BY ALL""").pl()
    mine = built.filter(pl.col("is_buyer")).select(direct.columns)
    assert direct.height == mine.height > 100 and direct["div_active_months_12m"].sum() > 500
    assert_frame_equal(mine.sort("account_id", "division"), direct.sort("account_id", "division"))
    acct = con.sql(f"""
        WITH buys AS (SELECT account_id, order_date FROM star.fact_transactions
                      WHERE order_date <= {c} AND amount > 0 AND division IS NOT NULL GROUP BY ALL)
        SELECT account_id,
               count(DISTINCT date_trunc('month', order_date)) FILTER (WHERE order_date > {c} - INTERVAL 12 MONTH)
                   AS active_months_12m,
               count(DISTINCT date_trunc('month', order_date)) FILTER (WHERE order_date > {c} - INTERVAL 24 MONTH)
                   AS active_months_24m
        FROM buys GROUP BY ALL ORDER BY 1""").pl()
    assert_frame_equal(built.select(acct.columns).unique().sort("account_id"), acct)


def test_affinity_is_the_mean_and_max_confidence_over_the_divisions_owned():
    """affinity_max / affinity_mean of (account, d): the largest and the mean, over the other
    divisions a the account owned at the cutoff, of P(owns d | owns a) among all owners of a. The
    statement computes them once per set of owned divisions; here they are computed per account."""
    con = duckdb.connect()
    random_star(con)
    rows = features(con, dt.date(2023, 3, 15))  # two months in: accounts own different sets
    own = rows.filter(pl.col("is_buyer")).select("account_id", "division")
    owners = own.group_by("division").len("n_owners")
    conf = (own.join(own, on="account_id", suffix="_to").filter(pl.col("division") != pl.col("division_to"))
            .group_by("division", "division_to").len("both").join(owners, on="division")
            .select(pl.col("division").alias("from_div"), pl.col("division_to").alias("division"),
                    (pl.col("both") / pl.col("n_owners")).alias("conf")))
    direct = (own.rename({"division": "from_div"}).join(conf, on="from_div")
              .group_by("account_id", "division").agg(pl.col("conf").max().alias("affinity_max"),
                                                       pl.col("conf").mean().alias("affinity_mean")))
    got = rows.join(direct, on=["account_id", "division"], how="left").with_columns(
        pl.col("affinity_max_right", "affinity_mean_right").fill_null(0.0))
    assert direct.height > 100 and direct["affinity_mean"].n_unique() > 4  # several owned sets, not one
    assert (got["affinity_max"] - got["affinity_max_right"]).abs().max() < 1e-12
    assert (got["affinity_mean"] - got["affinity_mean_right"]).abs().max() < 1e-12


def _tiny(con, lines: list[tuple[str, str, str, float]]) -> None:
    con.execute("CREATE SCHEMA star")
    con.execute("""CREATE TABLE star.dim_account AS SELECT * FROM (VALUES
        ('A1', 'One', 'retail', 10, 1.0, 'US', NULL, 2000), ('A2', 'Two', 'retail', 10, 1.0, 'US', NULL, 2000),
        ('A3', 'Three', 'retail', 10, 1.0, 'US', NULL, 2000))
        t(account_id, account_name, sector, employees, annual_revenue, country, parent_account_id, year_established)""")
    con.execute("CREATE TABLE star.dim_product AS SELECT * FROM (VALUES ('x1', 'X', true), ('y1', 'Y', true), "
                "('z1', 'Z', true)) t(product_id, division, sellable)")
    con.execute("""CREATE TABLE star.fact_opportunity (opportunity_id VARCHAR, account_id VARCHAR, rep_id VARCHAR,
                   division VARCHAR, created_date DATE, engage_date DATE, close_date DATE, is_closed BOOLEAN,
                   is_won BOOLEAN, amount DOUBLE)""")
    con.execute("CREATE TABLE star.fact_transactions (account_id VARCHAR, order_date DATE, division VARCHAR, "
                "amount DOUBLE, rep_id VARCHAR)")
    con.executemany("INSERT INTO star.fact_transactions VALUES (?, ?::DATE, ?, ?, NULL)", lines)
    _unit_lines(con)


def _unit_lines(con, source: str = "tidy") -> None:
    """One unit per line: a negative amount is a return (a tidy log's sign convention)."""
    con.execute("ALTER TABLE star.fact_transactions ADD COLUMN quantity DOUBLE")
    con.execute(f"ALTER TABLE star.fact_transactions ADD COLUMN source VARCHAR DEFAULT '{source}'")
    con.execute("UPDATE star.fact_transactions SET quantity = sign(amount), source = ?", [source])


def test_labels_and_same_day_orders():
    con = duckdb.connect()
    _tiny(con, [
        ("A1", "2024-01-10", "X", 100.0), ("A1", "2024-01-10", "X", 50.0),  # two orders, same day: both count
        ("A1", "2024-03-01", "Y", 10.0),   # on the cutoff: a feature, not the label
        ("A1", "2024-09-01", "Y", 20.0),   # exactly cutoff + 6 months: inside the window
        ("A2", "2024-02-01", "X", 70.0),
        ("A2", "2024-09-02", "X", 30.0),   # one day after the window: not the label
        ("A2", "2024-04-01", "Y", -40.0),  # a return is not a purchase
        ("A3", "2024-06-01", "X", 5.0),    # no purchase before the cutoff: not an active account
    ])
    f = features(con, dt.date(2024, 3, 1), ["X", "Y"]).sort("account_id", "division")
    assert f["account_id"].to_list() == ["A1", "A1", "A2", "A2"]
    row = {(r["account_id"], r["division"]): r for r in f.iter_rows(named=True)}
    assert row["A1", "X"]["div_monetary_all"] == 150.0 and row["A1", "X"]["div_frequency_all"] == 1
    assert row["A1", "X"]["label"] is False and row["A1", "X"]["is_buyer"] is True
    assert row["A1", "Y"]["div_recency_days"] == 0 and row["A1", "Y"]["label"] is True
    assert row["A1", "Y"]["label_amount"] == 20.0 and row["A1", "Y"]["label_new_buyer"] is False
    assert row["A2", "X"]["label"] is False
    assert row["A2", "Y"]["is_buyer"] is False and row["A2", "Y"]["label"] is False
    assert row["A2", "Y"]["div_recency_days"] is None
    # a new buyer of the division: never bought it, buys in the window
    g = features(con, dt.date(2024, 1, 31), ["Y"]).filter(pl.col("account_id") == "A1").row(0, named=True)
    assert g["is_buyer"] is False and g["label"] is True and g["label_new_buyer"] is True
    # window not over by the as-of date: no label at all
    assert features(con, dt.date(2024, 8, 1), ["X"], as_of=dt.date(2024, 9, 30))["label"].null_count() == 3


def test_a_purchase_is_a_positive_quantity_and_at_a_loss_still_one_in_a_gross_profit_log():
    """An audit: the ledger took a purchase to be a positive amount. In the wide sales log, whose
    amounts are gross profit, a customer buying a division every month at cost was 'never bought'
    (propensity 0.05-0.15, whitespace's first recommendation to them); in a tidy log a return written
    with a negative quantity and a positive amount was a purchase."""
    lines = [("A1", "2024-01-10", "X", -3.0), ("A1", "2024-02-10", "X", 0.0),   # sold at or below cost
             ("A1", "2024-04-10", "X", -1.0),                                   # ... in the label window
             ("A2", "2024-01-10", "X", 50.0), ("A2", "2024-02-10", "X", 20.0)]
    con = duckdb.connect()
    _tiny(con, lines)
    con.execute("UPDATE star.fact_transactions SET quantity = 2, source = 'sales_log'")
    row = features(con, dt.date(2024, 3, 1), ["X"]).filter(pl.col("account_id") == "A1").row(0, named=True)
    assert row["is_buyer"] is True and row["div_frequency_all"] == 2 and row["label"] is True
    assert row["div_monetary_all"] == -3.0 and row["returned_12m"] == 0  # its gross profit, not a return
    # the same lines in a tidy log are revenue: no sale at 0 or below, the negative ones are returns
    con.execute("UPDATE star.fact_transactions SET source = 'tidy'")
    assert features(con, dt.date(2024, 3, 1), ["X"])["account_id"].to_list() == ["A2"]
    # a return with a negative quantity is no purchase, whatever the sign of its amount
    con.execute("UPDATE star.fact_transactions SET quantity = -2 WHERE account_id = 'A2' AND order_date = '2024-02-10'")
    a2 = features(con, dt.date(2024, 3, 1), ["X"]).row(0, named=True)
    assert a2["div_frequency_all"] == 1 and a2["div_monetary_all"] == 50.0
    # a service billed with quantity 0 is bought (the re-check: a division of such lines lost every buyer)
    con.execute("UPDATE star.fact_transactions SET quantity = 0 WHERE account_id = 'A2' AND order_date = '2024-02-10'")
    assert features(con, dt.date(2024, 3, 1), ["X"]).row(0, named=True)["div_frequency_all"] == 2


def test_a_won_deal_standing_in_for_the_log_is_a_purchase_whatever_its_amount():
    """An audit: a CRM-only source whose won deals have no amount (or 0) had no buyer at all, so no
    ICP model and no whitespace; the deals were won, so the accounts bought."""
    con = duckdb.connect()
    _tiny(con, [("A1", "2024-01-10", "X", None), ("A1", "2024-04-10", "X", 0.0), ("A2", "2024-02-10", "X", 0.0)])
    con.execute("UPDATE star.fact_transactions SET quantity = 1, source = 'crm_won'")
    f = {r["account_id"]: r for r in features(con, dt.date(2024, 3, 1), ["X"]).iter_rows(named=True)}
    assert f["A1"]["is_buyer"] and f["A1"]["div_frequency_all"] == 1 and f["A1"]["label"] is True
    assert f["A1"]["div_monetary_all"] == 0.0 and f["A2"]["is_buyer"]
    # the same lines in a tidy log are no purchases (an amount of 0 or none sells nothing)
    con.execute("UPDATE star.fact_transactions SET source = 'tidy'")
    assert features(con, dt.date(2024, 3, 1), ["X"]).height == 0


def test_divisions_come_from_the_data():
    con = duckdb.connect()
    _tiny(con, [("A1", "2024-01-10", "X", 1.0), ("A1", "2024-01-11", "Y", 1.0)])
    assert con.sql(divisions_sql()).pl()["division"].to_list() == ["X", "Y"]  # Z has no sales yet
    con.execute("INSERT INTO star.fact_transactions VALUES ('A2', DATE '2024-01-12', 'Z', 1.0, NULL, 1, 'tidy')")
    assert con.sql(divisions_sql()).pl()["division"].to_list() == ["X", "Y", "Z"]


def test_feature_columns_exclude_labels_and_keys():
    con = duckdb.connect()
    random_star(con, n_accounts=50)
    frame = features(con, dt.date(2024, 3, 1))
    cols = model_features(frame)  # the window the rows were labelled over: 6 months
    assert cols == feature_columns(frame.columns, 6)
    assert not set(cols) & {"label", "label_amount", "label_new_buyer", "cutoff_date", "account_id", "division",
                            "is_buyer"}
    assert {"div_active_months_24m", "affinity_max", "open_opps", "division_season_index_w6"} <= set(cols)
    assert "division_season_index_w3" in frame.columns and not {c for c in cols if c.endswith("_w3")}
    assert {"division_season_index_w3", "division_rate_same_season_w3"} <= set(feature_columns(frame.columns, 3))


@pytest.mark.parametrize("cutoff", [dt.date(2024, 3, 1), dt.date(2024, 6, 17)])
def test_the_runs_window_changes_no_feature(cutoff):
    """The ICP window W follows the data's span (6 months with 2.5+ years, else 3): deleting the
    rows after a date can turn it from 6 into 3. Every feature of a cutoff is the same whichever W
    the run chose; only the label columns (which look past the cutoff) follow it."""
    con = duckdb.connect()
    random_star(con)
    six, three = features(con, cutoff, window=6), features(con, cutoff, window=3)
    cols = [c for c in six.columns if c not in LABELS]
    assert cols == [c for c in three.columns if c not in LABELS]
    assert_frame_equal(six.select(cols), three.select(cols))
    assert six["division_season_index_w6"].drop_nulls().len() > 0  # the columns are there, not all NULL
    assert (six["division_season_index_w6"] != six["division_season_index_w3"]).any()
    assert six["label"].sum() > three["label"].sum() > 0


def test_a_table_from_before_the_window_columns_feeds_no_stale_column():
    """A warehouse built before the _w3 / _w6 columns keeps its unsuffixed ones (NULL in the
    partitions written since): a model of W reads the suffixed columns only."""
    cols = ["cutoff_date", "division", "account_id", "recency_days", "division_season_index",
            "division_season_index_w3", "division_season_index_w6", "label", "label_window_months"]
    assert feature_columns(cols, 6) == ["recency_days", "division_season_index_w6"]
    assert feature_columns(["recency_days", "division_season_index"], None) == ["recency_days", "division_season_index"]
