"""Export shapes an audit of real-export habits found mishandled (session 49), each silent before:
company names in other scripts merged into one account, a price list of three decimals read 1,000
times too large, amounts in scientific notation turning a file to decimal comma, a second export of
the same kind skipped, companion files named in another case skipped, Excel's `sep=;` line taken
for the header."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import assert_reconciled, build_star
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.source import import_source

HUBSPOT = "Record ID,Deal Name,Deal Stage,Close Date,Deal owner,Amount,Create Date,Pipeline,Associated Company\n"
ORII = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def _write(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _deals(rows: list[tuple[str, str]], first_id: int = 1) -> str:
    """HubSpot deal rows (company, stage): amounts 1,000, one a week from January 2024."""
    return "".join(f"{first_id + i},Deal {i},{stage},2024-03-{1 + i % 27:02d} 10:00,Ann Lee,1000,"
                   f"2024-01-{1 + i % 27:02d} 10:00,Sales Pipeline,{company}\n" for i, (company, stage) in enumerate(rows))


def test_company_names_in_other_scripts_stay_apart(tmp_path):
    """The spelling key kept A-Z and 0-9 only: every Chinese or Cyrillic name had the key '', and
    'Epsilon 日本' / 'Epsilon 中国' the key 'epsilon': six companies became two accounts."""
    names = ["北京科技有限公司", "上海贸易有限公司", "ООО Ромашка", "ООО Лютик", "Epsilon 日本", "Epsilon 中国"]
    src = _write(tmp_path / "hs", **{"hubspot-crm-exports-all-deals-2024-06-03.csv":
                                     HUBSPOT + _deals([(n, "Closed Won") for n in names * 2])})
    con = duckdb.connect()
    build_star(con, src)
    assert_reconciled(con)
    per_account = con.execute("""SELECT a.account_name, count(*) FROM star.fact_opportunity o
                                 JOIN star.dim_account a USING (account_id) GROUP BY 1""").fetchall()
    assert dict(per_account) == {n: 2 for n in names}


def test_a_mark_that_makes_another_name_keeps_it_apart(tmp_path):
    """Accents are dropped from names in Latin or Greek letters only: in other scripts a mark makes
    another name (a re-check found サンデン / サンテン, ООО Зайка / ООО Заика merged)."""
    names = ["サンデン", "サンテン", "कमल इंडस्ट्रीज", "कोमल इंडस्ट्रीज", "บริษัท ดีดี จำกัด", "บริษัท ดูดี จำกัด",
             "ООО Зайка", "ООО Заика"]
    src = _write(tmp_path / "hs", **{"hubspot-crm-exports-all-deals-2024-06-03.csv":
                                     HUBSPOT + _deals([(n, "Closed Won") for n in names])})
    con = duckdb.connect()
    build_star(con, src)
    assert con.execute("SELECT count(DISTINCT account_id) FROM star.fact_opportunity").fetchone() == (len(names),)


def test_names_spelt_differently_still_match(tmp_path):
    """What the key is for, kept: case, spaces, punctuation and accents do not split a company."""
    src = _write(tmp_path / "hs", **{"hubspot-crm-exports-all-deals-2024-06-03.csv": HUBSPOT + _deals(
        [("Müller GmbH", "Closed Won"), ("MULLER GMBH", "Closed Lost"), ("Müller-GmbH.", "Closed Won"),
         ("Ромашка", "Closed Won"), ("РОМАШКА", "Closed Lost"), ("ＡＣＭＥ Corp", "Closed Won"), ("ACME Corp", "Closed Won"),
         ("Μυτιληναίος", "Closed Won"), ("ΜΥΤΙΛΗΝΑΙΟΣ", "Closed Won"), ("Straße AG", "Closed Won"), ("STRASSE AG", "Closed Won")])})
    con = duckdb.connect()
    build_star(con, src)
    assert con.execute("SELECT count(DISTINCT account_id) FROM star.fact_opportunity").fetchone() == (5,)


def test_prices_with_three_decimals_are_not_thousands(tmp_path):
    """'0.850' was counted as dot-grouped thousands (like a German '1.020'), the file read with a
    decimal comma: 0.85 became 850, every amount 1,000 times too large."""
    lines = "".join(f"4894{i:02d},85123A,HEART,2,1/{4 + i}/2010 13:31,{p},1300{i}.0,United Kingdom\n"
                    for i, p in enumerate(["0.850", "3.390", "2.750", "7.650", "0.420", "12.500"]))
    src = _write(tmp_path / "orii", **{"online_retail_II.csv": ORII + lines})
    con = duckdb.connect()
    report = build_star(con, src)
    amounts = sorted(r[0] for r in con.execute("SELECT amount FROM star.fact_transactions").fetchall())
    assert amounts == pytest.approx(sorted(2 * p for p in [0.85, 3.39, 2.75, 7.65, 0.42, 12.5]))
    assert "amounts_read_with_decimal_comma" not in report.files["online_retail_II.csv"].get("flagged_kept", {})


@pytest.mark.parametrize("cells, expected", [
    (["1.5E+05", "2.5E+05", "3.5E+04", "12000", "4.5E+05"], [150000.0, 250000.0, 35000.0, 12000.0, 450000.0]),
    (["1.020", "2.500", "870"], [1020.0, 2500.0, 870.0]),  # a German export's whole amounts: still thousands
    (["1.235E+05", "2.500E+05", "9.875E+04", "12000"], [123500.0, 250000.0, 98750.0, 12000.0]),  # a mantissa of
])                                                                              # three decimals is no thousands group
def test_amounts_in_scientific_notation_keep_the_decimal_point(tmp_path, cells, expected):
    """'1.5E+05' was reduced to '1.505' before the vote on the decimal separator: dot-grouped
    thousands, so the file went to decimal comma and 18 of 30 deals were quarantined."""
    rows = "".join(f"006A{i:02d},Closed Won,{c},2024-02-{10 + i:02d},2024-01-03T10:22:31.000+0000,true,true\n"
                   for i, c in enumerate(cells))
    src = _write(tmp_path / "sf", **{"Opportunity.csv": "Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon\n" + rows})
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.files["Opportunity.csv"].get("quarantined", {}) == {}
    got = sorted(r[0] for r in con.execute("SELECT amount FROM star.fact_opportunity").fetchall())
    assert got == pytest.approx(sorted(expected))


def test_a_second_export_of_the_same_kind_is_named_not_skipped_in_silence(tmp_path):
    """HubSpot deals exported per pipeline, a log split by half-year: the first file was read, the
    second skipped without a word (half the deals missing, the export date months early)."""
    src = _write(tmp_path / "hs", **{
        "hubspot-crm-exports-renewals-pipeline-2024-06-03.csv": HUBSPOT + _deals([("Acme", "Closed Won")] * 3),
        "hubspot-crm-exports-sales-pipeline-2024-06-03.csv": HUBSPOT + _deals([("Beta", "Closed Won")] * 3, 100),
        "notes.csv": "when,what\n2024-01-01,kick-off\n"})
    con = duckdb.connect()
    report = import_source(con, src, locked=False)
    assert list(report.files) == ["hubspot-crm-exports-renewals-pipeline-2024-06-03.csv"]
    assert set(report.unread) == {"hubspot-crm-exports-sales-pipeline-2024-06-03.csv", "notes.csv"}
    assert "has the columns of hubspot-crm-exports-renewals-pipeline" in report.unread[
        "hubspot-crm-exports-sales-pipeline-2024-06-03.csv"]
    assert "not one of the files revintel reads" in report.unread["notes.csv"]


def test_every_file_read_is_not_named_unread(tmp_path):
    lines = "".join(f"4894{i:02d},85123A,HEART,2,1/{4 + i}/2010 13:31,2.55,1300{i},United Kingdom\n" for i in range(3))
    src = _write(tmp_path / "orii", **{"online_retail_II.csv": ORII + lines,
                                       "sku_map.csv": "stock_code,description,division\n85123A,HEART,Lighting\n"})
    report = import_source(duckdb.connect(), src, locked=False)
    assert set(report.files) == {"online_retail_II.csv", "sku_map.csv"} and report.unread == {}


def test_companion_files_in_another_case_are_read(tmp_path):
    """A Salesforce export saved as `opportunity.csv` and `account.csv`: the deals were found by
    their header, the accounts file never read (every account a stub without industry or country)."""
    src = _write(tmp_path / "sf", **{
        "opportunity.csv": "Id,AccountId,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon\n"
                           "006A1,001A,Closed Won,100,2024-02-12,2024-01-03T10:22:31.000+0000,true,true\n"
                           "006A2,001B,Closed Lost,200,2024-02-13,2024-01-04T10:22:31.000+0000,true,false\n",
        "ACCOUNT.CSV": "Id,Name,Industry,BillingCountry\n001A,Acme,Technology,France\n001B,Beta,Retail,Spain\n"})
    con = duckdb.connect()
    report = build_star(con, src)
    assert "ACCOUNT.CSV" in report.files and report.unread == {}
    assert con.execute("SELECT account_id, sector, is_stub FROM star.dim_account ORDER BY 1").fetchall() == [
        ("001A", "Technology", False), ("001B", "Retail", False)]


@pytest.mark.parametrize("name", ["deals.csv", "hubspot-crm-exports-all-deals-2024-06-03.csv"])
def test_excels_sep_line_is_named_as_what_it_is(tmp_path, name):
    """`sep=;` above the header (Excel's hint): the file was refused for lacking every column
    ("found sep="), or the folder was advised a transaction-log mapping."""
    src = _write(tmp_path / "x", **{name: "sep=;\n" + HUBSPOT.replace(",", ";") + _deals([("Acme", "Closed Won")]).replace(",", ";")})
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src, locked=False)
    assert err.value.line == 1 and "'sep=;'" in str(err.value) and "delete that line" in str(err.value)


def test_a_multi_currency_reports_converted_amount_is_the_amount(tmp_path):
    """A Salesforce report of a multi-currency org has 'Amount' in each deal's currency and
    'Amount (converted)' in the corporate one: the amounts in three currencies were added as given
    (a pipeline of 3.9M for 26k USD here), with a warning whose advice (CurrencyType.csv) does not
    fit a report."""
    head = ('"Opportunity Owner","Account Name","Opportunity Name","Stage","Amount Currency","Amount",'
            '"Amount (converted) Currency","Amount (converted)","Close Date","Created Date","Opportunity ID"\n')
    rows = ('"Chen Wei","Acme","Deal 0","Closed Won","USD","17,500.00","USD","17,500.00","4/10/2023","1/5/2023","0065g00000R000XAAA"\n'
            '"Chen Wei","Beta","Deal 1","Closed Lost","EUR","33,300.00","USD","37,000.00","2/19/2023","1/14/2023","0065g00000R001XAAA"\n'
            '"Chen Wei","Gamma","Deal 2","Prospecting","JPY","3,900,000.00","USD","26,000.00","4/30/2023","1/23/2023","0065g00000R002XAAA"\n')
    src = _write(tmp_path / "sf", **{"report1713178320000.csv": head + rows})
    con = duckdb.connect()
    report = import_source(con, src, locked=False)
    assert dict(con.execute("SELECT opportunity_id, close_value FROM staging.opportunities").fetchall()) == {
        "0065g00000R000X": 17500.0, "0065g00000R001X": 37000.0, "0065g00000R002X": 26000.0}
    assert report.currency == "USD"


def test_a_mapped_column_wins_over_a_column_of_revintels_name(tmp_path):
    """A mapping naming `close_value: Net Value` in a file that also has a `close_value` column was
    ignored in silence (the rename needed the name free): the mapping is the user's word."""
    src = _write(tmp_path / "mt", **{
        "sales_pipeline.csv": "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value,Net Value\n"
                              "A1,Ann,X,Acme,Won,2017-01-02,2017-02-01,100,90\n",
        "revintel_mapping.yaml": "columns:\n  close_value: Net Value\n"})
    con = duckdb.connect()
    build_star(con, src)
    assert con.execute("SELECT amount FROM star.fact_opportunity").fetchall() == [(90.0,)]


def test_rows_of_empty_fields_below_the_table_are_skipped_and_counted(tmp_path):
    """A CSV saved by Excel ends with rows of commas where cells were once filled: each was
    quarantined as a deal whose Record ID is empty (43 raw rows for 40 deals)."""
    text = HUBSPOT + _deals([("Acme", "Closed Won"), ("Beta", "Closed Lost")]) + ",,,,,,,,\n,,,,,,,,\n"
    src = _write(tmp_path / "hs", **{"hubspot-crm-exports-all-deals-2024-06-03.csv": text})
    con = duckdb.connect()
    report = build_star(con, src)
    f = report.files["hubspot-crm-exports-all-deals-2024-06-03.csv"]
    assert f["raw_rows"] == 2 and f["quarantined"] == {} and f["empty_rows_skipped"] == 2
    assert con.execute("SELECT count(*) FROM star.quarantine").fetchone() == (0,)


def test_a_deal_export_without_an_amount_column_says_so(tmp_path):
    text = "Record ID,Deal Name,Deal Stage,Close Date,Create Date\n1,D,Closed Won,2024-03-01,2024-01-01\n"
    src = _write(tmp_path / "hs", **{"hubspot-crm-exports-all-deals-2024-06-03.csv": text})
    report = import_source(duckdb.connect(), src, locked=False)
    assert report.files["hubspot-crm-exports-all-deals-2024-06-03.csv"]["missing_optional_columns"] == ["Amount"]


def test_a_report_without_created_date_is_told_what_it_lacks(tmp_path):
    """It was not recognised as a report at all: "expected a CRM export" and a transaction-log mapping."""
    src = _write(tmp_path / "sf", **{"report1713178320000.csv":
                 '"Opportunity Name","Stage","Amount","Close Date","Opportunity ID"\n"D","Closed Won","10","4/10/2023","0065g00000R000XAAA"\n'})
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src, locked=False)
    assert "'Created Date' column" in str(err.value) and "transaction" not in str(err.value)


