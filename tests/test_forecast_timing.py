"""The close-timing model: a proper distribution, sensible ordering, and no time travel."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from revintel_assets.defs.forecast import timing
import synthetic  # tests/synthetic.py: a fixture, not product code

CUTOFF = dt.date(2024, 6, 3)


@pytest.fixture(scope="module")
def data():
    return synthetic.history(n_deals=3000, seed=1)


def test_close_given_won_is_a_distribution_and_ordered(data):
    snaps, _, _ = data
    fitted = timing.fit(snaps, CUTOFF)
    rows = snaps.filter(pl.col("as_of_date") == CUTOFF)
    p = fitted.close_given_won(rows, CUTOFF, 120)
    assert p.shape == (len(rows), 121)
    assert (p >= 0).all() and np.allclose(p.sum(axis=1), 1)
    # a deal due in a week closes sooner than one due in four months (same stage, no pushes, young)
    base = rows.head(1).with_columns(pl.lit("Engaging").alias("stage"), pl.lit(0).alias("n_pushes"),
                                     pl.lit(20).alias("deal_age_days"))
    near = base.with_columns(pl.lit(7).alias("days_to_expected_close"))
    far = base.with_columns(pl.lit(130).alias("days_to_expected_close"))
    assert fitted.close_given_won(near, CUTOFF, 120)[0, :30].sum() > fitted.close_given_won(far, CUTOFF, 120)[0, :30].sum()


def test_calibrated_out_of_time(data):
    """Won deals open on a later date: predicted P(close within 60 days | won) vs what happened."""
    snaps, _, _ = data
    fitted = timing.fit(snaps, CUTOFF)
    later = CUTOFF + dt.timedelta(weeks=8)
    won = snaps.filter((pl.col("as_of_date") == later) & pl.col("is_won").fill_null(False))
    pred = fitted.close_given_won(won, later, 60)[:, :60].sum(axis=1).mean()
    obs = ((won["outcome_date"] - later).dt.total_days() <= 60).mean()
    assert abs(pred - obs) < 0.1


def test_no_time_travel(data):
    """Fitting at a cutoff reads nothing after it: dropping later snapshots and blanking later
    outcomes leaves the model unchanged (the snapshot features themselves are leakage-tested in
    test_deal_snapshot.py)."""
    snaps, _, _ = data
    full = timing.fit(snaps, CUTOFF)
    later = pl.col("outcome_date") > CUTOFF
    cut = snaps.filter(pl.col("as_of_date") < CUTOFF).with_columns(
        pl.when(later).then(None).otherwise(pl.col("is_won")).alias("is_won"),
        pl.when(later).then(None).otherwise(pl.col("outcome_date")).alias("outcome_date"))
    truncated = timing.fit(cut, CUTOFF)
    assert np.array_equal(full.hazard_won, truncated.hazard_won)
    assert np.array_equal(full.hazard_lost, truncated.hazard_lost)
    assert full.speed_rep == truncated.speed_rep and np.array_equal(full.calendar_weight, truncated.calendar_weight)
    # and the later future does change a model fitted later (the test is not vacuous)
    assert not np.array_equal(timing.fit(snaps, CUTOFF + dt.timedelta(weeks=26)).hazard_won, full.hazard_won)


def test_atom_sums_match_the_day_matrix(data):
    """close_given_won_atoms (what the forecast uses) is the day matrix summed over each atom's days,
    for calendars whose atoms cut bins anywhere (mid-week as-of dates, quarter ends, long horizons)."""
    from revintel_assets.defs.forecast.periods import calendar

    snaps, _, _ = data
    fitted = timing.fit(snaps, CUTOFF)
    rows = snaps.filter(pl.col("as_of_date") == CUTOFF)
    for as_of, weeks in ((CUTOFF, 13), (dt.date(2024, 6, 27), 4), (dt.date(2024, 9, 30), 13)):
        cal = calendar(as_of, weeks, 1)
        days = fitted.close_given_won(rows, as_of, cal.n_days)[:, :-1]
        expected = np.stack([days[:, cal.atom_of_day == a].sum(axis=1) for a in range(cal.n_atoms)], axis=1)
        got = fitted.close_given_won_atoms(rows, as_of, cal.atom_of_day, cal.n_atoms)
        assert got.shape == (len(rows), cal.n_atoms)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
