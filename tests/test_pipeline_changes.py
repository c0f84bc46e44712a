"""Pipeline changes and the waterfall on a hand-made pair of snapshots: every category lands where
a sales leader expects it, and start + changes = end to the cent for every segment."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from revintel_assets.defs.pipeline import changes

C, A = dt.date(2025, 10, 6), dt.date(2025, 10, 13)  # compare date, as-of date (Q4 2025)
Q4, Q1 = dt.date(2025, 11, 15), dt.date(2026, 2, 15)

# opportunity_id: (before: stage, amount, expected close) or None, (after: ...) or None, is_won
DEALS = {
    "same": (("Proposal", 100.0, Q4), ("Proposal", 100.0, Q4), None),
    "up": (("Proposal", 100.0, Q4), ("Proposal", 150.25, Q4), None),
    "down": (("Engaging", 100.0, Q4), ("Engaging", 60.0, Q4), None),
    "adv": (("Engaging", 70.0, Q4), ("Negotiation", 70.0, Q4), None),
    "back": (("Negotiation", 80.0, Q4), ("Engaging", 80.0, Q4), None),
    "won": (("Negotiation", 200.0, Q4), None, True),
    "lost": (("Proposal", 30.0, Q4), None, False),
    "new": (None, ("Prospecting", 40.0, Q4), None),
    "pushed": (("Proposal", 90.0, Q4), ("Proposal", 95.0, Q1), None),
    "pulled": (("Proposal", 55.0, Q1), ("Proposal", 55.0, Q4), None),
    "no_amount": (("Proposal", None, Q4), ("Proposal", None, Q4), None),  # valued at its list price
    "entered": (("Proposal", None, Q4), ("Proposal", 20.0, Q4), None),  # list price 12.5 -> its amount
}


@pytest.fixture()
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features; CREATE SCHEMA star; CREATE SCHEMA scores")
    con.execute("""CREATE TABLE features.deal_snapshot (as_of_date DATE, opportunity_id VARCHAR, account_id VARCHAR,
                   rep_id VARCHAR, division VARCHAR, stage VARCHAR, amount DOUBLE, list_price DOUBLE,
                   expected_close_date DATE, is_won BOOLEAN)""")
    con.execute("CREATE TABLE star.dim_rep AS SELECT 'r1' AS rep_id, 'm1' AS manager, 'West' AS region")
    for i, (opp, (before, after, won)) in enumerate(DEALS.items()):
        rep = "r1" if i % 2 else "r2"  # r2 is not in dim_rep: its region and manager are 'Unassigned'
        for date, side in ((C, before), (A, after)):
            if side:
                con.execute("INSERT INTO features.deal_snapshot VALUES (?, ?, 'acc', ?, 'Div', ?, ?, 12.5, ?, ?)",
                            [date, opp, rep, side[0], side[1], side[2], won])
    return con


def test_every_deal_gets_its_category(con):
    pairs = changes.pairs_sql([str(A)], [C, A])
    rows = dict(con.execute(f"SELECT opportunity_id, category FROM ({changes.changes_sql(pairs)})").fetchall())
    assert rows == {"same": "unchanged", "up": "amount_up", "down": "amount_down", "adv": "stage_advanced",
                    "back": "stage_back", "won": "won", "lost": "lost", "new": "new", "pushed": "pushed_out",
                    "pulled": "pulled_in", "no_amount": "unchanged",
                    "entered": "amount_entered"}


def test_waterfall_reconciles_to_the_cent_for_every_segment(con):
    pairs = changes.pairs_sql([str(A)], [C, A])
    con.execute(f"CREATE TABLE scores.pipeline_waterfall AS {changes.waterfall_sql(pairs)}")
    assert con.execute(changes.RECONCILE_SQL).fetchall() == []
    total = dict(con.execute("SELECT category, amount FROM scores.pipeline_waterfall WHERE period = 'this_quarter' "
                             "AND segment_type = 'total'").fetchall())
    # Q4 pipeline on the compare date: every Q4 deal before (pulled is in Q1 then)
    assert total["start"] == 100 + 100 + 100 + 70 + 80 + 200 + 30 + 90 + 12.5 + 12.5
    assert total["won"] == -200 and total["lost"] == -30 and total["new"] == 40
    assert total["pushed_out"] == -90 and total["pulled_in"] == 55 and total["amount_up"] == 50.25
    assert total["amount_entered"] == 20 - 12.5
    assert total["end"] == 100 + 150.25 + 60 + 70 + 80 + 40 + 55 + 12.5 + 20
    segments = {r[0] for r in con.execute("SELECT DISTINCT segment_type FROM scores.pipeline_waterfall").fetchall()}
    assert segments == set(changes.SEGMENTS)
    # next quarter: the pushed deal arrives (95), the pulled one leaves (-55)
    nxt = dict(con.execute("SELECT category, amount FROM scores.pipeline_waterfall WHERE period = 'next_quarter' "
                           "AND segment_type = 'total'").fetchall())
    assert nxt == {"start": 55, "pulled_in": -55, "pushed_out": 95, "end": 95}


def test_this_quarters_pipeline_holds_the_overdue_deals(con):
    """A deal still open whose expected close has passed is in this quarter's pipeline (as in
    forecast.quota_attainment's open_pipeline), not in neither quarter; next quarter's is unchanged."""
    Q3 = dt.date(2025, 9, 20)
    con.execute("INSERT INTO features.deal_snapshot VALUES (?, 'late', 'acc', 'r1', 'Div', 'Proposal', 33.0, 12.5, ?, NULL), "
                "(?, 'late', 'acc', 'r1', 'Div', 'Proposal', 33.0, 12.5, ?, NULL), "
                "(?, 'caught_up', 'acc', 'r1', 'Div', 'Proposal', 44.0, 12.5, ?, NULL), "
                "(?, 'caught_up', 'acc', 'r1', 'Div', 'Proposal', 44.0, 12.5, ?, NULL)", [C, Q3, A, Q3, C, Q3, A, Q4])
    pairs = changes.pairs_sql([str(A)], [C, A])
    con.execute(f"CREATE TABLE scores.pipeline_waterfall AS {changes.waterfall_sql(pairs)}")
    assert con.execute(changes.RECONCILE_SQL).fetchall() == []
    total = dict(con.execute("SELECT category, amount FROM scores.pipeline_waterfall WHERE period = 'this_quarter' "
                             "AND segment_type = 'total'").fetchall())
    assert total["start"] == 100 + 100 + 100 + 70 + 80 + 200 + 30 + 90 + 12.5 + 12.5 + 33 + 44
    assert total["end"] == 100 + 150.25 + 60 + 70 + 80 + 40 + 55 + 12.5 + 20 + 33 + 44
    assert total["unchanged"] == 0 and total["pushed_out"] == -90  # neither overdue deal left the quarter
    nxt = dict(con.execute("SELECT category, amount FROM scores.pipeline_waterfall WHERE period = 'next_quarter' "
                           "AND segment_type = 'total'").fetchall())
    assert nxt == {"start": 55, "pulled_in": -55, "pushed_out": 95, "end": 95}


def _listed(con, category, period) -> set[str]:
    """The deals What Changed lists behind a bar: the waterfall's own deal rows (changes.deal_rows_sql)."""
    pairs = changes.pairs_sql([str(A)], [C, A])
    return {r[0] for r in con.execute(f"SELECT opportunity_id FROM ({changes.deal_rows_sql(pairs)}) "
                                      "WHERE period = ? AND category = ?", [period, category]).fetchall()}