def test_a_title_above_the_header_names_the_headers_line(tmp_path):
    """A title and a blank line above the header: "line 1 ... found column0, column1" and a mapping
    to fill in, although every column was there on line 3."""
    text = ('"Opportunities - all, exported 2024-06-03"\n\n"Id","StageName","Amount","CloseDate","CreatedDate"\n'
            '"006A1","Closed Won","10","2024-02-12","2024-01-03"\n')
    src = _write(tmp_path / "sf", **{"Opportunity.csv": text})
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src, locked=False)
    assert err.value.line == 3 and "the header is on line 3" in str(err.value)


def test_an_unrelated_file_with_a_sep_line_does_not_stop_the_import(tmp_path):
    src = _write(tmp_path / "hs", **{"hubspot-crm-exports-all-deals-2024-06-03.csv": HUBSPOT + _deals([("Acme", "Closed Won")]),
                                     "quota_notes.csv": "sep=;\nrep;note\nAnn Lee;ramp-up\n"})
    report = import_source(duckdb.connect(), src, locked=False)
    assert list(report.files) == ["hubspot-crm-exports-all-deals-2024-06-03.csv"] and list(report.unread) == ["quota_notes.csv"]


def test_a_report_without_created_date_does_not_block_a_complete_one(tmp_path):
    head = '"Opportunity Name","Stage","Amount","Close Date","Created Date","Opportunity ID"\n'
    src = _write(tmp_path / "sf", **{
        "a_pipeline_by_stage.csv": '"Opportunity Name","Stage","Amount","Close Date"\n"D","Closed Won","10","4/10/2023"\n',
        "report1713178320000.csv": head + '"D","Closed Won","10","4/10/2023","1/5/2023","0065g00000R000XAAA"\n'})
    report = import_source(duckdb.connect(), src, locked=False)
    assert list(report.files) == ["report1713178320000.csv"] and list(report.unread) == ["a_pipeline_by_stage.csv"]


