"""What moved in the pipeline between two dates (pure SQL, no Dagster).

Both sides come from `features.deal_snapshot`: a deal's stage, amount and expected close date as
they were known on each date (its history up to that date), so a change is never read from a
later state. A deal open on the earlier date and gone on the later one closed in between; its
snapshot's outcome columns say won or lost (known by the later date, since it closed before it).

Deal values: the amount, else the product's list price, else 0 (open deals without an amount
still carry pipeline), summed as exact DECIMAL cents so the waterfall reconciles to the cent.
Periods are the fiscal quarters (settings.fiscal_year_start_month; 1 = calendar quarters) of the
later date, as the forecast counts them (rules.current_quarter_start: the quarter holding the day
after it): this_quarter and next_quarter.
"""

from __future__ import annotations

import bisect
import datetime as dt

from revintel_assets.defs.deals.snapshot import LOGGED_HISTORY_MIN
from revintel_assets.rules import OPEN_STAGES, UNASSIGNED, VALUE_SQL, current_quarter_start_sql as _current
from revintel_assets.rules import fiscal_quarter_start_sql as _quarter

CATEGORIES = ("new", "won", "lost", "pulled_in", "pushed_out", "amount_entered", "amount_up", "amount_down",
              "stage_advanced", "stage_back", "unchanged")
SEGMENTS = ("total", "region", "manager", "rep", "division")
CENTS = "DECIMAL(38, 2)"
_RANK = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(OPEN_STAGES))


# the as-of dates pairs_sql needs, read once per step (ascending)
DATES_SQL = "SELECT DISTINCT as_of_date FROM features.deal_snapshot ORDER BY 1"


def previous_date(dates: list, key) -> dt.date | None:
    """The latest of `dates` (ascending dt.date) before `key` (a date or its ISO string), else None."""
    i = bisect.bisect_left(dates, dt.date.fromisoformat(str(key)))
    return dates[i - 1] if i else None


def pairs_sql(keys: list[str], dates: list) -> str:
    """(as_of_date, compare_date) for each key: the latest of `dates` (ascending; for the pipeline
    the snapshot's as-of dates, DATES_SQL) before it. Literals, not a correlated max(as_of_date) <
    key: that scanned the whole date column at every reference of the pairs in every batch's
    statement (scores.pipeline_changes 4x slower at scale 10)."""
    def lit(d):
        return f"DATE '{d}'" if d is not None else "NULL::DATE"
    rows = ", ".join(f"({lit(k)}, {lit(previous_date(dates, k))})" for k in keys)
    return f"SELECT * FROM (VALUES {rows}) t(as_of_date, compare_date)"


def _joined(pairs: str) -> str:
    """Every deal open on either date of each pair, before and after."""
    value = f"{VALUE_SQL}::{CENTS}"
    # the columns j reads, not the snapshot's ~40 (each side of the join holds its rows)
    cols = ", ".join(f"s.{c}" for c in ("as_of_date", "opportunity_id", "account_id", "rep_id", "division", "stage",
                                         "amount", "expected_close_date", "is_won"))
    return f"""
    pairs AS ({pairs}),
    b AS (SELECT p.as_of_date AS pair_as_of, {cols}, {value} AS value FROM pairs p
          JOIN features.deal_snapshot s ON s.as_of_date = p.compare_date),
    a AS (SELECT {cols}, {value} AS value FROM pairs p JOIN features.deal_snapshot s ON s.as_of_date = p.as_of_date),
    j AS (
        SELECT coalesce(a.as_of_date, b.pair_as_of) AS as_of_date, p.compare_date,
               coalesce(a.opportunity_id, b.opportunity_id) AS opportunity_id,
               coalesce(a.account_id, b.account_id) AS account_id, coalesce(a.rep_id, b.rep_id) AS rep_id,
               coalesce(a.division, b.division) AS division,
               b.opportunity_id IS NOT NULL AS open_before, a.opportunity_id IS NOT NULL AS open_after,
               b.stage AS stage_before, a.stage AS stage_after,
               b.value AS amount_before, a.value AS amount_after,
               b.amount IS NULL AND a.amount IS NOT NULL AS amount_entered,
               b.expected_close_date AS expected_close_before, a.expected_close_date AS expected_close_after,
               b.is_won AS won
        FROM b FULL JOIN a ON a.opportunity_id = b.opportunity_id AND a.as_of_date = b.pair_as_of
        JOIN pairs p ON p.as_of_date = coalesce(a.as_of_date, b.pair_as_of)
        WHERE p.compare_date IS NOT NULL)"""


