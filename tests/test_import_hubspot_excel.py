"""Issue 13 item 2: a HubSpot deals export is a built-in layout, and Excel workbooks (.xlsx) are
read directly wherever a CSV is (line numbers are sheet rows)."""

from __future__ import annotations

import datetime as dt
import random
import sys
from pathlib import Path

import duckdb
import xlsxwriter

from conftest import assert_reconciled, build_star
from revintel_assets.defs.ingest.source import detect_layout

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_fixtures import HUBSPOT_HEADER, hubspot_rows  # noqa: E402


def test_hubspot_export_is_detected_and_imported():
    src = FIXTURES / "hubspot"
    assert detect_layout(src).name == "hubspot"
    con = duckdb.connect()
    report = build_star(con, src)
    f = report.files["hubspot-crm-exports-all-deals-2024-06-03.csv"]
    assert f["raw_rows"] == 40 and f["quarantined"] == {"unknown_stage": 1}
    assert f["flagged_kept"] == {"stage_placed_from_other_fields": 1}  # 'Legal Review', probability 0.95
    stages = dict(con.execute("SELECT stage, count(*) FROM star.fact_opportunity GROUP BY 1").fetchall())
    assert stages == {"Won": 12, "Lost": 12, "Prospecting": 3, "Engaging": 6, "Proposal": 2, "Negotiation": 4}
    row = con.execute("SELECT account_id, rep_id, created_date::VARCHAR, close_date::VARCHAR, amount, forecast_category "
                      "FROM star.fact_opportunity WHERE opportunity_id = '9876540001'").fetchall()[0]
    assert row[:4] == ("Beta GmbH", "Bob Ray", "2024-02-16", "2024-02-29") and row[5] == "Closed"
    assert con.execute("SELECT count(*) FROM star.fact_opportunity WHERE account_id IS NULL").fetchall() == [(6,)]
    assert con.execute("SELECT DISTINCT forecast_category FROM star.fact_opportunity WHERE NOT is_closed "
                       "ORDER BY 1").fetchall() == [("Best Case",), ("Commit",), ("Pipeline",)]
    assert con.execute("SELECT line_number FROM star.quarantine").fetchall() == [(41,)]
    assert report.export_date is not None
    assert_reconciled(con)


def _xlsx(path: Path, header: list[str], rows: list[list], dates: tuple[int, ...] = (), title: tuple = ()) -> None:
    """A workbook as Excel writes it: typed cells (numbers as numbers, dates as dates); `title`:
    rows above the header (a report's title block)."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Export")
    fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for r, cells in enumerate(title):
        ws.write_row(r, 0, cells)
    ws.write_row(len(title), 0, header)
    for r, row in enumerate(rows, start=len(title) + 1):
        for c, value in enumerate(row):
            if value == "":
                continue
            if c in dates:
                ws.write_datetime(r, c, dt.datetime.strptime(value, "%Y-%m-%d %H:%M"), fmt)
            elif value.replace(".", "", 1).isdigit():
                ws.write_number(r, c, float(value))
            else:
                ws.write_string(r, c, value)
    wb.close()


def _same_deals_as_the_csv(con) -> None:
    """The workbook's deals are the CSV fixture's, field for field; every raw row accounted for."""
    csv = duckdb.connect()
    build_star(csv, FIXTURES / "hubspot")
    q = ("SELECT opportunity_id, stage, created_date, close_date, amount, account_id FROM star.fact_opportunity "
         "ORDER BY 1")
    assert con.execute(q).fetchall() == csv.execute(q).fetchall()
    assert_reconciled(con)


def test_hubspot_export_as_xlsx_gives_the_same_star(tmp_path):
    rows = hubspot_rows(random.Random(5))
    rows.insert(10, [""] * len(HUBSPOT_HEADER))  # a blank row: skipped, later rows keep their sheet row
    src = tmp_path / "hs"
    src.mkdir()
    _xlsx(src / "all-deals.xlsx", HUBSPOT_HEADER, rows, dates=(3, 6))
    assert detect_layout(src).name == "hubspot"
    con = duckdb.connect()
    report = build_star(con, src)
    f = report.files["all-deals.xlsx"]
    assert f["raw_rows"] == 40 and f["quarantined"] == {"unknown_stage": 1} and "Excel" in f["format"]
    assert con.execute("SELECT line_number FROM star.quarantine").fetchall() == [(42,)]  # sheet row
    _same_deals_as_the_csv(con)


def test_a_workbook_whose_table_starts_under_a_title(tmp_path):
    """A formatted report or a hand-made workbook: a title, a filter line and a blank row above the
    header. The header is found under them (the rows above it are said, not read); the star is
    the same as the CSV's, and line numbers stay sheet rows (it was refused: 'expected the HubSpot
    header; found All deals export - ...')."""
    rows = hubspot_rows(random.Random(5))
    src = tmp_path / "hs"
    src.mkdir()
    title = (["All deals export - Acme Corp - 15 Jan 2025"], ["Filtered by: Pipeline equals Sales Pipeline", "", "x"], [])
    _xlsx(src / "all-deals.xlsx", HUBSPOT_HEADER, rows, dates=(3, 6), title=title)
    assert detect_layout(src).name == "hubspot"
    con = duckdb.connect()
    report = build_star(con, src)
    f = report.files["all-deals.xlsx"]
    assert f["raw_rows"] == 40 and f["title_rows"] == {"Export": 3}
    assert con.execute("SELECT line_number FROM star.quarantine").fetchall() == [(44,)]  # 41 + the title block
    _same_deals_as_the_csv(con)