def test_two_files_differing_only_in_case_are_both_accounted_for(tmp_path):
    head = "Id,StageName,Amount,CloseDate,CreatedDate\n"
    src = _write(tmp_path / "sf", **{"Opportunity.csv": head + "006A1,Closed Won,10,2024-02-12,2024-01-03\n",
                                     "opportunity.csv": head + "006A2,Closed Won,20,2024-02-12,2024-01-03\n"})
    report = import_source(duckdb.connect(), src, locked=False)
    assert list(report.files) == ["Opportunity.csv"] and "has the columns of Opportunity.csv" in report.unread["opportunity.csv"]


def test_rows_of_commas_below_a_wide_sales_log_are_skipped_and_counted(tmp_path):
    """The same rows below a wide sales log (read through a narrow projection: its SKU cells one
    list per order) were still quarantined, 'CustomerId is empty' (a re-check)."""
    src = _write(tmp_path / "log", **{"sales_log.csv": "CustomerId,Customer,Rec Date,Division,Rep,Branch,A,A_Qty,B,B_Qty\n"
                                      "C1,One,2024-01-02,D,R,E,10,1,,\n,,,,,,,,,\n,,,,,,,,,\n"})
    con = duckdb.connect()
    report = import_source(con, src, locked=False)
    f = report.files["sales_log.csv"]
    assert f["raw_rows"] == 1 and f["empty_rows_skipped"] == 2 and f["quarantined"] == {}
    assert con.execute("SELECT count(*) FROM staging.quarantine_new").fetchone() == (0,)


