"""ICP, Whitespace and Model Health pages in a real headless Chromium against a small fixture DB."""

from __future__ import annotations

import pytest

from browser import build_analyst_db, chromium, render_page, streamlit_server

DIVS = "['Hardware', 'Services']"
FIXTURE = [
    "CREATE SCHEMA IF NOT EXISTS scores",
    "CREATE SCHEMA IF NOT EXISTS validation",
    f"""CREATE TABLE scores.icp_scores AS
        SELECT DATE '2025-12-31' AS cutoff_date, d AS division, 'A' || lpad(i::VARCHAR, 3, '0') AS account_id,
               'Account ' || i AS account_name, i % 3 = 0 AS is_buyer, ((i * 37) % 100) / 100.0 AS propensity,
               10 - (i * 37 % 100) // 10 AS decile, 'revintel-icp-' || lower(d) || '/1' AS model_version
        FROM unnest({DIVS}) t(d), range(1, 41) r(i)""",
    """CREATE TABLE scores.whitespace AS
        SELECT cutoff_date, account_id, division, propensity, 1000.0 + 10 * propensity AS expected_value,
               propensity * (1000.0 + 10 * propensity) AS whitespace_score,
               row_number() OVER (ORDER BY propensity DESC, account_id, division) AS rank_overall,
               row_number() OVER (PARTITION BY account_id ORDER BY propensity DESC) AS rank_in_account,
               CASE WHEN account_id < 'A020' THEN 'Ada Lowe' ELSE 'Bo Chen' END AS rep_id,
               CASE WHEN account_id < 'A020' THEN 'East' ELSE 'West' END AS region, 'retail' AS sector,
               account_name, 'US' AS country
        FROM scores.icp_scores WHERE NOT is_buyer""",
    f"""CREATE TABLE validation.model_metrics AS
        SELECT 'icp' AS model_family, m AS model_name, m || '/1' AS model_version, c AS cutoff_date, d AS division,
               'holdout' AS split, 'all' AS segment, k AS metric,
               CASE k WHEN 'auc' THEN 0.8 + (m = 'division_propensity')::INT * 0.05 ELSE 0.3 END AS value
        FROM unnest({DIVS}) t(d), unnest(['division_propensity', 'baseline_rfm', 'baseline_logistic']) u(m),
             unnest([DATE '2025-04-01', DATE '2025-05-01', DATE '2025-06-01']) v(c),
             unnest(['auc', 'pr_auc', 'brier', 'lift_top_decile']) w(k)
        UNION ALL
        SELECT 'deals', 'win_probability', 'win_probability/3', DATE '2025-07-01', 'all', 'holdout', NULL, 'auc', 0.77""",
    f"""CREATE TABLE validation.holdout_gains AS
        SELECT 'icp' AS model_family, m AS model_name, DATE '2025-06-01' AS cutoff_date, d AS division, k AS decile,
               100 AS n, 50 - 4 * k AS positives, (50 - 4 * k) / 30.0 AS lift, k / 10.0 AS cumulative_capture
        FROM unnest({DIVS}) t(d), unnest(['division_propensity', 'baseline_rfm']) u(m), range(1, 11) r(k)""",
    f"""CREATE TABLE validation.calibration_bins AS
        SELECT 'icp' AS model_family, 'division_propensity' AS model_name, DATE '2025-06-01' AS cutoff_date,
               d AS division, b AS bin, (b - 0.5) / 10 AS mean_predicted, (b - 0.4) / 10 AS observed_rate, 50 AS n
        FROM unnest({DIVS}) t(d), range(1, 11) r(b)""",
    f"""CREATE TABLE validation.icp_feature_importance AS
        SELECT DATE '2025-12-31' AS cutoff_date, d AS division, 'rank__' || f AS feature, 1.0 / k AS gain,
               (1.0 / k) / 2.93 AS share, k AS rank
        FROM unnest({DIVS}) t(d),
             unnest(['div_active_months_24m', 'affinity_max', 'recency_days', 'open_opps']) WITH ORDINALITY u(f, k)""",
]


@pytest.mark.browser
def test_icp_whitespace_model_health_pages(tmp_path):
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, extra_sql=FIXTURE)
    with streamlit_server(data_dir) as url, chromium() as browser:
        text = render_page(browser, url, "icp", name="icp", expect_text=["Score distribution", "What drives the model"])
        assert "Accounts scored" in text and "40" in text
        # importance chart labels in words, never the column name
        assert "Months with a purchase in the division, last 24 months" in text
        assert "div_active_months_24m" not in text
        assert "Top accounts" in text and "v1" in text

        text = render_page(browser, url, "whitespace", name="whitespace",
                           expect_text=["Best opportunities", "Download CSV"])
        n_pairs = 2 * sum(1 for i in range(1, 41) if i % 3)
        assert f"{n_pairs:,}" in text
        assert "Expected value by division" in text
        assert "propensity × value if bought" in text and "capped" not in text  # the value rule as it is (an audit)

        text = render_page(browser, url, "model-health", name="model_health",
                           expect_text=["Latest holdout of every model", "Gains / lift", "Calibration",
                                        "Metrics across cutoffs"])
        for name in ("division_propensity", "baseline_rfm", "baseline_logistic", "win_probability"):
            assert name in text, name
        assert "Traceback" not in text
