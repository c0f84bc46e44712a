"""CRM opportunities of one block of accounts: outcome, stage path, slips, amounts, history.

The story of one deal, in the order it is drawn:

1. An account opens it on a business day (more in spring and autumn, fewer in summer and
   December, growing with the company), for a major SKU of a division that fits the account.
   Usually the account's owner works it, sometimes another rep of the same office.
2. The rep prices it (a discount off list price: reps have habits, big accounts haggle) and
   guesses a close date (reps differ in optimism). A hidden "momentum" decides how long the
   deal sits in Prospecting and how often the rep proactively pushes the expected close date
   there; ~8% of deals are stalled from the start.
3. The win probability p is drawn from what a model can see by the end of Prospecting:
   account fit (sector/size), the account's propensity (visible in its history), the rep's
   skill (visible as track record), product tier, discount, deal size against the account's
   revenue, early pushes and time spent in Prospecting, plus noise no one sees (sd 0.6 logit).
   The outcome is Bernoulli(p); `deal_truth.csv` holds p.
4. Won deals walk Engaging -> Proposal -> Negotiation -> Won. Lost deals die at some stage
   (earlier when p is low) and linger there first, so losers stagnate. Every time a deal is
   still open a few days after its expected close date, the rep pushes the date out by 1-3
   months, so slow deals (mostly losers) collect pushes.
5. Timing quirks: many won deals are dragged to, or pulled into, the last two weeks of a
   quarter; managers sweep stale losers out at quarter end; August closes slip.
6. Amounts: a rough estimate at creation, sometimes rescoped in Engaging, the exact quote at
   Proposal, sometimes a last concession in Negotiation (more often at quarter end). A won
   deal's close value is its last amount.

Everything is simulated to its natural end; the export cuts it at 2025-12-31, so deals
still running then appear open at whatever stage they had reached.

What p is a ceiling for: p is fixed when Prospecting ends. Later signals (the stage a deal
reaches, how long it lingers, late pushes) partly follow from the drawn outcome, as in real
pipelines, so a model scoring a deal late in its life can legitimately beat p; for a deal
scored at or soon after creation, p is the best possible score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revintel_assets.demo import catalog as C
from revintel_assets.demo.accounts import Accounts
from revintel_assets.demo.drift import Drift, launch_mask, reassign_reps

STAGES = ["Prospecting", "Engaging", "Proposal", "Negotiation", "Won", "Lost"]
WON, LOST = 4, 5
DEALS_PER_ACCOUNT = 10.0  # over the three years, at every scale
ALPHA = -0.25  # intercept of the win logit, calibrated for a ~50% closed win rate
TIER_EFFECT = np.array([0.25, 0.0, -0.35])  # entry SKUs are easier to win than enterprise ones
DIVISION_EFFECT = np.array([0.0, -0.1, 0.15, -0.1, 0.1])
NOISE_SD = 0.6  # the part of p no model can see
# where lost deals die: (Prospecting, Engaging, Proposal, Negotiation); hopeless ones earlier
LOST_AT = np.array([[0.10, 0.35, 0.33, 0.22], [0.22, 0.45, 0.22, 0.11]])
LOSER_LINGER = 2.3  # lost deals sit this much longer in the stage they die in
DEAL_RATE_U = 1.0  # keen accounts open many more deals
DIV_CHOICE_W = 2.0  # deals go to divisions the account is drawn to
MONTH_WEIGHT = np.array([1.05, 1.05, 1.1, 1.0, 1.0, 0.95, 0.8, 0.75, 1.05, 1.1, 1.0, 0.7])


def creation_weights() -> np.ndarray:
    """Probability of each day 2023-01-01..2025-12-31 being a deal's creation day."""
    days = np.arange(C.EXPORT_DAY + 1)
    month = C.month_index(days)
    w = MONTH_WEIGHT[month % 12] * (1.0 + 0.3 * days / 365.0)  # the company grows: ~30% more deals a year
    w[C.weekday(days) >= 5] = 0.0
    return w / w.sum()


_CREATION_P = creation_weights()


