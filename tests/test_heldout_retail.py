"""The held-out wholesaler generator (benchmarks/heldout_retail.py) whose truth the ICP's
oracle figures rest on: its true probabilities must be the purchase rates the export realises, in
revintel's own label window (c, c + W months], and the export must carry the real file's quirks."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from benchmarks import heldout_retail


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    out = tmp_path_factory.mktemp("retail")
    summary = heldout_retail.write(out, seed=5, drift=1.0, n_acc=1500, n_months=25)
    return out, summary


def _purchases(out) -> pl.DataFrame:
    t = pl.read_csv(out / "online_retail_II.csv", infer_schema=False)
    sku_map = pl.read_csv(out / "sku_divisions.csv", infer_schema=False)
    return (t.filter((pl.col("Customer ID") != "") & (pl.col("Quantity").cast(pl.Int64) > 0))
            .join(sku_map.rename({"stock_code": "StockCode"}), on="StockCode")
            .select(pl.col("Customer ID").alias("account_id"), "division",
                    pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.date().alias("day")))


def test_truth_is_the_realised_rate_in_revintels_label_window(company):
    out, _ = company
    buys = _purchases(out)
    truth = pl.read_csv(out / "truth" / "division_truth.csv",
                        schema_overrides={"account_id": pl.Utf8, "cutoff_date": pl.Date})
    rows = []
    for cutoff, window in ((dt.date(2022, 9, 1), 3), (dt.date(2023, 3, 1), 3), (dt.date(2022, 12, 1), 6)):
        end = heldout_retail.month_starts(40)[heldout_retail.month_starts(40).index(cutoff) + window]
        bought = (buys.filter((pl.col("day") > cutoff) & (pl.col("day") <= end))
                  .select("account_id", "division").unique().with_columns(y=pl.lit(1.0)))
        t = (truth.filter((pl.col("cutoff_date") == cutoff) & (pl.col("window_months") == window))
             .join(bought, on=["account_id", "division"], how="left").with_columns(pl.col("y").fill_null(0.0)))
        rows.append(t.group_by("division").agg(p=pl.col("true_probability").mean(), y=pl.col("y").mean(), n=pl.len()))
    got = pl.concat(rows)
    # every division at every cutoff within 4 standard errors of a Bernoulli mean
    se = (got["p"] * (1 - got["p"]) / got["n"]).sqrt().clip(0.005, None)
    assert ((got["y"] - got["p"]).abs() <= 4 * se).all(), got
    # and pooled, within 1 point: a window one month off would miss the seasonal divisions by far more
    assert abs(float(got["y"].mean() - got["p"].mean())) < 0.01


def test_the_export_has_the_real_files_quirks(company):
    out, summary = company
    header = (out / "online_retail_II.csv").read_text().splitlines()[0]
    assert header == "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    assert summary["guest_lines"] > 0 and summary["cancellation_lines"] > 0
    assert 0.03 < summary["unmapped_share"] < 0.09  # the real file: ~6 % of lines outside the SKU map
    assert summary["last"].startswith("2023-12-09")
    assert "Wellness" in summary["divisions"]  # drift: a division launched halfway
