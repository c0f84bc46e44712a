"""SHAP explanations: LightGBM's own TreeSHAP agrees with the shap package, adds up to the raw
log-odds, and the top features come out in order of magnitude with a sentence each."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest
import shap

from conftest import build_star
from revintel_assets.defs.deals.explain import top_contributions
from revintel_assets.defs.deals.snapshot import snapshot_sql
from revintel_assets.defs.deals.win_model import Windows, split_by_time, train
from revintel_assets.demo.generator import generate_company


@pytest.fixture(scope="module")
def model_and_rows(tmp_path_factory):
    src = tmp_path_factory.mktemp("shap") / "src"
    generate_company(src, scale=0.1, seed=11, progress=False)
    con = duckdb.connect()
    build_star(con, src)
    con.execute("CREATE OR REPLACE TABLE meta.source AS SELECT DATE '2025-12-31' AS export_date")
    dates = "SELECT unnest(generate_series(DATE '2023-03-06', DATE '2025-12-29', INTERVAL 14 DAY))::DATE AS as_of_date"
    snap = con.sql(snapshot_sql(dates)).pl()
    split = split_by_time(snap, dt.date(2025, 7, 1), Windows())
    model = train(split, max_rounds=150)
    rows = snap.filter(pl.col("as_of_date") == pl.col("as_of_date").max()).head(300)
    return model, rows


def test_lightgbm_treeshap_agrees_with_the_shap_package(model_and_rows):
    model, rows = model_and_rows
    ours = model.contributions(rows)
    explainer = shap.TreeExplainer(model.booster)
    theirs = explainer.shap_values(model.encoder.matrix(rows))
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    assert np.allclose(ours[:, :-1], theirs, atol=1e-6)
    # contributions + bias add up to the booster's raw log-odds (not the calibrated probability)
    assert np.allclose(ours.sum(axis=1), model.raw_log_odds(rows), atol=1e-6)


def test_top_contributions_are_ranked_and_worded(model_and_rows):
    model, rows = model_and_rows
    contrib = model.contributions(rows)
    out = top_contributions(rows.select("as_of_date", "opportunity_id"), rows, contrib, k=5)
    assert len(out) == 5 * len(rows)
    first = out.filter(pl.col("opportunity_id") == rows["opportunity_id"][0]).sort("rank")
    sizes = first["contribution"].abs().to_list()
    assert sizes == sorted(sizes, reverse=True)
    assert abs(sizes[0] - np.abs(contrib[0, : len(model.encoder.features)]).max()) < 1e-9
    assert first["explanation"].str.contains("deals like this win").all()
    assert set(first["direction"]) <= {"raises", "lowers"}