def test_the_deals_behind_a_bar_are_the_deals_it_counts(con):
    """What Changed lists the deals behind a bar: every bar of both periods lists as many deals as it
    counts. Its list read scores.pipeline_changes (one category per deal, whatever the period): this
    quarter's overdue deals were left out (310 of a bar's 731 won deals), and at a quarter's start a
    deal pushed within the new quarter was 'pushed out' (4,367 listed behind a bar of 273)."""
    Q3 = dt.date(2025, 9, 20)
    con.execute("INSERT INTO features.deal_snapshot VALUES "
                "(?, 'late_won', 'acc', 'r1', 'Div', 'Negotiation', 70.0, 12.5, ?, true), "
                "(?, 'late_lost', 'acc', 'r1', 'Div', 'Proposal', 20.0, 12.5, ?, false), "
                "(?, 'caught_up', 'acc', 'r1', 'Div', 'Proposal', 44.0, 12.5, ?, NULL), "
                "(?, 'caught_up', 'acc', 'r1', 'Div', 'Proposal', 44.0, 12.5, ?, NULL)", [C, Q3, C, Q3, C, Q3, A, Q4])
    pairs = changes.pairs_sql([str(A)], [C, A])
    con.execute(f"CREATE TABLE scores.pipeline_waterfall AS {changes.waterfall_sql(pairs)}")
    for period in ("this_quarter", "next_quarter"):
        counted = dict(con.execute("SELECT category, deals FROM scores.pipeline_waterfall WHERE period = ? "
                                   "AND segment_type = 'total' AND category NOT IN ('start', 'end')", [period]).fetchall())
        for category in changes.CATEGORIES:
            assert len(_listed(con, category, period)) == counted.get(category, 0), (period, category)
    assert _listed(con, "won", "this_quarter") == {"won", "late_won"}
    assert "caught_up" in _listed(con, "unchanged", "this_quarter")  # overdue, then dated in the quarter