def test_maventech_files_as_xlsx(tmp_path):
    src = tmp_path / "mt"
    src.mkdir()
    _xlsx(src / "sales_pipeline.xlsx",
          ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date", "close_date", "close_value"],
          [["A1", "Ann", "GTX Basic", "Acme", "Won", "2017-01-05 00:00", "2017-02-10 00:00", "550"],
           ["A2", "Ann", "GTX Basic", "Acme", "Engaging", "2017-02-05 00:00", "", ""]], dates=(5, 6))
    _xlsx(src / "products.xlsx", ["product", "series", "sales_price"], [["GTX Basic", "GTX", "550"]])
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.layout.name == "maventech" and set(report.files) == {"sales_pipeline.xlsx", "products.xlsx"}
    assert report.unread == {}  # every workbook read is known as read (not named as a file left out)
    assert con.execute("SELECT opportunity_id, stage, engage_date::VARCHAR, close_value, division "
                       "FROM star.fact_opportunity ORDER BY 1").fetchall() == [
        ("A1", "Won", "2017-01-05", 550.0, "GTX"), ("A2", "Engaging", "2017-02-05", None, "GTX")]
    assert_reconciled(con)


def test_tidy_transactions_and_sku_map_as_xlsx(tmp_path):
    src = tmp_path / "tx"
    src.mkdir()
    _xlsx(src / "online_retail_II.xlsx",
          ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"],
          [["489434", "85048", "GLASS BALL", "12", "2009-12-01 07:45", "6.95", "13085", "United Kingdom"],
           ["489435", "22350", "CAT BOWL", "2", "2009-12-02 07:46", "2.5", "13086", "France"]], dates=(4,))
    _xlsx(src / "sku_map.xlsx", ["sku", "division"], [["85048", "Home Decor"], ["22350", "Kitchen"]])
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.layout.name == "tidy" and report.unread == {}
    assert con.execute("SELECT account_id, division, round(amount, 2), order_date::VARCHAR FROM star.fact_transactions "
                       "ORDER BY 1").fetchall() == [("13085", "Home Decor", 83.4, "2009-12-01"),
                                                    ("13086", "Kitchen", 5.0, "2009-12-02")]
    assert_reconciled(con)


