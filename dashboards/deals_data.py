"""Shared queries and wording for the deal pages (Pipeline Risk, Deal Detail).

Everything goes through ``dashboards.db`` (read-only, short connections, cached). Joins to the
dimensions are added only where the published file has them, so a warehouse without
``star.dim_rep`` still shows its scores (with ids instead of names).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from dashboards import db, fmt
from dashboards.fmt import pct  # noqa: F401  (pages call dd.pct)
from revintel_assets.defs.deals.explain import NO_EFFECT
from revintel_assets.defs.deals.risk import AT_RISK, CATEGORIES  # noqa: F401 (pages call dd.CATEGORIES)
from revintel_assets.defs.deals.snapshot import TRAILING
from revintel_assets.defs.forecast import outlook as _outlook
from revintel_assets.rules import CLOSED_BY_SQL, FLAT_BASELINE_REASON, deal_value, quarter_name, value_is_estimate
from revintel_resources.settings import settings

SCORES = "scores.deal_scores"
EXPLANATIONS = "scores.deal_explanations"
HISTORY = "star.fact_opportunity_history"
CATEGORY_COLORS = {"Low": "#2e7d32", "Medium": "#f9a825", "High": "#ef6c00", "Critical": "#c62828"}
BADGE_COLORS = {"Low": "green", "Medium": "yellow", "High": "orange", "Critical": "red"}
# Vega axis labels for money: 950, 12k, 3.4M (d3's "~s" prints 0.4k for 400)
RAISES, LOWERS = "#2e7d32", "#c62828"
SHAP_CAVEAT = ("Contributions are TreeSHAP values in the model's raw log-odds; the probability shown is "
               "calibrated afterwards, so the bars show direction and relative weight, not percentage points.")
BASELINE_CAVEAT = ("The stage baseline scored this deal, so there is one contribution: its stage's historical "
                   "win rate against the overall win rate, in log-odds. The probability shown is that stage rate "
                   "(the overall rate where the stage has no rate of its own: a contribution of 0).")


# how a page names an expected close date revintel estimated (scores.deal_scores.expected_close_estimated)
ESTIMATED_CLOSE = "estimated (no CRM date)"
NO_ACCOUNT = fmt.NO_ACCOUNT


def columns(table: str) -> set[str]:
    """Column names of ``schema.table`` in the published file (empty when it is missing)."""
    schema, _, name = table.rpartition(".")
    return set(db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                        "AND table_name = ?", [schema or "main", name])["column_name"].to_list())


def as_of_dates() -> list[dt.date]:
    """Dates with scores, latest first."""
    return db.query(f"SELECT DISTINCT as_of_date FROM {SCORES} ORDER BY 1 DESC")["as_of_date"].to_list()


def _dim(table: str, alias: str, key: str, wanted: dict[str, str]) -> tuple[str, list[str]]:
    """(join clause, select items) for the columns of ``wanted`` (column -> output name) the
    dimension has; absent ones become NULL so the pages see one shape."""
    have = columns(table) if db.table_exists(table) else set()
    items = [f"{alias}.{col} AS {out}" if col in have else f"NULL::VARCHAR AS {out}"
             for col, out in wanted.items()]
    join = f"LEFT JOIN {table} {alias} ON {alias}.{key} = s.{key}" if key in have else ""
    if not join:
        items = [f"NULL::VARCHAR AS {out}" for out in wanted.values()]
    return join, items


def scored_deals(as_of: dt.date) -> pl.DataFrame:
    """The deals scored on ``as_of`` with account / rep / product names, manager, region, division."""
    acc_join, acc = _dim("star.dim_account", "a", "account_id", {"account_name": "account_name"})
    rep_join, rep = _dim("star.dim_rep", "r", "rep_id", {"rep_name": "rep_name", "manager": "manager",
                                                          "region": "region"})
    prd_join, prd = _dim("star.dim_product", "p", "product_id", {"product_name": "product_name",
                                                                  "division": "product_division",
                                                                  "list_price": "list_price"})
    have = columns(SCORES)
    division = "s.division" if "division" in have else "NULL::VARCHAR"
    # a warehouse scored before the flag existed cannot tell an estimate from a CRM date: NULL, shown as unknown
    estimated = "s.expected_close_estimated" if "expected_close_estimated" in have else "NULL::BOOLEAN"
    df = db.query(f"""
        SELECT s.opportunity_id, s.account_id, s.rep_id, s.product_id, s.stage, s.amount::DOUBLE AS amount,
               s.win_probability::DOUBLE AS win_probability, s.expected_close_date,
               {estimated} AS expected_close_estimated,
               s.risk_score::DOUBLE AS risk_score, s.risk_category, s.risk_drivers, s.recommended_action,
               s.model_version, {division} AS score_division, {', '.join(acc + rep + prd)}
        FROM {SCORES} s {acc_join} {rep_join} {prd_join}
        WHERE s.as_of_date = ?
        ORDER BY s.risk_score DESC, s.amount DESC NULLS LAST, s.opportunity_id""", [as_of])
    return df.with_columns(
        # MavenTech's prospecting deals name no account (1,425 of them): said, not printed "None"
        pl.coalesce("account_name", "account_id", pl.lit(NO_ACCOUNT)).alias("account"),
        pl.coalesce("rep_name", "rep_id").alias("rep"),
        pl.coalesce("product_name", "product_id").alias("product"),
        pl.coalesce("score_division", "product_division").alias("division"),
        # one rule for what an open deal is worth on every page (revintel_assets/rules.py)
        deal_value(list_price="list_price").alias("value"),
        value_is_estimate().alias("value_is_estimate"),
    ).drop("score_division", "product_division")


def closed_by(as_of: dt.date) -> int | None:
    """Deals closed (won or lost) by ``as_of``: what any win probability is learned from (None: no
    opportunity table to tell)."""
    if not db.table_exists("star.fact_opportunity") or db.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'star' "
            "AND table_name = 'fact_opportunity' AND column_name IN ('is_closed', 'close_date')") < 2:
        return None
    return int(db.scalar(CLOSED_BY_SQL, [as_of]))


def model_note(versions: list[str], as_of: dt.date, closed: int | None = None) -> str:
    """An honest sentence on which model produced the scores of ``as_of``; ``closed``: deals closed
    by then (0: the probabilities are a prior, and the note says so)."""
    versions = sorted(v for v in versions if v)
    if not versions:
        return f"Deals open on {as_of}; no model version recorded for their scores."
    parts = []
    for v in versions:
        if v.startswith("baseline_stage@") and closed == 0:
            parts.append(f"`{v}` — no deal had closed by {as_of}, so there is no outcome to learn from: every win "
                         "probability is the stage baseline's prior, and the expected value is not an estimate")
        elif v.startswith("baseline_stage@"):
            parts.append(f"`{v}` — no trained model beat the stage baseline on held-out data by "
                         f"{v.split('@', 1)[1]}, so the stage baseline scores these deals: each deal's win "
                         "probability is its stage's historical win rate, shrunk toward the overall rate (the "
                         "overall rate itself for a stage no closed deal was seen in)")
        else:
            # the latest model's own holdout rows may not exist yet (trained to the export date): the
            # evidence that promoted it is the gate's (Model Health), not a held-out win of its own
            parts.append(f"`{v}` — the LightGBM win-probability model that was champion on this date "
                         "(promoted by the champion gate, whose evidence Model Health shows; probabilities "
                         "calibrated)")
    return f"Deals open on {as_of}, scored by " + "; ".join(parts) + "."


def flat_note(probabilities: pl.Series, as_of: dt.date, versions: list[str] | None = None) -> str | None:
    """A warning when every open deal of the date has the same win probability: the scores rank
    nothing (a HubSpot export without a change log showed 0.430 on every deal, an export without lost
    deals 0.9999, without a word; the run's summary says the same: revintel_assets/headline.py)."""
    values = probabilities.drop_nulls()
    if len(values) < 2 or values.round(6).n_unique() > 1:
        return None
    why = f" {FLAT_BASELINE_REASON}" if versions and all(map(is_baseline, versions)) else ""
    return (f"Every deal open on {as_of} has the same win probability ({values[0]:.1%}): these scores do not rank "
            f"the deals.{why}")


def is_baseline(version: str | None) -> bool:
    return bool(version) and str(version).startswith("baseline_stage@")


def explanations(as_of: dt.date, opportunity_id: str) -> pl.DataFrame:
    if not db.table_exists(EXPLANATIONS):
        return pl.DataFrame()
    return db.query(f"SELECT rank, feature, feature_value::VARCHAR AS feature_value, "
                    f"contribution::DOUBLE AS contribution, "
                    "direction, explanation "
                    f"FROM {EXPLANATIONS} WHERE as_of_date = ? AND opportunity_id = ? ORDER BY rank",
                    [as_of, opportunity_id])


MONEY_FEATURES = {"amount", "list_price"}  # not account_revenue: in the export's unit (MavenTech: millions)
RATE_FEATURES = {"account_win_rate", "rep_win_rate"}
LIFT_FEATURES = set(TRAILING)  # rate differences
RATIO_FEATURES = {"stage_time_ratio", "amount_change_ratio", "amount_to_list"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def revenue_in_millions() -> bool:
    """MavenTech-layout accounts.csv (and the demo's) give revenue in millions (star.dim_account's
    column comment); Salesforce's AnnualRevenue and the others in currency units."""
    if not db.table_exists("meta.source"):
        return False
    return "maventech" in str(db.scalar("SELECT max(source_format) FROM meta.source") or "").split("+")


def feature_value(feature: str, value: str | None, products: dict[str, str] | None = None) -> str:
    """A feature's value for people: "$85,620", "58%", "3.6x", "March", a product's name."""
    if value is None:
        return "unknown"
    if feature == "product_id":
        return (products or {}).get(value, value)
    try:
        x = float(value)
    except ValueError:
        return value[:40]
    if feature in MONEY_FEATURES:
        return fmt.money(x)
    if feature == "account_revenue":  # an audit: MavenTech's 526.01 (millions) read "$526"
        return fmt.money_short(x * 1e6) if revenue_in_millions() else fmt.money(x)
    if feature in RATE_FEATURES:
        return fmt.pct(x)
    if feature in LIFT_FEATURES:  # as the stored explanation words it (deals/explain.py): "12 points below"
        return f"{abs(x) * 100:.0f} points {'above' if x >= 0 else 'below'}"
    if feature in RATIO_FEATURES:
        return f"{x:.1f}x"
    if feature in ("month_of_year", "created_month") and 1 <= x <= 12:
        return MONTHS[int(x) - 1]
    return f"{x:,.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.2f}"


def feature_label(feature: str, value: str | None, products: dict[str, str] | None = None) -> str:
    """"Time in stage vs usual: 3.6x" rather than the stored ``stage_time_ratio = 3.5515443306923196``."""
    return f"{fmt.feature(feature)}: {feature_value(feature, value, products)}"


def explain_sentence(feature: str, value: str | None, contribution: float,
                     products: dict[str, str] | None = None) -> str:
    """One readable sentence per contribution: "Deal amount is $85,620: deals like this win less often";
    a contribution of 0 (below explain.NO_EFFECT, the table's direction 'none') has no effect."""
    if abs(contribution) < NO_EFFECT:
        return f"{feature_label(feature, value, products)} — no effect on this deal's score"
    effect = "more" if contribution > 0 else "less"
    return f"{feature_label(feature, value, products)} — deals like this win {effect} often"


def _fmt_amount(x: float | None) -> str:
    return fmt.money(x)


LANES = ["Stage", "Expected close", "Amount"]


def history(opportunity_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the deal's change log with values carried forward and each row's change in words,
    one timeline event per change: ``changed_at, lane, label, detail``)."""
    empty = pl.DataFrame()
    if not db.table_exists(HISTORY):
        return empty, empty
    order = "changed_at, source_line NULLS LAST" if "source_line" in columns(HISTORY) else "changed_at"
    raw = db.query(f"SELECT changed_at::DATE AS changed_at, stage, expected_close_date, amount::DOUBLE AS amount "
                   f"FROM {HISTORY} WHERE opportunity_id = ? AND changed_at IS NOT NULL ORDER BY {order}",
                   [opportunity_id])
    if raw.is_empty():
        return raw, empty
    log = raw.with_columns(pl.col("stage", "expected_close_date", "amount").forward_fill())
    changes, events, prev = [], [], {"stage": None, "expected_close_date": None, "amount": None}
    for row in log.iter_rows(named=True):
        what = []
        if row["stage"] != prev["stage"] and row["stage"] is not None:
            what.append(f"stage {prev['stage']} → {row['stage']}" if prev["stage"] else f"opened in {row['stage']}")
            events.append((row["changed_at"], "Stage", row["stage"], what[-1]))
        old, new = prev["expected_close_date"], row["expected_close_date"]
        if new != old and new is not None:
            if old is None:
                what.append(f"close date set to {new}")
                label = f"{new:%b %d, %Y}"
            else:
                days = (new - old).days
                what.append(f"close date {'pushed' if days > 0 else 'pulled in'} {old} → {new} ({days:+d} d)")
                label = f"{days:+d} d"
            events.append((row["changed_at"], "Expected close", label, what[-1]))
        if row["amount"] != prev["amount"] and row["amount"] is not None:
            what.append(f"amount {_fmt_amount(prev['amount'])} → {_fmt_amount(row['amount'])}"
                        if prev["amount"] is not None else f"amount {_fmt_amount(row['amount'])}")
            events.append((row["changed_at"], "Amount", _fmt_amount(row["amount"]), what[-1]))
        changes.append("; ".join(what) or "no change")
        prev = row
    timeline = pl.DataFrame(events, schema={"changed_at": pl.Date, "lane": pl.String, "label": pl.String,
                                            "detail": pl.String}, orient="row")
    # labels alternate above / below the dots so that neighbouring changes do not overwrite each other
    timeline = timeline.with_columns((pl.int_range(pl.len()).over("lane") % 2 == 0).alias("above"))
    return log.with_columns(pl.Series("change", changes, dtype=pl.String)), timeline


# ---------------------------------------------------------------- quarters, outlook and the roll-up
OUTLOOK = "scores.deal_outlook"
CHANGES = "scores.pipeline_changes"
PERIOD_LABELS = {"this_quarter": "This quarter", "next_quarter": "Next quarter"}
SLIP_WINDOW_DAYS = 91  # slips counted over the last 13 weeks, the forecast's horizon


def quarter_bounds(as_of: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """This and next fiscal quarter of the as-of date, as scores.deal_outlook counts them."""
    return _outlook.quarter_bounds(as_of, settings().fiscal_year_start_month)


def quarter_label(start: dt.date) -> str:
    return quarter_name(start, settings().fiscal_year_start_month)


def close_period(as_of: dt.date) -> pl.Expr:
    """The expected close date's period relative to ``as_of``: past due, this / next quarter, later."""
    bounds = quarter_bounds(as_of)
    close = pl.col("expected_close_date")
    return (pl.when(close.is_null()).then(pl.lit("No close date"))
            .when(close < as_of).then(pl.lit("Past due"))
            # a quarter's last day: "this quarter" is the next one (rules.current_quarter_start)
            .when(close < bounds["this_quarter"][0]).then(pl.lit("Due today"))
            .when(close < bounds["this_quarter"][1]).then(pl.lit(f"This quarter ({quarter_label(bounds['this_quarter'][0])})"))
            .when(close < bounds["next_quarter"][1]).then(pl.lit(f"Next quarter ({quarter_label(bounds['next_quarter'][0])})"))
            .otherwise(pl.lit("Later")))


def outlook(as_of: dt.date, period: str) -> pl.DataFrame:
    """opportunity_id, p_win_in_period, p_slip, p_lose of ``period`` on ``as_of`` (empty when not built)."""
    if not db.table_exists(OUTLOOK):
        return pl.DataFrame(schema={"opportunity_id": pl.String, "p_win_in_period": pl.Float64,
                                    "p_slip": pl.Float64, "p_lose": pl.Float64})
    return db.query(f"SELECT opportunity_id, p_win_in_period::DOUBLE AS p_win_in_period, p_slip::DOUBLE AS p_slip, "
                    f"p_lose::DOUBLE AS p_lose FROM {OUTLOOK} WHERE as_of_date = ? AND period = ?", [as_of, period])


def rep_history(as_of: dt.date) -> pl.DataFrame:
    """Per rep, what was known on ``as_of``: deals won and closed (win rate = won / closed) and the
    deals whose close date was pushed out of its quarter in the last SLIP_WINDOW_DAYS."""
    out = pl.DataFrame(schema={"rep_id": pl.String, "won": pl.Int64, "closed": pl.Int64, "slips": pl.Int64})
    if db.table_exists("star.fact_opportunity") and {"is_closed", "is_won", "close_date", "rep_id"} <= columns(
            "star.fact_opportunity"):
        closed = db.query("SELECT rep_id::VARCHAR AS rep_id, count(*) FILTER (WHERE is_won)::BIGINT AS won, "
                          "count(*)::BIGINT AS closed FROM star.fact_opportunity "
                          "WHERE is_closed AND close_date <= ? GROUP BY 1", [as_of])
        out = closed.with_columns(pl.lit(0, dtype=pl.Int64).alias("slips"))
    if db.table_exists(CHANGES):
        # deals, not push events (a deal pushed on two dates is one slip): what the column says it counts
        slips = db.query(f"SELECT rep_id::VARCHAR AS rep_id, count(DISTINCT opportunity_id)::BIGINT AS slips "
                         f"FROM {CHANGES} WHERE category = 'pushed_out' AND as_of_date > ? AND as_of_date <= ? GROUP BY 1",
                         [as_of - dt.timedelta(days=SLIP_WINDOW_DAYS), as_of])
        out = (out.drop("slips").join(slips, on="rep_id", how="full", coalesce=True)
               .with_columns(pl.col("won", "closed", "slips").fill_null(0)))
    return out


def rollup(deals: pl.DataFrame, history_by_rep: pl.DataFrame, by: str) -> pl.DataFrame:
    """One row per ``by`` (rep or manager): pipeline, expected, at risk of the deals given, win rate
    (closed deals) and slips of its reps. ``deals`` needs rep_id, rep, manager, value, expected, risk_category."""
    reps = deals.select("rep_id", "rep", "manager").unique("rep_id")
    known = history_by_rep.join(reps, on="rep_id", how="inner")
    per = deals.group_by(by).agg(
        pl.len().alias("deals"), pl.col("value").sum().alias("pipeline"), pl.col("expected").sum().alias("expected"),
        pl.col("value").filter(pl.col("risk_category").is_in(AT_RISK)).sum().alias("at_risk"))
    hist = known.group_by(by).agg(pl.col("won", "closed", "slips").sum())
    return (per.join(hist, on=by, how="left").with_columns(pl.col("won", "closed", "slips").fill_null(0))
            .with_columns(pl.when(pl.col("closed") > 0).then(pl.col("won") / pl.col("closed")).alias("win_rate"),
                          # a rep whose open deals are all valued 0 has no share (0 / 0 was NaN and the
                          # page's percentage crashed on it)
                          pl.when(pl.col("pipeline") > 0).then(pl.col("at_risk") / pl.col("pipeline"))
                          .alias("at_risk_share"))
            .sort("pipeline", descending=True))