@pytest.mark.parametrize("name, text, line, kind", [
    ("deals_q2.csv", "Deals - all pipelines, exported 2024-05-09\n\n" + HUBSPOT + _deals([("Acme", "Closed Won")]), 3,
     "a HubSpot deals export"),
    ("report1713178320000.csv", '"Opportunities by stage"\n"As of 2024-05-09"\n\n"Opportunity ID","Opportunity Name",'
     '"Stage","Amount","Close Date","Created Date"\n"0065g00000R000XAAA","D","Closed Won","10","4/10/2023","1/5/2023"\n', 4,
     "a Salesforce opportunity report"),
])
def test_a_title_above_a_crm_export_under_another_name_names_the_headers_line(tmp_path, name, text, line, kind):
    """Found by its header, not its name: it was "expected a CRM export ... or tidy transactions" and a
    transaction-log mapping to fill in (the header search below line 1 ran only for files found by name)."""
    src = _write(tmp_path / "crm", **{name: text})
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src, locked=False)
    assert err.value.line == line and f"expected {kind}'s header on line 1; the header is on line {line}" in str(err.value)
    assert "transaction" not in str(err.value)


def test_a_titled_copy_does_not_block_a_complete_export(tmp_path):
    src = _write(tmp_path / "hs", **{"deals_q2.csv": HUBSPOT + _deals([("Acme", "Closed Won")]),
                                     "deals_q2_for_the_board.csv": "Board pack\n" + HUBSPOT + _deals([("Acme", "Closed Won")])})
    report = import_source(duckdb.connect(), src, locked=False)
    assert list(report.files) == ["deals_q2.csv"] and list(report.unread) == ["deals_q2_for_the_board.csv"]


