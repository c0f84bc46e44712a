"""Which as-of dates and training cutoffs the deal models use, from the data alone.

  snapshot dates   every Monday from four weeks after the first event, plus the as-of date
  eval cutoff      the latest month start C with C + holdout + gap <= as-of: its holdout
                   as-of dates are old enough that most of their deals have closed
  score cutoff     the as-of date itself: the model that scores today learns from everything
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from revintel_assets.defs.deals.win_model import Windows


SHORT = Windows(validation_days=61, gap_days=61, holdout_days=61, burn_in_days=91)


@dataclass(frozen=True)
class DealPlan:
    first_date: dt.date
    as_of: dt.date

    @property
    def windows(self) -> Windows:
        """Quarter-long windows with 2.5+ years of history; two-month ones for a shorter one
        (a 14-month export like MavenTech could otherwise hold no holdout at all)."""
        return Windows() if (self.as_of - self.first_date).days >= 913 else SHORT

    @property
    def snapshot_dates(self) -> list[dt.date]:
        start = self.first_date + dt.timedelta(days=28)
        monday = start + dt.timedelta(days=(7 - start.weekday()) % 7)
        n = max(0, (self.as_of - monday).days // 7 + 1)
        dates = [monday + dt.timedelta(weeks=i) for i in range(n)]
        return dates + ([self.as_of] if self.as_of not in dates else [])

    @property
    def eval_cutoff(self) -> dt.date | None:
        latest = self.as_of - dt.timedelta(days=self.windows.holdout_days + self.windows.gap_days)
        c = latest.replace(day=1)
        w = self.windows
        earliest = self.first_date + dt.timedelta(days=w.burn_in_days + w.gap_days + w.validation_days + 61)
        return c if c >= earliest else None

    @property
    def model_cutoffs(self) -> list[dt.date]:
        return [c for c in (self.eval_cutoff, self.as_of) if c is not None]
