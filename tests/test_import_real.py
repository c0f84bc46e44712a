"""The importers on the real exports in ../shared/data: counts, key resolution, reconciliation."""

from __future__ import annotations

import duckdb

from conftest import MAVENTECH, ONLINE_RETAIL, build_star, need
from revintel_assets.defs.star import build


def _reconciles(con) -> list[tuple]:
    rows = con.execute(build.reconciliation()).fetchall()
    assert rows, "no source files recorded"
    for file, raw, star, quarantined, unaccounted in rows:
        assert unaccounted == 0, f"{file}: raw {raw} != star {star} + quarantine {quarantined}"
    return rows


def test_maventech_imports_every_opportunity():
    con = duckdb.connect()
    report = build_star(con, need(MAVENTECH))
    assert report.layout.name == "maventech" and report.export_date == "2017-12-31"
    count = lambda t, w="TRUE": con.execute(f"SELECT count(*) FROM star.{t} WHERE {w}").fetchall()[0][0]
    assert count("fact_opportunity") == 8800
    assert count("dim_account") == 85 and count("dim_rep") == 35 and count("dim_product") == 7
    # 'GTXPro' in the pipeline is 'GTX Pro' in products: every product resolves, no stub members
    assert count("fact_opportunity", "product_id IS NULL") == 0
    assert count("dim_product", "is_stub") == 0 and count("dim_account", "is_stub") == 0
    assert count("fact_opportunity", "product_id = 'GTX Pro'") == 1480
    # open deals without an account stay, with a NULL account (16 % of open deals)
    assert count("fact_opportunity", "NOT is_closed AND account_id IS NULL") == 1425
    # prospecting deals have no engage date; lost deals' value 0 is not taken as their amount
    assert count("fact_opportunity", "stage = 'Prospecting' AND engage_date IS NOT NULL") == 0
    assert count("fact_opportunity", "stage = 'Lost' AND amount = 0") == 0
    assert count("fact_opportunity", "is_won") == 4238
    # no history file: history derived from dates, one engage event + one close event, and for the
    # 500 prospecting deals (no date at all) their stage known on the export date (CONTRACT §3)
    assert count("fact_opportunity_history", "NOT derived") == 0
    assert count("fact_opportunity_history") == 8300 + 6711 + 500
    assert count("fact_opportunity_history", "stage = 'Prospecting' AND changed_at = DATE '2017-12-31'") == 500
    # no sales log: won deals stand in as transactions
    assert count("fact_transactions", "source = 'crm_won'") == 4238
    assert count("quarantine") == 0
    _reconciles(con)


def test_online_retail_reconciles():
    con = duckdb.connect()
    report = build_star(con, need(ONLINE_RETAIL))
    assert report.layout.name == "tidy" and report.export_date == "2011-12-09"
    rows = {r[0]: r for r in _reconciles(con)}
    assert rows["online_retail.csv.gz"][1:4] == (541909, 406829, 135080)
    q = con.execute("SELECT reason, count(*) FROM star.quarantine GROUP BY 1").fetchall()
    assert q == [("customer_id is empty: the line cannot be attributed to an account", 135080)]
    divisions = con.execute("SELECT count(DISTINCT division) FROM star.dim_product").fetchall()[0][0]
    assert divisions == 10  # 9 product divisions + Non-product, from the SKU map (data, not code)
    assert con.execute("SELECT count(*) FROM star.dim_account").fetchall()[0][0] == 4372