def changes_sql(pairs: str, fy: int = 1) -> str:
    """scores.pipeline_changes: one row per deal open on either date, with its category."""
    return f"""
    WITH {_joined(pairs)}
    SELECT as_of_date, compare_date, opportunity_id, account_id, rep_id, division,
           CASE WHEN NOT open_before THEN 'new'
                WHEN NOT open_after THEN CASE WHEN won THEN 'won' ELSE 'lost' END
                WHEN {_quarter('expected_close_after', fy)} > {_quarter('expected_close_before', fy)}
                    THEN 'pushed_out'
                WHEN {_quarter('expected_close_after', fy)} < {_quarter('expected_close_before', fy)}
                    THEN 'pulled_in'
                -- valued at its list price (or 0) before, at its own amount now: not a negotiation
                WHEN amount_entered AND amount_after <> amount_before THEN 'amount_entered'
                WHEN amount_after > amount_before THEN 'amount_up'
                WHEN amount_after < amount_before THEN 'amount_down'
                WHEN (CASE stage_after {_RANK} END) > (CASE stage_before {_RANK} END) THEN 'stage_advanced'
                WHEN (CASE stage_after {_RANK} END) < (CASE stage_before {_RANK} END) THEN 'stage_back'
                ELSE 'unchanged' END AS category,
           stage_before, stage_after, amount_before::DOUBLE AS amount_before, amount_after::DOUBLE AS amount_after,
           expected_close_before, expected_close_after
    FROM j ORDER BY as_of_date, opportunity_id"""


def _deal_rows(pairs: str, fy: int = 1) -> str:
    """The CTEs up to `deal_rows`: every deal in a period's pipeline on either date of a pair, once per
    period, with the category the waterfall counts it under (this quarter's holds the overdue deals)."""
    # this quarter's pipeline holds the overdue deals too (expected close already passed, still open):
    # they are expected now, and forecast.quota_attainment's open_pipeline counts them (a demo quarter's
    # waterfall ended at 6.22M where the attainment's open pipeline was 9.12M: 134 overdue deals)
    in_p = ("{side} AND expected_close_{when} < p_end "
            "AND (period = 'this_quarter' OR expected_close_{when} >= p_start)")
    before, after = in_p.format(side="open_before", when="before"), in_p.format(side="open_after", when="after")
    rank = lambda col: f"(CASE {col} {_RANK} END)"  # noqa: E731
    return f"""
    {_joined(pairs)},
    periods AS (
        SELECT as_of_date, 'this_quarter' AS period, {_current('as_of_date', fy)} AS p_start
        FROM pairs
        UNION ALL SELECT as_of_date, 'next_quarter', ({_current('as_of_date', fy)} + INTERVAL 3 MONTH)::DATE
        FROM pairs),
    scoped AS (
        SELECT j.*, pr.period, pr.p_start, (pr.p_start + INTERVAL 3 MONTH)::DATE AS p_end
        FROM j JOIN periods pr USING (as_of_date)),
    flagged AS (SELECT *, coalesce({before}, false) AS in_before, coalesce({after}, false) AS in_after FROM scoped),
    deal_rows AS (  -- every deal in the period's pipeline on either date: one change each
        SELECT *,
               CASE WHEN in_before AND in_after THEN
                        CASE WHEN amount_entered AND amount_after <> amount_before THEN 'amount_entered'
                             WHEN amount_after > amount_before THEN 'amount_up'
                             WHEN amount_after < amount_before THEN 'amount_down'
                             WHEN {rank('stage_after')} > {rank('stage_before')} THEN 'stage_advanced'
                             WHEN {rank('stage_after')} < {rank('stage_before')} THEN 'stage_back'
                             ELSE 'unchanged' END
                    WHEN in_before AND NOT open_after THEN CASE WHEN won THEN 'won' ELSE 'lost' END
                    WHEN in_before THEN CASE WHEN expected_close_after >= p_end THEN 'pushed_out' ELSE 'pulled_in' END
                    WHEN NOT open_before THEN 'new'
                    -- open before without an expected close date: it enters the period's pipeline
                    -- when the date becomes known (an export without history dates it on export)
                    WHEN expected_close_before IS NULL THEN 'new'
                    ELSE CASE WHEN expected_close_before >= p_end THEN 'pulled_in' ELSE 'pushed_out' END
               END AS category,
               (CASE WHEN in_after THEN amount_after ELSE 0 END)
               - (CASE WHEN in_before THEN amount_before ELSE 0 END) AS delta
        FROM flagged
        WHERE in_before OR in_after)"""


