"""The Home page in a real browser: empty data dir, a published warehouse, a re-published one."""

from __future__ import annotations

import re

import pytest

from browser import (
    N_ACCOUNTS,
    N_OPPORTUNITIES,
    N_QUARANTINED,
    N_TRANSACTIONS,
    QUARANTINE,
    build_analyst_db,
    chromium,
    render_page,
    streamlit_server,
)


def metric(text: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}\s*\n\s*([0-9,—]+)\s*$", text, re.M)
    assert m, f"no metric {label!r} in page text:\n{text}"
    return m.group(1)


@pytest.mark.browser
def test_home_page(tmp_path):
    data_dir = tmp_path / "data"
    with chromium() as browser, streamlit_server(data_dir) as url:
        # Nothing published yet: a friendly message, no traceback.
        text = render_page(browser, url, "", name="home_no_data", expect_text="No data yet")
        assert "revintel demo" in text
        assert "Traceback" not in text

        # Publish the fixture warehouse; the app picks it up without a restart.
        build_analyst_db(data_dir)
        text = render_page(browser, url, "", name="home", expect_text="Analyst tables")
        assert metric(text, "Opportunities") == str(N_OPPORTUNITIES)
        assert metric(text, "Accounts") == str(N_ACCOUNTS)
        assert metric(text, "Transactions") == str(N_TRANSACTIONS)
        assert metric(text, "Quarantined rows") == str(N_QUARANTINED)
        for reason, (file, n) in QUARANTINE.items():
            assert re.search(rf"{re.escape(reason)}\s+{re.escape(file)}\s+{n}\b", text), reason
        assert "maventech" in text and "2017-12-31" in text  # meta.source
        assert "Traceback" not in text

        # Re-publish without the meta tables and with an empty quarantine: still no crash.
        build_analyst_db(
            data_dir,
            base=False,
            extra_sql=[
                "CREATE SCHEMA star",
                "CREATE TABLE star.fact_opportunity AS SELECT range AS opportunity_id FROM range(3)",
                "CREATE TABLE star.quarantine (source_file VARCHAR, line_number BIGINT,"
                " raw_row VARCHAR, reason VARCHAR, loaded_at TIMESTAMP)",
            ],
        )
        text = render_page(browser, url, "", name="home_no_meta", expect_text="freshness unknown")
        assert metric(text, "Opportunities") == "3"
        assert metric(text, "Accounts") == "—"
        assert "No quarantined rows" in text
        assert "No `meta.source`" in text or "No meta.source" in text
        assert "Traceback" not in text
