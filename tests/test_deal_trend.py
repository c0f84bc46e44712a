"""Deal Detail's trend and "why it moved" in a real headless Chromium, and the comparison itself.

Fixture: test_deal_pages' warehouse (O6 scored on 2017-12-24 and 2017-12-31), with O6 also scored a
week earlier and its win probability falling 0.35 -> 0.30 -> 0.18, explained on the two latest dates.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from browser import build_analyst_db, chromium, streamlit_server
from dashboards.deal_trend import moved
from test_deal_pages import AS_OF, EARLIER, FIXTURE, open_page

WEEK_BEFORE = "2017-12-17"
TREND_SQL = FIXTURE + [
    f"""INSERT INTO scores.deal_scores SELECT DATE '{WEEK_BEFORE}' AS as_of_date, * EXCLUDE (as_of_date)
        REPLACE (0.35 AS win_probability, 48.0 AS risk_score, 'Medium' AS risk_category)
        FROM scores.deal_scores WHERE as_of_date = DATE '{AS_OF}' AND opportunity_id = 'O6'""",
    f"""UPDATE scores.deal_scores SET win_probability = 0.30, risk_score = 61.0, risk_category = 'High',
        model_version = 'win_probability/2' WHERE as_of_date = DATE '{EARLIER}' AND opportunity_id = 'O6'""",
    # O6 a week before: the stage-time ratio mattered less, the close date was not overdue (not in the top 5)
    f"""INSERT INTO scores.deal_explanations VALUES
        (DATE '{EARLIER}', 'O6', 1, 'stage_time_ratio', '2.4', -0.30, 'lowers', 's'),
        (DATE '{EARLIER}', 'O6', 2, 'rep_win_rate', '0.58', 0.31, 'raises', 's'),
        (DATE '{EARLIER}', 'O6', 3, 'n_pushes', '1', -0.12, 'lowers', 's')""",
]


def test_moved_compares_the_stored_contributions_largest_first():
    a, b = dt.date(2017, 12, 24), dt.date(2017, 12, 31)
    c = pl.DataFrame({"as_of_date": [a, a, a, b, b, b], "feature": ["x", "y", "z", "x", "y", "w"],
                      "feature_value": ["1", "2", "3", "1", "5", "9"],
                      "contribution": [0.1, -0.2, 0.05, 0.1, -0.9, 0.3]})
    m = moved(c, a, b)
    assert m["feature"].to_list() == ["y", "w", "z", "x"]
    assert m["change"].to_list() == pytest.approx([-0.7, 0.3, -0.05, 0.0])
    assert m["listed"].to_list() == ["both", "now only", "then only", "both"]
    assert m.filter(pl.col("feature") == "w")["c_then"].item() == 0.0


@pytest.mark.browser
def test_deal_detail_shows_the_trend_and_why_it_moved(tmp_path):
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, extra_sql=TREND_SQL)
    with streamlit_server(data_dir) as url, chromium() as browser:
        _, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O6", name="deal_detail_trend",
                               expect_text=["Trend and why it moved", "change in contribution"])
    assert "Traceback" not in text
    # the trend: three dated points, first to last
    assert f"on each of the 3 as-of dates the deal was open, {WEEK_BEFORE} to {AS_OF}" in text
    # why it moved: the previous date by default, the score change in points, the movers with numbers
    assert f"Win probability {AS_OF}" in text and f"-12.0 points since {EARLIER}" in text
    assert f"+21.5 since {EARLIER}" in text  # risk 61 -> 82.5
    assert "was High" in text
    # stage_time_ratio -0.30 -> -0.82 (-0.52), days_to_expected_close only now (-0.55), n_pushes only then (+0.12)
    assert "▼ -0.55" in text and "▼ -0.52" in text and "▲ +0.12" in text
    assert "2.4x → 3.1x" in text  # as the explanation prints a ratio (an audit: raw "0.51", "9" for a rate, a month)
    assert text.index("▼ -0.55") < text.index("▼ -0.52") < text.index("▲ +0.12")  # largest movers first
    assert "different models (win_probability/2 then, win_probability/3 now)" in text
