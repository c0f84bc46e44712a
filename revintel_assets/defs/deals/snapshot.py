"""As-of deal snapshots: every deal open on date T with the features known on T.

The rule that keeps them honest: a feature for T reads only history events with
`changed_at <= T`, outcomes of *other* deals closed on or before T, and static facts (product,
account firmographics). Never the deal's final stage, amount or expected close date, never the
wall clock. `fact_opportunity.close_date` is used for exactly two things: deciding that a deal is
still open on T (close_date > T is knowable on T: it has not closed yet), and the training label,
which is not a feature.

All dates are built in one vectorised pass: history events are reduced to running values once,
then an ASOF JOIN picks, for every (deal, T), the last event on or before T.
"""

from __future__ import annotations

import polars as pl

from revintel_assets.rules import fiscal_quarter_start_sql

FEATURES_NUMERIC = [
    "deal_age_days", "days_in_stage", "stage_norm_days", "stage_time_ratio", "n_stage_changes",
    "n_pushes", "total_slip_days", "days_to_expected_close", "n_amount_changes", "amount",
    "amount_change_ratio", "list_price", "amount_to_list", "account_win_rate", "account_employees",
    "account_revenue", "rep_win_rate", "days_to_quarter_end", "month_of_year",
]
# Kept in the table for people, left out of the model: running counts (deals closed so far,
# open load) only grow with the company, so a model trained on last year's smaller numbers
# extrapolates on today's. Measured on the demo: holdout ECE 0.050 with them, 0.027 without.
CONTEXT = ["account_prior_won", "account_prior_lost", "rep_prior_closed", "rep_open_deals"]
FEATURES_CATEGORICAL = ["stage", "product_id", "division", "account_sector"]
# What the CRM records about the deal itself when it is opened: its type (new business, upgrade,
# renewal: Salesforce Type, HubSpot Deal Type) and lead source (Salesforce LeadSource). In B2B
# sales the type is the first thing a sales leader asks (renewals are won far more often than new
# logos). Static attributes of the deal, read as the export gives them, like its product and
# account. A source without them has the columns NULL, and the model leaves them out (Encoder.fit).
DEAL_ATTRIBUTES = ["deal_type", "lead_source"]
# An attribute most training rows lack (a field the CRM added late: filled on the recent deals only)
# would be learnt as "missing = old" and read on every deal scored today, the skew OWN_HISTORY
# avoids: below this share of rows with a value the model leaves it out.
ATTRIBUTE_MIN_SHARE = 0.5
MODEL_FEATURES_CATEGORICAL = FEATURES_CATEGORICAL + DEAL_ATTRIBUTES
# Recent form beside the all-time rates: the rep's and the product's win rate over the deals that
# closed in the TRAILING_DAYS up to the as-of date (shrunk toward the company's rate over the same
# days), minus the company's rate: a lift, skill without the level. When win odds move, the
# all-time rates and a trailing level drift away from anything the trees saw; a lift does not.
# Chosen on the design companies only (demo seeds 42 and 7, drift 0 and 1, scale 0.5;
# benchmarks/tune_drift.py, with win_model.RECENCY_HALF_LIFE_DAYS; README design log).
TRAILING_DAYS = 180
TRAILING = [f"rep_win_lift_{TRAILING_DAYS}d", f"product_win_lift_{TRAILING_DAYS}d"]
# stored feature columns; FEATURES_NUMERIC and FEATURES_CATEGORICAL alone are the set before TRAILING
# and DEAL_ATTRIBUTES (older models and the plain reference of benchmarks/win_reference.py read those)
FEATURES = FEATURES_NUMERIC + TRAILING + FEATURES_CATEGORICAL + DEAL_ATTRIBUTES
# Model features computed from a snapshot row's own columns when the model reads it, not stored:
# no warehouse or partition written before they existed needs a rebuild. created_month: the
# month the deal was opened. Win odds follow the season a deal was opened in (budget cycles);
# from the as-of month and the deal's age the trees could only piece that together. Chosen on
# the design companies (demo seeds 42 and 7, drift 0 and 1; benchmarks/tune_drift.py --derived):
# with it the drifting demo's holdout ECE fell 0.029 -> 0.021 and 0.042 -> 0.032, the stationary
# one's stayed 0.012 - 0.013.
DERIVED = {"created_month": pl.col("created_date").dt.month().cast(pl.Int32)}
MODEL_FEATURES_NUMERIC = FEATURES_NUMERIC + TRAILING + list(DERIVED)
MODEL_FEATURES = MODEL_FEATURES_NUMERIC + MODEL_FEATURES_CATEGORICAL
# Features read from the deal's own change log: its stage, amount and expected close and how they
# moved. A source without one (a HubSpot deal export, MavenTech, Salesforce without
# OpportunityHistory.csv) shows them for the deals open on its export date, while every deal that
# closed is, in the derived history (star/build.py fact_opportunity_history), prospecting with no
# amount until it closed: a model trained on those rows would score the open deals on values it
# never saw. A held-out Salesforce org exported without its history (benchmarks/heldout_generator.py
# seed 14) was scored at AUC 0.632 / ECE 0.063 that way, the plain reference 0.662 / 0.037. With
# too little logged history the model learns from and scores on the rest: the deal's age, account,
# rep, product and season.
OWN_HISTORY = ["stage", "days_in_stage", "stage_norm_days", "stage_time_ratio", "n_stage_changes", "n_pushes",
               "total_slip_days", "days_to_expected_close", "n_amount_changes", "amount", "amount_change_ratio",
               "amount_to_list"]
