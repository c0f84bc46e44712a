"""Issue 13 item 4: SKUs missing from the SKU map are reported and never form a division; the
mapping can name non-sellable divisions; a division with non-positive net revenue is never
modelled nor recommended (star.dim_product.sellable, read by icp/features.py::divisions_sql)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from conftest import assert_reconciled, build_star
from revintel_assets.defs.icp.features import divisions_sql


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.replace("\n", "\r\n").encode())


ORII = ("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "489434,85048,GLASS BALL,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
        "489434,22350,CAT BOWL,12,2009-12-01 07:45:00,2.55,13085.0,United Kingdom\n"
        "489435,21232,STRAWBERRY MUG,6,2009-12-02 07:46:00,1.25,13086.0,United Kingdom\n"
        "489435,99999X,MYSTERY ITEM,3,2009-12-02 07:46:00,4.00,13086.0,United Kingdom\n"
        "489436,99999X,MYSTERY ITEM,1,2009-12-03 09:06:00,4.00,13087.0,France\n"
        "489436,POST,POSTAGE,1,2009-12-03 09:06:00,18.00,13087.0,France\n"
        "C489437,BANK CHARGES,Bank Charges,-1,2009-12-04 09:06:00,40.00,13087.0,France\n"
        "489438,M,Manual,1,2009-12-04 09:06:00,5.00,13085.0,United Kingdom\n"
        "C489439,M,Manual,-1,2009-12-05 09:06:00,30.00,13085.0,United Kingdom\n")
SKU_MAP = ("stock_code,description,division\n85048,GLASS BALL,Home Decor\n22350,CAT BOWL,Kitchen & Dining\n"
           "21232,STRAWBERRY MUG,Kitchen & Dining\nPOST,POSTAGE,Non-product\nBANK CHARGES,Bank Charges,Non-product\n"
           "M,Manual,Adjustments\n")


def test_unmapped_skus_are_reported_and_not_sellable(tmp_path):
    src = tmp_path / "orii"
    write(src, "online_retail_II.csv", ORII)
    write(src, "sku_divisions.csv", SKU_MAP)
    write(src, "revintel_mapping.yaml", "non_sellable_divisions: [Non-product]\n")
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.unmapped == {"lines": 2, "revenue": 16.0, "skus": 1, "share_of_lines": round(2 / 9, 4)}
    assert con.execute("SELECT sku, lines, revenue FROM star.unmapped_skus").fetchall() == [("99999X", 2, 16.0)]
    divisions = dict(con.execute("SELECT division, bool_and(sellable) FROM star.dim_product GROUP BY 1").fetchall())
    assert divisions == {"Home Decor": True, "Kitchen & Dining": True, "Non-product": False,
                         "Adjustments": False,  # net revenue 5 - 30 < 0
                         "Unmapped SKUs": False}
    assert "Unassigned" not in divisions
    # every line is kept (division NULL-free); the ICP covers sellable divisions only
    assert con.execute("SELECT count(*) FROM star.fact_transactions WHERE division IS NULL").fetchall() == [(0,)]
    assert [r[0] for r in con.execute(divisions_sql()).fetchall()] == ["Home Decor", "Kitchen & Dining"]
    assert_reconciled(con)


def test_log_without_a_sku_map_is_one_division(tmp_path):
    src = tmp_path / "orii"
    write(src, "online_retail_II.csv", ORII)
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.unmapped == {}
    assert [r[0] for r in con.execute(divisions_sql()).fetchall()] == ["All products"]


def test_a_products_file_without_divisions_takes_the_sku_maps(tmp_path):
    """CONTRACT §2: products.csv's division column is optional. Without it a product's series stood
    in, while the sales log's lines took the SKU map's divisions: the CRM and the log then had no
    division in common, every product was unsellable and the ICP had nothing to model (an audit:
    `icp_features_job: skipped` on the demo with that one column dropped). A SKU map naming the
    product says its division, as when the column is there; a product it does not name keeps its series."""
    import polars as pl

    from revintel_assets.demo.generator import generate_company

    full = tmp_path / "full"
    generate_company(full, scale=0.03, seed=3)
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in full.glob("*.csv"):
        (bare / f.name).write_bytes(f.read_bytes())
    products = pl.read_csv(full / "products.csv")
    products.drop("division").write_csv(bare / "products.csv")
    got = {}
    for name, src in (("full", full), ("bare", bare)):
        con = duckdb.connect()
        build_star(con, src)
        assert_reconciled(con)
        got[name] = (con.execute("SELECT product_id, division, sellable FROM star.dim_product ORDER BY 1").fetchall(),
                     [r[0] for r in con.execute(divisions_sql()).fetchall()])
    assert got["bare"] == got["full"] and len(got["full"][1]) >= 3
    # a product the SKU map does not name: its series, as before
    sku_map = pl.read_csv(full / "sku_map.csv")
    first = products.row(0, named=True)
    sku_map.filter(pl.col("sku") != first["sku"]).write_csv(bare / "sku_map.csv")
    con = duckdb.connect()
    build_star(con, bare)
    assert con.execute("SELECT division FROM star.dim_product WHERE product_id = ?", [first["sku"]]).fetchone() == (
        first["series"],)


def test_a_log_without_a_sku_map_takes_the_crms_product_divisions(tmp_path):
    """MavenTech deals beside a tidy log of the same products, no SKU map: the lines were all in
    'All products' while the products were GTX / MG (one product, two divisions), no division was
    sellable and the ICP was skipped. A line of a product the CRM lists takes its division; one the
    CRM does not list stays in 'All products'."""
    src = tmp_path / "crm"
    write(src, "sales_pipeline.csv", "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,"
                                     "close_value\nA1,Ann,GTX Basic,Acme,Won,2017-01-02,2017-02-01,550\n")
    write(src, "products.csv", "product,series,sales_price\nGTX Basic,GTX,550\nMG Special,MG,55\n")
    write(src, "transactions.csv", "customer_id,order_date,sku,quantity,amount\nAcme,2017-03-01,GTX Basic,1,550\n"
                                   "Acme,2017-04-01,mg special,2,110\nAcme,2017-05-01,Widget,1,9\n")
    con = duckdb.connect()
    build_star(con, src)
    assert_reconciled(con)
    assert con.execute("SELECT product_id, division FROM star.fact_transactions ORDER BY order_date").fetchall() == [
        ("GTX Basic", "GTX"), ("mg special", "MG"), ("Widget", "All products")]
    assert con.execute(divisions_sql()).fetchall() == [("All products",), ("GTX",), ("MG",)]
