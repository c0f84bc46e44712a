"""Issue 17: the ICP fits fan out through parallel.map_tasks; the models are the same whichever
process fits them, and the rows they train on come in a fixed order (LightGBM's bagging draws
rows by position, so a different order is a different model)."""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets.defs.icp.assets import ROW_ORDER, _training_task, load_plan
from revintel_assets.defs.icp.model import MODEL_NAME, DivisionModel
from revintel_assets.defs.icp.tasks import fit_division
from revintel_assets.parallel import map_tasks
from tests.conftest import ReadOnlyWarehouse


def test_fits_in_worker_processes_equal_fits_here(demo_data):
    data, _, _ = demo_data
    wh = ReadOnlyWarehouse(data / "warehouse" / "revintel.duckdb")
    plan, divs = load_plan(wh)
    cutoff = plan.score_cutoff
    tasks = [_training_task(wh, plan, cutoff, d) for d in divs]
    for rows, _, _ in tasks:
        assert rows.select("cutoff_date", "account_id").equals(rows.select("cutoff_date", "account_id").sort("cutoff_date", "account_id"))
    here = [fit_division(*t) for t in tasks]
    trained = [i for i, m in enumerate(here) if isinstance(m, DivisionModel)]
    assert trained, [str(m) for m in here]
    chosen = [tasks[i] for i in trained][:2]
    # each task twice: with two workers the pool process takes some of them, this process the rest
    pooled = list(map_tasks(fit_division, chosen * 2, 2))
    scored = wh.query(f"SELECT * FROM features.customer_division WHERE cutoff_date = ? {ROW_ORDER}", [cutoff])
    for k, m in enumerate(pooled):
        ref = here[trained[k % len(chosen)]]
        rows = scored.filter(pl.col("division") == ref.division)
        assert m.best_iteration == ref.best_iteration and m.features == ref.features
        a, b = ref.predict_all(rows), m.predict_all(rows)
        assert np.array_equal(a[MODEL_NAME], b[MODEL_NAME]) and np.array_equal(a["baseline_rfm"], b["baseline_rfm"])
        # scikit-learn's lbfgs differs in the last bit from fit to fit, in one process too
        np.testing.assert_allclose(b["baseline_logistic"], a["baseline_logistic"], rtol=0, atol=1e-12)