LOGGED_HISTORY_MIN = 0.5  # share of the closed deals with a logged change below which the history counts as derived
# that share, over the closed deals of the star schema
LOGGED_SHARE_SQL = """
    SELECT count(DISTINCT opportunity_id) FILTER (WHERE NOT derived) / greatest(count(DISTINCT opportunity_id), 1)
           AS share
    FROM star.fact_opportunity_history
    WHERE opportunity_id IN (SELECT opportunity_id FROM star.fact_opportunity WHERE is_closed)"""


def model_features(logged_share: float) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features of a model trained on a history this share of whose closed
    deals is logged: all of them, or those not read from the deal's own log (OWN_HISTORY)."""
    if logged_share >= LOGGED_HISTORY_MIN:
        return list(MODEL_FEATURES_NUMERIC), list(MODEL_FEATURES_CATEGORICAL)
    return ([f for f in MODEL_FEATURES_NUMERIC if f not in OWN_HISTORY],
            [f for f in MODEL_FEATURES_CATEGORICAL if f not in OWN_HISTORY])


OUTCOME = ["outcome_date", "is_won"]  # label columns: NOT features, filled only for deals that closed

SHRINK = 10  # pseudo-deals pulling a rep's or account's win rate toward the global rate

_EVENTS = """
    ev_all AS (
        SELECT h.opportunity_id, h.changed_at, h.stage, h.expected_close_date, h.amount,
               row_number() OVER (PARTITION BY h.opportunity_id ORDER BY h.changed_at,
                                  h.source_line NULLS LAST, h.stage) AS seq
        FROM {star}.fact_opportunity_history h WHERE h.changed_at IS NOT NULL),
    -- Running values only for deals on the grid: a nightly date needs the ~10 % of deals open
    -- then, not three years of every deal's history (a backfill of every date needs them all).
    -- (deals open at some point between the first and the last date: exact for one date, a
    -- superset for a range)
    ev_raw AS (SELECT * FROM ev_all WHERE opportunity_id IN (
        SELECT opportunity_id FROM {star}.fact_opportunity
        WHERE (created_date IS NULL OR created_date <= (SELECT max(as_of_date) FROM dates))
          AND (close_date IS NULL OR close_date > (SELECT min(as_of_date) FROM dates)))),
    ev_ff AS (
        SELECT *,
            last_value(stage IGNORE NULLS) OVER w AS stage_ff,
            last_value(expected_close_date IGNORE NULLS) OVER w AS close_ff,
            first_value(expected_close_date IGNORE NULLS) OVER w AS close_first,
            last_value(amount IGNORE NULLS) OVER w AS amount_ff,
            first_value(amount IGNORE NULLS) OVER w AS amount_first
        FROM ev_raw WINDOW w AS (PARTITION BY opportunity_id ORDER BY seq
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    ev_flags AS (
        SELECT *,
            coalesce(stage_ff IS DISTINCT FROM lag(stage_ff) OVER w, true) AS stage_changed,
            coalesce(close_ff > lag(close_ff) OVER w, false) AS pushed,
            coalesce(amount_ff IS DISTINCT FROM lag(amount_ff) OVER w AND lag(amount_ff) OVER w IS NOT NULL,
                     false) AS amount_changed,
            lead(changed_at) OVER w AS next_changed_at
        FROM ev_ff WINDOW w AS (PARTITION BY opportunity_id ORDER BY seq)),
    ev_run AS (
        SELECT *,
            max(CASE WHEN stage_changed THEN changed_at END) OVER w AS stage_since,
            sum(stage_changed::INT) OVER w - 1 AS n_stage_changes,
            sum(pushed::INT) OVER w AS n_pushes,
            sum(amount_changed::INT) OVER w AS n_amount_changes
        FROM ev_flags WINDOW w AS (PARTITION BY opportunity_id ORDER BY seq
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    -- several events on one day: the day's last one (seq orders by day first) carries the
    -- running values; a filter on lead() instead of a group-by over every column
    ev AS (SELECT * FROM ev_run WHERE next_changed_at IS DISTINCT FROM changed_at),
    -- completed stage spells of every deal, for the "usual time in this stage" norm known on T:
    -- a spell starts where a stage differs from the deal's previous non-null stage
    stage_rows AS (
        SELECT opportunity_id, seq, changed_at, stage,
               lag(stage) OVER (PARTITION BY opportunity_id ORDER BY seq) AS prev_stage
        FROM ev_all WHERE stage IS NOT NULL),
    spells AS (
        SELECT stage, changed_at AS started,
               lead(changed_at) OVER (PARTITION BY opportunity_id ORDER BY seq) AS ended
        FROM stage_rows WHERE prev_stage IS DISTINCT FROM stage),
    stage_norms AS (
        SELECT stage, ended, avg(ended - started) OVER (PARTITION BY stage ORDER BY ended
               RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS norm_days
        FROM spells WHERE ended IS NOT NULL AND stage NOT IN ('Won', 'Lost')
        QUALIFY row_number() OVER (PARTITION BY stage, ended ORDER BY started DESC) = 1)"""

