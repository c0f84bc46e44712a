"""The business headline `revintel demo/run` end with (issue 15 item 6), on a real DuckDB file
holding the published tables' columns: each figure is the one the tables give."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from revintel_assets.headline import _forecast, headline, money

AS_OF = dt.date(2025, 11, 14)


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    con.execute("CREATE SCHEMA scores; CREATE SCHEMA star; CREATE SCHEMA forecast; CREATE SCHEMA validation")
    con.execute("CREATE TABLE star.dim_product (product_id VARCHAR, list_price DOUBLE)")
    con.execute("INSERT INTO star.dim_product VALUES ('P1', 500), ('P2', NULL)")
    con.execute("CREATE TABLE scores.deal_scores (as_of_date DATE, opportunity_id VARCHAR, product_id VARCHAR, "
                "amount DOUBLE, win_probability DOUBLE, risk_category VARCHAR, model_version VARCHAR)")
    rows = [  # an older date that must not count, then the latest
        (AS_OF - dt.timedelta(days=7), "o1", "P1", 9e9, 0.5, "Critical", "win_probability/1"),
        (AS_OF, "o1", "P1", 1000, 0.5, "Low", "win_probability/2"),
        (AS_OF, "o2", "P1", 3000, 0.2, "High", "win_probability/2"),
        (AS_OF, "o3", "P1", None, 0.4, "Critical", "win_probability/2"),  # list price 500
        (AS_OF, "o4", "P2", None, 0.9, "Medium", "win_probability/2"),  # no value at all: 0
    ]
    con.executemany("INSERT INTO scores.deal_scores VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE forecast.revenue_forecast (as_of_date DATE, period_type VARCHAR, period_start DATE, "
                "first_day DATE, last_day DATE, segment_type VARCHAR, segment VARCHAR, p10 DOUBLE, p50 DOUBLE, "
                "p90 DOUBLE)")
    con.executemany("INSERT INTO forecast.revenue_forecast VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (AS_OF, "month", dt.date(2025, 12, 1), dt.date(2025, 12, 1), dt.date(2025, 12, 31), "total", "total", 1, 2, 3),
        (AS_OF, "quarter", dt.date(2025, 10, 1), dt.date(2025, 11, 15), dt.date(2025, 12, 31), "total", "total",
         1200, 2500, 4100),
        (AS_OF, "quarter", dt.date(2025, 10, 1), dt.date(2025, 11, 15), dt.date(2025, 12, 31), "region", "East",
         7, 8, 9),
    ])
    con.execute("CREATE TABLE validation.model_metrics (model_family VARCHAR, model_name VARCHAR, model_version VARCHAR, "
                "cutoff_date DATE, division VARCHAR, split VARCHAR, metric VARCHAR, value DOUBLE)")
    con.executemany("INSERT INTO validation.model_metrics VALUES (?, ?, ?, ?, 'all', ?, ?, ?)", [
        ("deals", "win_probability", "win_probability/1", dt.date(2025, 7, 1), "holdout", "auc", 0.77),
        ("deals", "win_probability", "win_probability/1", dt.date(2025, 7, 1), "holdout", "deals", 99),
        ("deals", "win_probability", "win_probability/1", dt.date(2025, 7, 1), "validation", "deals", 50),
        ("deals", "baseline_stage", "baseline_stage@2025-07-01", dt.date(2025, 7, 1), "holdout", "auc", 0.60),
        ("deals", "baseline_naive_bayes", "x", dt.date(2025, 7, 1), "holdout", "auc", 0.65),
        ("deals", "win_probability", "win_probability/2", dt.date(2025, 11, 14), "validation", "auc", 0.99),
        # the deal outlook's judge on the same cutoff: not a baseline of the win model (it was named its best)
        ("outlook", "baseline_expected_close_win_in_period", "x", dt.date(2025, 7, 1), "holdout", "auc", 0.70),
    ])
    con.execute("CREATE TABLE validation.icp_models (cutoff_date DATE, division VARCHAR, champion VARCHAR)")
    con.executemany("INSERT INTO validation.icp_models VALUES (?, ?, ?)", [
        (dt.date(2025, 6, 1), "A", "division_propensity"), (dt.date(2025, 11, 1), "A", "baseline_logistic"),
        (dt.date(2025, 11, 1), "B", "division_propensity"), (dt.date(2025, 11, 1), "C", "baseline_logistic"),
        (dt.date(2025, 11, 1), "D", None)])
    yield con
    con.close()


def test_headline_reads_the_published_tables(con):
    lines = headline(con)
    # 1000 + 3000 + 500 (list price) + 0; expected 500 + 600 + 200 + 0; at risk: o2 + o3
    assert lines[0] == ("Open pipeline as of 2025-11-14: 4.50k in 4 deals (1 valued at their product's list price "
                        "(no amount yet); 1 without an amount or a list price, counted as 0); expected (x win "
                        "probability) 1.30k")
    assert lines[1] == "At risk (High/Critical): 3.50k in 2 deals (78% of the pipeline)"
    assert lines[2] == ("Booked revenue forecast, this quarter (2025-11-15 .. 2025-12-31, the rest of Q4 2025): "
                        "P10 1.20k / P50 2.50k / P90 4.10k")
    assert lines[3] == ("Deal model that scored: win_probability/2; latest holdout evidence: win_probability/1 "
                        "(trained to 2025-07-01) AUC 0.770 vs best baseline baseline_naive_bayes 0.650 on 99 deals closed "
                        "by the export")
    assert lines[4] == ("ICP champion per division (cutoff 2025-11-01): baseline_logistic in 2 (A, C); "
                        "division_propensity in 1 (B)")


def test_headline_without_a_quarter_says_which_period_and_without_scores_says_why(con):
    con.execute("DELETE FROM forecast.revenue_forecast WHERE period_type = 'quarter'")
    assert headline(con)[2] == "Booked revenue forecast, the month of December 2025: P10 1 / P50 2 / P90 3"
    con.execute("DROP TABLE scores.deal_scores; DROP TABLE forecast.revenue_forecast; DROP TABLE validation.icp_models")
    lines = headline(con)
    assert lines[0].startswith("Open pipeline: no deals scored")
    assert lines[1].startswith("Forecast: not built") and lines[2].startswith("ICP: no division model")


def test_without_a_closed_deal_the_headline_gives_no_expected_value(con):
    """A source of open deals only: every win probability is the stage baseline's prior (0.5 with no
    outcome to learn from), and 'expected (x win probability) 1.20M' read as a figure. Said as a prior."""
    con.execute("CREATE TABLE star.fact_opportunity (opportunity_id VARCHAR, is_closed BOOLEAN, close_date DATE)")
    con.execute("INSERT INTO star.fact_opportunity VALUES ('o1', false, NULL), ('o9', true, DATE '2025-11-20')")
    lines = headline(con)  # o9 closed after the as-of date: not known then
    assert lines[0].endswith("no expected value: no deal had closed by then, so the win probabilities are a prior, "
                             "not learned from outcomes")
    assert lines[2].endswith("P10 1.20k / P50 2.50k / P90 4.10k (from prior win probabilities: no deal had closed)")
    con.execute("INSERT INTO star.fact_opportunity VALUES ('o8', true, DATE '2025-11-01')")
    lines = headline(con)
    assert lines[0].endswith("expected (x win probability) 1.30k") and lines[2].endswith("P90 4.10k")


def test_when_every_deal_had_closed_the_headline_says_no_open_deals(con):
    """Every deal closed by the export date: the latest scores are an earlier week's, and were shown
    as the pipeline ('as of 2023-12-25: 26.77k in 1 deals, at risk 100%' for a 2023-12-29 export)."""
    lines = headline(con, AS_OF + dt.timedelta(days=4))
    assert lines[0] == "Open pipeline as of 2025-11-18: no open deals (the last scored, 2025-11-14, is an earlier week)"
    assert lines[1] == "Forecast: no total forecast as of 2025-11-18" and not any("Deal model" in x for x in lines)
    assert headline(con, AS_OF)[0].startswith("Open pipeline as of 2025-11-14: 4.50k in 4 deals")


def test_money():
    assert [money(x) for x in (None, 12.4, 1234, 4_712_364, -2.5e9)] == ["-", "12", "1.23k", "4.71M", "-2.50B"]


def test_an_earlier_as_of_is_the_date_the_headline_speaks_of(con):
    """`revintel run --as-of` earlier than the dates an earlier run left (an operations pass): the
    summary said "scored as of 2025-08-15" and then gave the pipeline, the holdout evidence and the
    ICP champions of 2025-09-30, the latest in the tables."""
    earlier = AS_OF - dt.timedelta(days=7)
    con.execute("INSERT INTO validation.icp_models VALUES (?, 'A', 'blend')", [AS_OF])  # the later run's cutoff
    assert any(f"ICP champion per division (cutoff {AS_OF})" in line for line in headline(con))
    lines = headline(con, earlier)
    assert lines[0].startswith(f"Open pipeline as of {earlier}: 9.00B in 1 deals")
    assert any("ICP champion per division (cutoff 2025-11-01)" in line for line in lines)
    assert headline(con, dt.date(2020, 1, 1))[0] == "Open pipeline as of 2020-01-01: no deals scored on or before it"


def test_a_champion_nothing_chose_is_called_a_default(con):
    """A division without validation rows takes the preferred candidate; the headline called it
    'champion' like one chosen on validation (an audit's one-division log)."""
    con.execute("ALTER TABLE validation.icp_models ADD COLUMN champion_reason VARCHAR")
    con.execute("UPDATE validation.icp_models SET champion_reason = 'no validation rows: default' WHERE division = 'B'")
    assert headline(con)[4] == ("ICP champion per division (cutoff 2025-11-01): baseline_logistic in 2 (A, C); "
                                "division_propensity (by default: no validation rows) in 1 (B)")


def test_scores_that_rank_nothing_are_said_to(con):
    """An audit: an export of won and open deals only scored every deal 0.9999 ("expected 3.88M" of a
    3.88M pipeline), one without a change log every deal 0.430; the headline gave them as figures."""
    con.execute("CREATE TABLE star.fact_opportunity (opportunity_id VARCHAR, is_closed BOOLEAN, is_won BOOLEAN, "
                "close_date DATE)")
    con.execute("INSERT INTO star.fact_opportunity VALUES ('c1', true, true, DATE '2025-10-01'), "
                "('c2', true, true, DATE '2025-10-02'), ('c3', true, false, DATE '2025-12-01')")  # lost after the as-of
    lines = headline(con)
    assert lines[2] == ("warning: the 2 deals closed by 2025-11-14 are all won, none lost: every win probability is "
                        "the share won (about 1) and ranks nothing. Were the lost deals left out of the export "
                        "(a report filter)?")
    con.execute("UPDATE star.fact_opportunity SET close_date = DATE '2025-10-03' WHERE opportunity_id = 'c3'")
    assert not any(x.startswith("warning") for x in headline(con))  # both outcomes, four different scores
    con.execute("UPDATE scores.deal_scores SET win_probability = 0.43")
    assert headline(con)[2].startswith("warning: every open deal has the same win probability (0.430): the scores "
                                       "do not rank the deals.")
    assert "stage baseline" not in headline(con)[2]  # a model scored them: no claim about why
    con.execute("UPDATE scores.deal_scores SET model_version = 'baseline_stage@2025-11-14'")
    assert "No model was promoted, and the stage baseline learned no stage's own rate" in headline(con)[2]


def test_won_deals_without_amounts_are_said_to_make_the_forecast_meaningless(con):
    """An audit: a CRM whose Amount defaults to 0 gave a forecast of 0 / 0 / 0 and backtest pinball
    losses of 0.0, a perfect model to read, without a word."""
    con.execute("CREATE TABLE star.fact_opportunity (opportunity_id VARCHAR, is_closed BOOLEAN, is_won BOOLEAN, "
                "close_date DATE, amount DOUBLE, product_id VARCHAR)")
    con.execute("INSERT INTO star.fact_opportunity VALUES ('c1', true, true, DATE '2025-10-01', 0, 'P2'), "
                "('c2', true, true, DATE '2025-10-02', NULL, 'P2'), ('c3', true, false, DATE '2025-10-03', 0, 'P2')")
    lines = headline(con)
    assert lines[3].startswith("warning: the 2 deals won by 2025-11-14 all have an amount of 0 or none, and no list price")
    con.execute("UPDATE star.fact_opportunity SET product_id = 'P1' WHERE opportunity_id = 'c2'")  # list price 500
    assert not any(x.startswith("warning") for x in headline(con))  # the re-check: MavenTech won deals without a value
    con.execute("UPDATE star.fact_opportunity SET amount = 10, product_id = 'P2' WHERE opportunity_id = 'c2'")
    assert not any(x.startswith("warning") for x in headline(con))


def test_a_history_whose_early_closes_are_all_won_is_said_to(con):
    """An audit: a CRM whose lost deals before 2025 were deleted scored every 2024 date 0.9998 and
    trained its model on a year of wins only, without a word (the export date had both outcomes)."""
    con.execute("CREATE TABLE star.fact_opportunity (opportunity_id VARCHAR, is_closed BOOLEAN, is_won BOOLEAN, "
                "close_date DATE)")
    early = [(f"w{i}", True, True, dt.date(2024, 1 + i % 12, 10)) for i in range(25)]
    late = [(f"l{i}", True, i % 2 == 1, dt.date(2025, 1 + i % 10, 5)) for i in range(20)]
    con.executemany("INSERT INTO star.fact_opportunity VALUES (?, ?, ?, ?)", early + late)
    warnings = [x for x in headline(con) if x.startswith("warning")]
    assert warnings == ["warning: no deal closed lost before 2025-01 (25 closed won before it), then 50% lost: were "
                        "older lost deals left out of the export or deleted? The win model learns from those months as "
                        "if every deal then was won, and the scores of dates before 2025-01 rank nothing."]
    # a CRM's first month of quick losses before any win is due is no gap (a re-check: 34 lost in January)
    con.execute("CREATE TEMP TABLE saved AS SELECT * FROM star.fact_opportunity")
    con.execute("DELETE FROM star.fact_opportunity")
    con.executemany("INSERT INTO star.fact_opportunity VALUES (?, ?, ?, ?)",
                    [(f"q{i}", True, False, dt.date(2023, 1, 5 + i % 20)) for i in range(34)]
                    + [(f"r{i}", True, i % 2 == 0, dt.date(2023, 2 + i % 6, 10)) for i in range(60)])
    assert not any(x.startswith("warning") for x in headline(con))
    con.execute("DELETE FROM star.fact_opportunity; INSERT INTO star.fact_opportunity SELECT * FROM saved")
    # the same run of wins is luck when few deals are lost later: (1 - 1/20) ** 25 = 0.28
    con.execute("UPDATE star.fact_opportunity SET is_won = true WHERE opportunity_id LIKE 'l%' AND opportunity_id <> 'l0'")
    assert not any(x.startswith("warning") for x in headline(con))
    # and lost deals that all close later than the as-of date are not known yet (the export-date warning speaks)
    con.execute("UPDATE star.fact_opportunity SET close_date = DATE '2025-12-01' WHERE opportunity_id = 'l0'")
    assert [x for x in headline(con) if x.startswith("warning")][0].startswith("warning: the 44 deals closed by 2025-11-14 are all won")


def test_the_headline_says_why_a_source_without_a_won_deal_has_no_forecast():
    """The forecast writes none for a date before which no deal had been won (nothing says when a deal
    closes); the summary said "not built (it needs open deals and a win model or baseline)" beside an
    open deal and a baseline (a re-check)."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA star; CREATE TABLE star.fact_opportunity (opportunity_id VARCHAR, is_won BOOLEAN, "
                "close_date DATE); INSERT INTO star.fact_opportunity VALUES ('o1', NULL, NULL), "
                "('o2', false, DATE '2025-11-01')")
    lines: list[str] = []
    _forecast(con, AS_OF, lines)
    assert lines == [f"Forecast: not built (no deal had been won by {AS_OF}: nothing says when an open deal closes)"]
    con.execute("UPDATE star.fact_opportunity SET is_won = true WHERE opportunity_id = 'o2'")
    lines = []
    _forecast(con, AS_OF, lines)
    assert lines == ["Forecast: not built (it needs open deals and a win model or baseline)"]