def _drifted_creation_p(drift: Drift) -> np.ndarray:
    days = np.arange(C.EXPORT_DAY + 1)
    w = drift.creation_weights(MONTH_WEIGHT)[C.month_index(days) % 12] * (1.0 + 0.3 * days / 365.0)
    w[C.weekday(days) >= 5] = 0.0
    return w / w.sum()


@dataclass
class Deals:
    """One entry per opportunity of the block, ordered by creation day then account."""
    account: np.ndarray  # local account index
    rep: np.ndarray
    sku: np.ndarray
    division: np.ndarray
    qty: np.ndarray
    created: np.ndarray  # day numbers from here on
    entry: np.ndarray  # (n, 3) entry day of Engaging, Proposal, Negotiation; -1 = never
    close: np.ndarray
    won: np.ndarray
    p: np.ndarray  # true win probability
    final_amount: np.ndarray
    history: pl.DataFrame | None = None  # event table, filled by _history


def _gumbel_choice(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise draw from softmax(score) via the Gumbel-max trick (vectorised)."""
    return np.argmax(score + rng.gumbel(size=score.shape), axis=1)


def _major_table(cat: C.Catalog) -> np.ndarray:
    """(division, tier) -> SKU index of the major SKU."""
    table = np.zeros((len(C.DIVISIONS), 3), np.int64)
    table[cat.division[cat.majors], cat.tier[cat.majors]] = cat.majors
    return table


def _draw_opportunities(acc: Accounts, team: C.Team, cat: C.Catalog, rng: np.random.Generator,
                        drift: Drift | None = None, drng: np.random.Generator | None = None):
    w = 10 ** (0.35 * (acc.log_emp - 2.9)) * np.exp(DEAL_RATE_U * acc.u)  # big, keen accounts buy more
    n_per = rng.poisson(DEALS_PER_ACCOUNT * w / w.mean())
    account = np.repeat(np.arange(len(acc)), n_per)
    p_day = _CREATION_P if drift is None else _drifted_creation_p(drift)
    created = rng.choice(len(p_day), len(account), p=p_day)
    order = np.lexsort((account, created))
    account, created = account[order], created[order]
    n = len(account)
    rep = np.where(rng.random(n) < 0.75, acc.owner[account],
                   C.pick_region_rep(team, acc.region[account], rng))
    division = _gumbel_choice(DIV_CHOICE_W * (acc.fit[account] + acc.v[account]), rng)
    size_tier = np.clip((acc.log_emp[account] - 2.3) / 0.9, 0, 2)
    tier = _gumbel_choice(-1.2 * np.abs(np.arange(3) - size_tier[:, None]), rng)
    if drift is not None:  # no deals for the launched product before its launch; reps come and go
        rep = reassign_reps(drift, team, rep, acc.region[account], created, drng)
        early = launch_mask(drift, _major_table(cat)[division, tier], created)
        tier = np.where(early, cat.tier[drift.launch_alt], tier)
    sku = _major_table(cat)[division, tier]
    qty = 1 + rng.poisson(cat.qty_extra[sku] * 10 ** (0.3 * (acc.log_emp[account] - 2.9)))
    return account, created, rep, division, tier, sku, qty


def _early_slips(created, engage, e0, rate, rng):
    """Proactive pushes on business days while in Prospecting, before the first expected close
    date. Returns (slips per deal, deal index per slip, slip day), days distinct per deal."""
    first = created + 1
    avail = C.business_days_between(first, np.maximum(first, np.minimum(engage, e0 - 2)))
    n_e = np.minimum(np.minimum(rng.poisson(rate), avail), 4)
    deal = np.repeat(np.arange(len(created)), n_e)
    j = np.arange(len(deal)) - np.repeat(np.cumsum(n_e) - n_e, n_e)  # slip number in its deal
    lo = j * avail[deal] // n_e[deal]
    hi = (j + 1) * avail[deal] // n_e[deal]  # disjoint integer bins keep the days distinct
    k = lo + (rng.random(len(deal)) * (hi - lo)).astype(np.int64)
    return n_e, deal, C.add_business_days(first[deal], k)


def _win_probability(acc, team, cat, a, rep, division, tier, sku, qty, discount, n_e, tp_days, rng,
                     drift: Drift | None = None, created: np.ndarray | None = None):
    size_gap = np.log(cat.price[sku] * qty / (acc.revenue[a] * 1e6)) + 9.5
    logit = (ALPHA + 0.9 * C.SECTOR_AFFINITY[acc.sector[a], division]
             - 0.25 * (acc.log_emp[a] - C.DIVISION_IDEAL_SIZE[division]) ** 2
             + 0.35 * acc.u[a] + team.skill[rep] + TIER_EFFECT[tier] + DIVISION_EFFECT[division]
             + 2.0 * discount - 6.0 * np.maximum(discount - 0.2, 0)  # deep discounts smell of trouble
             - 0.25 * size_gap - 0.55 * n_e - 0.6 * np.log(tp_days / 16.0)
             + rng.normal(0, NOISE_SD, len(a)))
    if drift is not None:  # the world on the day the deal was opened (drift.py)
        logit = logit + drift.skill_shift(rep, created) + drift.win_shift(created, sku)
    return 1.0 / (1.0 + np.exp(-logit))


MAX_DWELL = 160  # business days in one stage (~7 months); even zombie deals get cleaned up


def _business(calendar_days: np.ndarray) -> np.ndarray:
    """A dwell time in calendar days as a whole number of business days in [1, MAX_DWELL]."""
    return np.clip(np.rint(calendar_days * 5 / 7), 1, MAX_DWELL).astype(np.int64)


def _stage_path(created, pros_bd, z, stalled, won, p, rng):
    """Entry days of Engaging/Proposal/Negotiation (-1 = never reached), the close day and the
    entry day of the stage the deal closes from. Dwell times count business days."""
    n = len(created)
    dwell = np.column_stack([
        pros_bd,
        _business(32 * np.exp(-0.25 * z + 0.5 * rng.normal(size=n)) * (1 + 1.5 * stalled)),
        _business(17 * np.exp(-0.2 * z + 0.5 * rng.normal(size=n))),
        _business(12 * np.exp(0.5 * rng.normal(size=n))),
    ])
    cum = np.cumsum(LOST_AT[(p < 0.35).astype(int)], axis=1)
    last = np.where(won, 3, (rng.random(n)[:, None] > cum).sum(axis=1))  # stage it closes from
    starts = np.empty((n, 4), np.int64)
    starts[:, 0] = created
    for k in range(1, 4):  # loop over stages
        starts[:, k] = C.add_business_days(starts[:, k - 1], dwell[:, k - 1])
    stay = np.take_along_axis(dwell, last[:, None], 1)[:, 0]
    stay = np.where(won, stay, np.rint(stay * LOSER_LINGER).astype(np.int64))
    last_start = starts[np.arange(n), last]
    close = C.add_business_days(last_start, stay)
    entry = np.where(np.arange(1, 4) <= last[:, None], starts[:, 1:], -1)
    return entry, close, last_start


def _timing_quirks(close, won, last_start, rng, fy: int = 1):
    """Quarter-end rush, quarter-end sweeps of losers and the August slowdown (the quarters are
    the company's fiscal ones: fy, the month its year starts in)."""
    n = len(close)
    qe = C.quarter_end(close, fy)
    gap = qe - close
    drag = won & (gap >= 10) & (gap <= 35) & (rng.random(n) < 0.5)
    close = np.where(drag, np.maximum(C.prev_business_day(qe - rng.integers(0, 10, n)), close), close)
    prev_qe = C.quarter_start(close, fy) - 1
    pull = C.prev_business_day(prev_qe - rng.integers(0, 6, n))
    pull_ok = won & ~drag & (close - prev_qe <= 12) & (pull > last_start) & (rng.random(n) < 0.25)
    close = np.where(pull_ok, pull, close)
    sweep_day = C.prev_business_day(C.quarter_end(close, fy) - rng.integers(0, 5, n))
    sweep = ~won & (C.quarter_end(close, fy) - close <= 30) & (sweep_day > close) & (rng.random(n) < 0.3)
    close = np.where(sweep, sweep_day, close)
    august = (C.month_index(close) % 12 == 7) & (rng.random(n) < 0.3)
    return np.where(august, C.add_business_days(close, rng.integers(10, 21, n)), close)


def simulate_deals(acc: Accounts, team: C.Team, cat: C.Catalog, rng: np.random.Generator,
                   drift: Drift | None = None, drng: np.random.Generator | None = None,
                   fy: int = 1) -> Deals:
    a, created, rep, division, tier, sku, qty = _draw_opportunities(acc, team, cat, rng, drift, drng)
    n = len(a)
    discount = np.round(np.clip(0.07 + team.discount[rep] + 0.02 * (acc.log_emp[a] - 2.9)
                                + rng.normal(0, 0.045, n), 0, 0.4) * 200) / 200
    z = rng.normal(size=n)  # hidden momentum
    stalled = rng.random(n) < 0.08
    pros_bd = _business(16 * np.exp(-0.35 * z + 0.55 * rng.normal(size=n)) * np.where(stalled, 5, 1))
    engage = C.add_business_days(created, pros_bd)  # only reached if the deal survives Prospecting
    tp_days = engage - created
    first_guess = np.clip(55 * team.optimism[rep] * np.exp(0.3 * rng.normal(size=n)), 21, 240)
    e0 = C.month_end(created + np.rint(first_guess).astype(np.int64))
    rate = 0.45 * np.exp(-0.5 * z) * np.minimum(tp_days, 60) / 20 + stalled
    n_e, slip_deal, slip_day = _early_slips(created, engage, e0, rate, rng)
    p = _win_probability(acc, team, cat, a, rep, division, tier, sku, qty, discount, n_e, tp_days, rng,
                         drift, created)
    won = rng.random(n) < p
    entry, close, last_start = _stage_path(created, pros_bd, z, stalled, won, p, rng)
    close = _timing_quirks(close, won, last_start, rng, fy)
    deals = Deals(a, rep, sku, division, qty, created, entry, close, won, p,
                  final_amount=np.zeros(n, np.int64))
    deals.history = _history(deals, cat, discount, e0, n_e, slip_deal, slip_day, rng, fy)
    return deals


def _overdue_pushes(close, e_start, rng):
    """Each time a deal is still open a few days after its expected close date, the rep moves
    the date 1-3 months out. Loops over push rounds, not deals; stops at the export date."""
    e = e_start.copy()
    deals, days, new_e = [], [], []
    active = np.flatnonzero(close > e)
    for _ in range(60):
        if len(active) == 0:
            break
        day = C.add_business_days(e[active] + 1, rng.integers(0, 5, len(active)))
        ok = (day < close[active]) & (day <= C.EXPORT_DAY)
        act, day = active[ok], day[ok]
        months = rng.choice([1, 1, 1, 2, 2, 3], len(act))
        moved = C.month_end(C.month_start(C.month_index(e[act]) + months))
        deals.append(act), days.append(day), new_e.append(moved)
        e[act] = moved
        active = act[close[act] > moved]
    return np.concatenate(deals or [[]]).astype(np.int64), np.concatenate(days or [[]]).astype(
        np.int64), np.concatenate(new_e or [[]]).astype(np.int64)


def _events(deal, day, seq, stage=None, expected=None, amount=None) -> pl.DataFrame:
    """Rows of one event type; a None field (or NaN entry) means "unchanged by this event"."""
    n = len(deal)
    col = lambda v: pl.Series(np.full(n, np.nan) if v is None else np.asarray(v, float),  # noqa: E731
                              nan_to_null=True).cast(pl.Int64)
    return pl.DataFrame({"deal": np.asarray(deal, np.int64), "day": np.asarray(day, np.int64),
                         "seq": np.full(n, seq, np.int64), "stage": col(stage),
                         "expected": col(expected), "amount": col(amount)})


def _amounts(d: Deals, cat: C.Catalog, discount, rng, fy: int = 1):
    """Creation estimate, Engaging rescope (day, amount), Proposal quote, Negotiation concession."""
    n = len(d.account)
    list_value = cat.price[d.sku] * d.qty
    estimate = np.maximum(10, np.rint(list_value * (1 - discount) * rng.lognormal(0, 0.12, n) / 10) * 10)
    exit_eng = np.where(d.entry[:, 1] >= 0, d.entry[:, 1], d.close)
    room = C.business_days_between(d.entry[:, 0] + 1, np.maximum(d.entry[:, 0] + 1, exit_eng))
    rescoped = (d.entry[:, 0] >= 0) & (room >= 1) & (rng.random(n) < 0.15)
    rescope_day = C.add_business_days(d.entry[:, 0] + 1, (rng.random(n) * room).astype(np.int64))
    rescope = np.maximum(10, np.rint(estimate * rng.uniform(0.75, 1.3, n) / 10) * 10)
    rescope = np.where(rescope == estimate, estimate + 10, rescope)  # a rescope changes the amount
    quote = np.rint(list_value * (1 - discount))
    qe_close = d.won & (C.quarter_end(d.close, fy) - d.close < 14)
    conceded = (d.entry[:, 2] >= 0) & (rng.random(n) < np.where(qe_close, 0.6, 0.3))
    final_offer = np.rint(list_value * (1 - discount - rng.uniform(0.02, 0.08, n)))
    final = np.where(conceded, final_offer, np.where(d.entry[:, 1] >= 0, quote,
                                                     np.where(rescoped, rescope, estimate)))
    return estimate, (rescoped, rescope_day, rescope), quote, (conceded, final_offer), final


def _history(d: Deals, cat, discount, e0, n_e, slip_deal, slip_day, rng, fy: int = 1) -> pl.DataFrame:
    """Long event table (deal, day, seq = event code, stage, expected, amount), forward-filled
    and cut at the export date. Event codes: 0 create, 1-3 stage entries, 5 push, 6 rescope,
    9 close; on one day a stage change sorts before a push."""
    n = len(d.account)
    idx = np.arange(n)
    amounts = _amounts(d, cat, discount, rng, fy)
    estimate, (rescoped, rescope_day, rescope), quote, (conceded, offer), final = amounts
    d.final_amount = final.astype(np.int64)
    slip_e = C.month_end(C.month_start(C.month_index(e0[slip_deal]) + 1 + (
        np.arange(len(slip_deal)) - np.repeat(np.cumsum(n_e) - n_e, n_e))))
    e_after = C.month_end(C.month_start(C.month_index(e0) + n_e))
    push_deal, push_day, push_e = _overdue_pushes(d.close, e_after, rng)
    reached = [d.entry[:, k] >= 0 for k in range(3)]
    parts = [
        _events(idx, d.created, 0, stage=np.zeros(n), expected=e0, amount=estimate),
        _events(slip_deal, slip_day, 5, expected=slip_e),
        _events(push_deal, push_day, 5, expected=push_e),
        _events(idx[reached[0]], d.entry[reached[0], 0], 1, stage=np.full(reached[0].sum(), 1)),
        _events(idx[rescoped], rescope_day[rescoped], 6, amount=rescope[rescoped]),
        _events(idx[reached[1]], d.entry[reached[1], 1], 2, stage=np.full(reached[1].sum(), 2),
                amount=quote[reached[1]]),
        _events(idx[reached[2]], d.entry[reached[2], 2], 3, stage=np.full(reached[2].sum(), 3),
                amount=np.where(conceded, offer, np.nan)[reached[2]]),
        _events(idx, d.close, 9, stage=np.where(d.won, WON, LOST), expected=d.close, amount=final),
    ]
    return (pl.concat(parts).filter(pl.col("day") <= C.EXPORT_DAY)
            .sort(["deal", "day", "seq"])
            .with_columns(pl.col("stage", "expected", "amount").forward_fill())
            .select("deal", "day", "seq", "stage", "expected", "amount"))
