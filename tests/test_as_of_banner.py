"""Issue 13 item 7: the app says so when the as-of date it shows is past the data's last date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from dashboards.as_of import past_the_data, unscored_request

REPO = Path(__file__).resolve().parents[1]
LAST = dt.date(2025, 12, 31)


def test_banner_only_past_the_data():
    assert past_the_data(LAST, LAST) is None
    assert past_the_data(dt.date(2025, 6, 30), LAST) is None
    assert past_the_data(None, LAST) is None and past_the_data(LAST, None) is None
    text = past_the_data(dt.date(2026, 11, 21), LAST)
    assert "2026-11-21" in text and "2025-12-31" in text


def test_an_unscored_date_asked_in_the_url_is_said_to():
    """An audit: /deal-detail?as_of=2027-01-01 showed 2025-12-31 without a word and rewrote the URL."""
    dates = [LAST, dt.date(2025, 12, 29)]
    assert unscored_request(None, dates, LAST) is None and unscored_request("2025-12-29", dates, LAST) is None
    assert "after the data's last date (2025-12-31)" in unscored_request("2027-01-01", dates, LAST)
    assert "2025-12-30 is not a scored as-of date" in unscored_request("2025-12-30", dates, LAST)
    assert "not a date" in unscored_request("yesterday", dates, LAST)


@pytest.mark.parametrize("scored, banner", [(dt.date(2026, 11, 21), True), (LAST, False)])
def test_home_page_warns_when_the_latest_scores_are_past_the_data(tmp_path, monkeypatch, scored, banner):
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "warehouse" / "revintel.duckdb"
    db.parent.mkdir(parents=True)
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA meta; CREATE SCHEMA scores; "
                "CREATE TABLE meta.source AS SELECT 'x' AS source_path, 'maventech' AS source_format, "
                "DATE '2025-12-31' AS export_date, now()::TIMESTAMP AS loaded_at, '{}' AS files; "
                "CREATE TABLE scores.deal_scores AS SELECT ?::DATE AS as_of_date, 'o1' AS opportunity_id", [scored])
    con.close()
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(REPO)
    app = AppTest.from_file(str(REPO / "dashboards" / "views" / "home.py"), default_timeout=60).run()
    assert not app.exception, app.exception
    warnings = [w.value for w in app.warning]
    assert any("after the data's last date" in w for w in warnings) == banner, warnings