def deal_rows_sql(pairs: str, fy: int = 1) -> str:
    """The deals behind the waterfall's bars: one row per deal, period and the category it is counted
    under there, as waterfall_sql counts them (What Changed lists them: its list read
    scores.pipeline_changes' one category per deal, and 4,367 deals stood behind a bar of 273, a re-check)."""
    return f"WITH {_deal_rows(pairs, fy)} SELECT * FROM deal_rows"


def waterfall_sql(pairs: str, fy: int = 1) -> str:
    """scores.pipeline_waterfall: per period and segment, the open pipeline closing in the period
    on the compare date (`start`) and on the as-of date (`end`), and the signed change of each
    category in between; start + the changes = end, exactly."""
    segments = "\n        UNION ALL ".join(
        f"SELECT *, '{s}' AS segment_type, {expr} AS segment FROM per_rep"
        for s, expr in (("total", "'total'"), ("region", f"coalesce(region, '{UNASSIGNED}')"),
                        ("manager", f"coalesce(manager, '{UNASSIGNED}')"), ("rep", f"coalesce(rep_id, '{UNASSIGNED}')"),
                        ("division", f"coalesce(division, '{UNASSIGNED}')")))
    return f"""
    WITH {_deal_rows(pairs, fy)},
    -- summed per (rep, division, category) once, then rolled up into the five segment types: each
    -- segment is a union of (rep, division) cells, and the sums are exact DECIMAL cents, so the
    -- rollup equals summing the deal rows of each segment (which read every deal row 15 times)
    cells AS (
        SELECT as_of_date, compare_date, period, rep_id, division, category, count(*) AS deals,
               sum(delta) AS delta, count(*) FILTER (WHERE in_before) AS deals_before,
               sum(amount_before) FILTER (WHERE in_before) AS amount_before,
               count(*) FILTER (WHERE in_after) AS deals_after, sum(amount_after) FILTER (WHERE in_after) AS amount_after
        FROM deal_rows GROUP BY ALL),
    per_rep AS (SELECT c.*, r.region, r.manager FROM cells c LEFT JOIN star.dim_rep r ON r.rep_id = c.rep_id),
    seg AS (
        {segments})
    SELECT as_of_date, compare_date, period, segment_type, segment, category,
           sum(deals)::BIGINT AS deals, sum(delta)::DOUBLE AS amount
    FROM seg GROUP BY ALL
    UNION ALL
    SELECT as_of_date, compare_date, period, segment_type, segment, 'start', sum(deals_before)::BIGINT,
           coalesce(sum(amount_before), 0)::DOUBLE
    FROM seg GROUP BY ALL
    UNION ALL
    SELECT as_of_date, compare_date, period, segment_type, segment, 'end', sum(deals_after)::BIGINT,
           coalesce(sum(amount_after), 0)::DOUBLE
    FROM seg GROUP BY ALL
    ORDER BY as_of_date, period, segment_type, segment, category"""


