"""The analyst tables of docs/CONTRACT.md §3 and their key columns, declared once.

The contract promises these tables whatever the source holds; a source that cannot produce one (a
CRM without transactions has no ICP tables, a transactions log no deal tables) still gets it, as an
empty view with these columns (`defs/star/assets.py` contract_placeholders, `Warehouse.
ensure_placeholders`) until an asset writes its rows. Producers write more columns than these.
`tests/test_contract_tables.py` holds this list to the contract's table and to the tables the demo
writes (names and types), so none of the three can drift from the others.
"""

from __future__ import annotations

TABLES: dict[str, dict[str, str]] = {
    "star.dim_account": {
        "account_id": "VARCHAR", "account_name": "VARCHAR", "sector": "VARCHAR", "employees": "BIGINT",
        "annual_revenue": "DOUBLE", "country": "VARCHAR", "parent_account_id": "VARCHAR",
    },
    "star.dim_rep": {"rep_id": "VARCHAR", "rep_name": "VARCHAR", "manager": "VARCHAR", "region": "VARCHAR"},
    "star.dim_product": {
        "product_id": "VARCHAR", "product_name": "VARCHAR", "series": "VARCHAR", "division": "VARCHAR",
        "list_price": "DOUBLE",
    },
    "star.dim_date": {
        "date": "DATE", "week_start": "DATE", "month_start": "DATE", "quarter": "BIGINT", "year": "BIGINT",
    },
    "star.fact_opportunity": {
        "opportunity_id": "VARCHAR", "account_id": "VARCHAR", "rep_id": "VARCHAR", "product_id": "VARCHAR",
        "division": "VARCHAR", "stage": "VARCHAR", "created_date": "DATE", "engage_date": "DATE",
        "expected_close_date": "DATE", "close_date": "DATE", "amount": "DOUBLE", "is_closed": "BOOLEAN",
        "is_won": "BOOLEAN", "forecast_category": "VARCHAR", "import_flag": "VARCHAR", "deal_type": "VARCHAR",
        "lead_source": "VARCHAR",
    },
    "star.fact_opportunity_history": {
        "opportunity_id": "VARCHAR", "changed_at": "DATE", "stage": "VARCHAR", "expected_close_date": "DATE",
        "amount": "DOUBLE",
    },
    "star.fact_transactions": {
        "account_id": "VARCHAR", "order_date": "DATE", "product_id": "VARCHAR", "division": "VARCHAR",
        "quantity": "DOUBLE", "amount": "DOUBLE", "source": "VARCHAR",
    },
    "star.quarantine": {
        "source_file": "VARCHAR", "line_number": "BIGINT", "raw_row": "VARCHAR", "reason": "VARCHAR",
        "loaded_at": "TIMESTAMP",
    },
    "star.quotas": {
        "owner_type": "VARCHAR", "owner": "VARCHAR", "period_type": "VARCHAR", "period_start": "DATE",
        "period_end": "DATE", "amount": "DOUBLE",
    },
    "features.deal_snapshot": {"as_of_date": "DATE", "opportunity_id": "VARCHAR"},
    "features.customer_division": {
        "cutoff_date": "DATE", "division": "VARCHAR", "account_id": "VARCHAR", "label": "BOOLEAN",
    },
    "scores.deal_scores": {
        "as_of_date": "DATE", "opportunity_id": "VARCHAR", "account_id": "VARCHAR", "rep_id": "VARCHAR",
        "product_id": "VARCHAR", "stage": "VARCHAR", "amount": "DOUBLE", "value": "DOUBLE",
        "value_is_estimate": "BOOLEAN", "win_probability": "DOUBLE",
        "expected_close_date": "DATE", "expected_close_estimated": "BOOLEAN", "risk_score": "DOUBLE",
        "risk_category": "VARCHAR",
        "risk_drivers": "VARCHAR", "recommended_action": "VARCHAR", "model_version": "VARCHAR",
    },
    "scores.deal_explanations": {
        "as_of_date": "DATE", "opportunity_id": "VARCHAR", "rank": "INTEGER", "feature": "VARCHAR",
        "feature_value": "VARCHAR", "contribution": "DOUBLE", "direction": "VARCHAR", "explanation": "VARCHAR",
    },
    "scores.icp_scores": {
        "cutoff_date": "DATE", "division": "VARCHAR", "account_id": "VARCHAR", "propensity": "DOUBLE",
        "decile": "INTEGER", "model_version": "VARCHAR",
    },
    "scores.whitespace": {
        "cutoff_date": "DATE", "account_id": "VARCHAR", "division": "VARCHAR", "propensity": "DOUBLE",
        "expected_value": "DOUBLE", "whitespace_score": "DOUBLE", "rank_overall": "BIGINT",
        "rank_in_account": "BIGINT", "rep_id": "VARCHAR",
    },
    "scores.pipeline_changes": {
        "as_of_date": "DATE", "compare_date": "DATE", "opportunity_id": "VARCHAR", "category": "VARCHAR",
    },
    "scores.pipeline_waterfall": {
        "as_of_date": "DATE", "compare_date": "DATE", "period": "VARCHAR", "segment_type": "VARCHAR",
        "segment": "VARCHAR", "category": "VARCHAR", "deals": "BIGINT", "amount": "DOUBLE",
    },
    "scores.deal_outlook": {
        "as_of_date": "DATE", "opportunity_id": "VARCHAR", "period": "VARCHAR", "p_win_in_period": "DOUBLE",
        "p_slip": "DOUBLE", "p_lose": "DOUBLE",
    },
    "scores.deal_alerts": {
        "as_of_date": "DATE", "opportunity_id": "VARCHAR", "rep_id": "VARCHAR", "alert_type": "VARCHAR",
        "detail": "VARCHAR",
    },
    "forecast.quota_attainment": {
        "as_of_date": "DATE", "period": "VARCHAR", "period_label": "VARCHAR", "period_start": "DATE",
        "period_end": "DATE", "segment_type": "VARCHAR", "segment": "VARCHAR", "quota": "DOUBLE",
        "quota_source": "VARCHAR", "booked_to_date": "DOUBLE", "open_pipeline": "DOUBLE",
        "coverage_ratio": "DOUBLE", "weighted_pipeline": "DOUBLE", "commit": "DOUBLE", "best_case": "DOUBLE",
        "p10": "DOUBLE", "p50": "DOUBLE", "p90": "DOUBLE", "mean": "DOUBLE", "p_hit_quota": "DOUBLE",
        "gap_to_plan": "DOUBLE",
    },
    "forecast.plan_deals": {
        "as_of_date": "DATE", "period": "VARCHAR", "period_start": "DATE", "opportunity_id": "VARCHAR",
        "rep_id": "VARCHAR", "stage": "VARCHAR", "forecast_category": "VARCHAR", "amount": "DOUBLE",
        "win_probability": "DOUBLE", "p_in_period": "DOUBLE", "expected_in_period": "DOUBLE",
        "sd_in_period": "DOUBLE", "upside": "DOUBLE",
    },
    "forecast.forecast_accuracy": {
        "as_of_date": "DATE", "weeks_before_period_end": "INTEGER", "week_of_quarter": "INTEGER",
        "lead_days": "INTEGER", "period_type": "VARCHAR", "period_start": "DATE", "first_day": "DATE",
        "last_day": "DATE", "segment_type": "VARCHAR", "segment": "VARCHAR", "model_name": "VARCHAR",
        "p10": "DOUBLE", "p50": "DOUBLE", "p90": "DOUBLE", "actual": "DOUBLE", "booked_before": "DOUBLE",
        "error": "DOUBLE", "abs_error": "DOUBLE", "covered": "BOOLEAN", "pinball_p10": "DOUBLE",
        "pinball_p50": "DOUBLE", "pinball_p90": "DOUBLE", "evaluated_as_of": "DATE",
    },
    "forecast.revenue_forecast": {
        "as_of_date": "DATE", "period_type": "VARCHAR", "period_start": "DATE", "first_day": "DATE",
        "last_day": "DATE", "segment_type": "VARCHAR", "segment": "VARCHAR", "p10": "DOUBLE", "p50": "DOUBLE",
        "p90": "DOUBLE", "mean": "DOUBLE", "weighted_pipeline": "DOUBLE", "commit": "DOUBLE",
    },
    "forecast.forecast_backtest": {
        "as_of_date": "DATE", "period_type": "VARCHAR", "period_start": "DATE", "segment_type": "VARCHAR",
        "segment": "VARCHAR", "p10": "DOUBLE", "p50": "DOUBLE", "p90": "DOUBLE", "actual": "DOUBLE",
        "covered": "BOOLEAN",
    },
    "validation.model_metrics": {
        "model_family": "VARCHAR", "model_name": "VARCHAR", "model_version": "VARCHAR", "cutoff_date": "DATE",
        "division": "VARCHAR", "split": "VARCHAR", "segment": "VARCHAR", "segment_type": "VARCHAR",
        "period_type": "VARCHAR", "metric": "VARCHAR", "value": "DOUBLE",
    },
    "validation.holdout_gains": {
        "model_family": "VARCHAR", "model_name": "VARCHAR", "cutoff_date": "DATE", "division": "VARCHAR",
        "decile": "INTEGER", "n": "BIGINT", "positives": "DOUBLE", "lift": "DOUBLE", "cumulative_capture": "DOUBLE",
    },
    "validation.calibration_bins": {
        "model_family": "VARCHAR", "model_name": "VARCHAR", "cutoff_date": "DATE", "division": "VARCHAR",
        "split": "VARCHAR", "bin": "INTEGER", "mean_predicted": "DOUBLE", "observed_rate": "DOUBLE", "n": "BIGINT",
    },
}
