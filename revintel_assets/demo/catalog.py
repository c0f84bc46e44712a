"""The demo company's fixed world: calendar, product catalogue, sales team and accounts.

Everything here is either a constant table or drawn from a caller-supplied
`numpy.random.Generator`, so the generator controls all randomness through its seed tree.
Dates are handled as integer day numbers counted from 2023-01-01 (day 0) because every
simulation step is vectorised arithmetic on those numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# --------------------------------------------------------------------------------- calendar
EPOCH = np.datetime64("2023-01-01", "D")
EPOCH_UNIX_DAYS = int(EPOCH.astype(np.int64))  # polars Date = days since 1970-01-01
# the export date (day 1095), fixed: the generator never looks at the wall clock
EXPORT_DAY = int((np.datetime64("2025-12-31") - EPOCH).astype(np.int64))
N_MONTHS = 36  # Jan 2023 .. Dec 2025
_EPOCH_MONTH = EPOCH.astype("datetime64[M]")


def month_index(days: np.ndarray) -> np.ndarray:
    """Month number (0 = Jan 2023) of each day number."""
    d = EPOCH + np.asarray(days).astype("timedelta64[D]")
    return (d.astype("datetime64[M]") - _EPOCH_MONTH).astype(np.int64)


def month_start(months: np.ndarray) -> np.ndarray:
    """Day number of the first day of each month number."""
    m = _EPOCH_MONTH + np.asarray(months).astype("timedelta64[M]")
    return (m.astype("datetime64[D]") - EPOCH).astype(np.int64)


def month_end(days: np.ndarray) -> np.ndarray:
    return month_start(month_index(days) + 1) - 1


def quarter_start(days: np.ndarray, fy_start_month: int = 1) -> np.ndarray:
    """First day of the fiscal quarter holding each day (fy_start_month 1: calendar quarters;
    month number 0 is a January)."""
    m = month_index(days)
    return month_start(m - (m - (fy_start_month - 1)) % 3)


def quarter_end(days: np.ndarray, fy_start_month: int = 1) -> np.ndarray:
    m = month_index(days)
    return month_start(m - (m - (fy_start_month - 1)) % 3 + 3) - 1


def weekday(days: np.ndarray) -> np.ndarray:
    """0 = Monday; 2023-01-01 was a Sunday."""
    return (np.asarray(days) + 6) % 7


def _dates(days) -> np.ndarray:
    return EPOCH + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")


def _days(dates: np.ndarray) -> np.ndarray:
    return (dates - EPOCH).astype(np.int64)


def next_business_day(days: np.ndarray) -> np.ndarray:
    return _days(np.busday_offset(_dates(days), 0, roll="forward"))


def prev_business_day(days: np.ndarray) -> np.ndarray:
    return _days(np.busday_offset(_dates(days), 0, roll="backward"))


def add_business_days(days: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Day n business days after `days` (rolled forward to a business day first)."""
    return _days(np.busday_offset(_dates(days), n, roll="forward"))