def empty_waterfall_sql(pairs: str, fy: int = 1) -> str:
    """For the latest as-of date of `pairs`: what a waterfall of it would rest on (see why_empty)."""
    return f"""
    WITH d AS (SELECT as_of_date, compare_date FROM ({pairs}) ORDER BY as_of_date DESC LIMIT 1),
    s AS (SELECT d.as_of_date, s.opportunity_id, s.expected_close_date FROM d
          JOIN features.deal_snapshot s ON s.as_of_date IN (d.as_of_date, d.compare_date))
    SELECT d.as_of_date, d.compare_date, count(DISTINCT s.opportunity_id) AS open_deals,
           count(DISTINCT s.opportunity_id) FILTER (WHERE s.expected_close_date IS NOT NULL) AS with_close,
           count(DISTINCT s.opportunity_id) FILTER (
               WHERE s.expected_close_date >= {_current('d.as_of_date', fy)}
                 AND s.expected_close_date < {_current('d.as_of_date', fy)} + INTERVAL 6 MONTH) AS in_periods,
           min(s.expected_close_date) AS first_close, max(s.expected_close_date) AS last_close
    FROM d LEFT JOIN s USING (as_of_date) GROUP BY ALL"""


def why_empty(row: dict | None) -> str:
    """Plain words for a waterfall without rows, from one row of empty_waterfall_sql."""
    if not row or row["compare_date"] is None:
        return "there is no earlier as-of date to compare with"
    dates = f"on {row['compare_date']} or {row['as_of_date']}"
    if not row["open_deals"]:
        return f"no deal is open {dates}"
    if not row["with_close"]:
        return (f"none of the {row['open_deals']} deals open {dates} has an expected close date known on "
                "those dates, so none falls in this or next quarter; scores.pipeline_changes still lists every deal")
    if not row["in_periods"]:
        return (f"none of the {row['with_close']} expected close dates of deals open {dates} (from "
                f"{row['first_close']} to {row['last_close']}) falls in this or next quarter of {row['as_of_date']}")
    return "no deal is in this or next quarter's pipeline on either date"


def no_change_log_note(logged_share: float, start_deals: int, new_deals: int) -> str | None:
    """Plain words for a waterfall of a source without a change log (a Salesforce report, HubSpot,
    Opportunity.csv without OpportunityHistory.csv), where its start is empty and every deal is
    'new'; None otherwise. Such a source gives an open deal's expected close date only as of the
    export (star/build.py derives the rest of its history from dates), so on any earlier date no
    deal had one, and the movements between two dates cannot be told apart: 37 of 37 deals read as
    new in a week, which a sales leader would take for a week's new business."""
    if logged_share >= LOGGED_HISTORY_MIN or start_deals or not new_deals:
        return None
    return (f"This export has no change log for its deals (e.g. Salesforce's OpportunityHistory.csv): an open "
            f"deal's expected close date is known only from the export, so on the earlier date no deal was in "
            f"this or next quarter's pipeline and all {new_deals} deals show as New. They are the pipeline as "
            "exported, not new business; what moved between the dates needs a source with a change log.")


# start + the signed changes - end, in exact cents, per (date, period, segment): must be 0 everywhere
RECONCILE_SQL = f"""
    SELECT as_of_date, period, segment_type, segment,
           sum(CASE WHEN category = 'end' THEN -amount ELSE amount END::{CENTS}) AS gap
    FROM scores.pipeline_waterfall GROUP BY ALL HAVING gap <> 0"""