def test_online_retail_ii_workbook_reads_every_sheet_with_the_header(tmp_path):
    """UCI distributes Online Retail II as one workbook with two sheets ("Year 2009-2010", "Year
    2010-2011"). Every sheet with the first sheet's header is read (the second used to be dropped
    without a word: half the data, the export date a year early); a sheet with another header is
    not read and the report names it; a quarantined row of a later sheet names its sheet and row."""
    header = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
    path = tmp_path / "tx" / "online_retail_II.xlsx"
    path.parent.mkdir()
    wb = xlsxwriter.Workbook(str(path))
    fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    years = {"Year 2009-2010": [("489434", "85048", 12, dt.datetime(2009, 12, 1, 7, 45), 6.95, 13085),
                                ("489435", "22350", 2, dt.datetime(2010, 3, 2, 7, 46), 2.5, 13086)],
             "Year 2010-2011": [("536365", "85048", 6, dt.datetime(2010, 12, 1, 8, 26), 2.55, 17850),
                                ("536366", "22350", 1, dt.datetime(2011, 2, 1, 9, 0), 1.0, None),
                                ("536367", "22350", 3, dt.datetime(2011, 12, 9, 12, 50), 1.25, 12680)]}
    for name, rows in years.items():
        ws = wb.add_worksheet(name)
        ws.write_row(0, 0, header)
        for r, (inv, sku, qty, when, price, cust) in enumerate(rows, start=1):
            ws.write_row(r, 0, [inv, sku, "x", qty])
            ws.write_datetime(r, 4, when, fmt)
            ws.write_number(r, 5, price)
            if cust is not None:
                ws.write_number(r, 6, cust)
            ws.write_string(r, 7, "United Kingdom")
    notes = wb.add_worksheet("Notes")
    notes.write_row(0, 0, ["note"])
    notes.write_row(1, 0, ["exported by hand"])
    wb.close()
    _xlsx(path.parent / "sku_map.xlsx", ["sku", "division"], [["85048", "Home Decor"], ["22350", "Kitchen"]])
    con = duckdb.connect()
    report = build_star(con, path.parent)
    f = report.files["online_retail_II.xlsx"]
    assert f["raw_rows"] == 5 and f["quarantined"] == {"missing_customer_id": 1}
    assert "'Year 2009-2010' (2 rows from line 2), 'Year 2010-2011' (3 rows from line 5)" in f["format"]
    assert set(f["skipped_sheets"]) == {"Notes"}
    assert report.export_date == "2011-12-09"
    assert con.execute("SELECT count(*), min(order_date)::VARCHAR, max(order_date)::VARCHAR "
                       "FROM star.fact_transactions").fetchall() == [(4, "2009-12-01", "2011-12-09")]
    # the second sheet's row 3: workbook-wide line 2 + 2 (sheet 1) + 1 (sheet 2's header) + 1
    assert con.execute("SELECT line_number, reason FROM star.quarantine").fetchall() == [
        (6, "sheet 'Year 2010-2011', row 3: customer_id is empty: the line cannot be attributed to an account")]
    assert_reconciled(con)