_OUTCOMES = """
    closed AS (SELECT opportunity_id, account_id, rep_id, product_id, close_date, is_won::INT AS won
               FROM {star}.fact_opportunity WHERE is_closed AND close_date IS NOT NULL),
    -- running counts per close date; a trailing window (T - TRAILING_DAYS, T] is the count at T
    -- minus the count at T - TRAILING_DAYS (two ASOF joins, no join of every date to every deal)
    global_hist AS (
        SELECT DISTINCT close_date, count(*) OVER w AS n, sum(won) OVER w AS wins
        FROM closed WINDOW w AS (ORDER BY close_date RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    prod_hist AS (
        SELECT DISTINCT product_id, close_date, count(*) OVER w AS n, sum(won) OVER w AS wins
        FROM closed WHERE product_id IS NOT NULL
        WINDOW w AS (PARTITION BY product_id ORDER BY close_date RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    global_rate AS (
        SELECT DISTINCT close_date, sum(won) OVER w / count(*) OVER w AS rate
        FROM closed WINDOW w AS (ORDER BY close_date RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    rep_hist AS (
        SELECT DISTINCT rep_id, close_date, count(*) OVER w AS n, sum(won) OVER w AS wins
        FROM closed WHERE rep_id IS NOT NULL
        WINDOW w AS (PARTITION BY rep_id ORDER BY close_date RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    acc_hist AS (
        SELECT DISTINCT account_id, close_date, count(*) OVER w AS n, sum(won) OVER w AS wins
        FROM closed WHERE account_id IS NOT NULL
        WINDOW w AS (PARTITION BY account_id ORDER BY close_date RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
    rep_load_ev AS (
        SELECT rep_id, d, sum(delta) AS delta FROM (
            SELECT rep_id, created_date AS d, 1 AS delta FROM {star}.fact_opportunity WHERE created_date IS NOT NULL
            UNION ALL SELECT rep_id, close_date, -1 FROM {star}.fact_opportunity
                WHERE close_date IS NOT NULL AND created_date IS NOT NULL) WHERE rep_id IS NOT NULL GROUP BY 1, 2),
    rep_load AS (SELECT rep_id, d, sum(delta) OVER (PARTITION BY rep_id ORDER BY d) AS open_deals FROM rep_load_ev)"""


