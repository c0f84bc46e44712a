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
from revintel_assets.defs.deals.snapshot import snapshot_sql, with_derived
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
    # scoring's one pass: the probability predict() gives and the same contributions, bit for bit
    p, contrib = model.explain(rows)
    assert np.array_equal(p, model.predict(rows)) and np.array_equal(contrib, ours)


def test_top_contributions_are_ranked_and_worded(model_and_rows):
    model, rows = model_and_rows
    contrib = model.contributions(rows)
    out = top_contributions(rows.select("as_of_date", "opportunity_id"), rows, contrib, k=5,
                           names=model.encoder.features)
    assert len(out) == 5 * len(rows)
    first = out.filter(pl.col("opportunity_id") == rows["opportunity_id"][0]).sort("rank")
    sizes = first["contribution"].abs().to_list()
    assert sizes == sorted(sizes, reverse=True)
    assert abs(sizes[0] - np.abs(contrib[0, : len(model.encoder.features)]).max()) < 1e-9
    assert first["explanation"].str.contains("deals like this win").all()
    assert set(first["direction"]) <= {"raises", "lowers"}
    # each value is its own row's cell of that feature, as text (gathered column by column)
    cells = with_derived(rows, model.encoder.features).with_columns(
        pl.col(model.encoder.features).cast(pl.Utf8))
    expected = [cells[feature][int(row)] for row, feature in zip(np.repeat(np.arange(len(rows)), 5), out["feature"])]
    assert out["feature_value"].to_list() == expected and out["feature_value"].null_count() < len(out)


def test_grouped_treeshap_equals_lightgbms_pred_contrib(model_and_rows):
    """treeshap.py (TreeSHAP once per pattern of decisions a row takes in a tree, by LightGBM's
    decision rules) against one pred_contrib call: the same values up to float rounding, on the
    deal model (categorical splits, missing values) and on models with NaN / zero-heavy /
    categorical columns, scored on rows that hit every rule (NaN, zeros and values within
    LightGBM's zero threshold, values exactly on a threshold, negative, fractional, unseen and
    missing categories); a row's values do not depend on the other rows of the call."""
    import lightgbm as lgb

    from revintel_assets.defs.deals import treeshap

    model, rows = model_and_rows
    x = model.encoder.matrix(rows)
    full = model.booster.predict(x, num_iteration=model.best_iteration, pred_contrib=True)
    assert np.abs(treeshap.contributions(model.booster, x, model.best_iteration) - full).max() < 1e-9

    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 5))
    x[:, 1] = np.where(rng.random(4000) < 0.3, 0.0, x[:, 1])  # zeros (missing_type Zero when zero_as_missing)
    x[:, 2] = np.where(rng.random(4000) < 0.2, np.nan, x[:, 2])  # NaN: the default direction
    x[rng.random(4000) < 0.15, 2] = 0.0
    x[:, 3] = rng.integers(0, 40, 4000)  # a categorical column, many values (split as sets)
    x[rng.random(4000) < 0.1, 3] = np.nan
    x[:, 4] = rng.integers(0, 3, 4000)  # a categorical column split one-hot
    # negative or not matters in column 2 (NaN and zeros too): splits at minus LightGBM's zero threshold
    y = (x[:, 0] + np.nan_to_num(x[:, 2]) + 2 * (x[:, 2] >= 0) + (x[:, 3] % 2) + x[:, 4]
         + rng.normal(size=4000) > 1).astype(int)
    # 15 leaves as revintel trains; 31 and 70 leaves take the hashed and the row-by-row paths
    at_zero = set()  # missing types of the splits at minus the zero threshold the rows hit
    for zero_as_missing, use_missing, leaves in ((False, True, 15), (True, True, 15), (False, False, 15),
                                                 (False, True, 31), (True, True, 70)):
        booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": leaves,
                             "zero_as_missing": zero_as_missing, "use_missing": use_missing,
                             "min_data_per_group": 20, "max_cat_to_onehot": 4},
                            lgb.Dataset(x, y, categorical_feature=[3, 4]), 40)
        odd = x[:1200].copy()
        odd[:100, 3], odd[100:200, 3], odd[200:300, 3], odd[300:400, 3] = -1, 77, 2.7, -0.5
        odd[400:500], odd[500:600, 1], odd[600:700, 0], odd[700:800, 4] = np.nan, 1e-36, -0.0, 9
        numeric = [n for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"])
                   if n["decision_type"] == "<="]
        # a row exactly on each threshold: it goes left, unless the threshold lies within LightGBM's
        # zero threshold of 0 (such values read as 0)
        on = x[np.arange(len(numeric)) % len(x)].copy()
        on[np.arange(len(numeric)), [n["split_feature"] for n in numeric]] = [n["threshold"] for n in numeric]
        z = np.concatenate([x, odd, on])
        full = booster.predict(z, pred_contrib=True)
        ours = treeshap.contributions(booster, z, None)
        assert ours.shape == full.shape and np.abs(ours - full).max() < 1e-9
        # the raw score from each pattern's leaf: LightGBM's own, bit for bit (early-stopped too)
        assert np.array_equal(treeshap.explain(booster, z, None)[:, -1], booster.predict(z, raw_score=True))
        assert np.array_equal(treeshap.explain(booster, z, 17)[:, -1], booster.predict(z, raw_score=True, num_iteration=17))
        at_zero |= {n["missing_type"] for n in numeric if -1e-30 < n["threshold"] < 0}
        assert np.array_equal(np.concatenate([treeshap.contributions(booster, z[:1500], None),
                                              treeshap.contributions(booster, z[1500:], None)]), ours)
    assert at_zero >= {"None", "NaN"}
    assert treeshap.contributions(booster, x[:0], None).shape == (0, 6)


