"""Default COMMENT ON text for columns that mean the same in every analyst table.

A table's own column comments win; these fill the rest so `DESCRIBE`/duckdb_columns() explain
every key column an analyst joins on or filters by."""

import re

GLOSSARY = {
    "as_of_date": "Date the row is as of: only what was known on this date went into it",
    "cutoff_date": "Cutoff date: features use rows dated on or before it; labels come after it",
    "opportunity_id": "Opportunity key (star.fact_opportunity)",
    "account_id": "Account key (star.dim_account)",
    "rep_id": "Sales rep key (star.dim_rep)",
    "product_id": "Product / SKU key (star.dim_product)",
    "division": "Product division; 'all' for models over every division",
    "stage": "Deal stage: Prospecting, Engaging, Proposal, Negotiation, Won or Lost",
    "amount": "Money in the source's currency",
    "close_date": "Date the deal closed (NULL while open)",
    "created_date": "Date the deal was created",
    "engage_date": "Date the deal left Prospecting",
    "expected_close_date": "Expected close date",
    "is_closed": "TRUE once the deal is Won or Lost",
    "is_won": "TRUE for won deals",
    "order_date": "Date of the order",
    "quantity": "Units on the line",
    "source": "Where the row came from",
    "source_file": "Raw file the row came from",
    "source_line": "Physical line of the row in source_file",
    "model_name": "Model or baseline name (docs/CONTRACT.md §3)",
    "model_version": "Registered model version, or the baseline and its fit date",
    "model_family": "Which part of revintel wrote the row: deals, icp, forecast, outlook or quota_attainment",
    "origins": "How many past origins the metric was judged on (outlook rows)",
    "split": "validation (used for early stopping / calibration) or holdout (never seen by any choice)",
    "metric": "Metric name (docs/CONTRACT.md §3)",
    "value": "Metric value",
    # one column name, two uses (an audit: the forecast tables' segments read as ICP accounts)
    "segment": "What the row covers: in forecast and plan tables the region, manager, rep or division named "
               "by segment_type ('total' for all); in model metrics the rows measured ('all', or 'never_bought': "
               "accounts that had not bought the division)",
    "bin": "Equal-width probability bin, 1..10",
    "mean_predicted": "Mean predicted probability in the bin",
    "observed_rate": "Observed positive rate in the bin",
    "n": "Rows",
    "positives": "Rows with a positive outcome",
    "decile": "Decile of the score, 1 = top 10 %",
    "lift": "Positive rate in the decile / overall positive rate",
    "cumulative_capture": "Share of all positives in deciles 1..k",
    "propensity": "Calibrated probability of buying from the division in the window",
    "window_months": "Length of the label window in months",
    "period_type": "week, month or quarter",
    "period_start": "First day of the period",
    "segment_type": "total, region, manager, rep or division",
    "p10": "10th percentile of simulated booked revenue",
    "p50": "Median of simulated booked revenue",
    "p90": "90th percentile of simulated booked revenue",
    "mean": "Mean of simulated booked revenue",
    "month_start": "First day of the month",
    "loaded_at": "When the row was loaded",
    "region": "Regional office / branch",
    "manager": "Sales manager",
    "sector": "Industry sector",
    "country": "Country",
    "rep_name": "Sales rep's name as the source writes it",
    "product_name": "Product name",
    "date": "Calendar date",
    "year": "Calendar year (not the fiscal year)",
    "win_probability": "Calibrated probability that the deal is won",
    "risk_drivers": "What raised the risk score, in words (low win probability, stalled, pushed, amount cut, value)",
    "recommended_action": "The next step the risk drivers call for, in words",
    "rank": "Rank within the row's group, 1 = first",
    "feature": "Model feature (column name; `explanation` says it in words)",
    "feature_value": "The feature's value for this row, as the model read it",
    "explanation": "The feature and its effect on the score, in words",
    "compare_date": "The earlier date the row compares with (the previous as-of date)",
    "period": "The period the row is about: this_quarter / next_quarter (the fiscal quarter holding the day "
              "after the as-of date, and the one after it), or quarter / month",
    "category": "What happened between compare_date and as_of_date (new, won, lost, pulled_in, pushed_out, "
                "amount or stage changes, unchanged); start / end: the pipeline on each date",
    "period_end": "Last day of the period",
    "first_day": "First day the forecast counts: the period's first day, or the day after the as-of date when "
                 "the period had begun",
    "last_day": "Last day of the period",
    "abs_error": "|actual - p50|",
    "pinball_p10": "Pinball (quantile) loss of p10 against the actual: lower is better",
    "pinball_p50": "Pinball (quantile) loss of p50 against the actual (half the absolute error)",
    "pinball_p90": "Pinball (quantile) loss of p90 against the actual: lower is better",
}

