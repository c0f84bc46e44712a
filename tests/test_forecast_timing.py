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


def test_categorical_and_string_inputs_fit_the_same(data):
    """The fit looks values up through categorical codes (fast on 22M rows): the same model whether
    the columns come as strings or categoricals, with nulls, an empty rep and a stage the model does
    not know, and the same cell codes as a plain string lookup."""
    snaps, _, _ = data
    n = len(snaps)
    odd = snaps.with_columns(
        pl.when(pl.int_range(n) % 97 == 0).then(None).when(pl.int_range(n) % 89 == 0).then(pl.lit("Custom stage"))
        .otherwise(pl.col("stage")).alias("stage"),
        pl.when(pl.int_range(n) % 83 == 0).then(None).when(pl.int_range(n) % 79 == 0).then(pl.lit(""))
        .otherwise(pl.col("rep_id")).alias("rep_id"),
        pl.when(pl.int_range(n) % 73 == 0).then(None).otherwise(pl.col("product_id")).alias("product_id"))
    as_cat = odd.with_columns(pl.col("stage", "rep_id", "product_id").cast(pl.Categorical))
    a, b = timing.fit(odd, CUTOFF), timing.fit(as_cat, CUTOFF)
    assert np.array_equal(a.hazard_won, b.hazard_won) and np.array_equal(a.hazard_lost, b.hazard_lost)
    assert a.speed_rep == b.speed_rep and a.speed_product == b.speed_product and "" not in a.speed_rep
    stage = odd["stage"].replace_strict({s: i for i, s in enumerate(timing.STAGES)}, default=len(timing.STAGES),
                                        return_dtype=pl.Int64).to_numpy()
    assert np.array_equal(timing.cell_codes(as_cat)[2], stage) and (stage == len(timing.STAGES)).sum() > 0
    keys, inverse = timing._codes(as_cat["rep_id"])
    strings = as_cat["rep_id"].cast(pl.Utf8).fill_null("").to_list()
    assert keys == sorted(set(strings)) and [keys[i] for i in inverse] == strings


def test_a_run_fits_each_cutoff_once_until_the_snapshots_change(data, tmp_path):
    """forecast/assets.py timing_fit: the nightly's outlook and quota attainment share one fit (no
    second read of the rows), and a logged rewrite of the snapshots or a raw SQL write is fitted again."""
    from revintel_assets.defs.forecast.assets import timing_fit
    from revintel_resources.warehouse import Warehouse

    snaps, _, _ = data
    wh = Warehouse.from_env(tmp_path)
    wh.write("features.deal_snapshot", snaps, partition_column="as_of_date",
             partition_values=snaps["as_of_date"].unique().to_list())
    first = timing_fit(wh, CUTOFF)
    assert np.array_equal(first.hazard_won, timing.fit(snaps, CUTOFF).hazard_won)

    def no_read():
        raise AssertionError("read the snapshot rows again")
    assert timing_fit(wh, CUTOFF, no_read) is first
    last = snaps.filter(pl.col("as_of_date") == snaps["as_of_date"].filter(snaps["as_of_date"] < CUTOFF).max())
    wh.write("features.deal_snapshot", last.with_columns(pl.lit("Negotiating").alias("stage")),
             partition_column="as_of_date", partition_values=[last["as_of_date"][0]])  # logged
    second = timing_fit(wh, CUTOFF)
    assert second is not first and not np.array_equal(second.hazard_won, first.hazard_won)
    wh.execute("UPDATE features.deal_snapshot SET n_pushes = n_pushes + 3")  # outside the log
    third = timing_fit(wh, CUTOFF)
    assert third is not second and not np.array_equal(third.hazard_won, second.hazard_won)