def _nodes(node: dict) -> list[dict]:
    """Every split node of a dumped LightGBM tree."""
    if "split_feature" not in node:
        return []
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])]


def test_trailing_lifts_read_as_points_above_or_below_the_company():
    ids = pl.DataFrame({"as_of_date": [dt.date(2025, 1, 1)] * 2, "opportunity_id": ["a", "b"]})
    feats = pl.DataFrame({"rep_win_lift_180d": [0.123, -0.05], "product_win_lift_180d": [None, 0.0]},
                         schema={"rep_win_lift_180d": pl.Float64, "product_win_lift_180d": pl.Float64})
    out = top_contributions(ids, feats, np.array([[0.5, -0.1], [-0.2, 0.3]]), k=2,
                            names=["rep_win_lift_180d", "product_win_lift_180d"])["explanation"].to_list()
    assert out[0] == "Rep's win rate over the last 180 days is 12 points above the company's; deals like this win more often"
    assert out[1].startswith("Product's win rate over the last 180 days is unknown relative to the company's")
    assert out[3].startswith("Rep's win rate over the last 180 days is 5 points below the company's; deals like this win less")


def test_an_unknown_value_reads_as_a_sentence():
    """An audit: every deal without an amount was explained "Priced at unknownx list"."""
    ids = pl.DataFrame({"as_of_date": [dt.date(2025, 1, 1)] * 2, "opportunity_id": ["a", "b"]})
    feats = pl.DataFrame({"amount_to_list": [None, 1.25], "account_win_rate": [None, 0.5]},
                         schema={"amount_to_list": pl.Float64, "account_win_rate": pl.Float64})
    out = top_contributions(ids, feats, np.array([[-0.5, -0.1], [0.4, 0.3]]), k=2,
                            names=["amount_to_list", "account_win_rate"])["explanation"].to_list()
    assert out[0] == "No amount yet to set against the list price; deals like this win less often"
    assert out[1] == "Account win rate so far unknown; deals like this win less often"
    assert out[2] == "Priced at 1.2x list; deals like this win more often"


def test_a_contribution_of_float_noise_has_no_direction():
    """A model or baseline that scores every deal alike explained MavenTech's deals with +-6e-16
    (77,602 rows "raises", 15,121 "lowers"); the demo had 531 "raises" of exactly 0. Such a
    contribution is 0 with direction "none", and its sentence says so."""
    import datetime as dt

    from revintel_assets.defs.deals.scoring import _stage_only

    ids = pl.DataFrame({"as_of_date": [dt.date(2025, 1, 6)] * 3, "opportunity_id": ["a", "b", "c"]})
    rows = pl.DataFrame({"deal_age_days": [10, 20, 30], "stage": ["Engaging"] * 3})
    contrib = np.array([[0.4, 6e-16], [-0.3, -6e-16], [0.0, 0.0]])
    out = top_contributions(ids, rows, contrib, k=2, names=["deal_age_days", "stage"]).sort("opportunity_id", "rank")
    assert out["direction"].to_list() == ["raises", "none", "lowers", "none", "none", "none"]
    assert out["contribution"].to_list()[1] == 0.0
    assert out["explanation"][1].endswith("no effect on this deal's score")
    assert out["explanation"][0].endswith("deals like this win more often")
    stage = _stage_only(ids, rows, np.array([6e-16, -6e-16, -0.2]))
    assert stage["direction"].to_list() == ["none", "none", "lowers"]
