#!/usr/bin/env python
"""Held-out synthetic B2B CRM company, exported as a Salesforce org (Data Loader style CSVs).

Independent of revintel's own demo generator: written by a helper that was shown neither it nor
the benchmarks, only the Salesforce input contract (docs/CONTRACT.md §2.2), so that its dynamics
are other assumptions than the ones the deal model was designed on (issue 14: held-out companies
"written by a different generator"). Nothing is tuned on it: benchmarks/heldout_company.py reports
on its companies, README "Held-out companies of another generator" says which seeds were looked at
before a change (seed 11) and which only after. The world model, in brief:

* Every deal carries a static latent *quality* q (logit-like scale) built from partly visible
  parts (deal type, lead source, product, industry x product-family fit, account size, rep skill,
  new-rep ramp) and hidden parts (an account-level "buying culture" and a large deal-level noise).
* A deal is a drift-diffusion process in weekly steps: its *momentum* M is an Ornstein-Uhlenbeck
  walk pulled towards q (+ a calendar environment: Q4 budget flush, drift trend); *progress* P
  grows at a speed set by softplus(M), the rep's pace, the deal size (big deals slower), the
  season (summer / Christmas slow-downs, quarter-start hangover) and a quarter-end push for late
  stages.  Stages are bands of P (Perception Analysis is a thin band, so often skipped); sharp
  momentum drops can throw a deal back a stage.  A loss hazard (high early, falling with M, rising
  when a deal sits in one stage too long) kills deals at every stage; a deal that crosses P = 1
  from Proposal or Negotiation goes to a final decision won with probability sigmoid(a + b M).
* Reps set an (optimistic) expected close date, push it when it comes near, and every push costs
  the deal momentum (buyer fatigue): pushes are thus both a symptom and a cause.  Amounts are
  re-priced when a deal reaches Proposal (cuts when momentum is weak), discounted in Negotiation
  and more at quarter end.  Forecast categories are rep judgement (sentiment = momentum + rep
  bias).
* The true win probability at creation is computed by Monte Carlo: R replicate futures of the
  same deal (same q, own noise), with the loss hazard carried as a survival weight and the final
  decision as its probability (Rao-Blackwellised), so the estimate is smooth.  Replicate 0 is the
  realised history.
* --drift X: win odds fall over the history (q trend), reps leave and are replaced by new reps
  who ramp (skill penalty and slower volume), a new product is launched ~300 days before the
  export, and the quarter-end push gets stronger (faster but more forced, lower-quality closes).

Every deal is simulated to its natural end; the export is then cut at EXPORT_DATE.
Run: python -m benchmarks.heldout_generator --seed N --drift X --out DIR [--deals 6000]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
          "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost"]
THR = np.array([0.0, 0.08, 0.20, 0.35, 0.50, 0.62, 0.66, 0.82])  # lower progress bound of each open stage
STAGE_PROB = np.array([10, 10, 20, 50, 60, 70, 75, 90, 100, 0])
WON, LOST, PROPOSAL, NEGOT = 8, 9, 6, 7
FC_LABEL = np.array(["Pipeline", "Best Case", "Commit", "Closed", "Omitted"])
FC_API = np.array(["Pipeline", "BestCase", "Forecast", "Closed", "Omitted"])

START = np.datetime64("2023-02-06")      # a Monday: the org went live
EXPORT = np.datetime64("2025-11-14")     # export date (a Friday)
T_MAX = 110                              # weeks a deal may live before the cleanup closes it
N_REP = 64                               # Monte Carlo replicates for the true probability

P = dict(  # dynamics constants
    C0=-0.9, TYPE_EFF={"New Customer": 0.0, "Existing Customer - Upgrade": 0.55, "Renewal": 1.3},
    LEAD_EFF={"Web": 0.0, "Phone Inquiry": 0.15, "Partner Referral": 0.45, "Purchased List": -0.6,
              "Trade Show": -0.15, "Employee Referral": 0.35, "Other": -0.05, "": 0.0},
    DEAL_NOISE=0.5, ACCT_NOISE=0.35, REP_SKILL_SD=0.3,
    KAPPA=0.15, SIGMA=0.6, M0_SHARE=0.5, M0_SD=0.5,
    BASE_SPEED=0.06, STALL0=-0.4, STALL_M=1.1,
    H0=-4.5, H_M=0.9, H_EARLY=1.3, H_PROSP=0.5, H_STALE=0.05, STALE_WEEKS=14, CLEANUP_WEEKS=36,
    D0=0.9, D_M=1.3, PUSH_FATIGUE=0.12, HANDOVER_SHOCK=0.3,
    QE_BOOST=0.8, Q4_ENV=0.12,
    SHOCK_NEG_P=0.03, SHOCK_NEG=1.0, SHOCK_POS_P=0.025, SHOCK_POS=0.8,
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def month_end(d):
    return (d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1


def quarter_end(d):
    m = d.astype("datetime64[M]").astype(np.int64)
    return ((m // 3) * 3 + 3).astype("datetime64[M]").astype("datetime64[D]") - 1


B62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_ids(prefix: str, n: int, rng) -> np.ndarray:
    """n unique 18-character Salesforce ids: key prefix + pod + record number (base62) + the
    case-checksum suffix Salesforce computes."""
    seq = rng.integers(10**7, 10**8) + np.cumsum(rng.integers(1, 60, n))
    digits = np.empty((n, 7), dtype="<U1")
    v = seq.copy()
    for j in range(6, -1, -1):
        digits[:, j] = B62[v % 62]
        v //= 62
    body = np.array([prefix + "Dn" + "000" + "".join(r) for r in digits])  # 3+2+3+7 = 15
    out = []
    for s in body:
        suf = ""
        for i in range(3):
            flags = 0
            for j, c in enumerate(s[i * 5:(i + 1) * 5]):
                if "A" <= c <= "Z":
                    flags |= 1 << j
            suf += SUFFIX[flags]
        out.append(s + suf)
    return np.array(out)


FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Amara", "Kenji",
         "Priya", "Jonas", "Chloe", "Diego", "Hannah", "Omar", "Leah", "Tomas", "Nina", "Ravi", "Grace", "Felix",
         "Yara", "Owen", "Ines", "Marcus", "Zoe", "Aditya", "Elena", "Sam", "Lena", "Victor", "Maya", "Hugo"]
LAST = ["Okafor", "Lindqvist", "Tanaka", "Moreau", "Schmidt", "Alvarez", "Chen", "Patel", "Murphy", "Kowalski",
        "Rossi", "Haddad", "Nakamura", "Fischer", "Dubois", "Ibrahim", "Larsen", "Costa", "Walsh", "Novak",
        "Singh", "Berg", "Reyes", "Kim", "Petrov", "Hughes", "Silva", "Weber", "Osei", "Brennan"]
W1 = ["Blue", "North", "Iron", "Silver", "Bright", "Cedar", "Summit", "Harbor", "Nova", "Atlas", "Vertex", "Prime",
      "Pioneer", "Crescent", "Granite", "Falcon", "Evergreen", "Quantum", "Redwood", "Sterling", "Orion", "Beacon",
      "Keystone", "Meridian", "Lumen", "Apex", "Horizon", "Cobalt", "Juniper", "Polar"]
W2 = ["Logistics", "Health", "Foods", "Systems", "Energy", "Capital", "Retail", "Labs", "Motors", "Media",
      "Pharma", "Telecom", "Textiles", "Robotics", "Bank", "Insurance", "Learning", "Materials", "Networks", "Partners"]
W3 = ["Inc.", "Ltd", "GmbH", "Group", "Corp.", "LLC", "S.A.", "plc", "AG", "Co."]
INDUSTRIES = ["Technology", "Finance", "Healthcare", "Manufacturing", "Retail", "Education", "Media",
              "Energy", "Telecommunications"]
IND_P = np.array([0.2, 0.14, 0.13, 0.16, 0.11, 0.06, 0.06, 0.07, 0.07])
REGIONS = ["AMER East", "AMER West", "EMEA", "APAC"]
REGION_SEATS = [8, 7, 6, 4]
COUNTRIES = {"AMER East": (["United States", "Canada"], [0.85, 0.15]),
             "AMER West": (["United States", "Mexico", "Brazil"], [0.8, 0.1, 0.1]),
             "EMEA": (["United Kingdom", "Germany", "France", "Netherlands", "Sweden", "Spain"],
                      [0.3, 0.25, 0.15, 0.1, 0.1, 0.1]),
             "APAC": (["Australia", "Japan", "Singapore", "India"], [0.35, 0.25, 0.2, 0.2])}
UTC_HOURS = {"AMER East": 13, "AMER West": 15, "EMEA": 7, "APAC": 0}  # start of the working window in UTC

# name, family, code, list price, q effect, speed factor
PRODUCTS = [("Core Platform - Professional", "Platform", "CP-PRO", 24000, 0.0, 1.0),
            ("Core Platform - Enterprise", "Platform", "CP-ENT", 90000, -0.2, 0.85),
            ("Insight Dashboards", "Analytics", "AN-DASH", 18000, 0.1, 1.15),
            ("Forecast Analytics Add-on", "Analytics", "AN-FCST", 36000, -0.1, 1.0),
            ("Implementation Services", "Services", "SV-IMPL", 30000, 0.15, 1.1),
            ("Premier Success Plan", "Services", "SV-PREM", 15000, 0.3, 1.2)]
NEW_PRODUCT = ("Copilot Assistant", "Analytics", "AN-COPI", 40000, 0.0, 1.25)
PROD_MIX = {"New Customer": [0.38, 0.22, 0.12, 0.08, 0.15, 0.05],
            "Existing Customer - Upgrade": [0.05, 0.2, 0.25, 0.25, 0.1, 0.15],
            "Renewal": [0.45, 0.35, 0.0, 0.0, 0.0, 0.2]}
LEADS = {"New Customer": (["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show",
                           "Employee Referral", "Other"], [0.3, 0.08, 0.14, 0.1, 0.14, 0.06, 0.08]),
         "Existing Customer - Upgrade": (["", "Other", "Partner Referral", "Web"], [0.4, 0.3, 0.1, 0.2]),
         "Renewal": (["", "Other"], [0.7, 0.3])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drift", type=float, default=0.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--deals", type=int, default=6000)
    a = ap.parse_args()
    t_start = time.time()
    rng = np.random.default_rng(a.seed)
    X = max(0.0, a.drift)
    N = a.deals
    out = Path(a.out)
    (out / "truth").mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- calendar (weekly grid)
    n_hist = int((EXPORT - START).astype(int)) // 7 + 1
    W = n_hist + T_MAX + 3
    mondays = START + 7 * np.arange(W)
    fridays = mondays + 4
    frac = np.clip(np.arange(W) / (n_hist - 1), 0, 1.15)
    months = fridays.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (fridays - fridays.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    days_to_qe = (quarter_end(fridays) - fridays).astype(int)
    qe_week = days_to_qe < 14
    q_start_week = ((months - 1) % 3 == 0) & (dom <= 21)
    season_speed = np.ones(W)
    season_speed[(months == 7) | (months == 8)] = 0.8
    season_speed[(months == 12) & (dom >= 18)] = 0.5
    season_speed[q_start_week] *= 0.9
    drift_slope = 0.9 * X
    env = np.where(months >= 10, P["Q4_ENV"], 0.0) - np.where(months <= 2, 0.05, 0.0) - drift_slope * (frac - 0.35)
    qe_boost = P["QE_BOOST"] + 1.5 * X
    qe_pen = np.where(qe_week, 0.35 * X, 0.0)  # forced quarter-end closes are lower quality

    # ---------------------------------------------------------------- reps, managers
    n_seats = sum(REGION_SEATS)
    seat_region = np.repeat(np.arange(len(REGIONS)), REGION_SEATS)
    n_leave = int(min(12, round(6 * X)))
    leave_seats = rng.choice(n_seats, n_leave, replace=False) if n_leave else np.array([], int)
    leave_w = np.full(n_seats, 10**6)
    leave_w[leave_seats] = rng.integers(int(0.3 * n_hist), int(0.92 * n_hist), n_leave)
    # rep table: originals 0..n_seats-1, successors after
    n_reps = n_seats + n_leave
    rep_seat = np.concatenate([np.arange(n_seats), leave_seats])
    rep_start_w = np.concatenate([np.full(n_seats, -10**6), leave_w[leave_seats]])
    rep_end_w = np.concatenate([leave_w, np.full(n_leave, 10**6)])
    rep_skill = rng.normal(0, P["REP_SKILL_SD"], n_reps)
    rep_pace = np.exp(rng.normal(0, 0.2, n_reps))
    rep_opt = rng.uniform(0.45, 1.0, n_reps)          # close-date optimism (fraction of a realistic cycle)
    rep_qsnap = rng.random(n_reps) < 0.3               # snaps close dates to quarter end
    rep_sloppy = rng.random(n_reps) < 0.2              # lets close dates go stale before pushing
    rep_fc_bias = rng.normal(0, 0.35, n_reps)
    rep_vol = np.exp(rng.normal(0, 0.2, n_reps))
    successor = np.full(n_seats, -1)
    successor[leave_seats] = np.arange(n_seats, n_reps)
    ramp_amp = 0.9 * min(X, 1.5)
    names = set()
    def person():
        while True:
            f, l = rng.choice(FIRST), rng.choice(LAST)
            if (f, l) not in names:
                names.add((f, l))
                return f, l
    user_ids = sf_ids("005", n_reps + len(REGIONS) + 1, rng)
    vp_id = user_ids[-1]
    mgr_ids = user_ids[n_reps:n_reps + len(REGIONS)]
    rep_ids = user_ids[:n_reps]
    users = []
    f, l = person()
    users.append((vp_id, f"{f} {l}", f, l, "VP Sales", "", "Global Sales", "true"))
    for i, r in enumerate(REGIONS):
        f, l = person()
        users.append((mgr_ids[i], f"{f} {l}", f, l, "Regional Sales Director", vp_id, r, "true"))
    for i in range(n_reps):
        f, l = person()
        reg = seat_region[rep_seat[i]]
        users.append((rep_ids[i], f"{f} {l}", f, l, "Account Executive", mgr_ids[reg], REGIONS[reg],
                      "false" if rep_end_w[i] <= n_hist else "true"))

    # ---------------------------------------------------------------- accounts
    n_acc = max(60, int(round(N / 7.5)))
    acc_seat = rng.integers(0, n_seats, n_acc)
    acc_region = seat_region[acc_seat]
    acc_ind = rng.choice(len(INDUSTRIES), n_acc, p=IND_P / IND_P.sum())
    acc_emp = np.clip(np.exp(rng.normal(np.log(350), 1.5, n_acc)), 5, 250000).astype(np.int64)
    acc_rev = np.round(acc_emp * 150000 * np.exp(rng.normal(0, 0.5, n_acc)), -3)
    acc_rev_blank = rng.random(n_acc) < 0.06
    acc_emp_blank = rng.random(n_acc) < 0.03
    acc_lat = rng.normal(0, P["ACCT_NOISE"], n_acc)
    acc_cust = rng.random(n_acc) < np.where(acc_emp > 1000, 0.45, 0.28)
    acc_act = np.exp(rng.normal(0, 0.7, n_acc)) * acc_emp ** 0.15
    acc_country = np.array([rng.choice(COUNTRIES[REGIONS[r]][0], p=COUNTRIES[REGIONS[r]][1]) for r in acc_region])
    acc_names, seen = [], set()
    for i in range(n_acc):
        nm = f"{rng.choice(W1)} {rng.choice(W2)} {rng.choice(W3)}"
        k = 2
        base = nm
        while nm in seen:
            nm = f"{base} ({k})"
            k += 1
        seen.add(nm)
        acc_names.append(nm)
    acc_ids = sf_ids("001", n_acc, rng)
    fit = rng.normal(0, 0.3, (len(INDUSTRIES), 3))  # industry x family fit

    # ---------------------------------------------------------------- products
    products = list(PRODUCTS) + ([NEW_PRODUCT] if X > 0 else [])
    n_prod = len(products)
    prod_ids = sf_ids("01t", n_prod, rng)
    fam_names = ["Platform", "Analytics", "Services"]
    prod_fam = np.array([fam_names.index(p[1]) for p in products])
    prod_price = np.array([p[3] for p in products], float)
    prod_q = np.array([p[4] for p in products], float)
    prod_speed = np.array([p[5] for p in products], float)
    launch_w = n_hist - 43 if X > 0 else None  # ~300 days before export
    if X > 0:
        prod_q[-1] = -0.45 * X  # immature product: loses more, closes fast

    # ---------------------------------------------------------------- deal creation
    mon_season = np.array([1.15, 1.05, 1.0, 1.0, 1.0, 0.95, 0.85, 0.8, 1.1, 1.1, 1.0, 0.7])
    wk = np.arange(n_hist)
    # seat capacity per week (successor ramps volume)
    occ = np.where(wk[None, :] < leave_w[:, None], np.arange(n_seats)[:, None], successor[:, None])  # seats x weeks
    tenure = wk[None, :] - rep_start_w[occ]
    cap = np.minimum(1.0, 0.25 + tenure / 16.0) * rep_vol[occ]
    week_w = (1 + 0.3 * frac[:n_hist]) * mon_season[months[:n_hist] - 1] * cap.sum(0)
    week_w[-1] *= (int((EXPORT - mondays[n_hist - 1]).astype(int)) + 1) / 5.0
    counts = rng.multinomial(N, week_w / week_w.sum())
    w0 = np.repeat(wk, counts)
    seat = np.empty(N, np.int64)
    pos = 0
    for w, c in zip(wk, counts):
        if c:
            p = cap[:, w] / cap[:, w].sum()
            seat[pos:pos + c] = rng.choice(n_seats, c, p=p)
            pos += c
    owner = occ[seat, w0]
    # account: mostly the seat's own accounts, sometimes another in the region
    acc = np.empty(N, np.int64)
    seat_accs = [np.flatnonzero(acc_seat == s) for s in range(n_seats)]
    reg_accs = [np.flatnonzero(acc_region == r) for r in range(len(REGIONS))]
    other = rng.random(N) < 0.1
    for s in range(n_seats):
        m = (seat == s)
        pool = seat_accs[s] if len(seat_accs[s]) else reg_accs[seat_region[s]]
        ww = acc_act[pool]
        acc[m] = rng.choice(pool, m.sum(), p=ww / ww.sum())
        mo = m & other
        pool = reg_accs[seat_region[s]]
        acc[mo] = rng.choice(pool, mo.sum(), p=acc_act[pool] / acc_act[pool].sum())
    wd = rng.choice(5, N, p=[0.22, 0.23, 0.22, 0.2, 0.13])
    created_day = mondays[w0] + wd
    created_day = np.minimum(created_day, EXPORT)
    region = acc_region[acc]
    hour0 = np.array([UTC_HOURS[REGIONS[r]] for r in range(len(REGIONS))])[seat_region[seat]]
    # type / lead / product
    types = np.array(["New Customer", "Existing Customer - Upgrade", "Renewal"])
    t_idx = np.where(acc_cust[acc], np.where(rng.random(N) < 0.45, 2, 1), 0)
    dtype = types[t_idx]
    lead = np.empty(N, dtype=object)
    prod = np.empty(N, np.int64)
    emp = acc_emp[acc]
    for ti, tn in enumerate(types):
        m = t_idx == ti
        ls, lp = LEADS[tn]
        lead[m] = rng.choice(ls, m.sum(), p=np.array(lp) / np.sum(lp))
        base = np.array(PROD_MIX[tn], float)
        wts = np.tile(base, (m.sum(), 1))
        e = emp[m]
        wts[:, 1] *= np.where(e >= 2000, 2.5, np.where(e < 300, 0.3, 1.0))
        wts[:, 0] *= np.where(e >= 5000, 0.6, 1.0)
        u = rng.random(m.sum())[:, None]
        prod[m] = (u > np.cumsum(wts / wts.sum(1, keepdims=True), 1)).sum(1)
    if X > 0:
        after = (w0 >= launch_w) & (t_idx < 2)
        take = after & (rng.random(N) < min(0.35, 0.3 * X))
        prod[take] = n_prod - 1
    lead = lead.astype(str)
    # amount
    size_mult = np.clip(np.exp(0.45 * (np.log(emp) - np.log(500))), 0.25, 8)
    amt0 = prod_price[prod] * size_mult * np.exp(rng.normal(0, 0.4, N)) * np.where(t_idx == 1, 0.6, 1.0)
    amt0 = np.maximum(500, np.round(amt0 / 50) * 50)
    # new-rep ramp penalty at creation
    ten_w = w0 - rep_start_w[owner]
    ramp_pen = np.where(rep_start_w[owner] > -10**5, -ramp_amp * np.exp(-ten_w / 20.0), 0.0)
    lead_eff = np.array([P["LEAD_EFF"][s] for s in lead])
    type_eff = np.array([P["TYPE_EFF"][s] for s in dtype])
    size_eff = -0.12 * (np.log10(emp) - 2.8) ** 2 + np.where(prod == 1, np.where(emp >= 2000, 0.35,
                                                                                np.where(emp < 300, -0.5, 0)), 0)
    q_vis = (P["C0"] + type_eff + lead_eff + prod_q[prod] + fit[acc_ind[acc], prod_fam[prod]] + size_eff
             + rep_skill[owner] + ramp_pen)
    q = q_vis + acc_lat[acc] + rng.normal(0, P["DEAL_NOISE"], N)
    speed = (rep_pace[owner] * np.clip((amt0 / 30000) ** -0.4, 0.35, 2.0)
             * np.array([1.0, 1.3, 1.7])[t_idx] * prod_speed[prod])
    # initial progress
    P0 = rng.uniform(0, 0.05, N)
    P0 = np.where(lead == "Partner Referral", rng.uniform(0.08, 0.13, N), P0)
    late = (t_idx == 0) & (rng.random(N) < 0.15)
    P0 = np.where(late, rng.uniform(0.2, 0.3, N), P0)
    P0 = np.where(t_idx == 1, rng.uniform(0.08, 0.25, N), P0)
    P0 = np.where(t_idx == 2, rng.uniform(0.2, 0.4, N), P0)
    # expected close date at creation
    guess_w = (1 - P0) / (P["BASE_SPEED"] * 0.55 * speed)
    guess_d = np.maximum(21, 7 * guess_w * rep_opt[owner] * np.exp(rng.normal(0, 0.25, N)))
    ec0_raw = created_day + guess_d.astype(np.int64)
    ec0 = np.where(rep_qsnap[owner], quarter_end(ec0_raw), month_end(ec0_raw))
    ho_step = np.where((rep_end_w[owner] < 10**6) & (rep_end_w[owner] > w0), rep_end_w[owner] - w0, -1)
    push_lead = np.where(rep_sloppy[owner], -14, 10)

    # ---------------------------------------------------------------- simulation (real + replicates)
    K = N * (N_REP + 1)
    deal = np.tile(np.arange(N), N_REP + 1)
    Ps = P0[deal].copy()
    M = (P["M0_SHARE"] * q + rng.normal(0, P["M0_SD"], N))[deal]
    M[N:] = P["M0_SHARE"] * q[deal[N:]] + rng.normal(0, P["M0_SD"], K - N)  # replicates: own start noise
    ec = ec0.astype("datetime64[D]").astype(np.int64)[deal]
    S = np.ones(K)
    Z = np.zeros(K)
    wis = np.zeros(K, np.int32)
    alive = np.ones(K, bool)
    pacc = np.zeros(N)
    rec_stage = np.full((N, T_MAX + 1), -1, np.int8)
    rec_ec = np.zeros((N, T_MAX + 1), np.int64)
    rec_M = np.zeros((N, T_MAX + 1), np.float32)
    rec_push = np.zeros((N, T_MAX + 1), np.int16)
    pushes = np.zeros(K, np.int16)
    st0 = np.searchsorted(THR, P0, side="right") - 1
    rec_stage[:, 0] = st0
    rec_ec[:, 0] = ec[:N]
    rec_M[:, 0] = M[:N]
    fri_int = fridays.astype(np.int64)
    for t in range(1, T_MAX + 1):
        act = np.flatnonzero(alive)
        if act.size == 0:
            break
        d = deal[act]
        w = w0[d] + t
        real = act < N
        m = M[act]
        # persistent shocks to the deal's target (champion leaves, budget freeze / new sponsor, urgency)
        zz = Z[act] - (rng.random(act.size) < P["SHOCK_NEG_P"]) * rng.normal(P["SHOCK_NEG"], 0.3, act.size) \
            + (rng.random(act.size) < P["SHOCK_POS_P"]) * rng.normal(P["SHOCK_POS"], 0.2, act.size)
        Z[act] = zz
        m = m + P["KAPPA"] * (q[d] + zz + env[w] - m) + P["SIGMA"] * rng.standard_normal(act.size)
        m = m - P["HANDOVER_SHOCK"] * (ho_step[d] == t)
        p = Ps[act]
        st = np.searchsorted(THR, p, side="right") - 1
        wi = wis[act]
        h = sigmoid(P["H0"] - P["H_M"] * m + P["H_EARLY"] * (st <= 1) + P["H_PROSP"] * (st == 0))
        h = np.minimum(1.0, h + P["H_STALE"] * (wi >= P["STALE_WEEKS"]))
        forced = (wi >= P["CLEANUP_WEEKS"]) | (t == T_MAX)
        u = rng.random(act.size)
        dead_real = real & ((u < h) | forced)
        s = S[act] * np.where(real, 1.0, 1.0 - h)
        dead = dead_real | (~real & forced)
        # progress
        stall = rng.random(act.size) < sigmoid(P["STALL0"] - P["STALL_M"] * m)
        late_st = st >= 5
        inc = (P["BASE_SPEED"] * speed[d] * season_speed[w] * (1 + qe_boost * (late_st & qe_week[w]))
               * np.log1p(np.exp(m + 0.3)) * np.exp(rng.normal(-0.1, 0.5, act.size)) * ~stall)
        pn = p + inc
        back = (rng.random(act.size) < 0.04 * sigmoid(-2 * m - 1)) & (p >= 0.2) & (p < 0.98)
        pn = np.where(back, np.maximum(0.08, p - rng.uniform(0.08, 0.18, act.size)), pn)
        decide = (pn >= 1.0) & (st >= PROPOSAL) & ~dead
        pn = np.where(~decide & (pn >= 0.985), 0.985, pn)
        pwin = sigmoid(P["D0"] + P["D_M"] * m - qe_pen[w])
        won_real = decide & real & (rng.random(act.size) < pwin)
        # replicate contributions
        rep_dec = decide & ~real
        np.add.at(pacc, d[rep_dec], s[rep_dec] * pwin[rep_dec])
        ended = dead | decide
        stn = np.searchsorted(THR, pn, side="right") - 1
        wi = np.where(stn != st, 0, wi + 1)
        # expected close date handling
        now = fri_int[w]
        e = ec[act]
        pu = pushes[act]
        need = (e - now < push_lead[d]) & ((stn < NEGOT) | (rng.random(act.size) < 0.5))
        k = 1 + (rng.random(act.size) < 0.35) + (rng.random(act.size) < 0.1)
        pushed_to = month_end((now + 30 * k).astype("datetime64[D]")).astype(np.int64)
        e = np.where(need, pushed_to, e)
        pu = pu + need
        m = m - P["PUSH_FATIGUE"] * need
        pull = (~need) & (stn >= PROPOSAL) & (e - now > 75) & (rng.random(act.size) < 0.25)
        e = np.where(pull, month_end((now + 21).astype("datetime64[D]")).astype(np.int64), e)
        rnd = (~need) & (~pull) & (rng.random(act.size) < 0.02)
        shift = np.where(rng.random(act.size) < 0.5, -30, 30)
        e2 = month_end((e + shift).astype("datetime64[D]")).astype(np.int64)
        e = np.where(rnd & (e2 > now + 7), e2, e)
        # write back
        M[act], Ps[act], wis[act], ec[act], pushes[act], S[act] = m, pn, wi, e, pu, s
        alive[act[ended]] = False
        # record the realised path
        r = act[real]
        rs = np.where(dead_real[real], LOST, np.where(decide[real], np.where(won_real[real], WON, LOST), stn[real]))
        rec_stage[r, t] = rs
        rec_ec[r, t] = e[real]
        rec_M[r, t] = m[real]
        rec_push[r, t] = pu[real]
    true_p = pacc / N_REP

    # ---------------------------------------------------------------- realised histories → rows
    life = (rec_stage >= 0).sum(1) - 1            # last step index
    final_stage = rec_stage[np.arange(N), life]
    ev_wd = rng.choice(5, (N, T_MAX + 1), p=[0.2, 0.22, 0.22, 0.21, 0.15])
    steps = np.arange(T_MAX + 1)
    ev_day = mondays[np.minimum(w0[:, None] + steps[None, :], W - 1)] + ev_wd
    ev_day[:, 0] = created_day
    secs = (hour0[:, None] * 3600 + rng.integers(0, 9 * 3600, (N, T_MAX + 1)))
    ev_ts = ev_day.astype("datetime64[s]") + secs.astype("timedelta64[s]")
    ev_ts[:, 0] = created_day.astype("datetime64[s]") + (hour0 * 3600 + rng.integers(0, 9 * 3600, N)).astype(
        "timedelta64[s]")
    close_day = ev_day[np.arange(N), life]
    # walk the realised path to derive amounts and forecast categories
    amt = np.where((t_idx == 0) & (st0 == 0) & (rng.random(N) < 0.12), np.nan, amt0)
    was_prop = st0 >= PROPOSAL
    was_neg = st0 >= NEGOT
    deal_bias = rng.normal(0, 0.4, N)
    sent = rec_M[:, 0] + rep_fc_bias[owner] + deal_bias
    rec_amt = np.full((N, T_MAX + 1), np.nan)
    rec_fc = np.zeros((N, T_MAX + 1), np.int8)
    rec_ecd = rec_ec.copy()

    def fc_of(stg, ecv, day, sentv, pu):
        qend = quarter_end(day.astype("datetime64[D]")).astype(np.int64)
        fc = np.zeros(stg.shape, np.int8)
        fc = np.where((stg == PROPOSAL) & (sentv > 0.2), 1, fc)
        fc = np.where(stg == NEGOT, np.where((sentv > 0.0) & (ecv <= qend), 2, 1), fc)
        fc = np.where((stg < PROPOSAL) & (pu >= 4) & (sentv < -0.4), 4, fc)
        fc = np.where(stg == WON, 3, np.where(stg == LOST, 4, fc))
        return fc

    rec_amt[:, 0] = amt
    rec_fc[:, 0] = fc_of(st0, rec_ec[:, 0], ev_day[:, 0].astype(np.int64), sent, rec_push[:, 0])
    for t in range(1, T_MAX + 1):
        a_ = np.flatnonzero(rec_stage[:, t] >= 0)
        if a_.size == 0:
            break
        stg = rec_stage[a_, t].astype(np.int64)
        prv = rec_stage[a_, t - 1].astype(np.int64)
        mm = rec_M[a_, t]
        am = amt[a_]
        n_ = a_.size
        w = w0[a_] + t
        fill = np.isnan(am) & (((stg >= 2) & (stg < LOST)) | (stg == WON))
        am = np.where(fill, np.round(amt0[a_] * np.exp(rng.normal(0, 0.1, n_)) / 50) * 50, am)
        ent_p = (stg >= PROPOSAL) & (stg <= NEGOT) & ~was_prop[a_]
        am = np.where(ent_p, am * np.exp(rng.normal(-0.05 + 0.1 * mm, 0.08)), am)
        was_prop[a_] |= ent_p
        ent_n = (stg == NEGOT) & ~was_neg[a_]
        disc = ent_n & (rng.random(n_) < 0.55)
        am = np.where(disc, am * rng.uniform(0.85, 0.98, n_), am)
        am = np.where(disc & qe_week[w] & (rng.random(n_) < 0.5), am * rng.uniform(0.9, 0.97, n_), am)
        was_neg[a_] |= ent_n
        scope = (stg < WON) & (rng.random(n_) < 0.012)
        am = np.where(scope, am * np.exp(rng.normal(0, 0.18, n_)), am)
        wq = (stg == WON) & qe_week[w] & (rng.random(n_) < 0.4 + 0.3 * min(X, 1))
        am = np.where(wq, am * rng.uniform(0.92, 0.99, n_), am)
        am = np.where(np.isnan(am), am, np.maximum(500, np.round(am / 50) * 50))
        amt[a_] = am
        rec_amt[a_, t] = am
        sent[a_] = np.where(stg != prv, mm + rep_fc_bias[owner[a_]] + deal_bias[a_], sent[a_])
        closed = stg >= WON
        rec_ecd[a_, t] = np.where(closed, ev_day[a_, t].astype(np.int64), rec_ec[a_, t])
        rec_fc[a_, t] = fc_of(stg, rec_ec[a_, t], ev_day[a_, t].astype(np.int64), sent[a_], rec_push[a_, t])

    # emit history rows: creation + every step where stage / close date / amount / forecast changed
    valid = rec_stage >= 0
    ch = np.zeros_like(valid)
    ch[:, 0] = True
    same_amt = (rec_amt[:, 1:] == rec_amt[:, :-1]) | (np.isnan(rec_amt[:, 1:]) & np.isnan(rec_amt[:, :-1]))
    ch[:, 1:] = valid[:, 1:] & ((rec_stage[:, 1:] != rec_stage[:, :-1]) | (rec_ecd[:, 1:] != rec_ecd[:, :-1])
                                | ~same_amt | (rec_fc[:, 1:] != rec_fc[:, :-1]))
    cut = (EXPORT + 1).astype("datetime64[s]")
    di, ti = np.nonzero(ch)
    ts = ev_ts[di, ti]
    keep = ts < cut
    di, ti, ts = di[keep], ti[keep], ts[keep]
    h_stage = rec_stage[di, ti].astype(np.int64)
    h_amt = rec_amt[di, ti]
    h_ec = rec_ecd[di, ti].astype("datetime64[D]")
    h_fc = rec_fc[di, ti]
    opp_ids = sf_ids("006", N, rng)
    h_ids = sf_ids("008", di.size, rng)
    # owner at the time of each row (handover to the successor at the leave week)
    h_owner = np.where((ho_step[di] >= 0) & (ti >= ho_step[di]), successor[rep_seat[owner[di]]], owner[di])
    hist = pl.DataFrame({
        "Id": h_ids, "OpportunityId": opp_ids[di], "CreatedById": rep_ids[h_owner],
        "CreatedDate": np.char.add(np.datetime_as_string(ts, unit="s").astype(str), ".000Z"),
        "StageName": np.array(STAGES)[h_stage], "Amount": h_amt,
        "ExpectedRevenue": np.round(h_amt * STAGE_PROB[h_stage] / 100, 2),
        "CloseDate": np.datetime_as_string(h_ec, unit="D").astype(str),
        "Probability": STAGE_PROB[h_stage].astype(float), "ForecastCategory": FC_API[h_fc],
    }).with_columns(pl.col("Amount").fill_nan(None), pl.col("ExpectedRevenue").fill_nan(None))
    hist = hist.sort(["OpportunityId", "CreatedDate"])

    # opportunity state as of the export: the last kept row of each deal
    order = np.lexsort((ti, di))
    di_o, ti_o = di[order], ti[order]
    last = np.r_[di_o[1:] != di_o[:-1], True]
    ld, lt = di_o[last], ti_o[last]
    assert np.array_equal(ld, np.arange(N)), "every deal has a creation row before the export"
    o_stage = rec_stage[ld, lt].astype(np.int64)
    o_closed = o_stage >= WON
    # last stage change as of export
    stage_chg = np.zeros_like(valid)
    stage_chg[:, 0] = True
    stage_chg[:, 1:] = valid[:, 1:] & (rec_stage[:, 1:] != rec_stage[:, :-1])
    stage_chg &= (ev_ts < cut)
    lsc_t = (T_MAX - np.argmax(stage_chg[:, ::-1], axis=1))
    o_owner = np.where((ho_step >= 0) & (lt >= ho_step), successor[rep_seat[owner]], owner)
    o_amt = rec_amt[ld, lt]
    fy = quarter_end(created_day)  # placeholder for shape
    o_close = rec_ecd[ld, lt].astype("datetime64[D]")
    cy = o_close.astype("datetime64[Y]").astype(int) + 1970
    cq = (o_close.astype("datetime64[M]").astype(int) % 12) // 3 + 1
    opp = pl.DataFrame({
        "Id": opp_ids,
        "Name": [f"{acc_names[acc[i]]} - {products[prod[i]][0]}" + (" Renewal" if t_idx[i] == 2 else "")
                 for i in range(N)],
        "AccountId": acc_ids[acc], "OwnerId": rep_ids[o_owner], "StageName": np.array(STAGES)[o_stage],
        "Amount": o_amt, "Probability": STAGE_PROB[o_stage].astype(float),
        "ExpectedRevenue": np.round(o_amt * STAGE_PROB[o_stage] / 100, 2),
        "CloseDate": np.datetime_as_string(o_close, unit="D").astype(str),
        "Type": dtype, "LeadSource": lead, "ForecastCategoryName": FC_LABEL[rec_fc[ld, lt]],
        "IsClosed": np.where(o_closed, "true", "false"), "IsWon": np.where(o_stage == WON, "true", "false"),
        "CreatedDate": np.char.add(np.datetime_as_string(ev_ts[:, 0], unit="s").astype(str), ".000Z"),
        "LastStageChangeDate": np.char.add(np.datetime_as_string(ev_ts[np.arange(N), lsc_t], unit="s")
                                           .astype(str), ".000Z"),
        "LastModifiedDate": np.char.add(np.datetime_as_string(ev_ts[ld, lt], unit="s").astype(str), ".000Z"),
        "FiscalYear": cy, "FiscalQuarter": cq, "Product2Id": prod_ids[prod],
    }).with_columns(pl.col("Amount").fill_nan(None), pl.col("ExpectedRevenue").fill_nan(None))
    del fy

    acc_df = pl.DataFrame({
        "Id": acc_ids, "Name": acc_names, "Type": np.where(acc_cust, "Customer - Direct", "Prospect"),
        "Industry": np.array(INDUSTRIES)[acc_ind],
        "NumberOfEmployees": pl.Series(acc_emp).set(pl.Series(acc_emp_blank), None),
        "AnnualRevenue": pl.Series(acc_rev).set(pl.Series(acc_rev_blank), None),
        "BillingCountry": acc_country, "OwnerId": rep_ids[occ[acc_seat, 0]],
    })
    user_df = pl.DataFrame(users, schema=["Id", "Name", "FirstName", "LastName", "Title", "ManagerId",
                                          "UserRole.Name", "IsActive"], orient="row")
    prod_df = pl.DataFrame({"Id": prod_ids, "Name": [p[0] for p in products], "ProductCode": [p[2] for p in products],
                            "Family": [p[1] for p in products], "IsActive": ["true"] * n_prod})
    for df, fn in [(opp, "Opportunity.csv"), (hist, "OpportunityHistory.csv"), (acc_df, "Account.csv"),
                   (user_df, "User.csv"), (prod_df, "Product2.csv")]:
        df.write_csv(out / fn, quote_style="always")

    # ---------------------------------------------------------------- truth
    eventual_won = (final_stage == WON).astype(int)
    open_at_export = ~o_closed
    truth = pl.DataFrame({
        "Id": opp_ids, "true_p_at_creation": np.round(true_p, 5), "eventual_won": eventual_won,
        "eventual_close_date": np.datetime_as_string(close_day, unit="D").astype(str),
        "open_at_export": open_at_export.astype(int), "latent_quality": np.round(q, 4),
        "visible_quality": np.round(q_vis, 4),
    })
    truth.write_csv(out / "truth" / "eventual.csv")

    closed_e = o_closed
    won_e = o_stage == WON
    y_full = eventual_won
    by_type = {tn: {"deals": int((t_idx == i).sum()), "eventual_win_rate": float(y_full[t_idx == i].mean()),
                    "mean_true_p": float(true_p[t_idx == i].mean())} for i, tn in enumerate(types)}
    first_half = w0 < n_hist // 2
    half_key = np.char.add(created_day.astype("datetime64[Y]").astype(str),
                           np.where(created_day.astype("datetime64[M]").astype(int) % 12 < 6, "H1", "H2"))
    summary = {
        "generator": "heldout_gen/gen.py", "seed": a.seed, "drift": X,
        "export_date": str(EXPORT), "history_start": str(START),
        "counts": {"opportunities": N, "accounts": n_acc, "users": len(users), "reps": n_reps,
                   "products": n_prod, "history_rows": int(hist.height),
                   "open_at_export": int(open_at_export.sum()), "closed_at_export": int(closed_e.sum()),
                   "won_at_export": int(won_e.sum()), "lost_at_export": int((o_stage == LOST).sum()),
                   "blank_amount_at_export": int(np.isnan(o_amt).sum())},
        "win_rate_closed_at_export": float(won_e.sum() / max(1, closed_e.sum())),
        "eventual_win_rate_all_deals": float(y_full.mean()),
        "eventual_win_rate_open_at_export": float(y_full[open_at_export].mean()),
        "mean_true_p_at_creation": float(true_p.mean()),
        "brier_true_p_vs_eventual": float(np.mean((true_p - y_full) ** 2)),
        "eventual_win_rate_created_first_half": float(y_full[first_half].mean()),
        "eventual_win_rate_created_second_half": float(y_full[~first_half].mean()),
        "by_type": by_type,
        "eventual_win_rate_by_half_year_created": {str(hy): float(y_full[half_key == hy].mean())
                                                   for hy in np.unique(half_key)},
        "median_cycle_days_won": float(np.median((close_day - created_day).astype(int)[y_full == 1])),
        "median_cycle_days_lost": float(np.median((close_day - created_day).astype(int)[y_full == 0])),
        "lost_by_last_open_stage": {},
        "settings": {"monte_carlo_replicates": N_REP, "max_weeks": T_MAX,
                     "params": {k: v for k, v in P.items()}},
        "drift_effects": {
            "win_odds_trend": f"latent quality shifted by -{drift_slope:.3f} x (fraction of history elapsed - 0.35;"
                              " fraction capped at 1.15) at every simulated week: better odds early, worse late",
            "rep_turnover": [{"leaver": str(rep_ids[s]), "left_week_start": str(mondays[leave_w[s]]),
                              "successor": str(rep_ids[successor[s]])} for s in leave_seats],
            "new_rep_ramp": f"successor skill penalty -{ramp_amp:.2f} x exp(-tenure_weeks/20); volume ramps"
                            f" over 12 weeks; open deals handed over lose {P['HANDOVER_SHOCK']} momentum",
            "new_product": (None if X <= 0 else {"name": NEW_PRODUCT[0], "id": str(prod_ids[-1]),
                                                 "launch_week_start": str(mondays[launch_w]),
                                                 "share_of_new_and_upgrade_deals": min(0.35, 0.3 * X),
                                                 "quality_effect": float(prod_q[-1])}),
            "quarter_end": {"late_stage_speed_boost": qe_boost,
                            "decision_logit_penalty_in_quarter_end_weeks": 0.35 * X},
        } if X > 0 else "none (stationary world: no trend, no turnover, no new product, base quarter-end push)",
    }
    # losses by the last open stage before Closed Lost
    prev_stage = rec_stage[np.arange(N), np.maximum(0, life - 1)]
    for s_i in range(8):
        summary["lost_by_last_open_stage"][STAGES[s_i]] = int(((final_stage == LOST) & (prev_stage == s_i)).sum())
    summary["won_by_last_open_stage"] = {STAGES[s_i]: int(((final_stage == WON) & (prev_stage == s_i)).sum())
                                         for s_i in range(8)}
    summary["runtime_seconds"] = round(time.time() - t_start, 2)
    (out / "truth" / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: summary[k] for k in ["counts", "win_rate_closed_at_export", "eventual_win_rate_all_deals",
                                              "mean_true_p_at_creation", "runtime_seconds"]}, indent=1))


if __name__ == "__main__":
    main()