def test_a_return_with_a_negative_quantity_and_a_positive_amount_is_a_return(tmp_path):
    """An ERP's credit-note lines: quantity -3, amount 30.00. They were kept as revenue without a word."""
    log = ("customer_id,order_date,sku,quantity,amount\nC1,2024-01-05,S1,3,30.00\nC1,2024-01-20,S1,-3,30.00\n"
           "C2,2024-01-06,S1,-1,-10.00\n")
    src = _write(tmp_path / "tx", **{"transactions.csv": log})
    con = duckdb.connect()
    report = import_source(con, src, locked=False)
    amounts = con.execute("SELECT customer_id, quantity, amount FROM staging.transactions ORDER BY _line").fetchall()
    assert amounts == [("C1", 3, 30.0), ("C1", -3, -30.0), ("C2", -1, -10.0)]
    assert report.files["transactions.csv"]["flagged_kept"] == {"negative_quantity_with_positive_amount_read_as_return": 1}


def test_a_wide_sales_log_saved_by_a_european_excel_reads_its_decimal_commas(tmp_path):
    """`;` and '146,40': every order was quarantined as 'SKU column A1 is not a number', exit 0, no hint."""
    log = ("CustomerId;Customer;Rec Date;Division;Rep;Branch;A1;A1_Qty;B1;B1_Qty\n"
           "C1;One;31/12/2023;North;Ann;HQ;146,40;2;;\nC2;Two;15/11/2023;North;Ann;HQ;1.234,50;1;-3,10;1\n")
    src = _write(tmp_path / "wide", **{"sales_log.csv": log, "sku_map.csv": "sku,division\nA1,Alpha\nB1,Beta\n"})
    con = duckdb.connect()
    report = import_source(con, src, locked=False)
    rows = con.execute("SELECT customer_id, product_id, amount, quantity FROM staging.transactions ORDER BY _line, product_id").fetchall()
    assert rows == [("C1", "A1", 146.4, 2), ("C2", "A1", 1234.5, 1), ("C2", "B1", -3.1, 1)]
    assert report.files["sales_log.csv"]["flagged_kept"] == {"amounts_read_with_decimal_comma": 2}


