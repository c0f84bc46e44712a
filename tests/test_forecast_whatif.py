"""What-if: a segment's forecast recomputed from the forecast's own engine after edits; seeded."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import synthetic  # tests/synthetic.py

from revintel_assets.defs.forecast import model, probabilities, timing, whatif
from revintel_assets.defs.forecast.periods import calendar

AS_OF = dt.date(2024, 9, 30)
SIGMA = (0.1, 0.2)


@pytest.fixture(scope="module")
def stored():
    snaps, opps, reps = synthetic.history(n_deals=2000, seed=4)
    fn = probabilities.stage_baseline(snaps.filter(pl.col("is_won").is_not_null()))
    rows = snaps.filter(pl.col("as_of_date") == AS_OF).drop("outcome_date", "is_won")
    p, _ = fn(AS_OF, rows)
    deals = rows.with_columns(pl.Series("win_probability", p))
    frame, prep, _ = model.forecast(deals, timing.fit(snaps, AS_OF), calendar(AS_OF, 13), reps, opps, 4000, 3, *SIGMA)
    manager = sorted(reps["manager"].unique().to_list())[0]
    return frame, prep, manager


def _quarter(frame: pl.DataFrame) -> dict:
    return frame.filter(pl.col("period_type") == "quarter").row(0, named=True)


def test_no_edits_is_the_stored_forecast_and_seeded(stored):
    frame, prep, manager = stored
    base = whatif.segment_base(prep, "manager", manager, SIGMA)
    a, b = whatif.recompute(base, n_sims=4000, seed=11), whatif.recompute(base, n_sims=4000, seed=11)
    assert a.equals(b)  # identical inputs, identical outputs
    assert not a.equals(whatif.recompute(base, n_sims=4000, seed=12))  # ... and the seed is what fixes them
    # the same engine on the segment's own deals: the stored forecast's figures, up to Monte-Carlo noise
    ref = _quarter(frame.filter((pl.col("segment_type") == "manager") & (pl.col("segment") == manager)))
    got = _quarter(a)
    assert got["mean"] == pytest.approx(ref["mean"], rel=0.03) and got["p50"] == pytest.approx(ref["p50"], rel=0.05)
    assert base.deals["rep_id"].is_in([r for r in base.reps]).all() and len(base.deals) < len(prep.deals)


def test_excluding_a_deal_lowers_the_forecast_by_its_expected_revenue(stored):
    _, prep, manager = stored
    base = whatif.segment_base(prep, "manager", manager, SIGMA)
    in_quarter = base.q @ base.cal.period_matrix("quarter")[:, 0]
    big = int(np.argmax(in_quarter * base.deals["amount"].to_numpy()))  # the deal worth most to the quarter
    deal = base.deals["opportunity_id"][big]
    before = _quarter(whatif.recompute(base, seed=5))
    after = _quarter(whatif.recompute(base, whatif.Edits(exclude=frozenset({deal})), seed=5))
    expected = in_quarter[big] * base.deals["amount"][big]
    assert after["deals"] == before["deals"] - 1
    assert after["p50"] < before["p50"] and after["p90"] < before["p90"]
    assert before["mean"] - after["mean"] == pytest.approx(expected, rel=0.1)


def test_probability_close_date_and_new_deal_edits(stored):
    _, prep, manager = stored
    base = whatif.segment_base(prep, "manager", manager, (0.0, 0.0))
    cal = base.cal
    q_end = cal.period_bounds("quarter")[0][1]
    before = _quarter(whatif.recompute(base, seed=5))
    # a sure deal added inside the quarter: every simulation books it
    sure = whatif.Edits(added=(whatif.NewDeal(1_000_000.0, q_end - dt.timedelta(days=3), 1.0, base.reps[0]),))
    added = _quarter(whatif.recompute(base, sure, seed=5))
    assert added["deals"] == before["deals"] + 1 and added["p10"] > before["p10"] + 0.8e6
    assert added["mean"] - before["mean"] == pytest.approx(1e6, rel=0.05)
    # a deal moved past the quarter no longer counts in it; certain and moved in, it counts in full
    in_quarter = base.q @ cal.period_matrix("quarter")[:, 0]
    i = int(np.argmax(in_quarter * base.deals["amount"].to_numpy()))
    deal, amount = base.deals["opportunity_id"][i], base.deals["amount"][i]
    later = _quarter(whatif.recompute(base, whatif.Edits(close_dates={deal: q_end + dt.timedelta(days=20)}), seed=5))
    assert before["mean"] - later["mean"] == pytest.approx(in_quarter[i] * amount, rel=0.1)
    won = _quarter(whatif.recompute(base, whatif.Edits(close_dates={deal: q_end}, probabilities={deal: 1.0}), seed=5))
    assert won["mean"] - before["mean"] == pytest.approx((1 - in_quarter[i]) * amount, rel=0.1)
    # the chance of reaching a quota: certain at 0, nil far above P90, from the same draws as P10-P90
    assert _quarter(whatif.recompute(base, seed=5, quota=0.0))["p_hit_quota"] == 1.0
    assert _quarter(whatif.recompute(base, seed=5, quota=before["p90"] * 3))["p_hit_quota"] == 0.0
    mid = _quarter(whatif.recompute(base, seed=5, quota=before["p50"]))["p_hit_quota"]
    assert 0.4 <= mid <= 0.6