def test_the_reconciliation_catches_a_cent(con):
    pairs = changes.pairs_sql([str(A)], [C, A])
    con.execute(f"CREATE TABLE scores.pipeline_waterfall AS {changes.waterfall_sql(pairs)}")
    con.execute("UPDATE scores.pipeline_waterfall SET amount = amount - 0.01 WHERE category = 'won' "
                "AND segment_type = 'rep' AND period = 'this_quarter'")
    gaps = con.execute(changes.RECONCILE_SQL).fetchall()
    assert len(gaps) == 1 and gaps[0][2] == "rep"


def test_the_first_date_has_nothing_to_compare_with(con):
    pairs = changes.pairs_sql([str(C)], [C, A])
    assert con.execute(f"SELECT count(*) FROM ({changes.changes_sql(pairs)})").fetchone()[0] == 0


def _page_tables(con) -> list[str]:
    """The page's tables, as the real SQL built them from `con`'s snapshots, for build_analyst_db."""
    pairs = changes.pairs_sql([str(A)], [C, A])
    waterfall = con.execute(f"SELECT * FROM ({changes.waterfall_sql(pairs)})").fetchall()
    moved = con.execute(f"SELECT * FROM ({changes.changes_sql(pairs)})").fetchall()
    snapshot = con.execute("SELECT * FROM features.deal_snapshot").fetchall()

    def values(rows):
        lit = lambda v: "NULL" if v is None else f"'{v}'" if isinstance(v, (str, dt.date)) else repr(v)  # noqa: E731
        return ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)

    return [
        "CREATE SCHEMA scores",
        "CREATE TABLE star.dim_rep AS SELECT 'r1' AS rep_id, 'r1' AS rep_name, 'm1' AS manager, 'West' AS region",
        f"""CREATE TABLE scores.pipeline_waterfall AS SELECT as_of_date::DATE AS as_of_date,
            compare_date::DATE AS compare_date, period, segment_type, segment, category, deals, amount
            FROM (VALUES {values(waterfall)}) t(as_of_date, compare_date, period, segment_type, segment, category,
                                               deals, amount)""",
        "CREATE SCHEMA IF NOT EXISTS features",
        f"""CREATE TABLE features.deal_snapshot AS SELECT as_of_date::DATE AS as_of_date, opportunity_id, account_id,
            rep_id, division, stage, amount::DOUBLE AS amount, list_price::DOUBLE AS list_price,
            expected_close_date::DATE AS expected_close_date, is_won::BOOLEAN AS is_won
            FROM (VALUES {values(snapshot)}) t(as_of_date, opportunity_id, account_id, rep_id, division, stage, amount,
                                              list_price, expected_close_date, is_won)""",
        f"""CREATE TABLE scores.pipeline_changes AS SELECT as_of_date::DATE AS as_of_date,
            compare_date::DATE AS compare_date, opportunity_id, account_id, rep_id, division, category,
            stage_before, stage_after, amount_before, amount_after, expected_close_before::DATE AS
            expected_close_before, expected_close_after::DATE AS expected_close_after
            FROM (VALUES {values(moved)}) t(as_of_date, compare_date, opportunity_id, account_id, rep_id, division,
                                           category, stage_before, stage_after, amount_before, amount_after,
                                           expected_close_before, expected_close_after)"""]


