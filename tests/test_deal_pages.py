"""Pipeline Risk and Deal Detail in a real headless Chromium against a small fixture warehouse.

The fixture extends the base one of ``browser.py``: O5, O6, O7 are its open (Engaging) deals, on
accounts A2, A3, A4 and reps R1, R0, R1, worth 5,000, 6,000 and 7,000.
"""

from __future__ import annotations

import re

import pytest

from browser import build_analyst_db, chromium, render_page, screenshot, streamlit_server, wait_until_rendered

AS_OF, EARLIER = "2017-12-31", "2017-12-24"
ACTIONS = {
    "O5": "Requalify: ask what changed since the last push; consider a lower forecast category",
    "O6": "Confirm a realistic close date with the buyer and update the forecast",
    "O7": "Review the deal strategy with the manager before investing more time",
}
SHAP_CAVEAT = ("Contributions are TreeSHAP values in the model's raw log-odds; the probability shown is "
               "calibrated afterwards, so the bars show direction and relative weight, not percentage points.")
# opportunity_id, p, risk, category, drivers  (amount / account / rep come from star.fact_opportunity)
SCORES = [
    ("O5", 0.62, 41.0, "Medium", "close date pushed 2 times"),
    ("O6", 0.18, 82.5, "Critical", "low win probability (18%); 3.1x the usual time in Engaging; "
                                   "past expected close by 12 days"),
    ("O7", 0.41, 55.0, "High", "large deal (top 34% by value)"),
]
EXPLAIN = [  # O6: rank, feature, value, contribution, sentence
    (1, "stage_time_ratio", "3.1", -0.82, "3.1x the usual time in this stage; deals like this win less often"),
    (2, "days_to_expected_close", "-12", -0.55, "-12 days to the expected close date; deals like this win less often"),
    (3, "rep_win_rate", "0.58", 0.31, "Rep's win rate so far 58%; deals like this win more often"),
    (4, "amount_to_list", "10.9", 0.05, "Priced at 10.9x list; deals like this win more often"),
]


def _values(rows) -> str:
    def lit(v):
        return "NULL" if v is None else "'" + v.replace("'", "''") + "'" if isinstance(v, str) else repr(v)
    return ",\n".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)


scores_rows = [(d, oid, p, risk, cat, drv.replace("12 days", "5 days") if d == EARLIER else drv, ACTIONS[oid])
               for d in (AS_OF, EARLIER) for oid, p, risk, cat, drv in SCORES]
explain_rows = [(oid, r, f, v, c if oid == "O6" else c / 2, s)  # the same sentences, weaker, for O5 and O7
                for oid in ("O5", "O6", "O7") for r, f, v, c, s in EXPLAIN]
FIXTURE = [
    "CREATE SCHEMA scores",
    """CREATE TABLE star.dim_rep AS SELECT * FROM (VALUES ('R0', 'Ada Lowe', 'Mia Park', 'East'),
         ('R1', 'Bo Chen', 'Mia Park', 'West')) t(rep_id, rep_name, manager, region)""",
    """CREATE TABLE star.dim_product AS SELECT 'GTX Basic' AS product_id, 'GTX Basic' AS product_name,
         'GTX' AS series, 'GTX' AS division, 550.0 AS list_price""",
    f"""CREATE TABLE scores.deal_scores AS
        SELECT s.as_of_date::DATE AS as_of_date, o.opportunity_id, o.account_id, o.rep_id, o.product_id, o.division,
               o.stage, o.amount::DOUBLE AS amount, s.p::DOUBLE AS win_probability,
               DATE '2017-12-19' + (o.opportunity_id = 'O5')::INT * 30 AS expected_close_date,
               s.risk::DOUBLE AS risk_score, s.cat AS risk_category, s.drv AS risk_drivers,
               s.action AS recommended_action,
               'win_probability/3' AS model_version
        FROM (VALUES {_values(scores_rows)}) s(as_of_date, opportunity_id, p, risk, cat, drv, action)
        JOIN star.fact_opportunity o USING (opportunity_id)""",
    f"""CREATE TABLE scores.deal_explanations AS
        SELECT DATE '{AS_OF}' AS as_of_date, opportunity_id, rank::INT AS rank, feature, feature_value,
               contribution::DOUBLE AS contribution,
               CASE WHEN contribution >= 0 THEN 'raises' ELSE 'lowers' END AS direction, explanation
        FROM (VALUES {_values(explain_rows)})
             e(opportunity_id, rank, feature, feature_value, contribution, explanation)""",
    """CREATE TABLE star.fact_opportunity_history AS SELECT * FROM (VALUES
         ('O6', DATE '2017-02-12', 'Prospecting', DATE '2017-06-30', 5500.0),
         ('O6', DATE '2017-03-01', 'Engaging', NULL, NULL),
         ('O6', DATE '2017-07-01', NULL, DATE '2017-12-19', NULL),
         ('O6', DATE '2017-09-15', NULL, NULL, 6000.0),
         ('O5', DATE '2017-02-05', 'Engaging', DATE '2017-11-30', 5000.0))
       t(opportunity_id, changed_at, stage, expected_close_date, amount)""",
]

