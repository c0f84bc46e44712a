"""Issue 17: the win model's cutoffs fit at once through parallel.map_tasks; a model is the same
whichever process fits it, and a worker is sent only the rows the fit reads."""

from __future__ import annotations

import datetime as dt

import numpy as np

from revintel_assets.defs.deals.assets import training_rows
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.tasks import fit_part, fit_win_model
from revintel_assets.defs.deals.win_model import split_by_time
from revintel_assets.parallel import map_tasks
from tests.conftest import ReadOnlyWarehouse


def test_win_model_fits_in_worker_processes_equal_fits_here(demo_data):
    data, _, _ = demo_data
    wh = ReadOnlyWarehouse(data / "warehouse" / "revintel.duckdb")
    bounds = wh.query("SELECT min(created_date) AS first, max(as_of_date) AS last FROM features.deal_snapshot")
    windows = DealPlan(bounds["first"][0], bounds["last"][0]).windows
    cutoffs = [dt.date.fromisoformat(c) for c in
               wh.query("SELECT DISTINCT cutoff_date::VARCHAR AS c FROM validation.model_metrics "
                        "WHERE model_family = 'deals' ORDER BY 1")["c"]]
    assert cutoffs
    splits = [split_by_time(training_rows(wh, c + dt.timedelta(days=windows.holdout_days), 3_000_000)[0], c, windows)
              for c in cutoffs]
    parts = [fit_part(s) for s in splits]
    for s, p in zip(splits, parts):  # the worker gets training, validation and censored rows only
        assert p.train.equals(s.train) and p.validation.equals(s.validation)
        assert len(p.holdout) == 0 and p.baseline_rows is None and p.holdout.columns == s.holdout.columns
    here = [fit_win_model(p) for p in parts]
    # each task twice: with two workers the pool process takes some of them, this process the rest
    pooled = list(map_tasks(fit_win_model, [(p,) for p in parts] * 2, 2))
    rows = splits[0].validation
    for k, m in enumerate(pooled):
        ref = here[k % len(parts)]
        assert m.best_iteration == ref.best_iteration and m.calibrator.method == ref.calibrator.method
        assert np.array_equal(m.predict(rows), ref.predict(rows))
        assert np.array_equal(m.validation_oof, ref.validation_oof)