EXPORT_DATE_SQL = "(SELECT max(export_date) FROM meta.source)"


def _open_on(export_date_sql: str = EXPORT_DATE_SQL) -> str:
    """Join condition of deal `o` and as-of date `d`: the deal is open on the date (a snapshot row)."""
    return f"""(o.created_date <= d.as_of_date
              OR (o.created_date IS NULL AND d.as_of_date >= {export_date_sql}))
         AND (o.close_date IS NULL OR o.close_date > d.as_of_date)"""


def dates_sql(dates) -> str:
    """A one-column (`as_of_date`) SELECT of the given dates (dates or ISO keys): snapshot_sql's input."""
    return " UNION ALL ".join(f"SELECT DATE '{d}' AS as_of_date" for d in dates)


def open_deals_sql(dates: str) -> str:
    """Rows snapshot_sql writes per as-of date of `dates` (a dates_sql): deals open on it, counted
    without building them (a range join and a count; ~1 s for 154 dates at scale 100)."""
    return f"""SELECT d.as_of_date, count(*) AS n FROM ({dates}) d JOIN star.fact_opportunity o
               ON {_open_on()} GROUP BY 1"""


# A row's label is its deal's outcome as the star knows it when the row is written (snapshot_sql:
# the fact's close_date and is_won). A partition written before a newer export (the nightly after
# the source sensor's import writes only its own date) kept "open" for deals won or lost since: the
# nightly called a won deal "lost" and the monthly retrain never saw a new outcome (an audit). These
# find such partitions and give their rows the star's outcome, features untouched.
# A close the newer export dates on or before the row's own date (entered late, backdated) is not
# given to the row: the deal was open there as far as the row knew, and an outcome before its as-of
# date would make a training row closing in negative days (a re-check); it keeps what it had.
_LATER = "(o.close_date IS NULL OR o.close_date > s.as_of_date)"
_FRESH_DATE = f"CASE WHEN {_LATER} THEN o.close_date ELSE s.outcome_date END"
_FRESH_WON = f"CASE WHEN NOT {_LATER} THEN s.is_won WHEN o.close_date IS NOT NULL THEN o.is_won END"
STALE_OUTCOMES_SQL = f"""SELECT s.as_of_date, count(*) AS n FROM features.deal_snapshot s
    JOIN star.fact_opportunity o USING (opportunity_id)
    WHERE s.outcome_date IS DISTINCT FROM {_FRESH_DATE} OR s.is_won IS DISTINCT FROM {_FRESH_WON}
    GROUP BY 1 ORDER BY 1"""


def fresh_outcomes_sql(dates: str) -> str:
    """Every stored row of the dates of `dates` (a dates_sql) with its deal's outcome as the star knows it."""
    return f"""SELECT s.* REPLACE ({_FRESH_DATE} AS outcome_date, {_FRESH_WON} AS is_won)
        FROM features.deal_snapshot s LEFT JOIN star.fact_opportunity o USING (opportunity_id)
        WHERE s.as_of_date IN (SELECT as_of_date FROM ({dates}))"""


