"""The forecast calendar of one as-of date T: days, weekly and monthly periods, and their atoms.

* Days run from T+1 (a deal open on T closes after T).
* Weeks start on Mondays; the first one is partial (from T+1); `horizon_weeks` of them.
* Months are calendar months; the first is partial (from T+1) and the last is the month holding
  the last forecast week, covered to its end so that "this month / next month" are whole months.
* An atom is a run of days sharing the same (week, month): one draw per deal serves both
  period types, and a period's revenue is a sum of atoms.
* The quarter is the fiscal quarter holding T+1 (settings.fiscal_year_start_month; a January start
  gives calendar quarters), from T+1 to its end (the rest of the quarter: what the quarter's call
  still depends on). The months always cover it: the horizon reaches the
  end of the month holding its last week, at least 13 weeks after T+1's Monday.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from revintel_assets.rules import add_months, fiscal_quarter_start

DEFAULT_HORIZON_WEEKS = 13
MIN_HORIZON_WEEKS, MAX_HORIZON_WEEKS = 4, 13


def week_start(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Calendar:
    as_of: dt.date
    horizon_weeks: int
    days: list[dt.date]  # T+1 .. last day
    atom_of_day: np.ndarray  # (n_days,)
    atom_week: np.ndarray  # (n_atoms,) week index, -1 past the weekly horizon
    atom_month: np.ndarray  # (n_atoms,)
    atom_week_all: np.ndarray  # (n_atoms,) week number counted on past the horizon (for the weekly shock)
    weeks: list[dt.date]  # period_start: the calendar week's Monday (the first week is partial: from T+1)
    months: list[dt.date]  # period_start: the month's first day (the first month is partial too)
    fy_start_month: int = 1  # settings.fiscal_year_start_month: which quarters "quarter" means

    @property
    def n_atoms(self) -> int:
        return len(self.atom_week)

    @property
    def n_days(self) -> int:
        return len(self.days)

    @property
    def quarter(self) -> dt.date:
        """First day of the fiscal quarter holding T+1."""
        return fiscal_quarter_start(self.days[0], self.fy_start_month)

    def period_types(self) -> tuple[str, ...]:
        """Week and month; and the quarter when the horizon reaches its end (it does from 13 weeks)."""
        whole = self.days[-1] >= add_months(self.quarter, 3) - dt.timedelta(days=1)
        return ("week", "month", "quarter") if whole else ("week", "month")

    def _atom_index(self, period_type: str) -> tuple[np.ndarray, int]:
        """(period index of each atom, -1 outside; number of periods) of a period type."""
        if period_type == "week":
            return self.atom_week, len(self.weeks)
        if period_type == "month":
            return self.atom_month, len(self.months)
        if period_type == "quarter":
            end = add_months(self.quarter, 3)
            inside = np.array([self.quarter <= m < end for m in self.months])
            return np.where(inside[self.atom_month], 0, -1), 1
        raise ValueError(f"period_type must be week, month or quarter, got {period_type!r}")

    def period_matrix(self, period_type: str) -> np.ndarray:
        """(n_atoms, n_periods) 0/1: which atoms make up each period."""
        idx, n = self._atom_index(period_type)
        m = np.zeros((self.n_atoms, n))
        ok = idx >= 0
        m[np.flatnonzero(ok), idx[ok]] = 1.0
        return m

    def period_starts(self, period_type: str) -> list[dt.date]:
        return {"week": self.weeks, "month": self.months, "quarter": [self.quarter]}[period_type]

    def period_bounds(self, period_type: str) -> list[tuple[dt.date, dt.date]]:
        """(first_day, last_day) each period covers: the first period starts at T+1."""
        idx = self.day_period(period_type)
        return [(self.days[int(np.flatnonzero(idx == k)[0])], self.days[int(np.flatnonzero(idx == k)[-1])])
                for k in range(len(self.period_starts(period_type)))]

    def day_period(self, period_type: str) -> np.ndarray:
        """Period index of each day (-1: outside the period type's horizon)."""
        return self._atom_index(period_type)[0][self.atom_of_day]


def calendar(as_of: dt.date, horizon_weeks: int = DEFAULT_HORIZON_WEEKS, fy: int = 1) -> Calendar:
    if not MIN_HORIZON_WEEKS <= horizon_weeks <= MAX_HORIZON_WEEKS:
        raise ValueError(f"horizon_weeks must be in {MIN_HORIZON_WEEKS}..{MAX_HORIZON_WEEKS}, got {horizon_weeks}")
    first = as_of + dt.timedelta(days=1)
    w0 = week_start(first)
    weeks_end = w0 + dt.timedelta(days=7 * horizon_weeks - 1)
    last = next_month(month_start(weeks_end)) - dt.timedelta(days=1)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    week_all = np.array([(d - w0).days // 7 for d in days])
    week = np.where(week_all < horizon_weeks, week_all, -1)
    month_keys = sorted({month_start(d) for d in days})
    month = np.array([month_keys.index(month_start(d)) for d in days])
    change = np.r_[True, (week[1:] != week[:-1]) | (month[1:] != month[:-1])]
    atom_of_day = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    weeks = [w0 + dt.timedelta(weeks=i) for i in range(horizon_weeks)]
    months = month_keys
    return Calendar(as_of, horizon_weeks, days, atom_of_day, week[starts], month[starts], week_all[starts],
                    weeks, months, fy)