def test_a_crm_like_row_in_another_file_does_not_stop_a_transaction_log(tmp_path):
    """The re-check: a notes file with 'Deal Name,Deal Stage' on line 3 refused a tidy log's import."""
    log = "customer_id,order_date,sku,quantity,amount\nC1,2024-01-05,S1,3,30.00\n"
    src = _write(tmp_path / "tx", **{"transactions.csv": log, "export_spec.csv": "Spec\n\nDeal Name,Deal Stage\nx,y\n"})
    report = import_source(duckdb.connect(), src, locked=False)
    assert list(report.files) == ["transactions.csv"]


def test_excels_unicode_text_named_txt_is_read(tmp_path):
    """Excel's "Unicode Text" save is UTF-16, tab-separated and named .txt: it was refused ("found
    deals.txt"), though the same bytes named .csv were read (an audit, 2026-12-08)."""
    rows = _deals([("Acme", "Closed Won"), ("Beta", "Closed Lost"), ("Acme", "Appointment Scheduled")])
    text = (HUBSPOT + rows).replace(",", "\t").replace("\n", "\r\n")
    src = tmp_path / "hs"
    src.mkdir()
    (src / "deals.txt").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    (src / "notes.txt").write_text("a note, not a table\n")  # a plain .txt is still no data file
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.layout.name == "hubspot" and list(report.files) == ["deals.txt"]
    assert con.execute("SELECT count(*) FROM star.fact_opportunity").fetchall() == [(3,)]
    assert_reconciled(con)


def test_a_crm_export_saved_as_xlsm_under_its_own_name_is_found(tmp_path):
    """The README: any layout as .xlsx or .xlsm; a HubSpot export saved as .xlsm under its own name was
    refused (the header search looked at .csv and .xlsx only)."""
    import xlsxwriter

    src = tmp_path / "hs"
    src.mkdir()
    wb = xlsxwriter.Workbook(str(src / "deals-q2.xlsm"))
    ws = wb.add_worksheet()
    for r, line in enumerate((HUBSPOT + _deals([("Acme", "Closed Won"), ("Beta", "Closed Lost")])).splitlines()):
        ws.write_row(r, 0, line.split(","))
    wb.close()
    con = duckdb.connect()
    report = build_star(con, src)
    assert report.layout.name == "hubspot"
    assert con.execute("SELECT count(*) FROM star.fact_opportunity").fetchall() == [(2,)]


def test_an_export_on_a_later_sheet_is_named(tmp_path):
    """A workbook with a 'Summary' sheet first and the deals on 'Deals': it was "expected a CRM export" and
    a transaction-log mapping for the summary's columns. The refusal now names the sheet to move."""
    import xlsxwriter

    src = tmp_path / "hs"
    src.mkdir()
    wb = xlsxwriter.Workbook(str(src / "deals-export.xlsx"))
    summary = wb.add_worksheet("Summary")
    summary.write_row(0, 0, ["Stage", "Deals", "Amount"])
    summary.write_row(1, 0, ["Closed Won", 2, 2000])
    deals = wb.add_worksheet("Deals")
    for r, line in enumerate((HUBSPOT + _deals([("Acme", "Closed Won"), ("Beta", "Closed Won")])).splitlines()):
        deals.write_row(r, 0, line.split(","))
    wb.close()
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src, locked=False)
    assert "its sheet 'Deals' has a HubSpot deals export's header: move that sheet first" in str(err.value)


def test_ids_excel_rounded_to_scientific_notation_are_said_to_be(tmp_path):
    """HubSpot ids saved by Excel as 1.52837E+11: every row but one was 'Record ID already on line 2 with
    other contents', with no word of why."""
    text = HUBSPOT + "".join(f"1.52837E+11,Deal {i},Closed Won,2024-03-0{i + 1} 10:00,Ann Lee,1000,2024-01-02 10:00,"
                             f"Sales Pipeline,Acme\n" for i in range(3))
    src = _write(tmp_path / "hs", **{"deals-export.csv": text})
    con = duckdb.connect()
    build_star(con, src)
    reasons = [r for (r,) in con.execute("SELECT reason FROM star.quarantine ORDER BY line_number").fetchall()]
    assert len(reasons) == 2 and all("scientific notation: Excel rounded the ids" in r for r in reasons), reasons
    assert_reconciled(con)
