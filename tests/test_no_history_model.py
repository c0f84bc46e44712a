"""A source without a change log (Salesforce without OpportunityHistory.csv, a HubSpot deal export,
MavenTech): the derived history shows every closed deal prospecting with no amount until it closed,
while the deals open on the export date show their current stage and amount. The win model then
learns from and scores on the features every as-of date shows alike (snapshot.model_features), so
no open deal is scored on values its training rows never had.

The end-to-end test runs `revintel run` on an org written by benchmarks/heldout_generator.py (the
independent simulator, not the demo) with its OpportunityHistory.csv left out."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from revintel_assets.defs.deals.snapshot import (DEAL_ATTRIBUTES, LOGGED_HISTORY_MIN, MODEL_FEATURES, OWN_HISTORY,
                                                  model_features)
from revintel_assets.defs.deals.win_model import Windows, split_by_time, train
from test_cli_sources import ROOT, run_cli
from test_win_model_features import snaps  # noqa: F401  (the fixture: synthetic snapshots with every feature column)


def test_a_derived_history_leaves_out_what_only_the_export_date_shows():
    numeric, categorical = model_features(0.0)
    assert not set(numeric + categorical) & set(OWN_HISTORY)
    assert {"deal_age_days", "rep_win_rate", "account_win_rate", "product_id", "created_month"} <= set(numeric + categorical)
    logged_numeric, logged_categorical = model_features(LOGGED_HISTORY_MIN)
    assert logged_numeric + logged_categorical == MODEL_FEATURES


def test_scores_do_not_move_with_values_the_training_rows_never_showed(snaps):
    """An open deal's current stage and amount, known on the export date only, leave its score
    where it was with the derived-history features; the full feature set moves it (the skew)."""
    split = split_by_time(snaps, dt.date(2024, 9, 1), Windows())
    rows = split.holdout.head(200)
    moved = rows.with_columns(pl.lit("Negotiation").alias("stage"), (pl.col("amount") * 3 + 50_000).alias("amount"),
                              pl.lit(0.0).alias("days_in_stage"), pl.lit(1.0).alias("n_stage_changes"))
    numeric, categorical = model_features(0.0)
    free = train(split, max_rounds=30, numeric=numeric, categorical=categorical)
    assert free.encoder.features == [f for f in numeric + categorical if f not in DEAL_ATTRIBUTES]  # none here
    assert np.array_equal(free.predict(rows), free.predict(moved))
    full = train(split, max_rounds=30)
    assert not np.array_equal(full.predict(rows), full.predict(moved))


@pytest.fixture(scope="module")
def no_history_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("org_without_history")
    subprocess.run([sys.executable, "-m", "benchmarks.heldout_generator", "--seed", "3", "--deals", "2500",
                    "--out", str(root / "full")], cwd=ROOT, check=True, capture_output=True)
    src = root / "src"
    src.mkdir()
    for f in (root / "full").glob("*.csv"):
        if f.name != "OpportunityHistory.csv":
            shutil.copy(f, src)
    proc = run_cli(src, root / "data")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return root / "data", proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_win_models_of_an_export_without_history_read_no_feature_of_the_deals_own_log(no_history_run):
    data, console = no_history_run
    logged = [json.loads(p.read_text())["features"] for p in (data / "mlflow" / "artifacts").rglob("features.json")]
    deal_models = [f for f in logged if "deal_age_days" in f]
    assert len(deal_models) >= 2  # the evaluation cutoff's model and the one trained on everything
    assert all(f == model_features(0.0)[0] + model_features(0.0)[1] for f in deal_models)
    assert all(set(DEAL_ATTRIBUTES) <= set(f) for f in deal_models)  # the org's Type and LeadSource
    assert "0% of the closed deals have a logged stage history" in console