@pytest.mark.browser
def test_what_changed_page(tmp_path, con):
    """The page in real Chromium, on a warehouse whose tables the real SQL built."""
    from browser import build_analyst_db, chromium, render_page, streamlit_server

    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, extra_sql=_page_tables(con))
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "what-changed", name="what_changed",
                           expect_text=["What changed", "The deals behind each bar"])
    assert f"Pipeline on {C}\n\n$795" in text  # start: 795.0, with its currency (CONTRACT §3)
    assert f"Pipeline on {A}\n\n$588" in text  # end: 587.75
    assert "Won" in text and "200" in text and "Amount entered" in text
    assert "Traceback" not in text


def test_a_deal_whose_expected_close_becomes_known_is_new_to_the_period(con):
    """An export without history dates a deal's expected close on the export date: open before
    without one, it enters the period's pipeline as new (not 'pushed out')."""
    con.execute("UPDATE features.deal_snapshot SET expected_close_date = NULL WHERE opportunity_id = 'new'")
    con.execute("INSERT INTO features.deal_snapshot VALUES (?, 'dated', 'acc', 'r1', 'Div', 'Proposal', 25.0, 12.5, "
                "NULL, NULL), (?, 'dated', 'acc', 'r1', 'Div', 'Proposal', 25.0, 12.5, ?, NULL)", [C, A, Q4])
    pairs = changes.pairs_sql([str(A)], [C, A])
    con.execute(f"CREATE TABLE scores.pipeline_waterfall AS {changes.waterfall_sql(pairs)}")
    assert con.execute(changes.RECONCILE_SQL).fetchall() == []
    total = dict(con.execute("SELECT category, amount FROM scores.pipeline_waterfall WHERE period = 'this_quarter' "
                             "AND segment_type = 'total'").fetchall())
    assert total["new"] == 25 and total["pushed_out"] == -90 and total["pulled_in"] == 55


def test_a_source_without_a_change_log_is_told_its_new_deals_are_the_export():
    """37 of 37 deals read as New in a week from a Salesforce report without a change log (session 44's
    adversarial pass): their expected close dates are known only from the export."""
    note = changes.no_change_log_note(0.0, 0, 37)
    assert "no change log" in note and "all 37 deals show as New" in note and "not new business" in note
    assert changes.no_change_log_note(0.9, 0, 37) is None  # a logged history: the new deals are new
    assert changes.no_change_log_note(0.0, 5, 37) is None  # something was in the pipeline before
    assert changes.no_change_log_note(0.0, 0, 0) is None


