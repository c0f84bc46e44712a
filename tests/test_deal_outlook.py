"""The deal outlook: three probabilities that sum to 1, a period that has ended has no chance
left, and labels that only count what was known when the period closed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import synthetic  # tests/synthetic.py

from revintel_assets.defs.forecast import outlook, timing


def test_outlook_sums_to_one_and_respects_the_calendar():
    snaps, _, _ = synthetic.history(n_deals=1500, seed=3)
    as_of = dt.date(2024, 11, 4)
    fitted = timing.fit(snaps.filter(pl.col("as_of_date") < as_of), as_of)
    rows = snaps.filter(pl.col("as_of_date") == snaps.filter(pl.col("as_of_date") <= as_of)["as_of_date"].max())
    rows = rows.with_columns(pl.lit(as_of).alias("as_of_date"))
    p = np.linspace(0.05, 0.95, len(rows))
    f = outlook.outlook(rows, p, fitted, as_of)
    assert f.height == 2 * len(rows) and set(f["period"]) == set(outlook.PERIODS)
    total = f["p_win_in_period"] + f["p_slip"] + f["p_lose"]
    assert np.allclose(total.to_numpy(), 1.0) and f.select(pl.all().exclude("as_of_date", "opportunity_id", "period")
                                                            .is_between(0, 1).all()).row(0) == (True, True, True)
    this = f.filter(pl.col("period") == "this_quarter")["p_win_in_period"].to_numpy()
    assert (this <= p + 1e-12).all() and this.mean() > 0.05  # 8 weeks left in the quarter: some close in it
    # on the last day of a quarter "this quarter" is the next one, as the forecast's and the plan's
    # (the quarter holding the day after): it was the ending quarter, with no day left, so every deal
    # of an export dated 2025-12-31 (the demo's) had p_win_in_period 0 (found by an analyst-table audit)
    end = dt.date(2024, 12, 31)
    last = outlook.outlook(rows.with_columns(pl.lit(end).alias("as_of_date")), p, fitted, end)
    assert outlook.quarter_bounds(end)["this_quarter"] == (dt.date(2025, 1, 1), dt.date(2025, 4, 1))
    assert last.filter(pl.col("period") == "this_quarter")["p_win_in_period"].mean() > 0.05


def test_labels_count_only_ended_periods_and_known_outcomes():
    as_of = dt.date(2025, 2, 3)
    f = pl.DataFrame({"as_of_date": [as_of] * 6, "opportunity_id": ["a", "b", "c"] * 2,
                      "period": ["this_quarter"] * 3 + ["next_quarter"] * 3, "p_win_in_period": [0.5] * 6,
                      "p_slip": [0.1] * 6, "p_lose": [0.4] * 6})
    outcomes = pl.DataFrame({"opportunity_id": ["a", "b", "c"],
                             "outcome_date": [dt.date(2025, 3, 10), dt.date(2025, 5, 1), None],
                             "is_won": [True, True, None]})
    got = outlook.labels(f, outcomes, known_by=dt.date(2025, 6, 1))  # next quarter not over yet
    assert set(got["period"]) == {"this_quarter"}
    lab = {r["opportunity_id"]: (r["won_in_period"], r["slipped"]) for r in got.iter_rows(named=True)}
    assert lab == {"a": (True, False), "b": (False, True), "c": (False, None)}  # c: still open, slip unknown


def test_quarters_follow_the_fiscal_year():
    """A fiscal year starting in February: 2025-12-10 sits in Nov-Jan, and the forecast calendar's
    quarter is the same fiscal quarter the outlook and the plan use (rules.fiscal_quarter_start)."""
    import datetime as dt

    from revintel_assets.defs.forecast.outlook import quarter_bounds
    from revintel_assets.defs.forecast.periods import calendar

    d = dt.date(2025, 12, 10)
    assert quarter_bounds(d) == {"this_quarter": (dt.date(2025, 10, 1), dt.date(2026, 1, 1)),
                                 "next_quarter": (dt.date(2026, 1, 1), dt.date(2026, 4, 1))}
    assert quarter_bounds(d, 2) == {"this_quarter": (dt.date(2025, 11, 1), dt.date(2026, 2, 1)),
                                    "next_quarter": (dt.date(2026, 2, 1), dt.date(2026, 5, 1))}
    cal = calendar(d, 13, 2)
    assert cal.quarter == dt.date(2025, 11, 1) and "quarter" in cal.period_types()
    days = cal.day_period("quarter")
    assert cal.days[int(max(i for i, k in enumerate(days) if k == 0))] == dt.date(2026, 1, 31)
    assert calendar(d, 13).quarter == dt.date(2025, 10, 1)
