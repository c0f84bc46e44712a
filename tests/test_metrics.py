"""validation.metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from revintel_assets.defs.validation.metrics import (calibrate, calibration_bins, classification_metrics, deciles,
                                                gains_table, propensity_metrics)

Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_classification_metrics_by_hand():
    m = classification_metrics(Y, P)
    assert m["auc"] == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs ordered right
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # precision 1 at the 1st buyer, 2/3 at the 2nd
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    assert m["ece"] == pytest.approx((0.1 + 0.4 + 0.65 + 0.2) / 4)  # one row per bin
    assert (m["n"], m["positives"]) == (4, 2)


def test_single_class_gives_nan_auc():
    m = classification_metrics([1, 1], [0.2, 0.9])
    assert math.isnan(m["auc"]) and math.isnan(m["pr_auc"]) and m["positives"] == 2


def test_calibration_bins_edges():
    bins = calibration_bins([0, 1, 1, 0], [0.0, 0.05, 1.0, 0.95])
    assert bins["bin"].to_list() == [1, 10]  # p = 1.0 belongs to the last bin, not an 11th
    assert bins["n"].to_list() == [2, 2]
    assert bins["mean_predicted"].to_list() == pytest.approx([0.025, 0.975])
    assert bins["observed_rate"].to_list() == pytest.approx([0.5, 0.5])


def _twenty():
    p = np.arange(20, 0, -1) / 20  # row i has the (i+1)-th highest score
    y = np.zeros(20)
    y[[0, 1, 2]] = 1
    value = np.zeros(20)
    value[[0, 2, 15]] = [10, 30, 60]
    return y, p, value


def test_gains_table_by_hand():
    y, p, value = _twenty()
    g = gains_table(y, p, value)
    assert g["decile"].to_list() == list(range(1, 11))
    assert g["n"].to_list() == [2] * 10
    assert g["positives"].to_list()[:3] == [2, 1, 0]
    assert g["lift"][0] == pytest.approx(1.0 / 0.15)  # rate 2/2 over base 3/20
    assert g["cumulative_capture"].to_list()[:2] == pytest.approx([2 / 3, 1.0])
    assert g["cumulative_value_capture"].to_list()[:2] == pytest.approx([0.1, 0.4])
    assert "value" not in gains_table(y, p).columns


def test_propensity_metrics_by_hand():
    y, p, value = _twenty()
    m = propensity_metrics(y, p, value)
    assert m["lift_top_decile"] == pytest.approx(1 / 0.15)
    assert m["precision_at_k"] == 1.0  # k = 2 = 10 % of 20
    assert m["value_capture_top_decile"] == pytest.approx(10 / 100)
    assert propensity_metrics(y, p, k=4)["precision_at_k"] == pytest.approx(3 / 4)


def test_deciles_are_stable_on_ties():
    assert deciles(np.ones(10)).tolist() == list(range(1, 11))  # ties: input order decides


def test_calibrate_picks_sigmoid_below_1000_rows_and_isotonic_above():
    rng = np.random.default_rng(0)
    for n, method in ((300, "sigmoid"), (3000, "isotonic")):
        raw = rng.normal(size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(-2 * raw))).astype(int)
        cal = calibrate(raw, y)
        assert cal.method == method
        out = cal(np.sort(raw))
        assert np.all(np.diff(out) >= -1e-12) and out.min() >= 0 and out.max() <= 1  # monotone probabilities
        assert abs(cal(raw).mean() - y.mean()) < 0.02  # calibrated on average
    with pytest.raises(ValueError):
        calibrate([0.1, 0.2], [1, 1])


def test_undefined_metrics_are_left_out_not_written_as_nan():
    """An AUC over one class and an empty bin's mean are NaN; written as such, avg(value) over
    validation.model_metrics was NaN (an analyst-table audit: 8 rows on a drifting demo, 84 on a
    Salesforce org)."""
    from revintel_assets.defs.validation.metrics import defined

    frame = pl.DataFrame({"metric": ["auc", "auc", "bin_0_10_made_rate", "n"],
                          "value": [0.7, float("nan"), None, 12.0]})
    assert defined(frame)["metric"].to_list() == ["auc", "n"]
