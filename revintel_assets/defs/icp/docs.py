"""COMMENT ON text for the ICP tables analysts query."""

from revintel_assets.defs.icp.features import FEATURE_WINDOWS
from revintel_resources.glossary import TABLE_GLOSSARY

FEATURES = ("One row per account active before cutoff_date × division: features from rows dated on or "
            "before the cutoff only; label = bought from the division in (cutoff, cutoff + label_window_months]. "
            "is_buyer separates accounts that already buy the division from whitespace (never bought). "
            "Columns ending _w3 / _w6 describe a coming window of 3 / 6 months; every cutoff carries both, "
            "whatever window its models use (label_window_months), so a shorter export never changes them.", {
    "cutoff_date": "Partition: features use data dated on or before this date",
    "division": "Partition: the target division (from star.dim_product)",
    "is_buyer": "Bought from the division on or before the cutoff (not whitespace)",
    "recency_days": "Days from the last purchase (any division) to the cutoff",
    "div_recency_days": "Days from the last purchase in the division to the cutoff (NULL: never bought it)",
    "div_active_months_24m": "Distinct months with a purchase in the division, last 24 months",
    "affinity_max": "Max over divisions the account owns of P(owns target | owns that division), pre-cutoff accounts",
    "segment_penetration": "Share of accounts with the same sector and country that own the division",
    **{f"division_season_index_w{w}": f"Division revenue in the coming {w} months' calendar months last year, "
                                      "relative to a flat year" for w in FEATURE_WINDOWS},
    "open_opps": "Opportunities in the division open at the cutoff (created on/before, not closed by it)",
    "lost_opps_12m": "Opportunities in the division lost in the 12 months before the cutoff",
    "label": "Bought from the division in the window after the cutoff (NULL while the window is open)",
    "label_amount": "Division revenue in the window after the cutoff (for value capture)",
    "label_new_buyer": "label and not is_buyer: a first purchase of the division",
})

CUTOFFS = ("The ICP calendar: every cutoff the models use, its role (training / evaluation / holdout / "
           "score) and which cutoffs train the model that scores it. Derived from the data's dates only.", {
    "role": "training: only trains; evaluation / holdout: a model is judged on it; score: the as-of date",
    "train_cutoffs": "Cutoffs whose label windows ended by this one: the rows its model trains on",
})

SCORES = ("Propensity that the account buys from the division within the window after cutoff_date, "
          "from the calibrated division model (model_version = MLflow registered name/version).", {
    "propensity": "Calibrated probability of a purchase in the division within the window (level shifted to the "
                  "same season last year's where the data reaches back a year; never above the calibrated top)",
    "decile": "1 = the top 10 % of accounts for this division and cutoff",
    "is_buyer": "Already bought the division before the cutoff",
    "champion": "The model that produced the propensity (validation.icp_models.champion)",
})

WHITESPACE = ("Divisions an account has never bought and has no open opportunity in, ranked by "
              "propensity × expected value: the revenue expected from the pair in the next window.", {
    "expected_value": "Revenue in the division over one window if the account buys: the mean first purchase of the "
                      "training windows given the division and the account's 12-month spend (a division level × the "
                      "spend to a fitted power); with under 30 first purchases, the share of wallet similar accounts "
                      "give the division, capped at the 95th percentile of its buyers",
    "whitespace_score": "propensity × expected_value: expected revenue in the next window",
    "rank_overall": "1 = the biggest opportunity of the cutoff",
    "rank_in_account": "1 = the account's best division to pitch",
    "rep_id": "The account's rep: on its latest order, else its latest opportunity",
})

MODELS = ("One row per ICP model (cutoff × division): what it trained on, where it is in MLflow, "
          "or why it was not trained.", {
    "status": "trained, or skipped with the reason in message",
    "model_uri": "MLflow model URI (pyfunc) used by scores.icp_scores",
    "champion": "Which of division_propensity (LightGBM), baseline_logistic, baseline_rfm, blend (mean of the "
                "calibrated LightGBM and logistic) scores this cutoff: the blend unless another candidate's mean AUC on "
                "the validation accounts of the evaluation cutoffs before it beats it by more than 0.01 (never the "
                "holdout accounts)",
    "champion_reason": "How the champion was chosen (or 'no validation rows: default' = the blend)",
})

IMPORTANCE = ("Gain share of each feature in each ICP model: what drives the model.", {
    "share": "Share of the model's total split gain",
})

VALIDATION = TABLE_GLOSSARY  # docs/CONTRACT.md §3; shared with every model family (model_family tells them apart)