def _hubspot_csv(tmp_path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A folder holding one HubSpot deals export with these rows."""
    src = tmp_path / "hs"
    src.mkdir()
    (src / "hubspot-crm-exports-all-deals-2025-03-06.csv").write_text(
        "\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return src


def test_hubspot_stage_labels_with_their_pipeline_in_brackets(tmp_path):
    """A portal with several pipelines exports 'Closed Won (Sales Pipeline)': a built-in stage with
    the pipeline after it (adversarial fixture: 420 of 1,500 deals were quarantined as unknown)."""
    header = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Pipeline"]
    rows = [["9001", "A", "Closed Won (Sales Pipeline)", "100", "03/02/2025 12:00 PM", "01/10/2025 09:00 AM", "Sales Pipeline"],
            ["9002", "B", "Closed Lost (Renewals)", "50", "03/05/2025 12:00 PM", "01/12/2025 09:00 AM", "Renewals"],
            ["9003", "C", "Decision Maker Bought-In (Sales Pipeline)", "70", "05/05/2025 12:00 PM",
             "02/12/2025 09:00 AM", "Sales Pipeline"],
            ["9004", "D", "Demo (technical) (Sales Pipeline)", "70", "05/05/2025 12:00 PM", "02/12/2025 09:00 AM",
             "Sales Pipeline"]]
    src = _hubspot_csv(tmp_path, header, rows)
    con = duckdb.connect()
    build_star(con, src)
    got = dict(con.execute("SELECT opportunity_id, stage FROM star.fact_opportunity").fetchall())
    assert got == {"9001": "Won", "9002": "Lost", "9003": "Proposal"}
    reason = con.execute("SELECT reason FROM star.quarantine").fetchall()
    assert len(reason) == 1 and "Deal Stage 'Demo (technical) (Sales Pipeline)' is not one of" in reason[0][0]
    assert_reconciled(con)


def test_hubspot_multi_currency_amounts(tmp_path):
    """A multi-currency portal: 'Amount in company currency' is what totals add; without it the
    deals' currency codes are reported (the run then warns that totals add them as given)."""
    header = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Deal currency code", "Amount in company currency",
              "Close Date", "Create Date"]
    rows = [["1", "A", "closedwon", "1000", "USD", "1000", "2025-03-02", "2025-01-10"],
            ["2", "B", "closedwon", "900", "EUR", "978.26", "2025-03-05", "2025-01-12"],
            ["3", "C", "appointmentscheduled", "150000", "JPY", "1000", "2025-06-05", "2025-02-12"]]
    src = tmp_path / "hs"
    src.mkdir()
    path = src / "hubspot-crm-exports-all-deals-2025-03-06.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    con = duckdb.connect()
    report = build_star(con, src)
    got = dict(con.execute("SELECT opportunity_id, amount FROM star.fact_opportunity").fetchall())
    assert got == {"1": 1000.0, "2": 978.26, "3": 1000.0}
    assert report.currencies == {}
    # the same export without the converted column: amounts as given, their currencies reported
    path.write_text("\n".join(",".join(r[:5] + r[6:]) for r in [header, *rows]) + "\n")
    report = build_star(duckdb.connect(), src)
    assert report.currencies == {"EUR": 1, "JPY": 1, "USD": 1} and report.currency is None
    # no code column: the marks in the Amount cells ("EUR 900") say it
    marked = [[*r[:3], f"{c} {a}", *r[6:]] for r, (a, c) in zip(rows, [("1000", "EUR"), ("900", "EUR"), ("1,500", "EUR")])]
    path.write_text("\n".join(",".join(r) for r in [header[:4] + header[6:], *marked]).replace("EUR 1,500", '"EUR 1,500"') + "\n")
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.currencies == {"EUR": 3} and report.currency == "EUR"
    assert dict(con.execute("SELECT opportunity_id, amount FROM star.fact_opportunity").fetchall()) == {
        "1": 1000.0, "2": 900.0, "3": 1500.0}


def test_the_header_row_under_a_title_block():
    """Row 0 stays the header unless the rows above a fuller row look like a title block (at most
    two cells each, fewer than it): a header with a blank name over a filled column is a header."""
    from revintel_assets.defs.ingest.raw_csv import header_row

    def rows(*cells):
        return [dict(enumerate(r)) for r in cells]
    assert header_row(rows(["a", "a", None, "b", "5"], ["x", "y", "z", "w", "1.5"])) == 0  # a blank header name
    assert header_row(rows(["SKU map 2024", None], ["sku", "division"], ["1", "X"])) == 1
    assert header_row(rows(["Report", None, None], ["Filtered by:", "Stage", None], [None] * 3,
                           ["Id", "Stage", "Amount"], ["1", "Won", None])) == 3
    assert header_row(rows(["sku", "division"], ["1", "X"])) == 0
    assert header_row(rows(["Id", "Name", "Stage"], ["1", None, None], ["2", "b", "Won"])) == 0
    # a two-column header over an unnamed notes column: its data rows fill more cells, and are data
    assert header_row(rows(["sku", "division", None], ["85048", "Home", "seasonal"])) == 0
    assert header_row(rows(["Report", None, None], ["A", "A", "B"], ["1", "2", "3"])) == 0  # repeated names


