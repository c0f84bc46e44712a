"""Scoring reads the labelled history as per-stage counts and medians computed in DuckDB
(OUTCOME_STATS_SQL); they must give exactly what the stage baseline and the expected-close
fallback computed from the full rows."""

import datetime as dt

import duckdb
import numpy as np
import polars as pl

from revintel_assets.defs.deals import scoring
from revintel_assets.defs.deals.baselines import stage_rate
from revintel_assets.rules import known_history


def _history(n: int = 4000, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    as_of = np.datetime64("2025-01-01") + rng.integers(0, 300, n).astype("timedelta64[D]")
    lag = rng.integers(1, 200, n).astype("timedelta64[D]")
    return pl.DataFrame({
        "as_of_date": as_of, "opportunity_id": [f"O{i % 900}" for i in range(n)],
        "stage": rng.choice(["Prospecting", "Engaging", "Proposal"], n),
        "outcome_date": as_of + lag, "is_won": rng.random(n) < 0.4,
    }).with_columns(pl.col("as_of_date").cast(pl.Date), pl.col("outcome_date").cast(pl.Date))


def test_outcome_stats_match_the_row_level_computation():
    history = _history()
    as_of = dt.date(2025, 8, 1)
    rows = pl.DataFrame({"as_of_date": [as_of] * 4, "stage": ["Prospecting", "Engaging", "Proposal", "Closing?"],
                         "expected_close_date": [None, dt.date(2025, 9, 1), None, None]},
                        schema_overrides={"expected_close_date": pl.Date})
    known = known_history(history.filter(pl.col("as_of_date") < as_of), as_of)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    con.register("h", history.to_arrow())
    con.execute("CREATE TABLE features.deal_snapshot AS SELECT * FROM h")
    from_sql = pl.from_arrow(con.sql(scoring.OUTCOME_STATS_SQL.replace("?", f"DATE '{as_of}'")).to_arrow_table())
    for stats in (from_sql, scoring.outcome_stats(history, as_of)):
        p, base = scoring._stage_probability(stats, rows)
        np.testing.assert_allclose(p, stage_rate(known, rows), rtol=0, atol=1e-12)
        assert base == float(known["is_won"].mean())
        assert scoring._expected_close(rows, stats).to_list() == scoring.expected_close_from_rows(rows, known).to_list()
    # an unknown stage falls back to the base rate; a date the CRM holds is kept
    assert p[3] == base and scoring._expected_close(rows, stats)[1] == dt.date(2025, 9, 1)


def test_no_history_scores_one_half():
    empty = scoring.outcome_stats(_history().head(0), dt.date(2025, 1, 1))
    rows = pl.DataFrame({"as_of_date": [dt.date(2025, 1, 1)], "stage": ["Proposal"],
                         "expected_close_date": [None]}, schema_overrides={"expected_close_date": pl.Date})
    p, base = scoring._stage_probability(empty, rows)
    assert p.tolist() == [0.5] and base == 0.5
    assert scoring._expected_close(rows, empty)[0] == dt.date(2025, 1, 31)


def test_stats_by_date_from_counts_equal_the_sql_of_each_date():
    """outcome_stats_by_date computes every date's figures from one GROUP BY of the labelled rows;
    they must equal OUTCOME_STATS_SQL run on each date alone: counts, wins and the median lag
    (even counts: the mean of the two middle values), a date with no history, a stage with rows
    but no win, and a NULL stage included."""
    history = _history().with_columns(
        # a stage that never wins, and a few rows without a stage
        pl.when(pl.col("opportunity_id") == "O7").then(pl.lit("Negotiation")).otherwise(pl.col("stage")).alias("stage"),
        pl.when(pl.col("opportunity_id") == "O7").then(False).otherwise(pl.col("is_won")).alias("is_won"))
    history = history.with_columns(pl.when(pl.col("opportunity_id") == "O8").then(None).otherwise(pl.col("stage"))
                                   .alias("stage"))
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    con.register("h", history.to_arrow())
    con.execute("CREATE TABLE features.deal_snapshot AS SELECT * FROM h")
    calls = []

    def query(sql, params=None):
        calls.append(sql)
        return con.sql(sql, params=params).pl()

    dates = [dt.date(2024, 12, 1)] + [dt.date(2025, 1, 1) + dt.timedelta(days=30 * k + k % 3) for k in range(12)]
    got = scoring.outcome_stats_by_date(query, dates)
    assert len(calls) == 1 and got.keys() == set(dates)
    key = ["stage", "n", "won", "lag"]
    for d in dates:
        want = query(scoring.OUTCOME_STATS_SQL, [d, d]).select(
            "stage", pl.col("n").cast(pl.Int64), pl.col("won").cast(pl.Int64), pl.col("lag").cast(pl.Float64))
        a = got[d].sort(key, nulls_last=True)
        b = want.sort(key, nulls_last=True)
        assert a.equals(b), (d, a, b)
    assert got[dates[0]]["n"].to_list() == [0]
    assert (got[dates[-1]].filter(pl.col("stage") == "Negotiation")["lag"].to_list() == [None])
    assert got[dates[-1]]["stage"].null_count() == 2  # the NULL stage's own row, and the total


def test_an_estimated_expected_close_date_is_flagged_a_crm_date_is_not():
    """MavenTech gives no expected close date: scoring estimates one (as-of + the stage's median
    time to win) and says so in expected_close_estimated, which the pages show as 'estimated'
    (before, the estimate stood in scores.deal_scores as if the CRM had given it)."""
    as_of = dt.date(2025, 8, 1)
    history = _history()
    rows = pl.DataFrame({
        "as_of_date": [as_of] * 3, "opportunity_id": ["A", "B", "C"], "account_id": ["a"] * 3, "rep_id": ["r"] * 3,
        "product_id": ["p"] * 3, "division": ["d"] * 3, "stage": ["Prospecting", "Engaging", "Proposal"],
        "amount": [100.0, 200.0, 300.0], "list_price": [100.0] * 3, "stage_time_ratio": [1.0] * 3,
        "n_pushes": [0] * 3, "expected_close_date": [None, dt.date(2025, 9, 1), None],
        "days_to_expected_close": [None, 31, None]}, schema_overrides={"expected_close_date": pl.Date})
    scores, _ = scoring.score_deals(rows, scoring.outcome_stats(history, as_of), as_of, None, None)
    assert scores["expected_close_estimated"].to_list() == [True, False, True]
    assert scores["expected_close_date"][1] == dt.date(2025, 9, 1) and scores["expected_close_date"].null_count() == 0


def test_the_stage_rate_is_never_a_certainty():
    """Early in a history every labelled outcome can be a win: the base rate and every stage's
    rate were exactly 1, and the stage baseline scored open deals 1.0 (an audit's Salesforce
    fixture, 29-33 Prospecting deals on its first scored date). Bounded by the rule of succession;
    ordinary rates are untouched."""
    import polars as pl

    from revintel_assets.rules import stage_win_rate

    rows = pl.DataFrame({"stage": ["Prospecting", "Proposal", "Engaging"]})
    all_won = pl.DataFrame({"stage": ["Prospecting", "Proposal"], "n": [3, 2], "won": [3, 2]})
    p, base = stage_win_rate(all_won, rows)
    assert base == 6 / 7 and (p < 1).all() and (p == 6 / 7).all()
    all_lost = pl.DataFrame({"stage": ["Prospecting"], "n": [4], "won": [0]})
    p, base = stage_win_rate(all_lost, rows)
    assert base == 1 / 6 and (p == 1 / 6).all()
    mixed = pl.DataFrame({"stage": ["Prospecting", "Proposal"], "n": [100, 50], "won": [20, 30]})
    p, base = stage_win_rate(mixed, rows)
    assert base == 50 / 150 and p[2] == base and 0.2 < p[0] < p[1] < 0.6