@pytest.mark.browser
def test_what_changed_page_says_when_the_source_has_no_change_log(tmp_path, con):
    """Every expected close known only on the later date (a derived history): the page says the
    deals are the export's pipeline, not new business; with a logged history it says nothing."""
    from browser import build_analyst_db, chromium, render_page, streamlit_server

    con.execute("UPDATE features.deal_snapshot SET expected_close_date = NULL WHERE as_of_date = ?", [C])
    history = ("CREATE TABLE star.fact_opportunity_history AS SELECT opportunity_id, {} AS derived "
               "FROM star.fact_opportunity")
    texts = []
    for derived in ("true", "false"):
        data_dir = tmp_path / f"data_{derived}"
        build_analyst_db(data_dir, extra_sql=[*_page_tables(con), history.format(derived)])
        with streamlit_server(data_dir) as url, chromium() as browser:
            texts.append(render_page(browser, url, "what-changed", name=f"what_changed_derived_{derived}",
                                     expect_text=["What changed", "The deals behind each bar"]))
    new = sum(after is not None and after[2] == Q4 for _, after, _ in DEALS.values())  # this quarter's on A
    assert f"all {new} deals show as New" in texts[0] and "not new business" in texts[0]
    assert "no change log" not in texts[1]
    assert "Traceback" not in texts[0] + texts[1]


def test_segments_are_named_as_the_forecasts_are(con):
    """'total' and 'Unassigned' as in forecast.revenue_forecast and forecast.quota_attainment: the
    waterfall said 'all' and 'unknown', and a join across the tables lost those segments."""
    pairs = changes.pairs_sql([str(A)], [C, A])
    seg = dict(con.execute(f"SELECT segment_type, list(DISTINCT segment ORDER BY segment) FROM "
                           f"({changes.waterfall_sql(pairs)}) GROUP BY 1").fetchall())
    assert seg["total"] == ["total"] and seg["region"] == ["Unassigned", "West"]
    assert seg["manager"] == ["Unassigned", "m1"]


def test_an_empty_waterfall_says_why(con):
    def row(keys):
        cur = con.execute(changes.empty_waterfall_sql(changes.pairs_sql(keys, [C, A])))
        return dict(zip([d[0] for d in cur.description], cur.fetchone()))

    con.execute("UPDATE features.deal_snapshot SET expected_close_date = NULL").fetchall()  # MavenTech: none
    pairs = changes.pairs_sql([str(A)], [C, A])
    assert con.execute(f"SELECT count(*) FROM ({changes.waterfall_sql(pairs)})").fetchone()[0] == 0
    assert changes.why_empty(row([str(A)])).startswith(
        f"none of the 12 deals open on {C} or {A} has an expected close date")
    con.execute("UPDATE features.deal_snapshot SET expected_close_date = DATE '2027-01-10'").fetchall()
    assert "falls in this or next quarter" in changes.why_empty(row([str(A)]))
    assert changes.why_empty(row([str(C)])) == "there is no earlier as-of date to compare with"


@pytest.mark.browser
def test_what_changed_page_says_why_it_has_no_waterfall(tmp_path, con):
    """An export without expected close dates (MavenTech): no chart, the reason in plain words."""
    from browser import build_analyst_db, chromium, render_page, streamlit_server

    con.execute("UPDATE features.deal_snapshot SET expected_close_date = NULL").fetchall()
    rows = con.execute("SELECT as_of_date, opportunity_id, amount FROM features.deal_snapshot").fetchall()
    values = ", ".join(f"(DATE '{d}', '{o}', {'NULL' if a is None else a})" for d, o, a in rows)
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, extra_sql=[
        "CREATE SCHEMA scores", "CREATE SCHEMA features",
        f"""CREATE TABLE features.deal_snapshot AS SELECT as_of_date, opportunity_id, amount,
            NULL::DATE AS expected_close_date FROM (VALUES {values}) t(as_of_date, opportunity_id, amount)""",
        """CREATE TABLE scores.pipeline_waterfall (as_of_date DATE, compare_date DATE, period VARCHAR,
            segment_type VARCHAR, segment VARCHAR, category VARCHAR, deals BIGINT, amount DOUBLE)""",
        "CREATE TABLE scores.pipeline_changes (as_of_date DATE, opportunity_id VARCHAR, category VARCHAR)"])
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "what-changed", name="what_changed_empty",
                           expect_text=["No pipeline waterfall"])
    assert f"No pipeline waterfall as of {A}: none of the 12 deals open on {C} or {A} has an expected close date" in text
    assert "Traceback" not in text