BASELINE_FIXTURE = [
    sql for sql in FIXTURE if "dim_rep" not in sql and "fact_opportunity_history" not in sql
] + [
    "UPDATE scores.deal_scores SET model_version = 'baseline_stage@' || as_of_date",
    "DELETE FROM scores.deal_explanations WHERE opportunity_id = 'O6'",
    f"""INSERT INTO scores.deal_explanations VALUES (DATE '{EARLIER}', 'O6', 1, 'stage', 'Engaging', -0.4, 'lowers',
        'Stage is Engaging; the stage baseline scores every deal in it at that stage''s historical win rate')""",
]


def open_page(browser, url: str, path: str, *, name: str, expect_text) -> tuple[str, str, str]:
    """Like ``render_page`` for a URL the page rewrites (query params): (final URL, page text,
    text of the st.dataframe grids, which draw on a canvas and are not in the page text)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        try:
            for _ in range(2):  # the first visit of a page may show "Page not found" (streamlit#9992)
                page.goto(f"{url}/{path}", wait_until="domcontentloaded")
                wait_until_rendered(page, expect_text=expect_text)
                if not page.locator("[role='dialog']", has_text="Page not found").count():
                    break
        finally:
            screenshot(page, name)
        grids = page.evaluate("() => [...document.querySelectorAll(\"[data-testid='stDataFrame'] table\")]"
                              ".map(t => t.innerText).join('\\n')")
        return page.url, page.locator("body").inner_text(), grids
    finally:
        ctx.close()


def metric(text: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}\s*\n\s*(\S+)", text, re.M)
    assert m, f"no metric {label!r} in page text:\n{text}"
    return m.group(1)


@pytest.mark.browser
def test_pipeline_risk_and_deal_detail(tmp_path):
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, extra_sql=FIXTURE)
    with streamlit_server(data_dir) as url, chromium() as browser:
        _, text, grid = open_page(browser, url, "pipeline-risk", name="pipeline_risk",
                                  expect_text=["Open deals", "Value by risk category", "Download CSV"])
        assert metric(text, "Open deals") == "3"
        assert metric(text, "Pipeline value") == "$18k"
        assert metric(text, "At-risk value") == "$13k"  # O6 Critical + O7 High
        assert "72% of pipeline" in text
        assert metric(text, "Avg win probability") == "40%"
        assert "win_probability/3" in text and "champion" in text
        assert AS_OF in text
        assert "Critical" in grid and ACTIONS["O6"] in grid and "3.1x the usual time in Engaging" in grid
        assert f"deal-detail?as_of={AS_OF}&deal=O6" in grid  # the link to Deal Detail

        # Default: the highest-risk deal (O6), with its explanation and history.
        final, text, grid = open_page(browser, url, "deal-detail", name="deal_detail",
                                      expect_text=["What moved the win probability", "History"])
        assert final.endswith("deal=O6")
        assert "O6 — Cancore" in text and "Critical risk" in text
        assert "Ada Lowe (manager Mia Park, East)" in text
        assert metric(text, "Win probability") == "18%"
        assert ACTIONS["O6"] in text
        assert "3.1x the usual time in Engaging" in text  # a risk driver
        # explanation sentences in words: readable feature names and values, never the column or a raw float
        assert "Time in stage vs usual: 3.1x — deals like this win less often" in text
        assert "Rep's win rate: 58% — deals like this win more often" in text
        assert "stage_time_ratio" not in text and "rep_win_rate" not in text
        assert SHAP_CAVEAT in text
        assert "close date pushed 2017-06-30 → 2017-12-19 (+172 d)" in grid  # the history table
        assert "stage Prospecting → Engaging" in grid and "amount $5,500 → $6,000" in grid
        assert "+172 d" in text and "Prospecting" in text  # the timeline's labels

        # A link from Pipeline Risk: ?deal=O5.
        final, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O5", name="deal_detail_o5",
                                   expect_text="O5 — Betatech")
        assert ACTIONS["O5"] in text and "Medium risk" in text and final.endswith("deal=O5")

        # A deal without a product (a Salesforce report names none): shown as such (the page crashed)
        build_analyst_db(data_dir, extra_sql=[*FIXTURE, "UPDATE scores.deal_scores SET product_id = NULL, "
                                              "division = NULL WHERE opportunity_id = 'O5'"])
        _, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O5", name="deal_detail_no_product",
                               expect_text="O5 — Betatech")
        assert "Product —" in text and "Traceback" not in text and ACTIONS["O5"] in text
        assert "estimated (no CRM date)" not in text  # a warehouse scored before the flag: no claim either way

        # MavenTech: no account on a prospecting deal, no expected close date from the CRM (revintel estimated it)
        build_analyst_db(data_dir, extra_sql=[*FIXTURE, "ALTER TABLE scores.deal_scores ADD COLUMN "
                                              "expected_close_estimated BOOLEAN",
                                              "UPDATE scores.deal_scores SET expected_close_estimated = "
                                              "(opportunity_id = 'O7'), account_id = CASE WHEN opportunity_id = 'O7' "
                                              "THEN NULL ELSE account_id END"])
        _, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O7", name="deal_detail_estimated",
                               expect_text="O7 — (no account)")
        assert "Expected close — estimated (no CRM date)" in text and "None" not in text
        _, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O5", name="deal_detail_crm_close",
                               expect_text="O5 — Betatech")
        assert "Expected close\n" in text and "estimated (no CRM date)" not in text
        text = render_page(browser, url, "pipeline-risk", name="pipeline_risk_some_estimated", expect_text="Open deals")
        assert "Slips are not counted" not in text  # O5 and O6 have CRM dates: a push can be seen
        build_analyst_db(data_dir, extra_sql=[*FIXTURE, "ALTER TABLE scores.deal_scores ADD COLUMN "
                                              "expected_close_estimated BOOLEAN",
                                              "UPDATE scores.deal_scores SET expected_close_estimated = true"])
        text = render_page(browser, url, "pipeline-risk", name="pipeline_risk_no_close_dates", expect_text="Open deals")
        assert "Slips are not counted: the source gives no expected close dates" in text
        assert "these scores do not rank the deals" not in text
        # every deal scored alike (a HubSpot export without a change log: 0.430 each): said, not shown as a ranking
        build_analyst_db(data_dir, extra_sql=[*FIXTURE, "UPDATE scores.deal_scores SET win_probability = 0.43"])
        text = render_page(browser, url, "pipeline-risk", name="pipeline_risk_flat", expect_text="Open deals")
        assert "has the same win probability (43.0%): these scores do not rank the deals" in text
        # ... and Deal Detail says it too (an audit: MavenTech's showed 68.1 % as "that stage's rate")
        _, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O5", name="deal_detail_flat",
                               expect_text="O5 — Betatech")
        assert "has the same win probability (43.0%): these scores do not rank the deals" in text
        # a date the URL asks for that was not scored is said to, not swapped silently (an audit)
        _, text, _ = open_page(browser, url, "deal-detail?as_of=2027-01-01&deal=O5", name="deal_detail_unscored",
                               expect_text="O5 — Betatech")
        assert "2027-01-01 is after the data's last date" in text or "2027-01-01 is not a scored as-of date" in text

        # The stage baseline scored (no model beat it), no history / rep table, and an unknown deal id in
        # the link: all said plainly, the riskiest deal shown instead, no crash.
        build_analyst_db(data_dir, extra_sql=BASELINE_FIXTURE)
        final, text, _ = open_page(browser, url, f"deal-detail?as_of={EARLIER}&deal=O99", name="deal_detail_baseline",
                                   expect_text=["O6 — Cancore", "not built yet: no change history"])
        assert "Deal O99 is not among the deals open on " + EARLIER in text
        assert f"as_of={EARLIER}" in final and "deal=O6" in final  # the URL names what is shown
        assert "no trained model beat the stage baseline on held-out data" in text
        assert "Stage: Engaging — deals like this win less often" in text and "The stage baseline scored this deal" in text
        assert SHAP_CAVEAT not in text and "Traceback" not in text

        # A warehouse without the deal scores: a friendly message, no traceback.
        build_analyst_db(data_dir)
        text = render_page(browser, url, "pipeline-risk", name="pipeline_risk_not_built", expect_text="Not built yet")
        assert "scores.deal_scores" in text and "Traceback" not in text
