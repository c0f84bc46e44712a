"""features.customer_division: one row per (cutoff, division, account active before the cutoff).

Everything is one DuckDB query per cutoff, all divisions at once, over the star schema (through
the purchase ledger, LEDGER, which the step builds once for all its cutoffs). The only
rows a feature may read are dated on or before the cutoff (transactions by order_date,
opportunities by created/close date); the label alone looks into (cutoff, cutoff + W months].
Deleting every source row dated after the cutoff therefore leaves every feature unchanged
(tests/test_icp_features.py checks exactly that).

The columns that describe the *coming* window (its season a year earlier, the division's buyer
rate over a window as long as it) are written for every window length a run may choose
(FEATURE_WINDOWS, suffixed `_w3`, `_w6`), not only for the run's W: W follows the data's span
(calendar.default_window), so a source cut short enough to turn W from 6 into 3 months would
otherwise change these columns of every cutoff. A model reads the columns of its own W
(`feature_columns`).

Conventions: a *purchase day* is an (account, day) with at least one positive line; several
orders on one day are kept (their lines all count towards monetary value) but count as one
purchase day, so frequency does not depend on how a source splits orders. Returns (negative
lines) never count as purchases. Columns are NULL where undefined (e.g. division recency of
an account that never bought it), which LightGBM handles natively.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from revintel_assets.defs.icp.calendar import SEASON_ANCHOR_DAYS

WINDOWS = (3, 6, 12, 24)  # months
# Window lengths W whose coming-window columns every cutoff carries: the two default_window picks.
FEATURE_WINDOWS = (3, 6)
# Columns about the coming window, one per W (name + `_w{W}`).
WINDOWED = ("div_frequency_last_year_window", "division_season_index", "division_rate_recent_window",
            "division_rate_last_year_window", "division_season_lift_last_year", "division_rate_same_season")
# Money is summed as an exact decimal: float sums in DuckDB depend on how threads split the rows,
# so the same data gave features (and so models) that differed in the last bits from run to run.
MONEY = "DECIMAL(38, 6)"

KEYS = ["cutoff_date", "division", "account_id"]
LABELS = ["label", "label_amount", "label_new_buyer", "label_window_months"]
# Descriptive columns that are not model inputs.
INFO = ["account_name", "sector", "country", "is_buyer"]


def _lit(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def _str_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _windowed(prefix: str, value: str, date_col: str = "order_date", cond: str = "TRUE") -> str:
    """count/sum over the trailing windows ending at the cutoff."""
    return ",\n".join(
        f"{value.format(f=f'({cond}) AND {date_col} > c.c - INTERVAL {w} MONTH')} AS {prefix}_{w}m"
        for w in WINDOWS)


def _back(k: int) -> str:
    return f"c.c - INTERVAL {12 * k} MONTH"


def windows(window_months: int) -> tuple[int, ...]:
    """The window lengths a run's features carry: FEATURE_WINDOWS and the run's own W."""
    return tuple(sorted({*FEATURE_WINDOWS, window_months}))


def windowed(name: str, w: int) -> str:
    return f"{name}_w{w}"


def _each(ws: Sequence[int], template: str) -> str:
    """`template` (with {w}) once per window length, comma-separated, in window order."""
    return ", ".join(template.format(w=w) for w in ws)


def _season_flags(w: int) -> str:
    """Columns of `ad` (one row per account and division it bought) for window length w: did it buy
    in the coming window's calendar months k years earlier, in the window before that, in the latest
    window. The division's buyer counts are then sums of flags (season_buyers) instead of a distinct
    count over every purchase day per season and year (scale 100: most of the statement's CPU)."""
    flags = [f"bool_or(order_date > c.c - INTERVAL {w} MONTH) AS bought_recent_w{w}"]
    for k in SEASON_YEARS:
        back = _back(k)
        flags += [f"bool_or(order_date > {back} AND order_date <= c.end_w{w} - INTERVAL {12 * k} MONTH) "
                  f"AS bought_season_{k}y_w{w}",
                  f"bool_or(order_date > {back} - INTERVAL {w} MONTH AND order_date <= {back}) "
                  f"AS bought_before_season_{k}y_w{w}"]
    return ",\n".join(flags)


def _season_buyers(ws: Sequence[int]) -> str:
    """CTE season_buyers: per division, the accounts that bought in each season window, counted among
    the accounts that had made a first purchase by then (k years back); the latest window among all."""
    counts = []
    for w in ws:
        counts.append(f"count(*) FILTER (WHERE ad.bought_recent_w{w}) AS recent_w{w}")
        for k in SEASON_YEARS:
            known = f"c.c - a.tenure_days::INTEGER <= {_back(k)}"
            counts += [f"count(*) FILTER (WHERE ad.bought_season_{k}y_w{w} AND {known}) AS season_{k}y_w{w}",
                       f"count(*) FILTER (WHERE ad.bought_before_season_{k}y_w{w} AND {known}) "
                       f"AS before_season_{k}y_w{w}"]
    return f"""season_buyers AS (
        SELECT ad.division, {', '.join(counts)}
        FROM ad JOIN acct a USING (account_id), c GROUP BY ad.division)"""


def _same_season(k: int, w: int) -> str:
    """CTE syk_ww: the division's buyer rate in the coming w-month window's calendar months k years
    earlier, among accounts that had bought by then, and in the window before it (NULL where the
    data does not reach back that far)."""
    back = _back(k)
    return f"""sy{k}_w{w} AS (
        SELECT d.division,
               CASE WHEN span.first_date < {back} THEN
               coalesce(sb.season_{k}y_w{w}, 0) / nullif(co.n, 0) END AS rate,
               CASE WHEN span.first_date < {back} - INTERVAL {w} MONTH THEN
               coalesce(sb.before_season_{k}y_w{w}, 0) / nullif(co.n, 0) END AS rate_before
        FROM divs d CROSS JOIN c CROSS JOIN span
        CROSS JOIN (SELECT count(*) AS n FROM acct, c WHERE c.c - acct.tenure_days::INTEGER <= {back}) co
        LEFT JOIN season_buyers sb ON sb.division = d.division)"""


def _same_season_ctes(ws: Sequence[int]) -> str:
    """season_buyers, then per window length sy1, sy2, sy3: the same season one, two and three years earlier."""
    return f"    {_season_buyers(ws)},\n" + "".join(f"    {_same_season(k, w)},\n" for w in ws for k in SEASON_YEARS)


def _same_season_columns(w: int) -> str:
    """The final SELECT's same-season columns for window length w."""
    sy = [f"sy{k}_w{w}" for k in SEASON_YEARS]
    rates = " + ".join(f"coalesce({t}.rate, 0)" for t in sy)
    known = " + ".join(f"({t}.rate IS NOT NULL)::INT" for t in sy)
    return (f"rc_w{w}.rate AS division_rate_recent_window_w{w},\n"
            f"           sy1_w{w}.rate AS division_rate_last_year_window_w{w},\n"
            f"           sy1_w{w}.rate / nullif(sy1_w{w}.rate_before, 0) AS division_season_lift_last_year_w{w},\n"
            f"           ({rates}) / nullif({known}, 0) AS division_rate_same_season_w{w}")


SEASON_YEARS = (1, 2, 3)


# The purchase ledger: the star's lines per (account, division, day) over the whole history, and
# what a cutoff's features take from them. Every value in it depends only on rows dated on or
# before its own day: the gap to the previous purchase day, a month's first and last purchase
# day. So a cutoff reading the ledger's rows up to its date sees what it would have computed from
# the lines up to that date, and the features step builds the ledger once for all its cutoffs
# (`ledger_tables`) instead of re-aggregating ~23 M lines per cutoff (scale 100).
# A *month* row: a calendar month in which the account (in the division) bought; the number of
# such months with a purchase day in (c - N months, c] is the number whose first purchase day is
# <= c and whose last is > c - N months: the window is at least 12 months long, so no month holds
# both ends (each end month needs only its one condition, the months between hold both).
# A purchase line: a positive amount at a quantity that is not negative (a service billed with quantity
# 0 is bought; a credit note with a negative quantity is not); in the wide sales log, whose amounts are
# gross profit, also a positive quantity at any amount (an order sold at or below cost is still bought:
# counting only positive profit left a customer who buys a division every month at cost as never having
# bought it, and whitespace recommended it to them). A won deal standing in for a log (`crm_won`) is a
# purchase whatever its amount: a CRM whose amounts are 0 or empty had no buyer at all. `gross` is a
# day's purchase lines' amount (an empty amount counts 0), NULL on a day without one; `returned` the
# negative amounts of the other lines.
PURCHASE = "(amount > 0 AND quantity >= 0) OR (source = 'sales_log' AND quantity > 0) OR source = 'crm_won'"
LEDGER = {
    "icp_days": f"""
        SELECT *, CASE WHEN gross IS NOT NULL THEN order_date - lag(order_date) OVER (
                   PARTITION BY account_id, division, gross IS NOT NULL ORDER BY order_date) END AS gap
        FROM (SELECT account_id, division, order_date,
                     sum(coalesce(amount, 0)::{MONEY}) FILTER (WHERE {PURCHASE}) AS gross,
                     coalesce(sum(least(amount, 0)::{MONEY}) FILTER (WHERE NOT ({PURCHASE})), 0) AS returned
              FROM {{star}}.fact_transactions WHERE account_id IS NOT NULL AND division IS NOT NULL GROUP BY ALL)""",
    "icp_account_days": """
        SELECT *, order_date - lag(order_date) OVER (PARTITION BY account_id ORDER BY order_date) AS gap
        FROM (SELECT account_id, order_date, sum(gross) AS gross FROM {ledger}icp_days WHERE gross IS NOT NULL
              GROUP BY ALL)""",
    "icp_months": """
        SELECT account_id, division, date_trunc('month', order_date) AS month,
               min(order_date) AS first_day, max(order_date) AS last_day
        FROM {ledger}icp_days WHERE gross IS NOT NULL GROUP BY ALL""",
    "icp_account_months": """
        SELECT account_id, date_trunc('month', order_date) AS month,
               min(order_date) AS first_day, max(order_date) AS last_day
        FROM {ledger}icp_account_days GROUP BY ALL""",
}


def ledger_tables(database: str, star: str = "star") -> list[str]:
    """CREATE TABLE statements building the ledger in `database` (an attached scratch database), in order."""
    return [f"CREATE TABLE {database}.{name} AS {sql.format(ledger=database + '.', star=star)}"
            for name, sql in LEDGER.items()]


def _active_months(table: str, keys: str, prefix: str) -> str:
    """Per `keys`, the calendar months with a purchase day in the trailing 12 and 24 months (see LEDGER)."""
    return f"""SELECT {keys},
               count(*) FILTER (WHERE last_day > c.c - INTERVAL 12 MONTH) AS {prefix}active_months_12m,
               count(*) FILTER (WHERE last_day > c.c - INTERVAL 24 MONTH) AS {prefix}active_months_24m
        FROM {table}, c WHERE first_day <= c.c GROUP BY {keys}"""


def feature_sql(cutoff: dt.date, divisions: Sequence[str], window_months: int, as_of: dt.date,
                ledger: str | None = None, star: str = "star") -> str:
    """SELECT producing the feature rows of one cutoff for `divisions`.

    `as_of` only decides whether the label window has passed (label NULL otherwise); it never
    changes a feature. `ledger`: the database holding the tables of `ledger_tables` (built once
    for many cutoffs); None computes them inside this statement. `star`: the schema holding the star
    tables (the time-travel check passes a copy cut at the cutoff, `star_cut_sql`).
    """
    c, divs, ws = _lit(cutoff), _str_list(divisions), windows(window_months)
    ends = _each(ws, f"{c} + INTERVAL {{w}} MONTH AS end_w{{w}}")
    group_ends = _each(ws, "c.end_w{w}")
    # the coming-window columns, once per window length w (FEATURE_WINDOWS)
    last_year = _each(ws, """count(*) FILTER (WHERE order_date > c.c - INTERVAL 12 MONTH
                                  AND order_date <= c.end_w{w} - INTERVAL 12 MONTH) AS div_frequency_last_year_window_w{w}""")
    flags = ",\n".join(_season_flags(w) for w in ws)
    season_index = _each(ws, """sum(gross) FILTER (WHERE order_date > c.c - INTERVAL 12 MONTH
                                    AND order_date <= c.end_w{w} - INTERVAL 12 MONTH)
               / nullif(sum(gross) FILTER (WHERE order_date > c.c - INTERVAL 12 MONTH), 0)
               * 12 / {w} AS division_season_index_w{w}""")
    recent = "".join(f"""    rc_w{w} AS (
        SELECT d.division, coalesce(sb.recent_w{w}, 0) / n_acc.n AS rate
        FROM divs d CROSS JOIN n_acc LEFT JOIN season_buyers sb ON sb.division = d.division),
""" for w in ws)
    same_season = ",\n           ".join(_same_season_columns(w) for w in ws)
    season_joins = "".join(f"    LEFT JOIN {t} ON {t}.division = d.division\n"
                           for w in ws for t in (f"rc_w{w}", *(f"sy{k}_w{w}" for k in SEASON_YEARS)))
    money = ["monetary_all", *(f"monetary_{w}m" for w in WINDOWS), "returned_12m", "div_monetary_all",
             *(f"div_monetary_{w}m" for w in WINDOWS)]
    as_double = ", ".join(f"{m}::DOUBLE AS {m}" for m in money)  # exact sums, DOUBLE columns as before
    if ledger is None:
        prefix = ""
        inline = "".join(f"    {name} AS ({sql.format(ledger='', star=star)}),\n" for name, sql in LEDGER.items())
    else:
        prefix, inline = ledger + ".", ""
    return f"""SELECT * REPLACE ({as_double}) FROM (
    WITH
{inline}    c AS (SELECT {c} AS c, {c} + INTERVAL {window_months} MONTH AS label_end, {ends},
                      {_lit(as_of)} AS as_of),
    divs AS (SELECT unnest([{divs}]) AS division),
    -- per account, division and day: what was bought (lines dated on or before the cutoff)
    days AS (SELECT account_id, division, order_date, gross, returned FROM {prefix}icp_days, c
             WHERE order_date <= c.c),
    buy_days AS (SELECT * FROM days WHERE gross IS NOT NULL),
    acct_gaps AS (SELECT account_id, order_date, gross, gap FROM {prefix}icp_account_days, c
                  WHERE order_date <= c.c),
    acct_months AS ({_active_months(f"{prefix}icp_account_months", "account_id", "")}),
    acct_rfm AS (  -- the account overall; only accounts with a purchase before the cutoff
        SELECT account_id,
               c.c - max(order_date) AS recency_days, c.c - min(order_date) AS tenure_days,
               count(*) AS frequency_all, sum(gross) AS monetary_all,
               {_windowed('frequency', 'count(*) FILTER (WHERE {f})')},
               {_windowed('monetary', 'coalesce(sum(gross) FILTER (WHERE {f}), 0)')},
               avg(gap) AS gap_mean_days,
               -- stddev_samp from exact integer sums: DuckDB's parallel stddev combines partial
               -- states in thread order, so its last bits (and the models) changed run to run
               sqrt((count(gap) * sum(gap * gap) - sum(gap) * sum(gap))
                    / nullif(count(gap) * (count(gap) - 1), 0)::DOUBLE) AS gap_sd_days,
               median(gap) AS gap_median_days, max(gap) AS gap_max_days
        FROM acct_gaps, c GROUP BY account_id, c.c),
    acct AS (SELECT * FROM acct_rfm JOIN acct_months USING (account_id)),
    acct_returns AS (
        SELECT account_id, -sum(returned) FILTER (WHERE order_date > c.c - INTERVAL 12 MONTH) AS returned_12m
        FROM days, c GROUP BY account_id),
    div_gaps AS (SELECT account_id, division, order_date, gross, gap FROM {prefix}icp_days, c
                 WHERE gross IS NOT NULL AND order_date <= c.c),
    div_months AS ({_active_months(f"{prefix}icp_months", "account_id, division", "div_")}),
    ad_rfm AS (  -- the account in each division it bought
        SELECT account_id, division,
               c.c - max(order_date) AS div_recency_days, c.c - min(order_date) AS div_tenure_days,
               count(*) AS div_frequency_all, sum(gross) AS div_monetary_all,
               {_windowed('div_frequency', 'count(*) FILTER (WHERE {f})')},
               {_windowed('div_monetary', 'coalesce(sum(gross) FILTER (WHERE {f}), 0)')},
               -- the same calendar window one year earlier: seasonal buyers repeat
               {last_year},
               avg(gap) AS div_gap_mean_days,
               {flags}
        FROM div_gaps, c GROUP BY account_id, division, c.c, {group_ends}),
    ad AS (SELECT * FROM ad_rfm JOIN div_months USING (account_id, division)),
    own AS (SELECT account_id, division, div_tenure_days FROM ad),
    n_acc AS (SELECT count(*) AS n FROM acct),
    div_owners AS (SELECT division, count(*) AS n_owners FROM own GROUP BY 1),
    -- affinity learned from pre-cutoff baskets: P(owns d | owns a) over all accounts
    pair_conf AS (
        SELECT a.division AS from_div, b.division AS to_div, count(*) / any_value(o.n_owners) AS conf
        FROM own a JOIN own b ON a.account_id = b.account_id AND a.division <> b.division
        JOIN div_owners o ON o.division = a.division GROUP BY 1, 2),
    -- an account's affinities depend only on the set of divisions it owns: computed once per set
    -- (a few hundred sets against hundreds of thousands of accounts), then given to its accounts
    owned AS (SELECT account_id, list(division ORDER BY division) AS divisions FROM own GROUP BY 1),
    set_affinity AS (
        SELECT s.divisions, p.to_div AS division, max(p.conf) AS affinity_max,
               list_avg(list(p.conf ORDER BY p.from_div)) AS affinity_mean  -- a fixed order: same bits every run
        FROM (SELECT divisions, unnest(divisions) AS from_div FROM (SELECT DISTINCT divisions FROM owned)) s
        JOIN pair_conf p ON p.from_div = s.from_div GROUP BY 1, 2),
    affinity AS (
        SELECT o.account_id, sa.division, sa.affinity_max, sa.affinity_mean
        FROM owned o JOIN set_affinity sa ON sa.divisions = o.divisions),
    mix AS (  -- division mix and cross-division ownership (also as it stood 6 months earlier)
        SELECT account_id, count(*) AS divisions_owned,
               count(*) FILTER (WHERE div_tenure_days >= 182) AS divisions_owned_6m_ago
        FROM own GROUP BY 1),
    firm AS (
        SELECT a.account_id, a.account_name, a.sector, a.country, a.employees, a.annual_revenue,
               a.year_established, a.parent_account_id IS NOT NULL AS has_parent, a.parent_account_id
        FROM {star}.dim_account a),
    seg AS (  -- how common the division is among similar accounts (same sector / country)
        SELECT f.sector, f.country, o.division, count(*) AS owners
        FROM own o JOIN firm f USING (account_id) GROUP BY ALL),
    seg_size AS (
        SELECT f.sector, f.country, count(*) AS n FROM acct JOIN firm f USING (account_id) GROUP BY ALL),
    season AS (  -- share of the division's last-year revenue that fell in the coming window's months
        SELECT division,
               {season_index},
               sum(gross) FILTER (WHERE order_date > c.c - INTERVAL 3 MONTH)
               / nullif(sum(gross) FILTER (WHERE order_date > c.c - INTERVAL 12 MONTH), 0) * 4
                   AS division_momentum
        FROM buy_days, c GROUP BY division, c.c, {group_ends}),
    -- seasonality: the division's buyer rate in the coming window's calendar months k years earlier,
    -- among accounts that had bought before then (NULL where the data does not reach back that far),
    -- and in the window before it, so the model sees the season's lift as well as its level
    span AS (SELECT min(order_date) AS first_date FROM {star}.fact_transactions),
{_same_season_ctes(ws)}
{recent}
    opp AS (  -- CRM signals as they stood at the cutoff
        SELECT o.account_id, o.division,
               count(*) FILTER (WHERE coalesce(o.created_date, o.engage_date) <= c.c
                                  AND (o.close_date IS NULL OR o.close_date > c.c)) AS open_opps,
               count(*) FILTER (WHERE o.is_closed AND NOT o.is_won AND o.close_date <= c.c
                                  AND o.close_date > c.c - INTERVAL 12 MONTH) AS lost_opps_12m,
               count(*) FILTER (WHERE o.is_won AND o.close_date <= c.c) AS won_opps,
               c.c - max(coalesce(o.created_date, o.engage_date))
                   FILTER (WHERE coalesce(o.created_date, o.engage_date) <= c.c) AS days_since_opp
        FROM {star}.fact_opportunity o, c WHERE o.account_id IS NOT NULL GROUP BY o.account_id, o.division, c.c),
    opp_acct AS (SELECT account_id, sum(open_opps) AS open_opps_all, sum(lost_opps_12m) AS lost_opps_12m_all
                 FROM opp GROUP BY 1),
    label AS (  -- gross is the day's purchase lines: NULL where it had none
        SELECT account_id, division, sum(gross)::DOUBLE AS label_amount FROM {prefix}icp_days, c
        WHERE order_date > c.c AND order_date <= c.label_end AND gross IS NOT NULL GROUP BY 1, 2)
    SELECT c.c AS cutoff_date, d.division, a.account_id,
           f.account_name, f.sector, f.country, ad.account_id IS NOT NULL AS is_buyer,
           a.recency_days, a.tenure_days, a.frequency_all, a.monetary_all,
           {', '.join(f'a.frequency_{w}m' for w in WINDOWS)},
           {', '.join(f'a.monetary_{w}m' for w in WINDOWS)},
           a.monetary_all / a.frequency_all AS avg_day_value,
           -- trend: the last 3 months against the 3 before, and the last 6 against the 6 before
           (a.monetary_3m + 1) / (a.monetary_6m - a.monetary_3m + 1) AS trend_3m,
           (a.monetary_6m + 1) / (a.monetary_12m - a.monetary_6m + 1) AS trend_6m,
           a.active_months_12m, a.active_months_24m,
           -- buying months per observed month: a rate that does not grow with tenure
           a.active_months_24m / least(24, greatest(1, a.tenure_days / 30.44)) AS active_month_rate,
           coalesce(ad.div_active_months_12m, 0) AS div_active_months_12m,
           coalesce(ad.div_active_months_24m, 0) AS div_active_months_24m,
           coalesce(ad.div_active_months_24m, 0) / least(24, greatest(1, a.tenure_days / 30.44)) AS div_active_month_rate,
           a.gap_mean_days, a.gap_median_days, a.gap_max_days,
           a.gap_sd_days / nullif(a.gap_mean_days, 0) AS gap_cv,
           a.recency_days / nullif(a.gap_mean_days, 0) AS overdue_ratio,
           coalesce(r.returned_12m, 0) AS returned_12m,
           ad.div_recency_days, ad.div_tenure_days,
           coalesce(ad.div_frequency_all, 0) AS div_frequency_all,
           coalesce(ad.div_monetary_all, 0) AS div_monetary_all,
           {', '.join(f'coalesce(ad.div_frequency_{w}m, 0) AS div_frequency_{w}m' for w in WINDOWS)},
           {', '.join(f'coalesce(ad.div_monetary_{w}m, 0) AS div_monetary_{w}m' for w in WINDOWS)},
           {_each(ws, "coalesce(ad.div_frequency_last_year_window_w{w}, 0) AS div_frequency_last_year_window_w{w}")},
           ad.div_gap_mean_days,
           ad.div_recency_days / nullif(ad.div_gap_mean_days, 0) AS div_overdue_ratio,
           coalesce(ad.div_monetary_all, 0) / a.monetary_all AS div_share_all,
           coalesce(ad.div_monetary_12m, 0) / nullif(a.monetary_12m, 0) AS div_share_12m,
           coalesce(ad.div_frequency_12m, 0) / nullif(a.frequency_12m, 0) AS div_day_share_12m,
           m.divisions_owned - (ad.account_id IS NOT NULL)::INT AS other_divisions_owned,
           m.divisions_owned_6m_ago - coalesce(ad.div_tenure_days >= 182, false)::INT AS other_divisions_owned_6m_ago,
           coalesce(af.affinity_max, 0) AS affinity_max, coalesce(af.affinity_mean, 0) AS affinity_mean,
           coalesce(dn.n_owners, 0) / n_acc.n AS division_penetration,
           coalesce(ss.owners, 0) / nullif(sz.n, 0) AS segment_penetration,
           sz.n AS segment_accounts,
           {_each(ws, "s.division_season_index_w{w}")}, s.division_momentum,
           -- month of year of the cutoff's season (a cycle; calendar.season_anchor) and the division's
           -- rate in the same season before
           sin(2 * pi() * month(c.c + INTERVAL {SEASON_ANCHOR_DAYS} DAY) / 12) AS cutoff_month_sin,
           cos(2 * pi() * month(c.c + INTERVAL {SEASON_ANCHOR_DAYS} DAY) / 12) AS cutoff_month_cos,
           {same_season},
           f.employees, f.annual_revenue, f.year_established, f.has_parent,
           (po.account_id IS NOT NULL) AS parent_owns_division,
           coalesce(o.open_opps, 0) AS open_opps, coalesce(o.lost_opps_12m, 0) AS lost_opps_12m,
           coalesce(o.won_opps, 0) AS won_opps, o.days_since_opp,
           coalesce(oa.open_opps_all, 0) AS open_opps_all, coalesce(oa.lost_opps_12m_all, 0) AS lost_opps_12m_all,
           CASE WHEN c.label_end <= c.as_of THEN l.account_id IS NOT NULL END AS label,
           CASE WHEN c.label_end <= c.as_of THEN coalesce(l.label_amount, 0) END AS label_amount,
           CASE WHEN c.label_end <= c.as_of THEN l.account_id IS NOT NULL AND ad.account_id IS NULL END
               AS label_new_buyer,
           {window_months} AS label_window_months
    FROM acct a CROSS JOIN divs d CROSS JOIN c CROSS JOIN n_acc
    LEFT JOIN ad ON ad.account_id = a.account_id AND ad.division = d.division
    LEFT JOIN acct_returns r ON r.account_id = a.account_id
    LEFT JOIN mix m ON m.account_id = a.account_id
    LEFT JOIN affinity af ON af.account_id = a.account_id AND af.division = d.division
    LEFT JOIN div_owners dn ON dn.division = d.division
    LEFT JOIN firm f ON f.account_id = a.account_id
    LEFT JOIN seg ss ON ss.division = d.division AND ss.sector IS NOT DISTINCT FROM f.sector
                    AND ss.country IS NOT DISTINCT FROM f.country
    LEFT JOIN seg_size sz ON sz.sector IS NOT DISTINCT FROM f.sector AND sz.country IS NOT DISTINCT FROM f.country
    LEFT JOIN season s ON s.division = d.division
{season_joins}    LEFT JOIN own po ON po.account_id = f.parent_account_id AND po.division = d.division
    LEFT JOIN opp o ON o.account_id = a.account_id AND o.division = d.division
    LEFT JOIN opp_acct oa ON oa.account_id = a.account_id
    LEFT JOIN label l ON l.account_id = a.account_id AND l.division = d.division
    ) ORDER BY division, account_id"""


def star_cut_sql(cutoff: dt.date, schema: str) -> list[str]:
    """Statements that rebuild, in `schema`, the star tables the features read as they stood at the
    end of `cutoff`: lines dated after it gone, deals created after it gone, later closes undone (a
    deal closed after the cutoff was open then). The production time-travel check (icp/checks.py)
    recomputes a stored cutoff from them and expects no feature to move."""
    c = _lit(cutoff)
    return [
        f"CREATE OR REPLACE SCHEMA {schema}",
        f"CREATE TABLE {schema}.fact_transactions AS SELECT * FROM star.fact_transactions WHERE order_date <= {c}",
        f"""CREATE TABLE {schema}.fact_opportunity AS SELECT * REPLACE (
                CASE WHEN engage_date > {c} THEN NULL ELSE engage_date END AS engage_date,
                CASE WHEN close_date > {c} THEN NULL ELSE close_date END AS close_date,
                CASE WHEN close_date > {c} THEN false ELSE is_closed END AS is_closed,
                CASE WHEN close_date > {c} THEN false ELSE is_won END AS is_won)
            FROM star.fact_opportunity
            -- closed by the cutoff counts whatever the created date (a bulk load can stamp it later)
            WHERE coalesce(created_date, engage_date) <= {c} OR close_date <= {c}""",
        f"CREATE TABLE {schema}.dim_account AS SELECT * FROM star.dim_account",
    ]


def divisions_sql() -> str:
    """Divisions from the SKU map / product dimension that have sales: new ones need no code."""
    return """
    SELECT DISTINCT p.division FROM star.dim_product p
    WHERE p.division IS NOT NULL AND p.sellable
      AND EXISTS (SELECT 1 FROM star.fact_transactions t WHERE t.division = p.division)
    ORDER BY 1"""


def feature_columns(columns: Sequence[str], window_months: int | None = None) -> list[str]:
    """The model inputs among a feature table's columns: the coming-window columns of `window_months`
    only (of no window when None), in table order."""
    other = {windowed(n, w) for n in WINDOWED for w in range(1, 25)} - {windowed(n, window_months) for n in WINDOWED}
    # a table written before the window columns keeps its unsuffixed ones (NULL in newer partitions)
    other |= {n for n in WINDOWED if windowed(n, window_months) in columns}
    return [c for c in columns if c not in KEYS + LABELS + INFO and c not in other]


def model_features(frame) -> list[str]:
    """feature_columns of a feature frame, for the window its rows were labelled over."""
    w = frame["label_window_months"].drop_nulls() if "label_window_months" in frame.columns else []
    return feature_columns(frame.columns, int(w[0]) if len(w) else None)


def base_name(feature: str) -> str:
    """A feature's name without its window suffix: division_season_index_w6 -> division_season_index."""
    stem, _, w = feature.rpartition("_w")
    return stem if stem in WINDOWED and w.isdigit() else feature