def business_days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Business days in [start, end)."""
    return np.busday_count(_dates(start), _dates(end))


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int, name: str) -> pl.Series:
    """Ids like A000123: a letter and a zero-padded number."""
    digits = pl.Series(name, np.asarray(numbers, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return pl.select(pl.concat_str([pl.lit(prefix), digits]).alias(name)).to_series()


def to_pl_date(days: np.ndarray, name: str) -> pl.Series:
    """Day numbers as a polars Date column; negative day numbers mean "no date" (null)."""
    days = np.asarray(days, dtype=np.int64)
    unix = np.where(days >= 0, days + EPOCH_UNIX_DAYS, np.nan)
    return pl.Series(name, unix, nan_to_null=True).cast(pl.Int32).cast(pl.Date)


# ------------------------------------------------------------------------- product catalogue
DIVISIONS = ["Analytics", "Cloud Platform", "Security", "Services", "Hardware"]

# sku, product name, series, list price, division index, CRM tier (-1 = sold only through the
# sales log, 0/1/2 = entry/mid/enterprise major SKU), typical run-rate quantity above one.
_SKUS = [
    ("APX-CORE", "Apex Core", "Apex", 4800, 0, 0, 0.3),
    ("APX-PRO", "Apex Pro", "Apex", 12500, 0, 1, 0.2),
    ("APX-ENT", "Apex Enterprise", "Apex", 38000, 0, 2, 0.1),
    ("INS-DASH", "Insight Dashboards", "Insight", 1200, 0, -1, 1.0),
    ("INS-SEAT", "Insight Seat Pack", "Insight", 350, 0, -1, 6.0),
    ("INS-CONN", "Insight Connector", "Insight", 600, 0, -1, 1.5),
    ("INS-AI", "Insight AI Assist", "Insight", 2400, 0, -1, 0.5),
    ("NMB-STD", "Nimbus Standard", "Nimbus", 9600, 1, 0, 0.3),
    ("NMB-PLUS", "Nimbus Plus", "Nimbus", 21000, 1, 1, 0.2),
    ("NMB-ENT", "Nimbus Enterprise", "Nimbus", 48000, 1, 2, 0.1),
    ("STR-STOR", "Stratus Storage 10TB", "Stratus", 1800, 1, -1, 2.0),
    ("STR-BKP", "Stratus Backup", "Stratus", 900, 1, -1, 1.0),
    ("STR-CDN", "Stratus Edge CDN", "Stratus", 1500, 1, -1, 1.0),
    ("STR-GPU", "Stratus GPU Hours", "Stratus", 2600, 1, -1, 4.0),
    ("AEG-EDR", "Aegis Endpoint", "Aegis", 7200, 2, 0, 0.3),
    ("SNT-IAM", "Sentinel Identity", "Sentinel", 11000, 2, 1, 0.2),
    ("AEG-XDR", "Aegis XDR", "Aegis", 26000, 2, 2, 0.1),
    ("AEG-PACK", "Aegis Agent Pack", "Aegis", 180, 2, -1, 20.0),
    ("SNT-MFA", "Sentinel MFA Tokens", "Sentinel", 450, 2, -1, 10.0),
    ("SNT-AUD", "Sentinel Audit Vault", "Sentinel", 1300, 2, -1, 0.5),
    ("PTW-MS", "Pathway Managed Service", "Pathway", 6000, 3, 0, 0.2),
    ("PTW-IMPL", "Pathway Implementation", "Pathway", 15000, 3, 1, 0.1),
    ("PTW-MIG", "Pathway Migration", "Pathway", 22000, 3, 2, 0.1),
    ("SUM-TRN", "Summit Training Day", "Summit", 2000, 3, -1, 1.5),
    ("SUM-ADV", "Summit Advisory Hours", "Summit", 250, 3, -1, 16.0),
    ("SUM-HC", "Summit Health Check", "Summit", 3500, 3, -1, 0.2),
    ("FRG-R2", "Forge Server R2", "Forge", 8900, 4, 0, 1.0),
    ("RLY-FW", "Relay Firewall", "Relay", 5400, 4, 1, 0.5),
    ("FRG-R4", "Forge Server R4", "Forge", 19500, 4, 2, 1.0),
    ("RLY-SW24", "Relay Switch 24", "Relay", 2700, 4, -1, 2.0),
    ("RLY-AP", "Relay Access Point", "Relay", 420, 4, -1, 4.0),
    ("FRG-NVME", "Forge NVMe Drive", "Forge", 650, 4, -1, 3.0),
    ("FRG-MEM", "Forge Memory Kit", "Forge", 310, 4, -1, 4.0),
]


@dataclass(frozen=True)
class Catalog:
    sku: list[str]
    product: list[str]
    series: list[str]
    price: np.ndarray  # list price per unit
    division: np.ndarray  # division index per SKU
    tier: np.ndarray  # -1 for sales-log-only SKUs
    qty_extra: np.ndarray  # mean extra units on a run-rate line

    @property
    def majors(self) -> np.ndarray:
        return np.flatnonzero(self.tier >= 0)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame({
            "sku": self.sku, "product": self.product, "series": self.series,
            "sales_price": self.price.astype(np.int64),
            "division": [DIVISIONS[d] for d in self.division],
        })


def build_catalog() -> Catalog:
    cols = list(zip(*_SKUS, strict=True))
    return Catalog(list(cols[0]), list(cols[1]), list(cols[2]), np.array(cols[3], float),
                   np.array(cols[4]), np.array(cols[5]), np.array(cols[6], float))


# ---------------------------------------------------------------------------- firmographics
SECTORS = ["employment", "entertainment", "finance", "marketing", "medical", "retail",
           "services", "software", "technology", "telecommunications"]
# Logit affinity of each sector for each division (Analytics, Cloud, Security, Services,
# Hardware): the "account fit" that drives both deal outcomes and run-rate purchases.
SECTOR_AFFINITY = np.array([
    [0.3, 0.0, -0.2, 0.4, -0.4],
    [0.2, 0.5, -0.3, -0.2, 0.3],
    [0.6, 0.1, 0.8, 0.1, -0.3],
    [0.8, 0.3, -0.5, 0.2, -0.6],
    [0.2, -0.2, 0.7, 0.3, 0.4],
    [0.3, 0.4, 0.0, -0.3, 0.6],
    [0.0, 0.1, 0.0, 0.6, -0.2],
    [0.4, 0.8, 0.3, -0.4, -0.5],
    [0.2, 0.6, 0.4, -0.1, 0.5],
    [-0.1, 0.3, 0.5, 0.0, 0.7],
])
SECTOR_WEIGHT = np.array([5, 7, 9, 9, 13, 18, 6, 8, 14, 7], float)
# Divisions prefer accounts near an ideal size (log10 employees): services and hardware sell
# to the mid-market, cloud and analytics to enterprises.
DIVISION_IDEAL_SIZE = np.array([3.3, 3.5, 3.2, 2.8, 2.6])

REGIONS = ["Central", "East", "West", "EMEA", "APAC"]
# country, weight, region index (-1 = United States, spread over the three US offices)
_COUNTRIES = [
    ("United States", 66, -1), ("Canada", 4, 1), ("Mexico", 2, 0), ("Brazil", 2, 0),
    ("United Kingdom", 4, 3), ("Germany", 4, 3), ("France", 2, 3), ("Netherlands", 1.5, 3),
    ("Poland", 1, 3), ("Norway", 1, 3), ("Italy", 1, 3), ("Kenya", 0.5, 3), ("Jordan", 0.5, 3),
    ("Japan", 2.5, 4), ("Korea", 1.5, 4), ("China", 1, 4), ("Singapore", 1, 4),
    ("Australia", 2, 4), ("India", 1.5, 4), ("Philippines", 0.5, 4),
]
COUNTRIES = [c[0] for c in _COUNTRIES]
COUNTRY_WEIGHT = np.array([c[1] for c in _COUNTRIES], float)
COUNTRY_REGION = np.array([c[2] for c in _COUNTRIES])


def region_shares() -> np.ndarray:
    """Expected share of accounts per regional office (sizes the sales team)."""
    w = COUNTRY_WEIGHT / COUNTRY_WEIGHT.sum()
    shares = np.array([w[COUNTRY_REGION == r].sum() for r in range(len(REGIONS))])
    shares[:3] += w[COUNTRY_REGION == -1].sum() / 3
    return shares


# ------------------------------------------------------------------------------------ names
_FIRST = """Anna Cecily Versie Lajuana Moses Darcel Zane Maureen Vicki Garret Corliss Violet Jonathan
Hayden Markita Elease Marty Niesha Donn Reed Boris Wilburn Rosalina James Kami Gladys Rosie Daniell
Kary Lynn Cassey Elizabeth Celia Andrew Priya Omar Sofia Lucas Mei Diego Hannah Ravi Ingrid Kwame
Elena Tomasz Yuki Amara Felix Noor Mateo Chloe Arjun Lena Samuel Ines Victor Grace Hugo Leila Oscar
Julia Dmitri Aisha Marco Freya Kenji Olivia Pablo Sara Nikhil Emma Tariq Clara Jonas Fatima Liam
Rosa Ethan Maya Karl Zara Adrian Nina Peter Lucia Henry Alma Bruno Tessa Miguel Ada Rahul Ivy
Stefan Nora Ahmed Eva Louis Wendy Carlos Heidi Tobias Paula Isaac Mira""".split()
_LAST = """Snelling Lampkin Hillebrand Vencill Frase Schlecht Levitsky Wallenberg Hagel Pettit
Brinkmann Cabrera Dopico Ditzel Lovell Ebert Magee Fish Marxen Stumph Cullop Fredericks Gomez
Hammack Brewster Gale Sanchez Okafor Nakamura Kowalski Lindqvist Moreau Rossi Haddad Patel Mensah
Fischer Novak Costa Jansen Ivanova Tanaka Olsen Dubois Varga Reyes Murphy Schmidt Bianchi Kaur
Andersen Sato Weber Horvat Silva Nguyen Park Alvarez Keller Duarte Berg Hughes Sommer Castillo
Yilmaz Wagner Ortiz Lehmann Kim Petrov Ward Romero Bauer Chen Fleming Quinn Barros Holm Ibrahim
Vogel Marsh Ahn Lindgren Carter Falk Moreno Peck Rahman Stone Abbott Blake Crane Doyle Ellis Frost
Greer Hale Irwin Joyce Kemp Lowe Monroe Nash Osei Pike""".split()

_PREFIX = """Acme Beta Can Code Bio Blue Cyber Data Dyna Eco Fin Gen Glo Hex Hyper Inno Iso Kin Lumi
Max Medi Mega Nexa Nova Omni Opti Ortho Pace Pixel Prime Quanta Rapid Sky Sola Stra Syn Terra Tri
Ultra Uni Vela Vita Volt Xeno Zen Zeta Aero Alpha Apex Astra Bright Clear Core Crest Delta Echo
Ever Flex Gold Green Haven Iron Jet Key North Oak Pine Red Silver Stone Sun True Vertex West Wind
Arbor Bolt Cedar Cobalt Dawn""".split()
_ROOT = """tech soft works hold lane city max tron net core logic scape ware ium ify ex ora
gen labs link path point port ridge stream sys vault view wave bridge field forge gate grid hub
line matrix mind nest pulse quest rise scale shift span sphere star tide trail well wing zone
bit byte cloud craft data dock flow frame leaf loop mark""".split()
_DESCRIPTOR = ["", "Inc", "Corp", "Group", "Labs", "Systems", "Holdings", "Partners",
               "Technologies", "Solutions", "Industries", "Co", "Dynamics"]
_QUALIFIER = ["International", "Global", "Americas", "Europe", "Asia", "North", "South", "East",
              "West", "Capital", "Ventures", "Enterprises", "Worldwide", "Digital", "Networks"]
_BASE = len(_PREFIX) * len(_ROOT) * len(_DESCRIPTOR)


def _check_names() -> None:
    stems = {p + r for p in _PREFIX for r in _ROOT}
    assert len(stems) == len(_PREFIX) * len(_ROOT), "company name stems collide"
    assert len(set(_DESCRIPTOR)) == len(_DESCRIPTOR) and not set(_DESCRIPTOR) & set(_QUALIFIER)


_check_names()


def name_permutation(rng: np.random.Generator) -> np.ndarray:
    """Shuffles the base name space once so account 0 is not 'Acmetech'. A weighted shuffle
    (Efraimidis-Spirakis keys) puts bare one-word names ("Betasoloin") first more often, so
    small companies look like MavenTech's list while large ones still get unique names."""
    bare = np.arange(_BASE) % len(_DESCRIPTOR) == 0
    keys = np.log(rng.random(_BASE)) / np.where(bare, 12.0, 1.0)
    return np.argsort(-keys, kind="stable")


