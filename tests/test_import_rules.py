"""Damaged exports: every bad row lands in the quarantine with its line and reason; unreadable
files stop with a message naming the file, the line and what was expected."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from conftest import assert_reconciled, build_star
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.source import import_source
from revintel_assets.defs.star import build

PIPELINE = (
    "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\r\n"
    "A1,Ann,GTXPro,Acme,Won,2017-01-02,2017-02-01,1000\r\n"      # 2: fine ('GTXPro' = 'GTX Pro')
    "A2,Ann,GTX Pro,Acme,Lost,2017-01-05,2017-01-03,0\r\n"       # 3: closed before engaged
    "A3,Bob,MG Special,,Engaging,2017-13-45,,\r\n"                # 4: bad engage_date
    "A4,Bob,MG Special,Beta,Closed Won,01/15/2017,02/20/2017,\"$1,200\"\r\n"  # 5: fine, US dates, money
    "A5,Bob,MG Special,Beta,Pondering,2017-01-02,,\r\n"           # 6: unknown stage
    "A6,Bob,MG Special,Beta,Won,2017-01-02\r\n"                   # 7: too few fields
    "A1,Ann,GTXPro,Acme,Won,2017-01-02,2017-02-01,1000\r\n"      # 8: exact duplicate of 2
    "A4,Bob,MG Special,Beta,Lost,2017-01-15,2017-02-20,0\r\n"     # 9: same id, other contents
    "A7,Cy,Unknown Thing,Gamma,Prospecting,,,\r\n"                # 10: fine, unknown product/account/rep
    "A8,Bob,MG Special,Beta,Won,2017-01-02,,5\r\n"                # 11: won without close date
    "A9,Bob,MG Special,Beta,Won,2017-01-02,2017-01-09,(5)\r\n"    # 12: negative value
)


def _write(folder: Path, name: str, text: str, bom: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())


@pytest.fixture
def damaged(tmp_path) -> Path:
    src = tmp_path / "crm"
    _write(src, "sales_pipeline.csv", PIPELINE, bom=True)
    _write(src, "products.csv", "product,series,sales_price\r\nGTX Pro,GTX,4821\r\nMG Special,MG,55\r\n")
    _write(src, "accounts.csv", "account,sector,year_established,revenue,employees,office_location,subsidiary_of\r\n"
           "Acme,retail,1990,10.5,100,USA,\r\nBeta,software,2001,1.5,20,Kenya,Acme\r\n")
    _write(src, "sales_teams.csv", "sales_agent,manager,regional_office\r\nAnn,Max,East\r\nBob,Max,West\r\n")
    return src


def test_bad_rows_are_quarantined_with_line_and_reason(damaged):
    con = duckdb.connect()
    build_star(con, damaged)
    q = dict(con.execute("SELECT line_number, reason FROM star.quarantine "
                         "WHERE source_file = 'sales_pipeline.csv'").fetchall())
    assert set(q) == {3, 4, 6, 7, 8, 9, 11, 12}
    assert "before engage_date" in q[3]
    assert "engage_date '2017-13-45' is not a date" in q[4]
    assert "Pondering" in q[6]
    assert "unreadable row" in q[7]
    assert q[8] == "exact duplicate of line 2 (merged)"
    assert "already on line 5 with other contents" in q[9]
    assert "no close_date" in q[11] and "negative" in q[12]
    ok = dict(con.execute("SELECT opportunity_id, close_value FROM star.fact_opportunity").fetchall())
    assert ok == {"A1": 1000.0, "A4": 1200.0, "A7": None}
    # unknown product / account / rep are kept as stub members, not dropped
    stubs = con.execute("SELECT (SELECT count(*) FROM star.dim_product WHERE is_stub), "
                        "(SELECT count(*) FROM star.dim_account WHERE is_stub), "
                        "(SELECT count(*) FROM star.dim_rep WHERE is_stub)").fetchall()[0]
    assert stubs == (1, 1, 1)
    parent = con.execute("SELECT parent_account_id FROM star.dim_account WHERE account_id = 'Beta'").fetchall()
    assert parent == [("Acme",)]
    assert_reconciled(con)


def test_an_amount_with_words_or_odd_spaces_in_it_is_quarantined_not_read(damaged):
    """An audit: '12abc' on a won deal was booked as 12 (letters were dropped anywhere in a cell, and
    every space), '12 34' as 1234 and '2500 pending' as 2500, with nothing in quarantine."""
    from revintel_assets.defs.ingest.parse_sql import money_expr

    text = (damaged / "sales_pipeline.csv").read_bytes().decode()
    bad = ["12abc", "12 34", "2500 pending", "ab12cd34"]
    text += "".join(f"B{i},Bob,MG Special,Beta,Won,2017-01-02,2017-02-01,{v}\r\n" for i, v in enumerate(bad))
    (damaged / "sales_pipeline.csv").write_bytes(text.encode())
    con = duckdb.connect()
    build_star(con, damaged)
    q = dict(con.execute("SELECT line_number, reason FROM star.quarantine WHERE source_file = 'sales_pipeline.csv' "
                         "AND line_number > 12").fetchall())
    assert sorted(q) == [13, 14, 15, 16] and all("close_value" in r for r in q.values()), q
    assert con.execute("SELECT count(*) FROM star.fact_opportunity WHERE opportunity_id LIKE 'B%'").fetchone()[0] == 0
    assert_reconciled(con)
    # what exports do write still reads, in either decimal convention
    cells = {"EUR 12": 12, "12 EUR": 12, "US$1,200": 1200, "(1,200)": -1200, "1,200-": -1200, "12 345": 12345,
             "1\u00a0200": 1200, "CHF 1'000.50": 1000.5, "Rs. 1,200": 1200, "£22,640.00": 22640,
             # a re-check: currency words in any case, and what is still no amount
             "1,200 dollars": 1200, "US $1,234": 1234, "EURO 1,234": 1234, "zł 1 234": 1234, "1 234 Kč": 1234,
             "usd 12": 12, "1,234 567": None, "1\t234": None, "1e400": None, "TBD5000x": None,
             # Excel's Accounting zero, as a CSV saved from it writes it; a bare dash is still no amount
             " $ -   ": 0, " € - ": 0, "USD -": 0, " -   ": 0, "-": None, "--": None, "$ -5": -5}
    got = dict(con.execute(f"SELECT v, {money_expr('v')} FROM (SELECT unnest(?::VARCHAR[]) AS v)", [list(cells)]).fetchall())
    assert got == cells
    comma = {"1 200,50": 1200.5, "1.200,50 €": 1200.5, "R$ 1.200,00": 1200, "12 34": None, "12,5 pending": None,
             " € -   ": 0}
    got = dict(con.execute(f"SELECT v, {money_expr('v', ',')} FROM (SELECT unnest(?::VARCHAR[]) AS v)",
                           [list(comma)]).fetchall())
    assert got == comma
    # the words it reads name their currency in the run's report (zł and Kč were summed as bare numbers)
    from revintel_assets.defs.ingest.parse_sql import amount_currencies

    con.execute("CREATE TABLE marks AS SELECT unnest(['zł 1 234', '1 234 Kč', 'C$ 1,234', '1,200 dollars', '12']) AS v")
    assert amount_currencies(con, "marks", "v") == {"$": 1, "CAD": 1, "CZK": 1, "PLN": 1}


@pytest.mark.parametrize("content,found", [
    (b"", "sales_pipeline.csv"),
    (b"\x00\x01\x02\xff\xfe binary \x00" * 50, "sales_pipeline.csv"),
    (b"id,name\n1,x\n", "missing column(s) opportunity_id, sales_agent"),
])
def test_unreadable_file_stops_with_a_clear_message(tmp_path, content, found):
    src = tmp_path / "crm"
    src.mkdir()
    (src / "sales_pipeline.csv").write_bytes(content)
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src)
    message = str(err.value)
    assert "sales_pipeline.csv" in message and "line 1" in message and "expected" in message
    assert found in message


def test_folder_without_known_files_names_what_it_expects(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="expected a CRM export"):
        import_source(duckdb.connect(), tmp_path)


# Values the fast paths of money_expr / date_expr take (empty, plain numbers, ISO dates) and their
# neighbours that must fall through to the general rules; every one gives the general rules' value.
CELLS = [None, "", " ", "0", "-0", "7", "007", "-5", "12.50", "-0.5", "5.", ".5", "1,200", "-1,-2", "1.200,50",
         "1e5", "+3", " 42 ", "(15)", "15-", "$1,234.56", "EUR 12", "12 345", "abc", "1-2", "--5", "٣",
         "123456789012345678901234567890", "2024-02-29", "2023-02-29", "0000-01-01", "9999-12-31", "2023-1-05",
         "2023-01-05 ", "2023-01-05T10:22:33.000Z", "2023-01-05 10:22", "01/05/2023", "2023/01/05", "1990-00-10"]


@pytest.mark.parametrize("decimal", [".", ","])
def test_fast_paths_give_the_general_rules_value(decimal):
    from revintel_assets.defs.ingest.parse_sql import date_expr, date_full_expr, money_expr, money_full_expr

    con = duckdb.connect()
    con.execute("CREATE TABLE c (v VARCHAR)")
    con.executemany("INSERT INTO c VALUES (?)", [[v] for v in CELLS])
    rows = con.execute(f"SELECT v, {money_expr('v', decimal)}, {money_full_expr('v', decimal)}, "
                       f"{date_expr('v')}, {date_full_expr('v')} FROM c").fetchall()
    assert len(rows) == len(CELLS)
    for v, fast_money, full_money, fast_date, full_date in rows:
        assert (str(fast_money), fast_date) == (str(full_money), full_date), v  # str: -0.0 vs 0.0 too
    assert any(r[1] is not None for r in rows) and any(r[3] is not None for r in rows)


def test_stage_fast_path_gives_the_alias_value():
    from revintel_assets.defs.ingest.parse_sql import STAGE_ALIASES, stage_expr

    values = ["Won", "won", " Won", "WON", "Lost", "Closed Won", "Proposal", "proposal/price quote", "Nope", None]
    con = duckdb.connect()
    for extra in ({}, {"Won": "Lost", "Demo Booked": "Engaging"}):
        aliases = {**STAGE_ALIASES, **{k.lower(): v for k, v in extra.items()}}
        got = dict(con.execute(f"SELECT v, {stage_expr('v', extra)} FROM (SELECT unnest(?::VARCHAR[]) AS v)",
                               [values]).fetchall())
        assert got == {v: aliases.get(v.strip().lower()) if v else None for v in values}, extra


def test_sales_log_cells_quarantined_with_the_first_bad_sku_column(tmp_path):
    (tmp_path / "sales_log.csv").write_text(
        "CustomerId,Customer,Rec Date,Division,Rep,Branch,A,A_Qty,B,B_Qty\n"
        "C1,One,2024-01-02,D,R,E,10,1,,\n"            # line 2: one line (A)
        "C2,Two,2024-01-03,D,R,E,abc,1,x,2\n"         # line 3: A and B bad: A is named
        "C3,Three,2024-01-04,D,R,E,,,5,1x\n"          # line 4: B's quantity bad
        "C4,Four,2024-01-05,D,R,E, ,3,,\n"            # line 5: no amount at all
        "C5,Five,2024-01-06,D,R,E,\"$1,200.50\",,(7),\n")  # line 6: two lines, money formats
    con = duckdb.connect()
    report = import_source(con, tmp_path, locked=False)
    q = con.execute("SELECT line_number, reason FROM staging.quarantine_new ORDER BY 1").fetchall()
    # line 5 holds a quantity and no amount: said so (it read "every SKU column is empty": an audit)
    assert q == [(3, "SKU column A is not a number"), (4, "SKU column B is not a number"),
                 (5, "order has no SKU amount: A_Qty is 3 but A is empty")]
    lines = con.execute("SELECT _line, product_id, quantity, amount FROM staging.transactions ORDER BY 1, 2").fetchall()
    assert lines == [(2, "A", 1.0, 10.0), (6, "A", 1.0, 1200.5), (6, "B", 1.0, -7.0)]
    # line 6's two amounts came without quantities: one unit each, as before, now counted in the run's warnings
    assert report.files["sales_log.csv"]["flagged_kept"] == {"sku_amount_without_quantity_taken_as_1_unit": 2}


def test_sales_log_rows_keep_their_columns_and_lines_in_sku_order(tmp_path):
    """The wide log is held as its other columns plus a list of SKU pairs: a quarantined row is
    still every field in file order, the first bad SKU is the first in file order (Z9 before
    A1), a column without a _Qty twin stays a column, and the order lines are stored by line,
    then SKU name."""
    (tmp_path / "sales_log.csv").write_text(
        "CustomerId,Customer,Rec Date,Z9,Z9_Qty,Note,A1,A1_Qty,Lone,Division,Rep,Branch\n"
        'C1,One,2024-01-02,5,1,"two\nlines",7,2,x,D,R,E\n'     # lines 2-3: Z9 and A1
        "C2,Two,2024-01-03,bad,,,q,,y,D,R,E\n"                  # line 4: Z9 and A1 bad: Z9 named
        "C3,Three,2024-01-04,,,note,,4,,D,R,E\n"                # line 5: a quantity, no amount
        "C4,Four,2024-01-05,1,,,2,,,D,R,E\n")                   # line 6: A1 and Z9
    con = duckdb.connect()
    import_source(con, tmp_path, locked=False)
    q = con.execute("SELECT line_number, raw_row, reason FROM staging.quarantine_new ORDER BY 1").fetchall()
    assert q == [(4, "C2,Two,2024-01-03,bad,,,q,,y,D,R,E", "SKU column Z9 is not a number"),
                 (5, "C3,Three,2024-01-04,,,note,,4,,D,R,E",
                  "order has no SKU amount: A1_Qty is 4 but A1 is empty; not read, no <SKU>_Qty pair: Note, Lone")]
    stored = con.execute("SELECT _line, product_id, quantity, amount FROM staging.transactions ORDER BY rowid").fetchall()
    assert stored == [(2, "A1", 2.0, 7.0), (2, "Z9", 1.0, 5.0), (6, "A1", 1.0, 2.0), (6, "Z9", 1.0, 1.0)]


def test_sales_log_sku_missing_from_the_map_is_unmapped_not_the_orders_division(tmp_path):
    """With a SKU map, a SKU it does not name is an unmapped SKU (reported, never a division),
    not the order row's Division (a sales segment in many logs: 'Enterprise' became an ICP
    division); a column with no _Qty twin is reported with its cells, not dropped without a word."""
    (tmp_path / "sales_log.csv").write_text(
        "CustomerId,Customer,Rec Date,Division,Rep,Branch,A,A_Qty,NEW,NEW_Qty,OLD\n"
        "C1,One,2024-01-02,Enterprise,R,E,10,1,5,1,\n"
        "C2,Two,2024-01-03,SMB,R,E,,,7,2,3\n"
        "C3,Three,2024-01-04,SMB,R,E,,,,,4\n")
    (tmp_path / "sku_map.csv").write_text("sku,division\nA,Analytics\n")
    con = duckdb.connect()
    report = build_star(con, tmp_path)
    lines = con.execute("SELECT _line, product_id, division FROM staging.transactions ORDER BY 1, 2").fetchall()
    assert lines == [(2, "A", "Analytics"), (2, "NEW", "Unmapped SKUs"), (3, "NEW", "Unmapped SKUs")]
    assert con.execute("SELECT sku, lines FROM star.unmapped_skus").fetchall() == [("NEW", 2)]
    assert con.execute("SELECT DISTINCT division FROM star.dim_product WHERE sellable ORDER BY 1").fetchall() == [
        ("Analytics",)]
    f = report.files["sales_log.csv"]
    assert f["unpaired_columns"] == {"OLD": 2}
    assert con.execute("SELECT line_number, reason FROM star.quarantine").fetchall() == [
        (4, "order has no SKU line (every SKU pair is empty; not read, no <SKU>_Qty pair: OLD)")]
    assert_reconciled(con)


def test_a_quarantined_row_keeps_its_csv_quoting(tmp_path):
    """raw_row is the line as a CSV writes it: a field holding a comma, a quote or a line break is
    quoted again (it was joined bare, and 'Acme, Inc.' read back as two fields)."""
    import csv
    import io
    (tmp_path / "sales_pipeline.csv").write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"
        'O1,Ann Lee,GTX Basic,"Acme, Inc.",Won,2017-01-05,2017-02-10,550\n'
        'O2,"Bob ""Bobby"" Ray",GTX Pro,"Beta\nGmbH",Won,2017-01-20,not a date,10\n'
        'O3,Cy Dee,GTX Pro,"Gamma, Ltd",Lost,2017-02-20,2017-01-01,0\n')
    con = duckdb.connect()
    import_source(con, tmp_path, locked=False)
    rows = dict(con.execute("SELECT line_number, raw_row FROM staging.quarantine_new").fetchall())
    assert sorted(rows) == [3, 5]
    assert next(csv.reader(io.StringIO(rows[3]))) == ["O2", 'Bob "Bobby" Ray', "GTX Pro", "Beta\nGmbH", "Won",
                                                      "2017-01-20", "not a date", "10"]
    assert next(csv.reader(io.StringIO(rows[5])))[3] == "Gamma, Ltd"


def test_a_sales_log_alone_names_its_customers_as_accounts(tmp_path):
    """Without a CRM's accounts, the log's customers are the accounts (not stubs reported on every
    line); beside a CRM, a customer it does not know stays a stub, reported."""
    (tmp_path / "sales_log.csv").write_text(
        "CustomerId,Customer,Rec Date,Division,Rep,Branch,A,A_Qty\n"
        "C1,One Ltd,2024-01-02,D,R,E,10,1\nC2,Two plc,2024-01-03,D,R,E,5,1\nC1,One Ltd,2024-02-02,D,R,E,7,1\n"
        "12348.0,Three,2024-02-03,D,R,E,7,1\n")  # an id pandas / Excel wrote as a float: customer 12348
    con = duckdb.connect()
    build_star(con, tmp_path)
    assert con.execute("SELECT account_id, account_name, is_stub FROM star.dim_account ORDER BY 1").fetchall() == [
        ("12348", "Three", False), ("C1", "One Ltd", False), ("C2", "Two plc", False)]
    refs = con.execute(f"SELECT member, count(*) FROM ({build.unknown_references()}) GROUP BY 1").fetchall()
    assert "account" not in dict(refs)
    assert_reconciled(con)


def test_two_history_changes_on_one_day_leave_the_later_line_as_the_snapshots_do(damaged):
    """An audit: two changes of a deal's close date on one day (Salesforce logs the date only) tied, and
    star.fact_opportunity kept the older date (deals looked overdue there, not in the scores)."""
    _write(damaged, "opportunity_history.csv",
           "opportunity_id,changed_at,deal_stage,expected_close_date,amount\r\n"
           + "".join(f"A7,2017-01-0{d},Engaging,2017-0{m}-28,{a}\r\n"
                     for d, m, a in ((2, 3, 100), (3, 4, 200), (3, 5, 300), (3, 6, ""))))
    con = duckdb.connect()
    build_star(con, damaged)
    fact = con.execute("SELECT expected_close_date, amount FROM star.fact_opportunity "
                       "WHERE opportunity_id = 'A7'").fetchone()
    assert fact == (dt.date(2017, 6, 28), 300.0), fact