def snapshot_sql(dates_sql: str, export_date_sql: str = EXPORT_DATE_SQL, star: str = "star",
                 fy_start_month: int = 1) -> str:
    """SELECT of features.deal_snapshot for every as-of date in `dates_sql` (one DATE column `as_of_date`).
    fy_start_month: the month the company's fiscal year starts in (settings.fiscal_year_start_month):
    days_to_quarter_end counts to the end of its fiscal quarter, where reps push deals.

    Deals with no dated event at all (e.g. MavenTech prospecting deals without engage date) can
    only be placed on the export date, so they join the snapshot from that date on.
    """
    return f"""
    WITH dates AS (SELECT DISTINCT as_of_date::DATE AS as_of_date FROM ({dates_sql})),
    -- recomputed where it is read (twice) rather than held: a range join is cheap, and
    -- DuckDB's materialized CTE of 28.7 M rows ran out of its memory limit at scale 100
    grid AS NOT MATERIALIZED (
        SELECT d.as_of_date, o.opportunity_id, o.account_id, o.rep_id, o.product_id, o.division,
               o.created_date, o.close_date, o.is_won, o.deal_type, o.lead_source
        FROM dates d JOIN {star}.fact_opportunity o ON {_open_on(export_date_sql)}),
    {_EVENTS.format(star=star)},
    {_OUTCOMES.format(star=star)},
    g1 AS (SELECT g.*, e.stage_ff, e.stage_since, e.n_stage_changes, e.n_pushes, e.close_ff,
                  e.close_first, e.amount_ff, e.amount_first, e.n_amount_changes,
                  coalesce(e.stage_ff, 'Prospecting') AS stage_now
           FROM (SELECT g0.*, a.n AS acc_n, a.wins AS acc_wins FROM grid g0 ASOF LEFT JOIN acc_hist a
                   ON a.account_id = g0.account_id AND g0.as_of_date >= a.close_date) g
           ASOF LEFT JOIN ev e
             ON e.opportunity_id = g.opportunity_id AND g.as_of_date >= e.changed_at),
    -- What else a row reads depends on its date and one key (rep, stage; the company): looked up
    -- once per (date, key) and hash-joined, not ASOF-joined row by row. Each ASOF join sorts its
    -- left side, and five of them sorted the whole grid as it widened (28.7 M rows at scale 100,
    -- spilling past the memory limit). The account's counts stay a row-by-row ASOF join, on the
    -- narrow grid: its (date, account) pairs are half the rows, and that hash join's build side
    -- ran the statement out of memory at scale 100.
    k_rate AS (SELECT d.as_of_date, gr.rate AS global_rate FROM dates d ASOF LEFT JOIN global_rate gr
                 ON d.as_of_date >= gr.close_date),
    k_rep AS (SELECT k.as_of_date, k.rep_id, r.n AS rep_n, r.wins AS rep_wins, l.open_deals AS rep_open_deals
              FROM (SELECT DISTINCT as_of_date, rep_id FROM grid WHERE rep_id IS NOT NULL) k
              ASOF LEFT JOIN rep_hist r ON r.rep_id = k.rep_id AND k.as_of_date >= r.close_date
              ASOF LEFT JOIN rep_load l ON l.rep_id = k.rep_id AND k.as_of_date >= l.d),
    k_norm AS (SELECT k.as_of_date, k.stage_now, n.norm_days
               FROM (SELECT as_of_date, stage AS stage_now FROM dates, (SELECT DISTINCT stage FROM stage_norms)) k
               ASOF LEFT JOIN stage_norms n ON n.stage = k.stage_now AND k.as_of_date >= n.ended),
    -- trailing window (T - TRAILING_DAYS, T]: running counts at T minus those at the window's
    -- start, looked up once per (date, rep) and (date, product), not per deal row
    tw_co AS (
        SELECT as_of_date, ((coalesce(a.wins, 0) - coalesce(b.wins, 0))
                            / nullif(coalesce(a.n, 0) - coalesce(b.n, 0), 0))::DOUBLE AS co_rate
        FROM (SELECT d.as_of_date, h.n, h.wins FROM dates d ASOF LEFT JOIN global_hist h
                ON d.as_of_date >= h.close_date) a
        JOIN (SELECT d.as_of_date, h.n, h.wins FROM dates d ASOF LEFT JOIN global_hist h
                ON d.as_of_date - INTERVAL {TRAILING_DAYS} DAY >= h.close_date) b USING (as_of_date)),
    {_trailing_lift("rep_id", "rep_hist")},
    {_trailing_lift("product_id", "prod_hist")},
    tw AS (SELECT g1.*, k_rate.global_rate, r.rep_n, r.rep_wins, r.rep_open_deals,
                  k_norm.norm_days, c.rep_lift, p.product_lift, tw_co.co_rate FROM g1
           LEFT JOIN k_rate USING (as_of_date)
           LEFT JOIN k_rep r ON r.as_of_date = g1.as_of_date AND r.rep_id = g1.rep_id
           LEFT JOIN k_norm ON k_norm.as_of_date = g1.as_of_date AND k_norm.stage_now = g1.stage_now
           LEFT JOIN tw_co USING (as_of_date)
           LEFT JOIN tw_rep_id c ON c.as_of_date = g1.as_of_date AND c.rep_id = g1.rep_id
           LEFT JOIN tw_product_id p ON p.as_of_date = g1.as_of_date AND p.product_id = g1.product_id)
    SELECT
        g.as_of_date, g.opportunity_id, g.account_id, g.rep_id, g.product_id,
        coalesce(g.division, 'Unassigned') AS division, g.stage_now AS stage,
        g.created_date, g.close_ff AS expected_close_date,
        (g.as_of_date - g.created_date) AS deal_age_days,
        (g.as_of_date - coalesce(g.stage_since, g.created_date)) AS days_in_stage,
        g.norm_days::DOUBLE AS stage_norm_days,
        ((g.as_of_date - coalesce(g.stage_since, g.created_date)) / nullif(g.norm_days, 0))::DOUBLE AS stage_time_ratio,
        coalesce(g.n_stage_changes, 0) AS n_stage_changes,
        coalesce(g.n_pushes, 0) AS n_pushes,
        coalesce(g.close_ff - g.close_first, 0) AS total_slip_days,
        (g.close_ff - g.as_of_date) AS days_to_expected_close,
        coalesce(g.n_amount_changes, 0) AS n_amount_changes,
        g.amount_ff AS amount,
        (g.amount_ff / nullif(g.amount_first, 0))::DOUBLE AS amount_change_ratio,
        p.list_price,
        (g.amount_ff / nullif(p.list_price, 0))::DOUBLE AS amount_to_list,
        coalesce(g.acc_wins, 0) AS account_prior_won,
        coalesce(g.acc_n - g.acc_wins, 0) AS account_prior_lost,
        ((coalesce(g.acc_wins, 0) + {SHRINK} * coalesce(g.global_rate, 0.5))
            / (coalesce(g.acc_n, 0) + {SHRINK}))::DOUBLE AS account_win_rate,
        a.employees AS account_employees, a.annual_revenue AS account_revenue,
        a.sector AS account_sector, g.deal_type, g.lead_source,
        coalesce(g.rep_n, 0) AS rep_prior_closed,
        ((coalesce(g.rep_wins, 0) + {SHRINK} * coalesce(g.global_rate, 0.5))
            / (coalesce(g.rep_n, 0) + {SHRINK}))::DOUBLE AS rep_win_rate,
        coalesce(g.rep_open_deals, 0) AS rep_open_deals,
        ({fiscal_quarter_start_sql('g.as_of_date', fy_start_month)} + INTERVAL 3 MONTH)::DATE - g.as_of_date
            AS days_to_quarter_end,
        month(g.as_of_date) AS month_of_year,
        -- no close of its own in the window: fully shrunk, lift 0 (NULL when the company has none)
        coalesce(g.rep_lift, g.co_rate * 0) AS {TRAILING[0]},
        coalesce(g.product_lift, g.co_rate * 0) AS {TRAILING[1]},
        g.close_date AS outcome_date,
        CASE WHEN g.close_date IS NOT NULL THEN g.is_won END AS is_won
    FROM tw g
    LEFT JOIN {star}.dim_product p ON p.product_id = g.product_id
    LEFT JOIN {star}.dim_account a ON a.account_id = g.account_id
    ORDER BY g.as_of_date, g.opportunity_id"""