def account_names(index: np.ndarray, perm: np.ndarray) -> pl.Series:
    """Unique company-like names for global account numbers: a shuffled stem+descriptor
    space of ~85k names, then qualifier suffixes ("... Global") for larger companies."""
    tier, combo = np.divmod(index, _BASE)
    if tier.max(initial=0) > len(_QUALIFIER):
        raise ValueError("too many accounts for the company name space")
    c = perm[combo]
    stem, desc = np.divmod(c, len(_DESCRIPTOR))
    pre, root = np.divmod(stem, len(_ROOT))
    parts = pl.DataFrame({
        "p": np.array(_PREFIX)[pre], "r": np.array(_ROOT)[root],
        "d": np.array(_DESCRIPTOR)[desc], "q": np.array([""] + _QUALIFIER)[tier],
    })
    return parts.select(pl.concat_str([
        pl.col("p"), pl.col("r"),
        pl.when(pl.col("d") != "").then(pl.lit(" ") + pl.col("d")).otherwise(pl.lit("")),
        pl.when(pl.col("q") != "").then(pl.lit(" ") + pl.col("q")).otherwise(pl.lit("")),
    ]).alias("account")).to_series()


def person_names(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct "First Last" names; a middle initial keeps them unique beyond the pool."""
    pool = len(_FIRST) * len(_LAST)
    if n > pool * 26:
        raise ValueError("sales team too large for the name pool")
    k = rng.permutation(pool)[np.arange(n) % pool]
    mid = np.arange(n) // pool
    first, last = np.divmod(k, len(_LAST))
    return [f"{_FIRST[f]} {chr(64 + m) + '. ' if m else ''}{_LAST[s]}"
            for f, s, m in zip(first, last, mid, strict=True)]  # one-off over reps, not deals


# ------------------------------------------------------------------------------ sales team
@dataclass(frozen=True)
class Team:
    name: pl.Series  # rep names
    region: np.ndarray  # region index per rep
    manager: list[str]
    skill: np.ndarray  # logit effect on win probability (visible as track record)
    discount: np.ndarray  # the rep's habitual extra discount
    optimism: np.ndarray  # multiplier on the first expected close estimate (<1 = optimistic)
    region_reps: list[np.ndarray]  # reps that cover each region (all reps if none there)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame({"sales_agent": self.name, "manager": self.manager,
                             "regional_office": [REGIONS[r] for r in self.region]})


def _allocate(total: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder split of `total` people over regions."""
    raw = total * shares / shares.sum()
    n = np.floor(raw).astype(int)
    n[np.argsort(-(raw - n), kind="stable")[: total - n.sum()]] += 1
    return n


def build_team(n_reps: int, rng: np.random.Generator) -> Team:
    per_region = _allocate(n_reps, region_shares())
    region = np.repeat(np.arange(len(REGIONS)), per_region)
    n_mgr = np.where(per_region > 0, np.maximum(1, np.rint(per_region / 7)), 0).astype(int)
    names = person_names(n_reps + int(n_mgr.sum()), rng)
    rep_names, mgr_names = names[:n_reps], names[n_reps:]
    mgr_first = np.concatenate([[0], np.cumsum(n_mgr)[:-1]])
    rank = np.arange(n_reps) - np.concatenate([[0], np.cumsum(per_region)[:-1]])[region]
    # reps of a region are dealt to its managers in turn
    manager = [mgr_names[mgr_first[r] + k % n_mgr[r]] for r, k in zip(region, rank, strict=True)]
    region_reps = [np.flatnonzero(region == r) if per_region[r] else np.arange(n_reps)
                   for r in range(len(REGIONS))]
    return Team(pl.Series("sales_agent", rep_names), region, manager,
                skill=rng.normal(0.0, 0.5, n_reps),
                discount=rng.normal(0.0, 0.035, n_reps),
                optimism=rng.uniform(0.7, 1.2, n_reps),
                region_reps=region_reps)


def pick_region_rep(team: Team, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly chosen rep covering each given region (loop over the 5 regions only)."""
    out = np.empty(len(region), np.int64)
    u = rng.random(len(region))
    for r, reps in enumerate(team.region_reps):
        sel = region == r
        out[sel] = reps[(u[sel] * len(reps)).astype(np.int64)]
    return out