# Comments of tables several assets write (each of its partitions): the first writer without a
# comment of its own sets it (Warehouse._comment), so the table says what it is whichever family
# wrote first (MavenTech's, written by the deal model and the forecast only, had none).
TABLE_GLOSSARY = {  # docs/CONTRACT.md §3
    "validation.model_metrics": "Metrics of every model and baseline per cutoff, division and split (validation / "
                                "holdout), measured on rows the model never saw. segment 'never_bought' (ICP): only "
                                "accounts that had not bought the division.",
    "validation.holdout_gains": "Gains table per model, cutoff and division: decile 1 = top 10 % by score; lift = "
                                "decile buyer rate / overall rate; cumulative_capture = share of buyers in deciles 1..k.",
    "validation.calibration_bins": "Calibration per model: 10 equal-width bins of the predicted probability with the "
                                   "observed rate.",
}

# Model features as people read them (explanations, importance charts). Deal features by name;
# the ICP's many windowed features by their parts (div_active_months_24m -> "months with a purchase
# in the division, last 24 months"), so a new window needs no new entry.
FEATURE_NAMES = {
    "deal_age_days": "deal age (days)", "days_in_stage": "days in the current stage",
    "stage_norm_days": "usual days in this stage", "stage_time_ratio": "time in stage vs usual",
    "n_stage_changes": "stage changes", "n_pushes": "close date pushes", "total_slip_days": "days the close date slipped",
    "days_to_expected_close": "days to expected close", "n_amount_changes": "amount changes", "amount": "deal amount",
    "amount_change_ratio": "amount vs first estimate", "list_price": "product list price",
    "amount_to_list": "price vs list", "account_win_rate": "account's win rate", "account_employees": "account employees",
    "account_revenue": "account revenue", "rep_win_rate": "rep's win rate", "days_to_quarter_end": "days to quarter end",
    "month_of_year": "month of the year", "created_month": "month the deal was opened",
    "rep_win_lift_180d": "rep's win rate, last 180 days, vs the company's",
    "product_win_lift_180d": "product's win rate, last 180 days, vs the company's", "stage": "stage", "product_id": "product", "division": "division",
    "account_sector": "sector", "deal_type": "deal type",
    "lead_source": "lead source", "account_prior_won": "account's deals won", "account_prior_lost": "account's deals lost",
    "rep_prior_closed": "rep's deals closed", "rep_open_deals": "rep's open deals",
    # ICP
    "recency_days": "days since the last purchase", "tenure_days": "days as a customer",
    "frequency": "buying days", "monetary": "spend", "active_months": "months with a purchase",
    "active_month_rate": "share of months with a purchase", "gap_mean_days": "average days between purchases",
    "gap_sd_days": "spread of days between purchases", "gap_median_days": "median days between purchases",
    "gap_max_days": "longest gap between purchases (days)", "gap_cv": "irregularity of purchases",
    "overdue_ratio": "days since last purchase vs the usual gap", "returned": "returns",
    "avg_day_value": "average spend per buying day", "trend_3m": "spend trend (3 vs previous 3 months)",
    "trend_6m": "spend trend (6 vs previous 6 months)", "share": "share of the account's spend",
    "day_share": "share of the account's buying days", "other_divisions_owned": "other divisions bought",
    "other_divisions_owned_6m_ago": "other divisions bought 6 months before",
    "affinity_max": "strongest cross-division affinity", "affinity_mean": "average cross-division affinity",
    "segment_penetration": "share of similar accounts that buy the division",
    "division_season_index": "division seasonality in the coming window", "division_momentum": "division momentum",
    "open_opps": "open opportunities", "lost_opps_12m": "opportunities lost, last 12 months",
    "won_opps": "opportunities won", "days_since_opp": "days since the last opportunity",
    "frequency_last_year_window": "buying days in the same window last year",
    "year_established": "year established", "has_parent": "part of a group", "employees": "employees",
    "annual_revenue": "annual revenue",
}
_WINDOWS = {"all": "all time", "12m": "last 12 months", "24m": "last 24 months", "3m": "last 3 months",
            "6m": "last 6 months", "1m": "last month"}


def feature_name(feature: str) -> str:
    """A model feature in words; unknown ones with underscores as spaces (never the raw column)."""
    name = feature.removeprefix("rank__")  # ICP ranks features within each cutoff
    coming = re.fullmatch(r"(.+)_w(\d+)", name)  # ICP: a column about the coming w-month window
    if coming:
        words = feature_name(coming[1])
        return (words.replace("window", f"{coming[2]}-month window", 1) if "window" in words
                else f"{words} ({coming[2]}-month window)")
    if name in FEATURE_NAMES:
        return FEATURE_NAMES[name]
    division = name.startswith("div_")
    base = name.removeprefix("div_")
    window = None
    head, _, tail = base.rpartition("_")
    if head and tail in _WINDOWS:
        base, window = head, _WINDOWS[tail]
    words = FEATURE_NAMES.get(base, base.replace("_", " "))
    if division:
        words += " in the division"
    return f"{words}, {window}" if window else words
