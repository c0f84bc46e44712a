"""benchmarks/seeds.py's arithmetic on a tiny hand-made input (the real runs are minutes each and
live in README's table, not in a test)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from benchmarks.seeds import AGE_BANDS, deal_metrics, flatten, summarise, table


def _rows() -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    age = np.array([3, 5, 20, 40, 70, 90, 10, 100])
    rows = pl.DataFrame({"is_won": y.astype(bool), "deal_age_days": age})
    perfect = y * 0.8 + 0.1
    young_wrong = np.where(age <= 14, 1 - perfect, perfect)  # ranks young deals backwards
    return rows, {"revintel": young_wrong, "reference": perfect, "oracle": perfect,
                  "baseline_stage": np.full(8, 0.5), "baseline_base_rate": np.full(8, 0.5),
                  "baseline_naive_bayes": np.full(8, 0.5)}


def test_deal_metrics_split_by_age_band():
    rows, preds = _rows()
    m = deal_metrics(rows, preds)
    assert m["age_band_rows"] == {"0-14 d": 3, "15-60 d": 2, "> 60 d": 3}
    assert m["reference"]["auc"] == 1.0 and m["reference"]["auc 0-14 d"] == 1.0
    assert m["revintel"]["auc 0-14 d"] == 0.0 and m["revintel"]["auc > 60 d"] == 1.0
    assert m["baseline_stage"]["auc"] == 0.5
    assert math.isclose(m["reference"]["brier"], 0.01)


def _result(seed: int, drift: float, shift: float) -> dict:
    rows, preds = _rows()
    preds["revintel"] = np.clip(preds["revintel"] + shift, 0, 1)
    return {"seed": seed, "drift": drift, "deals": deal_metrics(rows, preds),
            "icp": {"champion_auc": 0.7 + shift, "best_baseline_auc": 0.69, "auc_by_model": {"baseline_rfm": 0.69}},
            "forecast": {"coverage_p10_p90 week": 0.8, "coverage_p10_p90 month": 0.75 + shift}}


def test_summary_is_mean_and_sample_sd_per_drift():
    results = [_result(101, 0.0, 0.0), _result(202, 0.0, 0.1), _result(101, 1.0, 0.0)]
    flat = flatten(results[0])
    assert flat["deal revintel AUC - reference"] == flat["deal revintel auc"] - 1.0
    assert {f"deal oracle AUC {label}" for _, _, label in AGE_BANDS} <= set(flat)
    s = summarise(results)
    assert set(s) == {"0", "1"}
    icp = s["0"]["icp champion AUC"]
    assert math.isclose(icp["mean"], 0.75) and math.isclose(icp["sd"], np.std([0.7, 0.8], ddof=1)) and icp["n"] == 2
    assert math.isnan(s["1"]["icp champion AUC"]["sd"])  # one seed: no spread claimed
    md = table(s, [101, 202], 0.5)
    assert "scale 0.5" in md and "| icp champion AUC | 0.7500 ± 0.0707 | 0.7000 ± nan |" in md


def test_compact_table_has_a_column_per_drift():
    from benchmarks.seeds import compact_table

    s = summarise([_result(101, 0.0, 0.0), _result(202, 0.0, 0.1), _result(101, 1.0, 0.0)])
    md = compact_table(s)
    assert md.splitlines()[0] == "| figure | drift 0 | drift 1 |"
    assert "| ICP: per-division champion, mean AUC | 0.750 ± 0.071 | 0.700 ± nan |" in md
    assert "deal: revintel − reference AUC" in md and "weekly (no swing)" in md


def test_open_at_export_figures_are_flattened_and_rendered_beside_the_holdout():
    """The deals open at the export date (eventual outcomes) get their own figures and compact
    rows; a result collected before them (an older --json) renders as missing, not as zero."""
    from benchmarks.seeds import OPEN_MODELS, compact_table

    rows, preds = _rows()
    with_open = _result(101, 0.0, 0.0) | {"deals_open_at_export": deal_metrics(rows, {m: preds[m] for m in OPEN_MODELS})}
    flat = flatten(with_open)
    assert math.isclose(flat["deal open at export reference brier"], 0.01)
    assert flat["deal open at export revintel auc"] == flat["deal revintel auc"]  # same rows and scores here
    assert not any(k.startswith("deal open at export") for k in flatten(_result(101, 1.0, 0.0)))
    md = compact_table(summarise([with_open, _result(101, 1.0, 0.0)]))
    line = next(x for x in md.splitlines() if x.startswith("| deal, open at the export date (eventual outcomes): reference"))
    assert line.endswith(f"| 1.000 ± nan / 0.0100 ± nan / {flat['deal open at export reference ece']:.3f} ± nan "
                         "| – / – / – |")
