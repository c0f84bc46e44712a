"""Which cutoffs the ICP models use, derived from the data alone (never the wall clock).

A cutoff c is a date: features use rows dated on or before c, the label is a purchase in
(c, c + W months]. Cutoffs are month starts (a month-start cutoff splits months cleanly), except
the scoring cutoff, which is the as-of date (the source's export date). For a model that scores
cutoff c, only cutoffs t whose label window has ended by c (t + W <= c) may be trained on, so
the model has seen nothing after c:

    training cutoffs  t1 < t2 < ... < tk      (t_k + W <= c); the last one validates
    evaluation cutoff c                       (c + W <= as_of: its labels are all known)
    holdout cutoff    the latest evaluation cutoff: no model or choice has seen its window
    scoring cutoff    the as-of date; its model trains on every window that has ended
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


def add_months(d: dt.date, months: int) -> dt.date:
    """Same day `months` later, clamped to the month's end (as DuckDB's + INTERVAL n MONTH)."""
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    m += 1
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return min(dt.date(y, m, 1).replace(day=1) + dt.timedelta(days=d.day - 1), nxt - dt.timedelta(days=1))


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


# A window (c, c + W] opened by a cutoff late in a month runs mostly over the next months: a log
# exported on 30 September opens an October-December window, not a September one. The season of a
# cutoff is therefore the month start about nearest to it (the cutoff itself for a month start, so every
# training and evaluation cutoff keeps its own month); only a scoring cutoff, the export date, moves.
# Its month features and its same-season window a year back follow it (an audit: an export ending on
# 30 September was levelled on last year's September-November window and over-predicted a summer
# division by 37 %; the same log with one line on 1 October by 14 %).
SEASON_ANCHOR_DAYS = 15


def season_anchor(d: dt.date) -> dt.date:
    """The month start of d + 15 days: d's month start in the first half of its month, the next one's in
    the second half."""
    return month_start(d + dt.timedelta(days=SEASON_ANCHOR_DAYS))


def default_window(first_date: dt.date, as_of: dt.date) -> int:
    """6 months with at least 2.5 years of history, else 3 (a year of data cannot hold a
    6-month training window and a 6-month holdout window)."""
    return 6 if (as_of - first_date).days >= 913 else 3


@dataclass(frozen=True)
class IcpPlan:
    first_date: dt.date
    as_of: dt.date
    window_months: int
    n_train: int = 6           # training cutoffs per model (monthly, the last one validates)
    n_eval: int = 3            # evaluation cutoffs: the holdout and the months before it
    min_history_months: int = 3  # a cutoff needs this much history to describe an account
    # Besides the n_train latest month starts, every second month back to 11 months before the
    # newest (where history reaches), so that the training windows cover the whole year and not
    # one season only (issue 14: on Online Retail all windows led up to Christmas).
    spread_months: tuple[int, ...] = (7, 9, 11)
    eval_cutoffs: list[dt.date] = field(init=False)

    @classmethod
    def from_row(cls, row: dict) -> IcpPlan:
        """The plan recorded in a features.icp_cutoffs row (every row carries it)."""
        return cls(row["first_date"], row["as_of"], int(row["window_months"]), n_train=int(row["n_train"]),
                   n_eval=int(row["n_eval"]))

    def __post_init__(self) -> None:
        evals = []
        c = self.holdout_cutoff
        while c is not None and len(evals) < self.n_eval and len(self.train_cutoffs(c)) >= 2:
            evals.append(c)
            c = add_months(c, -1)
        object.__setattr__(self, "eval_cutoffs", sorted(evals))

    @property
    def earliest_cutoff(self) -> dt.date:
        return add_months(month_start(self.first_date), self.min_history_months)

    @property
    def holdout_cutoff(self) -> dt.date | None:
        """The latest month start whose whole window lies on or before the as-of date."""
        c = month_start(add_months(self.as_of, -self.window_months))
        while add_months(c, self.window_months) > self.as_of:
            c = add_months(c, -1)
        return c if c >= self.earliest_cutoff else None

    @property
    def score_cutoff(self) -> dt.date:
        return self.as_of

    def label_end(self, cutoff: dt.date) -> dt.date:
        return add_months(cutoff, self.window_months)

    def labelled(self, cutoff: dt.date) -> bool:
        return self.label_end(cutoff) <= self.as_of

    def train_cutoffs(self, c: dt.date) -> list[dt.date]:
        """The n_train latest month starts whose windows ended by c, plus the spread months before
        the season the newest of them would have (season_anchor(c) - W: the newest itself for a
        cutoff in the first half of a month) where history reaches, oldest first: 12 months before
        season_anchor(c) is among them for W = 3, so the same season last year is a training window."""
        t = month_start(add_months(c, -self.window_months))
        out = []
        while len(out) < self.n_train and t >= self.earliest_cutoff:
            if add_months(t, self.window_months) <= c:
                out.append(t)
            t = add_months(t, -1)
        if out:
            base = add_months(season_anchor(c), -self.window_months)
            out += [s for s in (add_months(base, -m) for m in self.spread_months)
                    if s >= self.earliest_cutoff and s not in out]
        return sorted(out)

    @property
    def model_cutoffs(self) -> list[dt.date]:
        """Cutoffs that get a model: the evaluation cutoffs and the scoring cutoff."""
        out = list(self.eval_cutoffs)
        if len(self.train_cutoffs(self.score_cutoff)) >= 2 and self.score_cutoff not in out:
            out.append(self.score_cutoff)
        return out

    @property
    def feature_cutoffs(self) -> list[dt.date]:
        cuts = set(self.model_cutoffs)
        for c in self.model_cutoffs:
            cuts.update(self.train_cutoffs(c))
        return sorted(cuts)

    def role(self, c: dt.date) -> str:
        if c == self.score_cutoff:
            return "score"
        if c == self.holdout_cutoff and c in self.eval_cutoffs:
            return "holdout"
        return "evaluation" if c in self.eval_cutoffs else "training"


def history_caveats(lines_per_month: dict[dt.date, int], as_of: dt.date, window_months: int) -> list[str]:
    """What the log's calendar makes the propensities miss, said in the run (an audit found both
    silent): months inside the log with no line, or under a tenth of the median month's (an export
    with a hole: every label window over it reads "did not buy", and the propensities of a log with a
    3-month gap came out at half the observed rate); and a log shorter than a year plus a window, whose
    training windows never saw the season the scoring window covers (Seasonal 0.105 predicted vs 0.414
    observed on 9 months of Online Retail). `lines_per_month`: order lines per month start."""
    if not lines_per_month:
        return []
    first, last = min(lines_per_month), month_start(as_of)  # the as-of month may be partial: not judged
    months, m = [], first
    while m < last:
        months.append(m)
        m = add_months(m, 1)
    counts = sorted(lines_per_month.get(m, 0) for m in months)
    median = counts[len(counts) // 2] if counts else 0
    low = {m for m in months if lines_per_month.get(m, 0) < 0.1 * median}
    # a hole, not a season: the same calendar month is not low in every year the log covers twice or more
    # (a business closed every August is no missing export); the first month may start late
    thin = [m for m in months[1:] if m in low
            and not (sum(x.month == m.month for x in months) >= 2 and all(x in low for x in months if x.month == m.month))]
    out = []
    if thin:
        out.append(f"ICP: the transaction log has {len(thin)} month(s) with no line or under a tenth of the median "
                   f"month's ({', '.join(f'{m:%Y-%m}' for m in thin[:6])}{' ...' if len(thin) > 6 else ''}): a label "
                   "window over them counts no purchase made in them, so the propensities learned from it are too "
                   "low if the export lost them")
    span = len(months) + 1
    if span < 12 + window_months:
        out.append(f"ICP: the transaction log covers {span} months, less than a year plus the {window_months}-month "
                   "window: no training window saw the season the scoring window covers, so a seasonal division's "
                   "propensities carry another season's level")
    return out