def test_an_open_deal_in_a_custom_stage_stays_in_the_pipeline(tmp_path):
    """A Renewals pipeline's own stages ('Renewal Due') with `Is Deal Closed?` false and no
    probability: open deals, kept at the earliest open stage and flagged; they were quarantined
    (a third of an audit portal's open pipeline). Closed ones are placed by the flags as before."""
    header = ["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date", "Create Date",
              "Is Deal Closed?", "Is Closed Won"]
    rows = [["9001", "A", "Renewal Due", "Renewals", "100", "2025-06-30", "2025-01-10 09:00", "false", "false"],
            ["9002", "B", "Churned", "Renewals", "50", "2025-03-05", "2025-01-12 09:00", "true", "false"],
            ["9003", "C", "Renewed", "Renewals", "70", "2025-03-01", "2025-01-12 09:00", "true", "true"]]
    src = _hubspot_csv(tmp_path, header, rows)
    con = duckdb.connect()
    report = build_star(con, src)
    got = {r[0]: r[1:] for r in con.execute("SELECT opportunity_id, stage, is_closed, is_won FROM star.fact_opportunity")
           .fetchall()}
    assert got == {"9001": ("Prospecting", False, False), "9002": ("Lost", True, False), "9003": ("Won", True, True)}
    f = report.files["hubspot-crm-exports-all-deals-2025-03-06.csv"]
    assert f["quarantined"] == {} and f["flagged_kept"]["stage_placed_from_other_fields"] == 3
    assert_reconciled(con)


def test_a_report_saved_as_a_workbook_sets_its_footer_aside(tmp_path):
    """A Salesforce report exported as .xlsx keeps its footer as rows (totals with a sum beside them,
    the notice): the report's footer, not rows with an empty Id (it was "row 7: Id is empty")."""
    header = ["Opportunity Owner", "Account Name", "Opportunity Name", "Stage", "Amount", "Close Date", "Created Date",
              "Opportunity ID"]
    rows = [["Bob", "Quartz", "Quartz - Renewal", "Closed Lost", "11500", "2023-08-05 00:00", "2023-06-13 00:00",
             "0065g00000Rep1XAAA"],
            ["Chen", "Summit", "Summit - New", "Closed Won", "35900", "2023-06-22 00:00", "2022-11-21 00:00",
             "0065g00000Rep2XAAA"],
            ["", "", "", "", "", "", "", ""],
            ["Grand Totals (2 records)", "", "", "", "47400", "", "", ""],
            ["Confidential Information - Do Not Distribute", "", "", "", "", "", "", ""],
            ["Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved.", "", "", "", "", "", "", ""]]
    src = tmp_path / "rep"
    src.mkdir()
    _xlsx(src / "report1713178320000.xlsx", header, rows, dates=(5, 6), title=(["Opportunity Pipeline"], []))
    con = duckdb.connect()
    report = build_star(con, src)
    f = report.files["report1713178320000.xlsx"]
    assert f["report_footer"] == 3 and f["quarantined"] == {"report_footer": 3} and f["raw_rows"] == 5
    assert con.execute("SELECT count(*) FROM star.fact_opportunity").fetchall() == [(2,)]
    assert_reconciled(con)


def test_deal_probability_written_with_a_percent_sign(tmp_path):
    """'0%' placed nothing (a custom lost stage's 218 deals quarantined); '20%' and '100%' did."""
    header = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Deal probability"]
    rows = [["9001", "A", "Churned", "100", "2025-03-02", "2025-01-10", "0%"],
            ["9002", "B", "Renewal Due", "50", "2025-06-05", "2025-01-12", "20%"],
            ["9003", "C", "Renewed", "70", "2025-03-01", "2025-01-12", "100%"],
            ["9004", "D", "Sleeping", "70", "2025-06-01", "2025-01-12", "1%"]]
    src = _hubspot_csv(tmp_path, header, rows)
    con = duckdb.connect()
    build_star(con, src)
    got = dict(con.execute("SELECT opportunity_id, stage FROM star.fact_opportunity").fetchall())
    assert got == {"9001": "Lost", "9002": "Engaging", "9003": "Won", "9004": "Prospecting"}
    assert_reconciled(con)