def _trailing_lift(key: str, hist: str) -> str:
    """CTE tw_<key>: per (as-of date, key) (wins + SHRINK * rate) / (n + SHRINK) - rate over the
    trailing window, i.e. (wins - n * rate) / (n + SHRINK); NULL when the company closed none."""
    return f"""tw_{key} AS (
        SELECT k.as_of_date, k.{key}, ((coalesce(a.wins, 0) - coalesce(b.wins, 0)
                - (coalesce(a.n, 0) - coalesce(b.n, 0)) * k.co_rate)
                / (coalesce(a.n, 0) - coalesce(b.n, 0) + {SHRINK}))::DOUBLE AS {key.removesuffix('_id')}_lift
        FROM (SELECT * FROM tw_co, (SELECT DISTINCT {key} FROM {hist})) k
        ASOF LEFT JOIN {hist} a ON a.{key} = k.{key} AND k.as_of_date >= a.close_date
        ASOF LEFT JOIN {hist} b ON b.{key} = k.{key} AND k.as_of_date - INTERVAL {TRAILING_DAYS} DAY >= b.close_date)"""


def star_as_of_sql(t: str, schema: str) -> list[str]:
    """Statements that rebuild the star tables the snapshot reads as they stood at the end of
    day `t`, in `schema`: the production leakage check recomputes a stored partition from them
    and expects no difference.

    Cut at t means more than "history up to t, later closes undone": `fact_opportunity` keeps
    each deal's FINAL stage, amount, expected close date, close value and engage date, which a
    leaky snapshot could read. Here they are what the CRM showed on t: the last value in the
    history up to t (NULL when the history has none yet), so a snapshot that reads the final
    value of any of them gets a different number for every deal that changed after t.
    """
    day = f"DATE '{t}'"
    return [
        f"CREATE OR REPLACE SCHEMA {schema}",
        f"CREATE TABLE {schema}.fact_opportunity_history AS SELECT * FROM star.fact_opportunity_history "
        f"WHERE changed_at <= {day}",
        f"""CREATE TABLE {schema}.fact_opportunity AS
            WITH cut AS (
                SELECT opportunity_id,
                       last(stage ORDER BY changed_at, source_line NULLS LAST) FILTER (WHERE stage IS NOT NULL) AS stage,
                       last(amount ORDER BY changed_at, source_line NULLS LAST) FILTER (WHERE amount IS NOT NULL) AS amount,
                       last(expected_close_date ORDER BY changed_at, source_line NULLS LAST)
                           FILTER (WHERE expected_close_date IS NOT NULL) AS expected_close_date
                FROM {schema}.fact_opportunity_history GROUP BY opportunity_id)
            SELECT o.* REPLACE (
                a.stage AS stage,
                a.amount AS amount,
                a.expected_close_date AS expected_close_date,
                CASE WHEN o.engage_date > {day} THEN NULL ELSE o.engage_date END AS engage_date,
                CASE WHEN o.close_date > {day} THEN NULL ELSE o.close_value END AS close_value,
                CASE WHEN o.close_date > {day} THEN NULL ELSE o.close_date END AS close_date,
                CASE WHEN o.close_date > {day} THEN false ELSE o.is_closed END AS is_closed,
                CASE WHEN o.close_date > {day} THEN false ELSE o.is_won END AS is_won)
            FROM star.fact_opportunity o LEFT JOIN cut a USING (opportunity_id)
            WHERE o.created_date <= {day}""",
        f"CREATE TABLE {schema}.dim_product AS SELECT * FROM star.dim_product",
        f"CREATE TABLE {schema}.dim_account AS SELECT * FROM star.dim_account",
    ]


def with_derived(rows: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """The snapshot rows with the DERIVED model features among `features` added (from columns
    they carry); a model from before them (none in its features) needs no created_date."""
    wanted = {name: expr for name, expr in DERIVED.items() if name in features}
    return rows.with_columns(**wanted) if wanted else rows
