"""The demo company generator: determinism, file contracts, internal consistency, realism and
informative ground truth. Everything runs on scale 0.05 (~100 accounts, ~1,000 deals)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from revintel_assets.demo import catalog as C
from revintel_assets.demo.generator import generate_company
from revintel_assets.demo.summary import auc

SCALE = 0.05
HEADERS = {
    "accounts.csv": ["account_id", "account", "sector", "year_established", "revenue", "employees",
                     "office_location", "subsidiary_of"],
    "products.csv": ["sku", "product", "series", "sales_price", "division"],
    "sales_teams.csv": ["sales_agent", "manager", "regional_office"],
    "sales_pipeline.csv": ["opportunity_id", "sales_agent", "product", "account", "deal_stage",
                           "engage_date", "close_date", "close_value"],
    "opportunity_history.csv": ["opportunity_id", "changed_at", "deal_stage", "expected_close_date",
                                "amount"],
    "sku_map.csv": ["sku", "division"],
    "truth/deal_truth.csv": ["opportunity_id", "true_win_probability"],
    "truth/division_truth.csv": ["account_id", "division", "cutoff_date", "window_months",
                                 "true_probability"],
}
OPEN_STAGES = ["Prospecting", "Engaging", "Proposal", "Negotiation"]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def company(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_company(out, scale=SCALE, seed=42, progress=False)


@pytest.fixture(scope="module")
def root(company) -> Path:
    return company[0]


@pytest.fixture(scope="module")
def pipeline(root) -> pl.DataFrame:
    return pl.read_csv(root / "sales_pipeline.csv", try_parse_dates=True)


@pytest.fixture(scope="module")
def history(root) -> pl.DataFrame:
    return pl.read_csv(root / "opportunity_history.csv", try_parse_dates=True)


@pytest.fixture(scope="module")
def sales_log(root) -> pl.DataFrame:
    return pl.read_csv(root / "sales_log.csv", infer_schema_length=0)


def test_same_seed_gives_byte_identical_files(root, tmp_path):
    # progress bar on this time: it must not change a byte
    generate_company(tmp_path, scale=SCALE, seed=42, progress=True)
    first, second = _files(root), _files(tmp_path)
    assert sorted(first) == sorted(second)
    assert "truth/summary.json" in first
    for name in first:
        assert first[name] == second[name], name


def test_different_seed_gives_different_company(root, tmp_path):
    generate_company(tmp_path, scale=SCALE, seed=7, progress=False)
    first, second = _files(root), _files(tmp_path)
    for name in ["accounts.csv", "sales_pipeline.csv", "sales_log.csv", "truth/deal_truth.csv"]:
        assert first[name] != second[name], name


def test_no_global_seeding_in_generator_sources():
    src = Path(C.__file__).parent
    for path in src.glob("*.py"):
        assert "np.random.seed" not in path.read_text(), path.name


def test_files_have_the_contract_headers_and_plain_csv(root):
    for name, header in HEADERS.items():
        raw = (root / name).read_bytes()
        assert b"\r" not in raw and not raw.startswith(b"\xef\xbb\xbf"), name
        assert raw.split(b"\n", 1)[0].decode() == ",".join(header), name
    assert not (root / ".generating").exists()


def test_sales_log_layout(root, sales_log):
    cols = sales_log.columns
    assert cols[:6] == ["CustomerId", "Customer", "Rec Date", "Division", "Rep", "Branch"]
    skus = cols[6::2]
    assert cols[7::2] == [f"{s}_Qty" for s in skus]
    sku_map = pl.read_csv(root / "sku_map.csv")
    assert set(skus) <= set(sku_map["sku"]) and set(sku_map["sku"]) <= set(skus)
    keys = sales_log.select(pl.col("Rec Date"), pl.col("CustomerId"))
    assert keys.equals(keys.sort("Rec Date", "CustomerId", maintain_order=True))
    # every order has at least one line, all from the order's division
    long = (sales_log.with_row_index("order")
            .unpivot(index=["order", "Division"], on=skus, variable_name="sku")
            .drop_nulls("value").join(sku_map, on="sku"))
    assert long["order"].n_unique() == sales_log.height
    assert (long["Division"] == long["division"]).all()
    assert sales_log["Division"].n_unique() >= 4


def test_summary_counts_match_the_files(company, root, pipeline, sales_log):
    _, summary = company
    assert json.loads((root / "truth" / "summary.json").read_text()) == summary
    n = summary
    skus = sales_log.columns[6::2]
    lines = sales_log.select(pl.sum_horizontal(pl.col(skus).is_not_null())).to_series().sum()
    assert n["accounts"] == pl.read_csv(root / "accounts.csv").height
    assert n["opportunities"] == pipeline.height
    assert n["orders"] == sales_log.height
    assert n["transaction_lines"] == lines
    assert n["reps"] == pl.read_csv(root / "sales_teams.csv").height
    assert 80 <= n["accounts"] <= 120 and n["reps"] >= 3


def test_realism_bounds(company, pipeline):
    _, summary = company
    closed = pipeline.filter(pl.col("deal_stage").is_in(["Won", "Lost"]))
    win_rate = (closed["deal_stage"] == "Won").mean()
    assert 0.35 <= win_rate <= 0.65
    assert summary["closed_win_rate"] == pytest.approx(win_rate, abs=1e-4)
    open_share = 1 - closed.height / pipeline.height
    assert 0.04 <= open_share <= 0.25
    open_deals = pipeline.filter(~pl.col("deal_stage").is_in(["Won", "Lost"]))
    assert set(open_deals["deal_stage"]) == set(OPEN_STAGES)
    # quarter-end rush: the last two weeks hold ~15% of a quarter's days, far more closes
    cd = pl.col("close_date")
    qe = pl.date(cd.dt.year(), (cd.dt.month() - 1) // 3 * 3 + 3, 1).dt.month_end()
    share = closed.select(((qe - cd).dt.total_days() <= 13).mean()).item()
    assert share > 0.2
    assert summary["share_closes_last_2_weeks_of_quarter"] == pytest.approx(share, abs=1e-4)
    assert (closed.filter(pl.col("deal_stage") == "Lost")["close_value"] == 0).all()
    assert (closed.filter(pl.col("deal_stage") == "Won")["close_value"] > 0).all()
    assert len(summary["division_buyer_share"]) == 5


def test_dates_are_ordered_and_inside_the_history(pipeline, history):
    first = history.group_by("opportunity_id").agg(created=pl.col("changed_at").first())
    p = pipeline.join(first, on="opportunity_id")
    assert p.filter(pl.col("engage_date") < pl.col("created")).is_empty()
    assert p.filter(pl.col("close_date") < pl.coalesce("engage_date", "created")).is_empty()
    assert p.filter((pl.col("deal_stage") == "Prospecting") & pl.col("engage_date").is_not_null()).is_empty()
    steps = history.with_columns(prev=pl.col("changed_at").shift(1).over("opportunity_id"))
    assert steps.filter(pl.col("changed_at") < pl.col("prev")).is_empty()
    assert history["changed_at"].min() >= date(2023, 1, 1)
    assert history["changed_at"].max() <= date(2025, 12, 31)
    assert (history["changed_at"].dt.weekday() <= 5).all()  # CRM work happens on business days


def test_history_is_consistent_with_the_final_state(pipeline, history):
    ids = history["opportunity_id"]
    assert ids.equals(ids.sort()), "history is ordered by opportunity_id"
    firsts = history.group_by("opportunity_id", maintain_order=True).first()
    assert (firsts["deal_stage"] == "Prospecting").all()
    lasts = history.group_by("opportunity_id", maintain_order=True).last()
    j = pipeline.join(lasts, on="opportunity_id", suffix="_h")
    assert j.height == pipeline.height
    assert (j["deal_stage"] == j["deal_stage_h"]).all()
    closed = j.filter(pl.col("close_date").is_not_null())
    assert (closed["changed_at"] == closed["close_date"]).all()
    won = j.filter(pl.col("deal_stage") == "Won")
    assert (won["amount"] == won["close_value"]).all()
    # every row changes something: stage, expected close date or amount
    changed = history.with_columns(
        same=pl.all_horizontal([(pl.col(c) == pl.col(c).shift(1).over("opportunity_id"))
                                for c in ["deal_stage", "expected_close_date", "amount"]]))
    assert changed.filter(pl.col("same").fill_null(False)).is_empty()
    engaged = j.filter(pl.col("engage_date").is_not_null())
    entries = history.filter(pl.col("deal_stage") == "Engaging").group_by("opportunity_id").agg(
        first_engaging=pl.col("changed_at").min())
    e = engaged.join(entries, on="opportunity_id")
    assert (e["engage_date"] == e["first_engaging"]).all()


def test_every_reference_resolves(root, pipeline, sales_log):
    accounts = pl.read_csv(root / "accounts.csv")
    products = pl.read_csv(root / "products.csv")
    teams = pl.read_csv(root / "sales_teams.csv")
    assert set(pipeline["product"]) <= set(products["product"])
    assert set(pipeline["account"]) <= set(accounts["account"])
    assert set(pipeline["sales_agent"]) <= set(teams["sales_agent"])
    assert accounts["account"].is_unique().all() and accounts["account_id"].is_unique().all()
    assert set(accounts["subsidiary_of"].drop_nulls()) <= set(accounts["account"])
    assert set(sales_log["CustomerId"]) <= set(accounts["account_id"])
    assert set(sales_log["Rep"]) <= set(teams["sales_agent"])
    assert set(sales_log["Branch"]) <= set(teams["regional_office"])
    assert products["sku"].str.contains(r"^[A-Z0-9-]+$").all()
    assert 12 <= pipeline["product"].n_unique() <= 15  # only the major SKUs go through the CRM


def test_won_deals_appear_as_orders(root, pipeline, sales_log):
    products = pl.read_csv(root / "products.csv")
    accounts = pl.read_csv(root / "accounts.csv")
    skus = sales_log.columns[6::2]
    lines = (sales_log.unpivot(index=["CustomerId", "Rec Date"], on=skus, variable_name="sku")
             .drop_nulls("value").with_columns(pl.col("value").cast(pl.Float64),
                                               pl.col("Rec Date").str.to_date()))
    won = (pipeline.filter(pl.col("deal_stage") == "Won")
           .join(products.select("product", "sku"), on="product")
           .join(accounts.select("account", "account_id"), on="account"))
    hit = won.join(lines, left_on=["account_id", "close_date", "sku"],
                   right_on=["CustomerId", "Rec Date", "sku"], how="left")
    exact = hit.group_by("opportunity_id").agg((pl.col("value") - pl.col("close_value")).abs().min() < 0.005)
    assert exact.height == won.height and exact["value"].all()


def test_truth_files(root, pipeline):
    deal = pl.read_csv(root / "truth" / "deal_truth.csv")
    assert deal.columns == HEADERS["truth/deal_truth.csv"]
    assert deal["opportunity_id"].sort().equals(pipeline["opportunity_id"].sort())
    assert deal["true_win_probability"].is_between(0, 1).all()
    div = pl.read_csv(root / "truth" / "division_truth.csv", try_parse_dates=True)
    assert div.columns == HEADERS["truth/division_truth.csv"]
    assert div["true_probability"].is_between(0, 1).all()
    assert set(div["window_months"]) == {3, 6}
    assert div["cutoff_date"].min() == date(2024, 1, 1)
    assert (div["cutoff_date"].dt.day() == 1).all()
    ends = div.select(pl.col("cutoff_date").dt.offset_by(pl.format("{}mo", "window_months")))
    assert ends.to_series().max() <= date(2025, 12, 31)
    per_cut = div.group_by("cutoff_date", "window_months").len()
    assert per_cut["len"].n_unique() == 1  # every account x division at every cutoff
    assert div.select("account_id", "division", "cutoff_date", "window_months").is_unique().all()


def test_truth_is_informative_and_calibrated(company, root, pipeline):
    _, summary = company
    deal = pl.read_csv(root / "truth" / "deal_truth.csv")
    closed = pipeline.filter(pl.col("deal_stage").is_in(["Won", "Lost"])).join(deal, on="opportunity_id")
    y = (closed["deal_stage"] == "Won").to_numpy()
    p = closed["true_win_probability"].to_numpy()
    assert roc_auc_score(y, p) > 0.7
    assert abs(p.mean() - y.mean()) < 0.06
    for window in summary["division_truth"].values():
        if isinstance(window, dict):  # run-rate truth matches run-rate reality on average
            truth, real = window["mean_true_probability"], window["realised_run_rate_only"]
            assert truth == pytest.approx(real, abs=0.05)


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=40), st.data())
@settings(max_examples=60, deadline=None)
def test_rank_auc_matches_sklearn(scores, data):
    labels = data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores)))
    y = np.array(labels)
    if y.all() or not y.any():
        return
    assert auc(np.array(scores), y) == pytest.approx(roc_auc_score(y, scores))


@given(st.integers(0, 1095), st.integers(0, 40))
def test_business_day_arithmetic(day, n):
    d = np.array([day])
    out = C.add_business_days(d, np.array([n]))[0]
    assert C.weekday(np.array([out]))[0] < 5 and out >= day
    assert C.business_days_between(C.next_business_day(d), np.array([out]))[0] == n
    assert C.prev_business_day(d)[0] <= day <= C.next_business_day(d)[0]


def test_demo_quarters_are_the_products_fiscal_quarters():
    """The generator's quarter-end habits and the product's quarter rule are one calendar."""
    from revintel_assets.rules import fiscal_quarter_start
    days = np.arange(C.EXPORT_DAY - 800, C.EXPORT_DAY)
    dates = [(C.EPOCH + np.timedelta64(int(d), "D")).astype(object) for d in days]
    for fy in range(1, 13):
        starts = C.quarter_start(days, fy)
        assert [(C.EPOCH + np.timedelta64(int(q), "D")).astype(object) for q in starts] == [
            fiscal_quarter_start(d, fy) for d in dates], fy
        assert (C.quarter_end(days, fy) == C.quarter_start(C.quarter_end(days, fy) + 1, fy) - 1).all()


def test_quarter_end_rush_follows_the_fiscal_year(tmp_path):
    """A company whose year starts in February closes its won deals in the last two weeks of
    February, May, August and November, not of the calendar quarters; the default is unchanged."""
    def rush_share(fy: int) -> float:
        generate_company(tmp_path / str(fy), scale=SCALE, seed=42, progress=False, fy_start_month=fy)
        won = pl.read_csv(tmp_path / str(fy) / "sales_pipeline.csv", try_parse_dates=True).filter(
            pl.col("deal_stage") == "Won")
        days = (won["close_date"].cast(pl.Date).to_numpy() - C.EPOCH).astype(np.int64)
        return {q: float(np.mean(C.quarter_end(days, q) - days < 14)) for q in (1, 2)}
    calendar, february = rush_share(1), rush_share(2)
    assert calendar[1] > calendar[2] + 0.05, calendar
    assert february[2] > february[1] + 0.05, february