def test_error_cells_of_a_workbook_are_judged_as_excel_shows_them(tmp_path):
    """An audit: a HubSpot export whose Amount is a VLOOKUP, four cells caching #N/A or #REF!. fastexcel
    reads an error cell as empty: three won deals lost their amount, nothing in the quarantine (the
    same sheet saved as CSV quarantined all four). Each is now the text Excel shows."""
    src = tmp_path / "hs"
    src.mkdir()
    wb = xlsxwriter.Workbook(str(src / "deals-export.xlsx"))
    ws = wb.add_worksheet("Deals")
    ws.write_row(0, 0, ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date"])
    errors = {2: ("=NA()", "#N/A"), 4: ("=#REF!", "#REF!"), 5: ("=1/0", "#DIV/0!")}
    for i in range(1, 8):
        ws.write_row(i, 0, [f"90{i}", f"Deal {i}", "Closed Won" if i % 2 else "Closed Lost"])
        if i in errors:
            ws.write_formula(i, 3, errors[i][0], None, errors[i][1])
        else:
            ws.write_number(i, 3, 1000 * i)
        ws.write_row(i, 4, ["2025-03-02", "2025-01-10"])
    ws.write_formula(7, 0, "=NA()", None, "#N/A")  # a re-check: an id that is an error is no deal '#N/A'
    wb.close()
    con = duckdb.connect()
    build_star(con, src)
    q = dict(con.execute("SELECT line_number, reason FROM star.quarantine").fetchall())
    assert q == {3: "Amount '#N/A' is not a number", 5: "Amount '#REF!' is not a number",
                 6: "Amount '#DIV/0!' is not a number", 8: "Record ID is empty"}, q
    assert con.execute("SELECT opportunity_id, amount FROM star.fact_opportunity ORDER BY 1").fetchall() == [
        ("901", 1000.0), ("903", 3000.0), ("906", 6000.0)]
    assert_reconciled(con)


def test_number_cells_of_three_decimals_are_no_thousands(tmp_path):
    """An audit: a workbook's unit prices 1.125 and 12.875 (number cells) voted as dot-grouped thousands
    and were read as 1,125 and 12,875 (the log's revenue 1,000 times too large, only a flag said so). A
    number cell carries no separator convention; the same cells as text in a CSV still settle a comma."""
    header = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
    rows = [["489434", "85048", "GLASS BALL", "8", "2009-12-01 07:45", "1.125", "13085", "United Kingdom"],
            ["489435", "22350", "CAT BOWL", "2", "2009-12-02 07:46", "12.875", "13086", "France"]]
    src = tmp_path / "tx"
    src.mkdir()
    _xlsx(src / "online_retail_II.xlsx", header, rows, dates=(4,))
    con = duckdb.connect()
    report = build_star(con, src)
    assert "amounts_read_with_decimal_comma" not in str(report.files)
    assert con.execute("SELECT account_id, amount FROM star.fact_transactions ORDER BY 1").fetchall() == [
        ("13085", 9.0), ("13086", 25.75)]
    csv = tmp_path / "csv"
    csv.mkdir()
    (csv / "online_retail_II.csv").write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    con = duckdb.connect()
    build_star(con, csv)  # the same cells in a CSV: a German log's whole thousands, as before
    assert con.execute("SELECT account_id, amount FROM star.fact_transactions ORDER BY 1").fetchall() == [
        ("13085", 9000.0), ("13086", 25750.0)]
    # text cells no number cell could be ('2.350': calamine drops a number's trailing zeros) still group
    # thousands in a workbook (a re-check: they were read 1,000 times too small)
    text = tmp_path / "text"
    text.mkdir()
    wb = xlsxwriter.Workbook(str(text / "online_retail_II.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, header)
    for r, (row, price) in enumerate(zip(rows, ["1.125", "2.350"]), start=1):
        ws.write_row(r, 0, row[:5])
        ws.write_string(r, 5, price)
        ws.write_row(r, 6, row[6:])
    wb.close()
    con = duckdb.connect()
    build_star(con, text)
    assert con.execute("SELECT account_id, amount FROM star.fact_transactions ORDER BY 1").fetchall() == [
        ("13085", 9000.0), ("13086", 4700.0)]


def test_a_deal_with_several_associated_companies_belongs_to_the_first(tmp_path):
    """An audit: 'Acme Corp;Globex' became an account of its own (12 accounts for 8 companies)."""
    header = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Associated Company"]
    rows = [["9001", "A", "closedwon", "100", "2025-03-02", "2025-01-10", "Acme Corp;Globex"],
            ["9002", "B", "closedlost", "50", "2025-03-05", "2025-01-12", "Globex"],
            ["9003", "C", "closedwon", "70", "2025-03-01", "2025-01-12", "Acme Corp"],
            ["9004", "D", "closedwon", "20", "2025-03-01", "2025-01-12", ";Globex"]]  # the first named (a re-check)
    con = duckdb.connect()
    report = build_star(con, _hubspot_csv(tmp_path, header, rows))
    assert dict(con.execute("SELECT opportunity_id, account_id FROM star.fact_opportunity").fetchall()) == {
        "9001": "Acme Corp", "9002": "Globex", "9003": "Acme Corp", "9004": "Globex"}
    assert next(iter(report.files.values()))["flagged_kept"] == {"account_first_of_several_companies": 2}
    assert_reconciled(con)


def test_a_grouped_report_merges_its_labels_down_each_group(tmp_path):
    """A Salesforce formatted report grouped by owner, saved as a workbook, merges each owner's cell down
    the group's rows; fastexcel gives the value to the top cell only, and an audit's report came in with
    56 of 60 deals without an owner, without a word. Every cell of a merged range below the header takes
    its value; a merged title above the header is left alone."""
    src = tmp_path / "rep"
    src.mkdir()
    wb = xlsxwriter.Workbook(str(src / "report1713178320000.xlsx"))
    ws = wb.add_worksheet("Report")
    ws.merge_range(0, 0, 0, 4, "Opportunities by Owner")  # a title over five cells
    ws.write_row(2, 0, ["Opportunity Owner", "Opportunity Name", "Opportunity ID", "Stage", "Amount", "Close Date",
                        "Created Date"])
    deals = [("0065g00000Opp1XAAA", "Closed Won", 100), ("0065g00000Opp2XAAA", "Closed Lost", 50),
             ("0065g00000Opp3XAAA", "Closed Won", 70), ("0065g00000Opp4XAAA", "Closed Won", 20)]
    ws.merge_range(3, 0, 5, 0, "Ann Lee")  # the group's label, merged down its three rows
    ws.write(7, 0, "Bob Stone")
    for r, (oid, stage, amount) in enumerate(deals[:3], start=3):
        ws.write_row(r, 1, [f"Deal {r}", oid, stage, amount, "2024-03-28", "2024-01-15"])
    # a re-check: a subtotal merged across the name, id and stage cells is no deal (it became one), and
    # an amount merged down rows is the first row's alone (copied, it was counted on every row)
    ws.merge_range(6, 1, 6, 3, "Subtotal")
    ws.write(6, 4, 220)
    ws.write_row(7, 1, ["Deal 7", deals[3][0], deals[3][1]])
    ws.merge_range(7, 4, 8, 4, 20)
    ws.write_row(7, 5, ["2024-03-28", "2024-01-15"])
    wb.close()
    con = duckdb.connect()
    report = build_star(con, src)
    assert con.execute("SELECT opportunity_id, r.rep_name FROM star.fact_opportunity o JOIN star.dim_rep r "
                       "USING (rep_id) ORDER BY 1").fetchall() == [
        ("0065g00000Opp1X", "Ann Lee"), ("0065g00000Opp2X", "Ann Lee"), ("0065g00000Opp3X", "Ann Lee"),
        ("0065g00000Opp4X", "Bob Stone")]
    assert con.execute("SELECT sum(amount) FROM star.fact_opportunity").fetchall() == [(240.0,)]
    assert report.files["report1713178320000.xlsx"]["merged_cells_filled"] == {"Report": {"Opportunity Owner": 2}}
    assert_reconciled(con)
