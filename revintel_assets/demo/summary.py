"""Sanity figures of a generated company, accumulated block by block (truth/summary.json)."""

from __future__ import annotations

import numpy as np

from revintel_assets.demo import catalog as C
from revintel_assets.demo.deals import LOST, STAGES, WON, Deals
from revintel_assets.demo.purchases import N_DIV

PUSH = 5  # history event code of a pushed expected close date


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Rank (Mann-Whitney) AUC with tied scores sharing their average rank."""
    pos = int(label.sum())
    neg = len(label) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    uniq, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank per distinct score
    rank_sum = avg_rank[inv][label.astype(bool)].sum()
    return float((rank_sum - pos * (pos + 1) / 2.0) / (pos * neg))


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


class Stats:
    def __init__(self, scale: float, seed: int, windows: list[tuple[int, int]]):
        self.scale, self.seed, self.windows = scale, seed, windows
        self.n = dict(accounts=0, opportunities=0, history_rows=0, orders=0, transaction_lines=0)
        self.open_stage = np.zeros(len(STAGES), np.int64)
        self.cycle = {WON: [], LOST: []}
        self.pushes = {"all": [0, 0], WON: [0, 0], LOST: [0, 0]}  # [pushes, deals]
        self.quarter_end_closes = 0
        self.p_closed, self.y_closed = [], []
        self.buyers = np.zeros(N_DIV, np.int64)
        self.rates: dict[int, np.ndarray] = {}

    def add_block(self, acc, deals: Deals, lines: dict, rates: dict) -> None:
        hist = deals.history
        n = len(deals.account)
        self.n["accounts"] += len(acc)
        self.n["opportunities"] += n
        self.n["history_rows"] += hist.height
        last_stage = hist.unique(subset="deal", keep="last", maintain_order=True)["stage"].to_numpy()
        closed = deals.close <= C.EXPORT_DAY
        self.open_stage += np.bincount(last_stage[~closed], minlength=len(STAGES))
        pushes = np.bincount(hist.filter(hist["seq"] == PUSH)["deal"].to_numpy(), minlength=n)
        self._tally(self.pushes["all"], pushes.sum(), n)
        for outcome, mask in ((WON, closed & deals.won), (LOST, closed & ~deals.won)):
            self.cycle[outcome].append(deals.close[mask] - deals.created[mask])
            self._tally(self.pushes[outcome], pushes[mask].sum(), mask.sum())
        c = deals.close[closed]
        self.quarter_end_closes += int((c >= C.quarter_end(c) - 13).sum())
        self.p_closed.append(deals.p[closed])
        self.y_closed.append(deals.won[closed])
        won = deals.won & closed
        pairs = np.concatenate([deals.account[won] * N_DIV + deals.division[won],
                                lines["account"] * N_DIV + lines["division"]])
        self.buyers += np.bincount(np.unique(pairs) % N_DIV, minlength=N_DIV)
        for w, v in rates.items():
            self.rates[w] = self.rates.get(w, 0) + v

    @staticmethod
    def _tally(pair: list, pushes, deals) -> None:
        pair[0] += int(pushes)
        pair[1] += int(deals)

    def add_orders(self, n_orders: int, n_lines: int) -> None:
        self.n["orders"] += n_orders
        self.n["transaction_lines"] += n_lines

    def summary(self, n_reps: int, team: C.Team, cat: C.Catalog) -> dict:
        y = np.concatenate(self.y_closed)
        p = np.concatenate(self.p_closed)
        n_open = int(self.open_stage.sum())
        counts = dict(self.n, reps=n_reps, managers=len(set(team.manager)),
                      regional_offices=len(set(team.region.tolist())), products=len(cat.sku),
                      crm_products=len(cat.majors), divisions=len(C.DIVISIONS),
                      closed_opportunities=len(y), open_opportunities=n_open)
        return {
            "scale": self.scale, "seed": self.seed,
            "history_start": "2023-01-01", "export_date": "2025-12-31",
            **counts,
            "closed_win_rate": _r(y.mean()),
            "open_share": _r(n_open / max(1, self.n["opportunities"])),
            "open_stage_mix": {STAGES[s]: _r(self.open_stage[s] / max(1, n_open)) for s in range(4)},
            "sales_cycle_days": {name: self._cycle(o) for name, o in (("won", WON), ("lost", LOST))},
            "mean_pushes": {k if isinstance(k, str) else STAGES[k].lower(): _r(v[0] / max(1, v[1]))
                            for k, v in self.pushes.items()},
            "share_closes_last_2_weeks_of_quarter": _r(self.quarter_end_closes / max(1, len(y))),
            "division_buyer_share": {C.DIVISIONS[d]: _r(self.buyers[d] / self.n["accounts"])
                                     for d in range(N_DIV)},
            "deal_truth": {"mean_p_closed": _r(p.mean()), "auc_closed": _r(auc(p, y))},
            "division_truth": self._division_truth(),
        }

    def _cycle(self, outcome: int) -> dict:
        days = np.concatenate(self.cycle[outcome])
        if len(days) == 0:
            return {"median": None, "p90": None}
        return {"median": _r(np.median(days), 1), "p90": _r(np.quantile(days, 0.9), 1)}

    def _division_truth(self) -> dict:
        """Mean truth vs realised buying share; the gap to 'with_crm_orders' is what the
        run-rate-only truth leaves out (orders of CRM deals won inside the window)."""
        step = "quarterly" if self.scale >= 10 else "monthly"
        out = {"cutoffs": step, "cutoff_count": len({c for c, _ in self.windows})}
        for w, (truth, rr, both, n) in sorted(self.rates.items()):
            out[f"window_{w}m"] = {"mean_true_probability": _r(truth / n),
                                   "realised_run_rate_only": _r(rr / n),
                                   "realised_with_crm_orders": _r(both / n)}
        return out