def test_the_forecast_does_not_depend_on_the_order_of_the_rows_it_learns_from():
    """The warehouse returns a join's rows, and a rewritten snapshot partition's, in an order that
    varies between runs: the timing fit (rep / product speeds) and the new pipeline (amounts drawn by
    position) gave other numbers on a rerun (the backtest chose another swing at scale 10). Shuffled
    history rows must give the same forecast, bit for bit. Amounts carry cents, so float sums in row
    order would differ."""
    from revintel_assets.defs.forecast import model, probabilities
    from revintel_assets.defs.forecast.periods import calendar

    snaps, opps, reps = synthetic.history(n_deals=2000, seed=4)
    opps = opps.with_columns(pl.col("amount") + (pl.int_range(pl.len()) % 97) / 100 + 0.003)
    as_of = dt.date(2024, 9, 30)
    rows = snaps.filter(pl.col("as_of_date") == as_of)
    p, _ = probabilities.stage_baseline(snaps.filter(pl.col("is_won").is_not_null()))(as_of, rows)
    deals = rows.with_columns(pl.Series("win_probability", p))

    def run(s, o):
        return model.forecast(deals, timing.fit(s, as_of), calendar(as_of, 13), reps, o, 1000, 1, 0.1, 0.2)[0]

    same = run(snaps, opps)
    shuffled = run(snaps.sample(fraction=1.0, shuffle=True, seed=9), opps.sample(fraction=1.0, shuffle=True, seed=9))
    assert same.equals(shuffled)
    fitted, refitted = timing.fit(snaps, as_of), timing.fit(snaps.reverse(), as_of)
    assert fitted.speed_rep == refitted.speed_rep and fitted.speed_product == refitted.speed_product


def test_order_free_sums_are_exact_up_to_their_rounding_and_the_same_in_any_order():
    rng = np.random.default_rng(0)
    values, groups = rng.gamma(0.3, 3.0, 200_000), rng.integers(0, 7, 200_000)
    a = timing.order_free_sums(groups, values, 7)
    perm = rng.permutation(len(values))
    assert np.array_equal(a, timing.order_free_sums(groups[perm], values[perm], 7))
    np.testing.assert_allclose(a, np.bincount(groups, values, 7), rtol=1e-9)
    # the plain float sum does move with the order (what the rounding is for)
    assert not np.array_equal(np.bincount(groups, values, 7), np.bincount(groups[perm], values[perm], 7))
    assert np.array_equal(timing.order_free_sums(groups[:0], values[:0], 7), np.zeros(7))


def _same_model(a: timing.TimingModel, b: timing.TimingModel) -> bool:
    return (np.array_equal(a.hazard_won, b.hazard_won) and np.array_equal(a.hazard_lost, b.hazard_lost)
            and a.speed_rep == b.speed_rep and a.speed_product == b.speed_product
            and np.array_equal(a.calendar_weight, b.calendar_weight) and (a.n_rows, a.n_closes) == (b.n_rows, b.n_closes))


def test_rows_prepared_once_fit_every_cutoff_as_the_frame_does(data):
    """A range run codes its rows once (timing.FitRows) and slices each cutoff's window out of them:
    the same model, bit for bit, as fitting the frame at that cutoff, whatever order the rows come in
    (the warehouse's order varies) and with a window that starts inside the rows."""
    snaps, _, _ = data
    shuffled = snaps.sample(fraction=1.0, shuffle=True, seed=3)
    prepared = timing.FitRows.of(shuffled)
    assert np.all(np.diff(prepared.day) >= 0)
    for cutoff, days in ((CUTOFF, 730), (CUTOFF - dt.timedelta(weeks=30), 730), (CUTOFF, 120)):
        assert _same_model(timing.fit(snaps, cutoff, days), timing.fit(prepared, cutoff, days)), (cutoff, days)
    # a rep seen only outside the window gets no speed of its own (as the frame's fit)
    short = timing.fit(prepared, CUTOFF, 120)
    assert set(short.speed_rep) == set(snaps.filter(
        (pl.col("as_of_date") < CUTOFF) & (pl.col("as_of_date") >= CUTOFF - dt.timedelta(days=120)))["rep_id"].drop_nulls())


def test_a_date_years_ahead_is_not_closed_within_weeks(data):
    """An audit: open deals whose CRM close date lay four years ahead put most of their wins in this
    quarter, since a cell of few deals took the stage's hazard, which mixes in deals due this week.
    A date a year or more ahead is its own cell, shrunk toward the stage's 120-364 days."""
    snaps, _, _ = data
    fitted = timing.fit(snaps, CUTOFF)
    base = snaps.filter(pl.col("as_of_date") == CUTOFF).head(1).with_columns(
        pl.lit("Engaging").alias("stage"), pl.lit(0).alias("n_pushes"), pl.lit(100).alias("deal_age_days"))
    within_90 = {d: fitted.close_given_won(base.with_columns(pl.lit(d).alias("days_to_expected_close")), CUTOFF, 90)[0, :90].sum()
                 for d in (7, 150, 500, 1500)}
    assert within_90[1500] == within_90[500] < 0.15 < within_90[7]  # the data: 6 % of such rows closed within 90 days
    # the far deals' own rows count: the cell is not just its prior (the 120-364 cell)
    assert within_90[500] != within_90[150]