def test_on_a_quarters_last_day_this_quarter_is_the_next_one(con):
    """As the forecast, the plan and the deal outlook count it (rules.current_quarter_start): the
    quarter holding the day after the as-of date. On 2025-12-31 the waterfall's this_quarter was the
    ending quarter, whose only open deals are overdue (the demo's export date: 7.73M in 374 overdue
    deals as 'this quarter', Q1 2026's pipeline as 'next quarter')."""
    end, before = dt.date(2025, 12, 31), dt.date(2025, 12, 22)
    con.execute("DELETE FROM features.deal_snapshot")
    con.execute("INSERT INTO features.deal_snapshot VALUES (?, 'overdue', 'acc', 'r1', 'Div', 'Proposal', 10.0, 1.0, "
                "?, NULL), (?, 'overdue', 'acc', 'r1', 'Div', 'Proposal', 10.0, 1.0, ?, NULL), "
                "(?, 'q1', 'acc', 'r1', 'Div', 'Proposal', 30.0, 1.0, ?, NULL), "
                "(?, 'q1', 'acc', 'r1', 'Div', 'Proposal', 30.0, 1.0, ?, NULL)",
                [before, dt.date(2025, 12, 20), end, dt.date(2025, 12, 20),
                 before, dt.date(2026, 2, 1), end, dt.date(2026, 2, 1)])
    pairs = changes.pairs_sql([str(end)], [before, end])
    rows = con.execute(f"SELECT period, category, amount FROM ({changes.waterfall_sql(pairs)}) "
                       "WHERE segment_type = 'total' AND category = 'end'").fetchall()
    # Q1 2026; the overdue deal is expected now, in this quarter (it was in neither before: the
    # waterfall ended below quota_attainment's open pipeline)
    assert dict((r[0], r[2]) for r in rows) == {"this_quarter": 40.0}


def test_quarters_follow_the_fiscal_year(con):
    """With a fiscal year starting in November, Q4-2025 calendar dates split: 2025-10-13 is in the
    fiscal quarter Aug-Oct, so a close moving from Oct 30 to Nov 15 is pushed out, which calendar
    quarters call unchanged."""
    con.execute("INSERT INTO features.deal_snapshot VALUES (?, 'fy', 'acc', 'r1', 'Div', 'Proposal', 10.0, 12.5, "
                "?, NULL), (?, 'fy', 'acc', 'r1', 'Div', 'Proposal', 10.0, 12.5, ?, NULL)",
                [C, dt.date(2025, 10, 30), A, dt.date(2025, 11, 15)])
    pairs = changes.pairs_sql([str(A)], [C, A])
    cat = lambda fy: con.execute(f"SELECT category FROM ({changes.changes_sql(pairs, fy)}) "  # noqa: E731
                                 "WHERE opportunity_id = 'fy'").fetchone()[0]
    assert cat(1) == "unchanged" and cat(11) == "pushed_out"
    con.execute(f"CREATE TABLE scores.pipeline_waterfall AS {changes.waterfall_sql(pairs, 11)}")
    assert con.execute(changes.RECONCILE_SQL).fetchall() == []
    this_q = dict(con.execute("SELECT category, amount FROM scores.pipeline_waterfall WHERE period = 'this_quarter' "
                              "AND segment_type = 'total'").fetchall())
    assert this_q["pushed_out"] <= -10  # the fiscal quarter Aug-Oct loses it
