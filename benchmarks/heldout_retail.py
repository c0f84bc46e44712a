"""A wholesaler revintel was not built around: an independent transactions generator for the ICP
(issue 14: "ICP within 0.03 of the oracle" is judged on companies the team never sees).

The demo generator (revintel_assets/demo) writes its own layout and its own world; this one was
written without it, as an *Online Retail II*-style export (`Invoice, StockCode, Description,
Quantity, InvoiceDate, Price, Customer ID, Country`, with a `stock_code, description, division`
SKU map), with the quirks of the real file: guest lines without a customer, cancellation invoices
(`C...`, negative quantities), postage lines (`POST`, division `Non-product`) and SKUs added in the
second year that the SKU map does not know (~6 % of lines).

The world: accounts of a few latent kinds (gift shop, garden centre, toy shop, ...) whose kind
sets their taste for each division, plus their own taste; an order rate per account with a
pre-Christmas peak; divisions with their own seasons; accounts that join over the history and
churn (at a month start, with a per-account hazard). With `--drift 1` tastes and order rates trend
(a slope per account × division and per account), and a division launches halfway.

The truth is exact, not sampled: orders are a Poisson process, each order holds a division
independently, so an account's purchases of a division are a Poisson process whose intensity the
generator knows; churn is integrated out. `truth/division_truth.csv` holds, for every account
known at a month-start cutoff c and every window W in (3, 6), the probability of a purchase of the
division in (c, c + W months] given the account's latent state at c (0 once it has churned):
revintel's own label window (icp/calendar.py). Give it to revintel as `REVINTEL_TRUTH_DIR`; the ICP
models then report `oracle_auc` beside their AUC on the same holdout rows.

    python -m benchmarks.heldout_retail --seed 1 --drift 0 --out SRC [--accounts 3000] [--months 25]
    REVINTEL_TRUTH_DIR=SRC/truth REVINTEL_DATA_DIR=DATA revintel run --source SRC --no-serve
    python -m benchmarks.icp_report DATA
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

DIVISIONS = ["Tableware", "Textiles", "Lighting", "Stationery", "Garden", "Christmas", "Toys", "Bathroom"]
LAUNCHED = "Wellness"  # drift > 0: launched halfway through the history
# (division: base log-odds of an order holding it, season amplitude, peak month)
DIVISION_SHAPE = {"Tableware": (-1.0, 0.2, 11), "Textiles": (-1.4, 0.3, 10), "Lighting": (-1.3, 0.5, 11),
                  "Stationery": (-1.6, 0.4, 9), "Garden": (-2.0, 1.2, 5), "Christmas": (-2.4, 1.8, 10),
                  "Toys": (-1.8, 0.6, 11), "Bathroom": (-1.9, 0.2, 3), LAUNCHED: (-2.2, 0.3, 1)}
# latent kinds of account and their taste (log-odds added) per division
KINDS = {"gift shop": {"Tableware": 0.6, "Lighting": 0.7, "Christmas": 0.8, "Stationery": 0.4},
         "home store": {"Tableware": 0.9, "Textiles": 1.0, "Bathroom": 0.9, "Lighting": 0.3},
         "garden centre": {"Garden": 1.8, "Christmas": 0.6, "Toys": 0.2, "Textiles": -0.5},
         "toy shop": {"Toys": 1.6, "Stationery": 0.9, "Christmas": 0.4, "Bathroom": -0.8},
         "reseller": {d: 0.3 for d in DIVISIONS}}
KIND_SHARE = [0.3, 0.25, 0.15, 0.15, 0.15]
COUNTRIES = ["United Kingdom"] * 22 + ["Germany", "France", "EIRE", "Netherlands", "Spain", "Belgium"]
WINDOWS = (3, 6)
START = dt.date(2021, 12, 1)


def month_starts(n: int) -> list[dt.date]:
    return [dt.date(START.year + (START.month - 1 + k) // 12, (START.month - 1 + k) % 12 + 1, 1) for k in range(n + 7)]


def world(rng: np.random.Generator, n_acc: int, n_months: int, drift: float) -> dict:
    """Every latent quantity: per account × month the expected orders, per account × division ×
    month the chance an order holds the division, joins and churn hazards."""
    months = month_starts(n_months)
    m = np.arange(len(months))
    cal_month = np.array([d.month for d in months])
    divisions = DIVISIONS + ([LAUNCHED] if drift > 0 else [])
    kind = rng.choice(len(KINDS), size=n_acc, p=KIND_SHARE)
    taste = np.array([[KINDS[k].get(d, 0.0) for d in divisions] for k in KINDS])[kind]
    own = rng.normal(0, 0.8, (n_acc, len(divisions)))
    slope = rng.normal(0, 0.06 * drift, (n_acc, len(divisions)))  # log-odds per month
    base, amp, peak = (np.array([DIVISION_SHAPE[d][i] for d in divisions]) for i in range(3))
    season_d = amp[None, :] * np.cos(2 * np.pi * (cal_month[:, None] - peak[None, :]) / 12)  # month × division
    centre = (len(months) - 1) / 2
    logit = (base[None, :, None] + taste[:, :, None] + own[:, :, None] + season_d.T[None, :, :]
             + slope[:, :, None] * (m[None, None, :] - centre))
    q = 1 / (1 + np.exp(-logit))
    if drift > 0:  # the new division sells nothing before its launch
        q[:, divisions.index(LAUNCHED), : n_months // 2] = 0.0
    size = rng.lognormal(0.0, 0.8, n_acc)
    trend = rng.normal(0, 0.025 * drift, n_acc)
    season = np.exp(0.35 * np.cos(2 * np.pi * (cal_month - 11) / 12))
    lam = 1.1 * size[:, None] * season[None, :] * np.exp(trend[:, None] * (m[None, :] - centre))
    join = np.where(rng.random(n_acc) < 0.4, 0, rng.integers(0, n_months, n_acc))
    hazard = np.where(rng.random(n_acc) < 0.7, 0.01, 0.06)
    # churn at a month start after joining: the first month start the account is gone
    gone = join + 1 + rng.geometric(hazard) - 1
    return {"months": months, "divisions": divisions, "lam": lam, "q": q, "join": join, "gone": gone,
            "hazard": hazard, "size": size}


def truth(w: dict, n_months: int) -> pl.DataFrame:
    """P(a purchase of the division in (c, c + W months]) for each account known at c, given the
    latent state at c: 0 once gone; else churn at each later month start integrated out."""
    months, lam, q, hazard = w["months"], w["lam"], w["q"], w["hazard"]
    days = np.array([calendar.monthrange(d.year, d.month)[1] for d in months], dtype=float)
    intensity = lam[:, None, :] * q  # expected purchases of the division per month
    frames = []
    for c in range(1, n_months):
        known = np.flatnonzero(w["join"] <= c)
        active = w["gone"][known] > c
        for wm in WINDOWS:
            if c + wm >= len(months):
                continue
            inten = intensity[known]
            # segments: month c without its first day, months c+1 .. c+W-1, the first day of c+W
            seg = [inten[:, :, c] * (days[c] - 1) / days[c]] + [inten[:, :, c + j] for j in range(1, wm)] \
                + [inten[:, :, c + wm] / days[c + wm]]
            cum = np.cumsum(np.stack(seg, axis=2), axis=2)  # account × division × segment
            h = hazard[known][:, None]
            # the account is active through segment j when it survives the j month starts before it
            p_none = np.zeros(cum.shape[:2])
            for j in range(wm + 1):
                p_last = (1 - h) ** j * (h if j < wm else 1.0)
                p_none += p_last * np.exp(-cum[:, :, j])
            p = np.where(active[:, None], 1 - p_none, 0.0)
            frames.append(pl.DataFrame({
                "account_id": np.repeat(known + 10001, len(w["divisions"])).astype(str),
                "division": np.tile(w["divisions"], len(known)),
                "cutoff_date": [months[c]] * p.size, "window_months": wm,
                "true_probability": p.ravel()}))
    return pl.concat(frames)


def orders(rng: np.random.Generator, w: dict, n_months: int, end: dt.date) -> pl.DataFrame:
    """One row per (order, division it holds): account, date. Vectorised over accounts × months."""
    lam, q, months = w["lam"], w["q"], w["months"]
    n_acc = lam.shape[0]
    alive = (np.arange(n_months)[None, :] >= w["join"][:, None]) & (np.arange(n_months)[None, :] < w["gone"][:, None])
    counts = rng.poisson(lam[:, :n_months] * alive)
    acc = np.repeat(np.repeat(np.arange(n_acc), n_months), counts.ravel())
    mon = np.repeat(np.tile(np.arange(n_months), n_acc), counts.ravel())
    days = np.array([calendar.monthrange(d.year, d.month)[1] for d in months[:n_months]])
    day = (rng.random(len(acc)) * days[mon]).astype(int)
    date = np.array(months[:n_months], dtype="datetime64[D]")[mon] + day
    holds = rng.random((len(acc), q.shape[1])) < q[acc, :, mon]
    o_idx, d_idx = np.nonzero(holds)  # an order holding no division never reached the books
    return pl.DataFrame({"order": o_idx, "account": acc[o_idx], "date": date[o_idx], "division": d_idx}) \
        .filter(pl.col("date") <= np.datetime64(end))


def write(out: Path, seed: int, drift: float, n_acc: int, n_months: int) -> dict:
    rng = np.random.default_rng(seed)
    w = world(rng, n_acc, n_months, drift)
    end = w["months"][n_months - 1] + dt.timedelta(days=8)  # the export stops on the 9th, like the real file
    od = orders(rng, w, n_months, end)
    divisions = w["divisions"]
    # SKUs: 60 per division by popularity (Zipf); in the second year each division adds 12 the SKU
    # map never heard of
    n_sku, n_new = 60, 12
    price = rng.lognormal(np.log(3.0), 0.6, (len(divisions), n_sku + n_new)).round(2)
    pop = 1 / np.arange(1, n_sku + 1) ** 0.9
    pop /= pop.sum()
    lines_per = 1 + rng.poisson(1.3, len(od))
    ln = od[np.repeat(np.arange(len(od)), lines_per)]
    sku = rng.choice(n_sku, size=len(ln), p=pop)
    # a line of a SKU the map does not know comes on top of the order's known ones (so the label,
    # read through the map, sees every purchase the truth counts)
    second_year = ln["date"].to_numpy() >= np.datetime64(w["months"][12])
    extra = np.flatnonzero(second_year & (rng.random(len(ln)) < 0.13))
    ln = pl.concat([ln, ln[extra]])
    sku = np.concatenate([sku, n_sku + rng.integers(0, n_new, len(extra))])
    qty = np.maximum(1, np.round(rng.lognormal(np.log(6), 0.8, len(ln)) * np.sqrt(w["size"][ln["account"].to_numpy()])))
    d = ln["division"].to_numpy()
    code = np.array([f"{70000 + k * 100 + s}" for k in range(len(divisions)) for s in range(n_sku + n_new)])
    idx = d * (n_sku + n_new) + sku
    lines = pl.DataFrame({"order": ln["order"], "account": ln["account"], "date": ln["date"],
                          "StockCode": code[idx], "Quantity": qty.astype(int), "Price": price.ravel()[idx]})
    # postage on 4 % of orders (a Non-product line), guests: 15 % more orders without a customer
    first = lines.unique("order", keep="first", maintain_order=True)
    post = first.filter(pl.Series(rng.random(len(first)) < 0.04)).with_columns(
        StockCode=pl.lit("POST"), Quantity=pl.lit(1, dtype=pl.Int64), Price=pl.lit(18.0))
    guests = lines.filter(pl.col("order").is_in(first.filter(pl.Series(rng.random(len(first)) < 0.15))["order"].to_list()))
    guests = guests.with_columns(order=pl.col("order") + 10_000_000, account=pl.lit(-1, dtype=pl.Int64))
    lines = pl.concat([lines, post, guests]).sort("date", "order")
    # invoice numbers in date order; times of day in business hours
    inv = (lines["order"] != lines["order"].shift(fill_value=-1)).cast(pl.Int64).cum_sum().to_numpy() + 489433
    minutes = (rng.integers(7 * 60, 19 * 60, int(inv.max()) + 1))[inv]
    stamp = lines["date"].cast(pl.Datetime).to_numpy() + minutes.astype("timedelta64[m]")
    country = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_acc)]
    acc = lines["account"].to_numpy()
    cust = np.where(acc >= 0, (acc + 10001).astype(str), "")
    table = pl.DataFrame({"Invoice": inv.astype(str), "StockCode": lines["StockCode"],
                          "Description": ("ITEM " + lines["StockCode"]),
                          "Quantity": lines["Quantity"], "InvoiceDate": stamp, "Price": lines["Price"],
                          "Customer ID": cust, "Country": np.where(acc >= 0, country[np.maximum(acc, 0)], "United Kingdom")})
    # cancellations: 1.5 % of customer lines come back on a C invoice a few days later, part of the quantity
    back = table.filter((pl.col("Customer ID") != "") & pl.Series(rng.random(len(table)) < 0.015))
    back = back.with_columns(Invoice=pl.lit("C") + pl.col("Invoice"),
                             Quantity=-(pl.col("Quantity") // 2).clip(1),
                             InvoiceDate=pl.col("InvoiceDate") + pl.duration(days=3))
    table = pl.concat([table, back]).filter(pl.col("InvoiceDate").dt.date() <= end).sort("InvoiceDate", "Invoice")
    out.mkdir(parents=True, exist_ok=True)
    table.with_columns(pl.col("InvoiceDate").dt.strftime("%Y-%m-%d %H:%M:%S")).write_csv(out / "online_retail_II.csv")
    mapped = [(code[k * (n_sku + n_new) + s], divisions[k]) for k in range(len(divisions)) for s in range(n_sku)]
    pl.DataFrame({"stock_code": [c for c, _ in mapped] + ["POST"],
                  "description": [f"ITEM {c}" for c, _ in mapped] + ["POSTAGE"],
                  "division": [dv for _, dv in mapped] + ["Non-product"]}).write_csv(out / "sku_divisions.csv")
    (out / "truth").mkdir(exist_ok=True)
    t = truth(w, n_months)
    t.write_csv(out / "truth" / "division_truth.csv")
    unmapped = float(table["StockCode"].is_in([c for c, _ in mapped] + ["POST"]).not_().mean())
    summary = {"seed": seed, "drift": drift, "accounts": n_acc, "months": n_months, "lines": len(table),
               "first": str(table["InvoiceDate"].min()), "last": str(table["InvoiceDate"].max()),
               "guest_lines": int((table["Customer ID"] == "").sum()), "unmapped_share": round(unmapped, 4),
               "cancellation_lines": len(back), "truth_rows": len(t), "divisions": divisions}
    (out / "truth" / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drift", type=float, default=0.0)
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--months", type=int, default=25, help="months of history (25: two years and the 9 days "
                                                            "of the last month, like Online Retail II)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    print(json.dumps(write(args.out, args.seed, args.drift, args.accounts, args.months)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
