"""Time travel: the snapshot for date T must not move when everything after T is removed from
the source (the export as it would have looked on T)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from conftest import MAVENTECH, build_star, need
from revintel_assets.defs.deals.snapshot import FEATURES, SHRINK, TRAILING, TRAILING_DAYS, snapshot_sql
from revintel_assets.demo.generator import generate_company


def export_as_of(src: Path, dst: Path, t: dt.date) -> None:
    """Rewrite a MavenTech-layout export (+ history, + sales log) as it stood at the end of day t."""
    shutil.copytree(src, dst)
    read = lambda name: pl.read_csv(src / name, infer_schema=False)
    day = lambda c: pl.col(c).str.to_date("%Y-%m-%d", strict=False)
    pipe = read("sales_pipeline.csv")
    if (src / "opportunity_history.csv").exists():
        hist = read("opportunity_history.csv").filter(day("changed_at") <= t)
        hist.write_csv(dst / "opportunity_history.csv")
        last = hist.group_by("opportunity_id", maintain_order=True).last().select(
            "opportunity_id", pl.col("deal_stage").alias("stage_then"))
        pipe = pipe.join(last, on="opportunity_id", how="inner", maintain_order="left")
    else:  # no history: a deal exists from its engage date on
        pipe = pipe.filter(day("engage_date") <= t).with_columns(pl.lit("Engaging").alias("stage_then"))
    closed_later = day("close_date") > t
    pipe = pipe.with_columns(
        pl.when(closed_later).then(pl.col("stage_then")).otherwise(pl.col("deal_stage")).alias("deal_stage"),
        pl.when(closed_later).then(None).otherwise(pl.col("close_date")).alias("close_date"),
        pl.when(closed_later).then(None).otherwise(pl.col("close_value")).alias("close_value"),
        pl.when(day("engage_date") > t).then(None).otherwise(pl.col("engage_date")).alias("engage_date"),
    ).drop("stage_then")
    pipe.write_csv(dst / "sales_pipeline.csv")
    if (src / "sales_log.csv").exists():
        read("sales_log.csv").filter(day("Rec Date") <= t).write_csv(dst / "sales_log.csv")


def _snapshot(folder: Path, t: dt.date) -> pl.DataFrame:
    con = duckdb.connect()
    build_star(con, folder)
    con.execute("CREATE OR REPLACE TABLE meta.source AS SELECT DATE '2099-01-01' AS export_date")
    return con.sql(snapshot_sql(f"SELECT DATE '{t}' AS as_of_date")).pl()


def _assert_same_features(full: pl.DataFrame, cut: pl.DataFrame) -> None:
    cols = ["as_of_date", "opportunity_id", *FEATURES]
    assert len(full) > 50
    assert full.select(cols).sort("opportunity_id").equals(cut.select(cols).sort("opportunity_id"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "src"
    generate_company(out, scale=0.05, seed=3, progress=False)
    shutil.rmtree(out / "truth")
    return out


@pytest.mark.parametrize("t", [dt.date(2024, 6, 17), dt.date(2025, 3, 3)])
def test_demo_snapshot_ignores_the_future(demo, tmp_path, t):
    export_as_of(demo, tmp_path / "cut", t)
    _assert_same_features(_snapshot(demo, t), _snapshot(tmp_path / "cut", t))


def test_maventech_snapshot_ignores_the_future(tmp_path):
    t = dt.date(2017, 5, 15)
    export_as_of(need(MAVENTECH), tmp_path / "cut", t)
    _assert_same_features(_snapshot(MAVENTECH, t), _snapshot(tmp_path / "cut", t))


def test_snapshot_rows_are_the_deals_open_that_day(demo):
    t = dt.date(2025, 3, 3)
    snap = _snapshot(demo, t)
    con = duckdb.connect()
    build_star(con, demo)
    expected = con.execute("SELECT count(*) FROM star.fact_opportunity WHERE created_date <= ? "
                           "AND (close_date IS NULL OR close_date > ?)", [t, t]).fetchall()[0][0]
    assert len(snap) == expected and snap["opportunity_id"].is_unique().all()
    # the final stage must never leak: deals open on t are never Won/Lost in their snapshot
    assert not snap["stage"].is_in(["Won", "Lost"]).any()


def test_trailing_lifts_are_the_last_180_days_win_rates_minus_the_companys(demo):
    """snapshot.TRAILING from running counts (two ASOF joins) equals the rates counted directly:
    deals closed in (T - 180 days, T], the rep's / product's shrunk toward the company's, minus it."""
    t = dt.date(2025, 3, 3)
    snap = _snapshot(demo, t)
    con = duckdb.connect()
    build_star(con, demo)
    closed = con.sql("SELECT rep_id, product_id, is_won::INT AS won FROM star.fact_opportunity WHERE is_closed "
                     f"AND close_date <= DATE '{t}' AND close_date > DATE '{t - dt.timedelta(days=TRAILING_DAYS)}'").pl()
    rate = closed["won"].mean()
    assert len(closed) > 50 and 0 < rate < 1
    for key, col in (("rep_id", TRAILING[0]), ("product_id", TRAILING[1])):
        per = closed.group_by(key).agg(pl.len().alias("n"), pl.col("won").sum().alias("w"))
        want = (snap.join(per, on=key, how="left", maintain_order="left")
                .select(((pl.col("w").fill_null(0) + SHRINK * rate) / (pl.col("n").fill_null(0) + SHRINK) - rate)))
        np.testing.assert_allclose(snap[col].to_numpy(), want.to_series().to_numpy(), atol=1e-12)
        assert snap[col].abs().max() > 0.01  # not all shrunk to zero
