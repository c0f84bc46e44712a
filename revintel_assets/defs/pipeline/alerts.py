"""Deal warnings: plain rules over what was known on the as-of date (pure SQL, no Dagster).

Each rule reads the deal's as-of snapshot, its change history up to the date, this week's
pipeline change and the score on the previous scored date (every as-of date is scored; a drop
that comes with a change of model says so). Thresholds
are the `AlertRules` fields (the asset's config in the launchpad).
"""

from __future__ import annotations

from dataclasses import dataclass

from revintel_assets.defs.pipeline.changes import pairs_sql


@dataclass(frozen=True)
class AlertRules:
    stalled_ratio: float = 2.0  # in the stage this many times its usual time
    pushes: int = 3  # expected close date moved later this many times
    amount_cut: float = 0.2  # amount cut by this share since the previous as-of date
    idle_days: int = 30  # no change of stage, close date or amount for this many days
    score_drop: float = 0.10  # win probability fell by this much since the previous scored date


MODEL_CHANGED = "(model changed:"  # how a score drop that came with a new model says so (the digest reads it)
def alerts_sql(keys: list[str], rules: AlertRules, scored_dates: list | None, logged_history: bool = True) -> str:
    """`scored_dates`: the as-of dates of scores.deal_scores (ascending; None: no scores yet).
    `logged_history`: the source has a change log (snapshot.LOGGED_HISTORY_MIN). Without one there is
    no no_activity alert: a history derived from a deal's creation or engage date says nothing of
    its amount or close date changing, and "no change for 302 days" fired on ~1,100 of MavenTech's
    2,089 open deals at every date (66,519 alerts, an analyst-table audit); `stalled` still reads
    the time in stage those dates do give."""
    dates = ", ".join(f"DATE '{k}'" for k in keys)
    # the previous scored date of each key as a literal (changes.pairs_sql): a LATERAL max(as_of_date)
    # per row scanned every score's date for each date of every batch
    score_drop = f"""
        UNION ALL
        SELECT n.as_of_date, n.opportunity_id, n.rep_id, 'score_dropped',
               printf('win probability %d%% -> %d%% since %s', round(p.win_probability * 100)::INT,
                      round(n.win_probability * 100)::INT, p.as_of_date::VARCHAR)
               -- a new champion (or the first model after the stage baseline) moves scores by itself
               || CASE WHEN split_part(p.model_version, '@', 1) <> split_part(n.model_version, '@', 1)
                       THEN printf(' {MODEL_CHANGED} %s -> %s)', split_part(p.model_version, '@', 1),
                                   split_part(n.model_version, '@', 1)) ELSE '' END
        FROM scores.deal_scores n JOIN ({pairs_sql(keys, scored_dates)}) pv ON n.as_of_date = pv.as_of_date
        JOIN scores.deal_scores p ON p.as_of_date = pv.compare_date AND p.opportunity_id = n.opportunity_id
        WHERE p.win_probability - n.win_probability >= {rules.score_drop}""" if scored_dates is not None else ""
    idle = f"""
        UNION ALL
        SELECT s.as_of_date, s.opportunity_id, s.rep_id, 'no_activity',
               printf('no change for %d days', s.as_of_date - coalesce(l.changed_at, s.created_date))
        FROM s LEFT JOIN last_change l USING (as_of_date, opportunity_id)
        WHERE s.as_of_date - coalesce(l.changed_at, s.created_date) >= {rules.idle_days}""" if logged_history else ""
    return f"""
    WITH d AS (SELECT unnest([{dates}]) AS as_of_date),
    s AS (SELECT s.* FROM features.deal_snapshot s JOIN d USING (as_of_date)),
    last_change AS (
        SELECT s.as_of_date, s.opportunity_id, max(h.changed_at) AS changed_at
        FROM s JOIN star.fact_opportunity_history h
          ON h.opportunity_id = s.opportunity_id AND h.changed_at <= s.as_of_date
        GROUP BY ALL)
    SELECT * FROM (
        SELECT as_of_date, opportunity_id, rep_id, 'stalled' AS alert_type,
               printf('%.1fx the usual time in %s (%d days)', stage_time_ratio, stage, days_in_stage) AS detail
        FROM s WHERE stage_time_ratio >= {rules.stalled_ratio}
        UNION ALL
        SELECT as_of_date, opportunity_id, rep_id, 'close_date_passed',
               printf('expected close date passed %d days ago', -days_to_expected_close)
        FROM s WHERE days_to_expected_close < 0
        UNION ALL
        SELECT as_of_date, opportunity_id, rep_id, 'pushed_repeatedly',
               printf('close date pushed %d times', n_pushes::BIGINT)
        FROM s WHERE n_pushes >= {rules.pushes}
        UNION ALL
        SELECT c.as_of_date, c.opportunity_id, c.rep_id, 'amount_cut',
               printf('amount cut %,.0f -> %,.0f since %s', c.amount_before, c.amount_after, c.compare_date::VARCHAR)
        FROM scores.pipeline_changes c JOIN d USING (as_of_date)
        WHERE c.amount_after < c.amount_before * (1 - {rules.amount_cut})
        {idle}
        {score_drop})
    ORDER BY as_of_date, opportunity_id, alert_type"""
