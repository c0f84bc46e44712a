"""Salesforce export (CONTRACT §2.2): hand-made, real-looking files with the quirks real exports
have (BOM, CRLF, 18- and 15-character ids, ISO timestamps with milliseconds, booleans as
true/1, relationship columns, custom stages), imported into the star schema."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import assert_reconciled, build_star
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.source import detect_layout, import_source

ACC_ACME, ACC_BETA, ACC_SUB = "0015g00000AcmeXAAA", "0015g00000BetaXAAA", "0015g00000SubsXAAA"
U_ANN, U_BOB, U_MAX = "0055g00000AnnXXAAQ", "0055g00000BobXXAAQ", "0055g00000MaxXXAAQ"
P_CORE, P_PLUS = "01t5g00000CoreXAAA", "01t5g00000PlusXAAA"

OPPORTUNITY = (
    "Id,Name,AccountId,OwnerId,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,"
    "ForecastCategoryName,Product2Id,LastStageChangeDate\r\n"
    # 2: won, 18-char ids, ISO timestamp with millis and Z
    f"0065g00000Opp1XAAA,Acme renewal,{ACC_ACME},{U_ANN},Closed Won,\"$12,000.00\",2024-03-28,"
    f"2024-01-15T10:22:33.000Z,true,true,Closed,{P_CORE},2024-03-28T09:00:00.000Z\r\n"
    # 3: lost, 15-char account id (a report export) matching the 18-char Account.Id
    f"0065g00000Opp2XAAA,Beta new,{ACC_BETA[:15]},{U_BOB},Closed Lost,5000,2024-02-20,"
    "2024-01-03T08:00:00.000Z,1,0,Omitted,,2024-02-20T00:00:00.000Z\r\n"
    # 4: open, Salesforce stage 'Id. Decision Makers' -> Engaging
    f"0065g00000Opp3XAAA,Beta upsell,{ACC_BETA},{U_BOB},Id. Decision Makers,7500,2024-06-30,"
    f"2024-02-01T12:00:00.000Z,false,false,Pipeline,{P_PLUS},2024-03-01T00:00:00.000Z\r\n"
    # 5: stage says Negotiation but IsClosed/IsWon say won: kept as Won, flagged
    f"0065g00000Opp4XAAA,Acme add-on,{ACC_ACME},{U_ANN},Negotiation/Review,3000,2024-04-02,"
    f"2024-02-10T12:00:00.000Z,TRUE,TRUE,Closed,{P_CORE},2024-04-02T00:00:00.000Z\r\n"
    # 6: custom stage nobody knows, open: placed by ForecastCategoryName Commit -> Negotiation, flagged
    f"0065g00000Opp5XAAA,Gamma pilot,{ACC_ACME},{U_ANN},Verbal Yes,900,2024-07-01,"
    "2024-03-01T12:00:00.000Z,false,false,Commit,,\r\n"
    # 7: closed before created: CreatedDate is a load date; kept, flagged, created from CloseDate
    f"0065g00000Opp6XAAA,Backdated,{ACC_ACME},{U_ANN},Closed Won,100,2023-12-01,"
    "2024-01-02T12:00:00.000Z,true,true,Closed,,\r\n"
    # 8: negative amount, in parentheses
    f"0065g00000Opp7XAAA,Credit,{ACC_ACME},{U_ANN},Closed Won,(250.00),2024-03-01,"
    "2024-01-02T12:00:00.000Z,true,true,Closed,,\r\n"
    # 9: unknown account and owner: kept with stub members
    "0065g00000Opp8XAAA,Stranger,001000000000ZZZ,005000000000ZZZ,Prospecting,1000,2024-09-30,"
    "2024-03-10T12:00:00.000Z,false,false,Pipeline,,\r\n"
    # 10: exact duplicate of line 4
    f"0065g00000Opp3XAAA,Beta upsell,{ACC_BETA},{U_BOB},Id. Decision Makers,7500,2024-06-30,"
    f"2024-02-01T12:00:00.000Z,false,false,Pipeline,{P_PLUS},2024-03-01T00:00:00.000Z\r\n"
    # 11: same id as line 2 (15-char form), other contents
    f"0065g00000Opp1XAAA,Acme renewal,{ACC_ACME},{U_ANN},Closed Lost,12000,2024-03-28,"
    "2024-01-15T10:22:33.000Z,true,false,Omitted,,\r\n"
    # 12: truncated row
    "0065g00000Opp9XAAA,Cut off,0015g00000AcmeXAAA,0055g00000AnnXXAAQ,Prospecting\r\n"
    # 13: impossible created date
    f"0065g00000OppAXAAA,Typo,{ACC_ACME},{U_ANN},Qualification,100,2024-05-01,"
    "1899-12-31T00:00:00.000Z,false,false,Pipeline,,\r\n"
)
ACCOUNT = (
    "Id,Name,Industry,NumberOfEmployees,AnnualRevenue,BillingCountry,ParentId\r\n"
    f"{ACC_ACME},Acme Corp,Technology,1200,\"150,000,000\",United States,\r\n"
    f"{ACC_BETA},Beta GmbH,Manufacturing,85,,Germany,{ACC_SUB}\r\n"
    f"{ACC_SUB},Beta Holding,Finance,,,Germany,\r\n"
)
USER = (
    "Id,Name,ManagerId,UserRole.Name\r\n"
    f"{U_ANN},Ann Lee,{U_MAX},AE West\r\n"
    f"{U_BOB},Bob Stone,{U_MAX},AE East\r\n"
    f"{U_MAX},Max Power,,Sales Director\r\n"
)
HISTORY = (
    "OpportunityId,CreatedDate,StageName,CloseDate,Amount\r\n"
    "0065g00000Opp3XAAA,2024-02-01T12:00:00.000Z,Prospecting,2024-05-31,6000\r\n"
    "0065g00000Opp3XAAA,2024-03-01T09:30:00.000Z,Id. Decision Makers,2024-06-30,7500\r\n"
    "0065g00000NopeXAAA,2024-03-01T09:30:00.000Z,Prospecting,2024-06-30,10\r\n"  # unknown opportunity
)
PRODUCT2 = (
    "Id,Name,Family,ProductCode\r\n"
    f"{P_CORE},Core Platform,Software,CORE-1\r\n"
    f"{P_PLUS},Plus Add-on,Services,PLUS-1\r\n"
)


def write(folder: Path, name: str, text: str, bom: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())


@pytest.fixture
def sf(tmp_path) -> Path:
    src = tmp_path / "sfdc"
    write(src, "Opportunity.csv", OPPORTUNITY, bom=True)
    write(src, "Account.csv", ACCOUNT)
    write(src, "User.csv", USER)
    write(src, "OpportunityHistory.csv", HISTORY)
    write(src, "Product2.csv", PRODUCT2)
    return src


def _q(con, file: str) -> dict[int, str]:
    return dict(con.execute("SELECT line_number, reason FROM star.quarantine WHERE source_file = ?",
                            [file]).fetchall())


def test_salesforce_layout_is_detected(sf):
    assert detect_layout(sf).name == "salesforce"


def test_salesforce_imports_into_the_star_schema(sf):
    con = duckdb.connect()
    report = build_star(con, sf)
    assert report.layout.name == "salesforce"
    q = _q(con, "Opportunity.csv")
    assert set(q) == {8, 10, 11, 12, 13}
    assert "negative" in q[8]
    assert q[10] == "exact duplicate of line 4 (merged)"
    assert "already on line 2 with other contents" in q[11]
    assert "unreadable row" in q[12]
    assert "impossible date" in q[13]
    opps = {r[0]: r[1:] for r in con.execute(
        "SELECT opportunity_id, account_id, rep_id, product_id, division, stage, is_closed, is_won, amount, "
        "created_date::VARCHAR, close_date::VARCHAR, expected_close_date::VARCHAR, import_flag "
        "FROM star.fact_opportunity").fetchall()}
    assert set(opps) == {"0065g00000Opp1X", "0065g00000Opp2X", "0065g00000Opp3X", "0065g00000Opp4X",
                         "0065g00000Opp5X", "0065g00000Opp6X", "0065g00000Opp8X"}
    o5 = opps["0065g00000Opp5X"]  # unknown stage placed by ForecastCategoryName
    assert o5[4:7] == ("Negotiation", False, False) and "'Verbal Yes' unknown; placed as Negotiation" in o5[11]
    o6 = opps["0065g00000Opp6X"]  # CreatedDate after CloseDate: a load date, creation before the close
    assert o6[4] == "Won" and "is a load date (after CloseDate)" in o6[11]
    assert o6[8] < o6[9] == "2023-12-01"
    o1 = opps["0065g00000Opp1X"]
    assert o1[:8] == ("0015g00000AcmeX", "0055g00000AnnXX", "01t5g00000CoreX", "Software", "Won", True, True, 12000.0)
    assert o1[8:11] == ("2024-01-15", "2024-03-28", "2024-03-28")
    assert opps["0065g00000Opp2X"][0] == "0015g00000BetaX"  # 15-char id matched the 18-char one
    o3 = opps["0065g00000Opp3X"]
    assert o3[4:7] == ("Engaging", False, False) and o3[9] is None and o3[10] == "2024-06-30"
    assert o3[8] == "2024-02-01"  # first history event
    o4 = opps["0065g00000Opp4X"]
    assert o4[4] == "Won" and "disagrees with IsClosed=TRUE, IsWon=TRUE" in o4[11]
    assert report.files["Opportunity.csv"]["flagged_kept"] == {
        "stage_disagrees_with_isclosed_iswon": 1, "stage_placed_from_other_fields": 1, "created_date_is_load_date": 1}
    fc = dict(con.execute("SELECT opportunity_id, forecast_category FROM star.fact_opportunity").fetchall())
    assert fc["0065g00000Opp3X"] == "Pipeline" and fc["0065g00000Opp5X"] == "Commit"
    assert fc["0065g00000Opp1X"] == "Closed" and fc["0065g00000Opp2X"] == "Omitted"
    # unknown account and owner: kept, stub members
    assert opps["0065g00000Opp8X"][:2] == ("001000000000ZZZ", "005000000000ZZZ")
    stubs = con.execute("SELECT (SELECT list(account_id) FROM star.dim_account WHERE is_stub), "
                        "(SELECT list(rep_id) FROM star.dim_rep WHERE is_stub)").fetchall()[0]
    assert stubs == (["001000000000ZZZ"], ["005000000000ZZZ"])
    # dimensions: parent by id, manager by id, region from the role
    acc = dict(con.execute("SELECT account_name, parent_account_id FROM star.dim_account").fetchall())
    assert acc["Beta GmbH"] == "0015g00000SubsX"
    assert con.execute("SELECT annual_revenue FROM star.dim_account WHERE account_name = 'Acme Corp'"
                       ).fetchall() == [(150_000_000.0,)]
    reps = {r[0]: r[1:] for r in con.execute("SELECT rep_name, manager, region FROM star.dim_rep").fetchall()}
    assert reps["Ann Lee"] == ("Max Power", "AE West")
    # history: the unknown opportunity is quarantined, the rest kept
    assert list(_q(con, "OpportunityHistory.csv")) == [4]
    assert con.execute("SELECT count(*) FROM star.fact_opportunity_history WHERE NOT derived").fetchall() == [(2,)]
    # won deals stand in for transactions (no separate log)
    assert con.execute("SELECT count(*) FROM star.fact_transactions WHERE source = 'crm_won'").fetchall() == [(3,)]
    assert_reconciled(con)
    assert report.export_date == "2024-04-02"


def test_salesforce_custom_stage_through_a_mapping(sf):
    write(sf, "revintel_mapping.yaml", "stages:\n  Verbal Yes: Negotiation\n")
    con = duckdb.connect()
    build_star(con, sf)
    assert con.execute("SELECT stage FROM star.fact_opportunity WHERE opportunity_id = '0065g00000Opp5X'"
                       ).fetchall() == [("Negotiation",)]


def test_opportunity_export_without_optional_files(tmp_path):
    src = tmp_path / "sf_min"
    write(src, "Opportunity.csv", "Id,StageName,Amount,CloseDate,CreatedDate\n"
          "006A,Prospecting,100,2024-05-01,2024-01-01\n006B,Closed Won,200,2024-02-01,2024-01-05\n")
    con = duckdb.connect()
    build_star(con, src)
    rows = con.execute("SELECT opportunity_id, stage, is_won, account_id FROM star.fact_opportunity ORDER BY 1").fetchall()
    assert rows == [("006A", "Prospecting", False, None), ("006B", "Won", True, None)]


def test_missing_salesforce_column_shows_the_mapping_to_write(tmp_path):
    src = tmp_path / "sf_variant"
    write(src, "Opportunity.csv", "Id,Stage,Amount,CloseDate,Created_On\n006A,Prospecting,100,2024-05-01,2024-01-01\n")
    with pytest.raises(SourceError) as err:
        import_source(duckdb.connect(), src)
    msg = str(err.value)
    assert "Opportunity.csv" in msg and "line 1" in msg and "Salesforce export" in msg
    assert "StageName" in msg and "CreatedDate" in msg and "revintel_mapping.yaml" in msg
    assert "StageName: Stage" in msg and "CreatedDate: Created_On" in msg
    # ... and the mapping it suggests works
    write(src, "revintel_mapping.yaml", "columns:\n  Opportunity.csv:\n    StageName: Stage\n    CreatedDate: Created_On\n")
    con = duckdb.connect()
    build_star(con, src)
    assert con.execute("SELECT count(*) FROM star.fact_opportunity").fetchall() == [(1,)]


FIXTURES = Path(__file__).parent / "fixtures"


def test_migrated_export_without_history_keeps_every_closed_deal():
    """Issue 13: a Data Loader export (quoted, CRLF, BOM) whose CreatedDate is the bulk-load date
    (after CloseDate) for every row, no OpportunityHistory.csv: nothing closed is quarantined,
    creation comes from the earliest evidence, standard stage variants are built in. 'Stage 7
    (legacy)' with IsClosed false and nothing else is an open deal at the earliest open stage (it
    was quarantined as an unknown stage: an org's custom open stages left the pipeline)."""
    con = duckdb.connect()
    report = build_star(con, FIXTURES / "salesforce_no_history")
    opp = report.files["Opportunity.csv"]
    assert opp["raw_rows"] == 50 and opp["quarantined"] == {}
    assert opp["flagged_kept"]["created_date_is_load_date"] == 50
    # 'Verbal Agreement', Probability 90 (3); 'Stage 7 (legacy)', IsClosed false (1)
    assert opp["flagged_kept"]["stage_placed_from_other_fields"] == 4
    assert con.execute("SELECT stage, is_closed FROM star.fact_opportunity WHERE opportunity_id = '0065g00000Op049'"
                       ).fetchall() == [("Prospecting", False)]
    assert con.execute("SELECT count(*) FROM star.fact_opportunity WHERE is_closed").fetchall() == [(32,)]
    assert con.execute("SELECT count(*) FROM star.fact_opportunity WHERE created_date > coalesce(close_date, "
                       "DATE '2024-06-03') OR created_date IS NULL").fetchall() == [(0,)]
    stages = dict(con.execute("SELECT stage, count(*) FROM star.fact_opportunity GROUP BY 1").fetchall())
    assert stages == {"Won": 22, "Lost": 10, "Prospecting": 4, "Engaging": 5, "Proposal": 3, "Negotiation": 6}
    assert con.execute("SELECT DISTINCT forecast_category FROM star.fact_opportunity ORDER BY 1").fetchall() == [
        ("Best Case",), ("Closed",), ("Commit",), ("Omitted",), ("Pipeline",)]
    # derived history starts every deal at its creation: the as-of dates have a start
    # (prospecting, or already in its current stage when LastStageChangeDate is not after creation)
    assert con.execute("SELECT count(DISTINCT h.opportunity_id) FROM star.fact_opportunity_history h "
                       "JOIN star.fact_opportunity f USING (opportunity_id) WHERE h.changed_at = f.created_date"
                       ).fetchall() == [(50,)]
    # every open deal shows its current stage and amount, from LastStageChangeDate at the earliest
    assert con.execute("""SELECT count(*) FROM star.fact_opportunity f JOIN (
                            SELECT opportunity_id, arg_max(stage, changed_at) AS stage,
                                   arg_max(amount, changed_at) AS amount FROM star.fact_opportunity_history
                            GROUP BY 1) h USING (opportunity_id)
                          WHERE NOT f.is_closed AND h.stage = f.stage AND h.amount = f.amount""").fetchall() == [(18,)]
    assert con.execute("""SELECT count(*) FROM star.fact_opportunity_history h JOIN staging.opportunities o
                          USING (opportunity_id) WHERE h.amount IS NOT NULL AND NOT o.is_closed
                          AND h.changed_at < o.stage_since""").fetchall() == [(0,)]
    assert_reconciled(con)


def test_created_date_shared_by_most_rows_is_a_load_date(tmp_path):
    """A CreatedDate that most rows share is a load date even when it is before the CloseDates."""
    rows = "".join(f"006L{i},Closed Won,100,2024-0{3 + i % 5}-1{i % 9},2024-02-01T05:00:00.000Z,true,true\r\n"
                   for i in range(6))
    rows += "006R1,Closed Lost,50,2024-05-01,2024-03-01T05:00:00.000Z,true,false\r\n"
    write(tmp_path / "sf", "Opportunity.csv", "Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon\r\n" + rows,
          bom=True)
    con = duckdb.connect()
    report = build_star(con, tmp_path / "sf")
    assert report.files["Opportunity.csv"]["flagged_kept"] == {"created_date_is_load_date": 6}
    got = dict(con.execute("SELECT opportunity_id, created_date::VARCHAR FROM star.fact_opportunity").fetchall())
    assert got["006R1"] == "2024-03-01"  # its own CreatedDate is real
    # the others: CloseDate minus the median real cycle (006R1: 61 days), never after the load date
    assert got["006L0"] == "2024-01-09" and all(v <= "2024-02-01" for k, v in got.items() if k != "006R1")
    assert "shared by 6 of 7 rows" in con.execute(
        "SELECT import_flag FROM star.fact_opportunity WHERE opportunity_id = '006L0'").fetchall()[0][0]


def test_history_rows_stamped_with_the_load_date_do_not_date_closed_deals(tmp_path):
    """A migration inserts one history row per deal, stamped when inserted (adversarial fixture of a
    real migrated org): on a deal closed before that date the row dates the load, not a stage
    change. Quarantined with the reason; the deal keeps its real creation and takes the derived
    history; an open deal's row that day is the stage it had then and stays."""
    opp = ["Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon"]
    hist = ["OpportunityId,CreatedDate,StageName,CloseDate,Amount"]
    for i in range(8):  # closed in 2024, history row inserted at the migration, 2025-04-15
        won = i % 2 == 0
        opp.append(f"006C{i},Closed {'Won' if won else 'Lost'},100,2024-0{3 + i % 6}-10,2024-01-0{1 + i}T05:00:00.000Z,"
                   f"true,{str(won).lower()}")
        hist.append(f"006C{i},2025-04-15T06:14:00.000Z,Closed {'Won' if won else 'Lost'},2024-0{3 + i % 6}-10,100")
    opp.append("006O1,Negotiation/Review,900,2025-06-30,2025-01-20T05:00:00.000Z,false,false")
    hist += ["006O1,2025-01-20T05:00:00.000Z,Prospecting,2025-06-30,500",
             "006O1,2025-04-15T06:14:00.000Z,Negotiation/Review,2025-06-30,900"]
    write(tmp_path / "sf", "Opportunity.csv", "\r\n".join(opp) + "\r\n", bom=True)
    write(tmp_path / "sf", "OpportunityHistory.csv", "\r\n".join(hist) + "\r\n")
    con = duckdb.connect()
    report = build_star(con, tmp_path / "sf")
    assert report.files["OpportunityHistory.csv"]["quarantined"] == {"load_date": 8}
    reasons = _q(con, "OpportunityHistory.csv")
    assert sorted(reasons) == list(range(2, 10))
    assert all("is the bulk-load date (9 of 10 history rows), after the deal closed" in r for r in reasons.values())
    created = dict(con.execute("SELECT opportunity_id, created_date::VARCHAR FROM star.fact_opportunity").fetchall())
    assert created["006C0"] == "2024-01-01" and created["006O1"] == "2025-01-20"
    assert con.execute("SELECT count(*) FROM star.fact_opportunity WHERE created_date > close_date").fetchall() == [(0,)]
    logged = dict(con.execute("SELECT opportunity_id, bool_and(NOT derived) FROM star.fact_opportunity_history "
                              "GROUP BY 1").fetchall())
    assert logged["006O1"] is True and logged["006C3"] is False
    assert_reconciled(con)


REPORT = ('"Opportunity Owner","Account Name","Opportunity Name","Stage","Fiscal Period","Amount",'
          '"Probability (%)","Close Date","Created Date","Opportunity ID"\r\n'
          '"Bob Miller","Quartz GmbH","Quartz GmbH - Renewal","Closed Lost","Q3-2023","USD 11,500.00","0%",'
          '"8/5/2023","6/13/2023","0065g00000Rep1XAAA"\r\n'
          '"Chen Wei","Summit Systems","Quartz GmbH - Renewal","Closed Won","Q2-2023","USD 35,900.00","100%",'
          '"6/22/2023","11/21/2022","0065g00000Rep2XAAA"\r\n'
          '"Chen Wei","Summit Systems","Summit - Upsell","Negotiation/Review","Q4-2023","USD 9,000.00","90%",'
          '"12/15/2023","9/1/2023","0065g00000Rep3XAAA"\r\n'
          '\r\n"Grand Totals (3 records)"\r\n')


def test_a_salesforce_opportunity_report_is_read_by_its_labels(tmp_path):
    """Reports > Export > Details Only writes labels ('Opportunity Name', 'Stage', 'Close Date', ...)
    under a name like report1713178320000.csv: read as Opportunity.csv, the labels said in the run."""
    write(tmp_path / "rep", "report1713178320000.csv", REPORT, bom=True)
    layout = detect_layout(tmp_path / "rep")
    assert layout.crm == "salesforce"
    assert "Id <- 'Opportunity ID'" in layout.user_mapping.read_as["report1713178320000.csv"]
    con = duckdb.connect()
    build_star(con, tmp_path / "rep")
    got = con.execute("SELECT opportunity_id, stage, amount, created_date::VARCHAR, close_date::VARCHAR "
                      "FROM star.fact_opportunity ORDER BY 1").fetchall()
    assert got == [("0065g00000Rep1X", "Lost", 11500.0, "2023-06-13", "2023-08-05"),
                   ("0065g00000Rep2X", "Won", 35900.0, "2022-11-21", "2023-06-22"),
                   ("0065g00000Rep3X", "Negotiation", 9000.0, "2023-09-01", None)]
    assert con.execute("SELECT rep_name FROM star.dim_rep ORDER BY 1").fetchall() == [("Bob Miller",), ("Chen Wei",)]
    assert_reconciled(con)


def test_a_reports_footer_is_set_aside_as_such(tmp_path):
    """The totals and notice a report appends are quarantined as its footer, not as unreadable
    rows (they read as 5 lost deals); a broken row before them stays an unreadable row."""
    footer = ('\r\n"Grand Totals (3 records)"\r\n\r\n\r\n"Confidential Information - Do Not Distribute"\r\n'
              '"Copyright (c) 2000-2025 salesforce.com, inc. All rights reserved."\r\n'
              '"Generated By:  Ana Lopez  1/15/2025 2:22 PM"\r\n"Acme Corp"\r\n')
    rows = REPORT.split("\r\n")[:4]
    broken = '"Chen Wei","Summit Systems"'  # line 3: a row cut short
    write(tmp_path / "rep", "report1713178320000.csv", "\r\n".join([rows[0], rows[1], broken, rows[2], rows[3]]) + "\r\n" + footer,
          bom=True)
    con = duckdb.connect()
    report = build_star(con, tmp_path / "rep")
    f = report.files["report1713178320000.csv"]
    assert f["report_footer"] == 5 and f["rejected_unreadable"] == 1 and f["raw_rows"] == 9
    reasons = dict(con.execute("SELECT line_number, reason FROM star.quarantine").fetchall())
    assert sorted(reasons) == [3, 7, 10, 11, 12, 13]
    # an audit: the per-rule counts left the unreadable row (and the footer) out of `quarantined`
    assert f["quarantined"] == {"unreadable_row": 1, "report_footer": 5}
    assert reasons[3].startswith("unreadable row")
    assert {reasons[n] for n in (7, 10, 11, 12, 13)} == {"report footer: the totals and notice a Salesforce report "
                                                        "appends, not a record"}
    assert con.execute("SELECT count(*) FROM star.fact_opportunity").fetchall() == [(3,)]
    assert_reconciled(con)


@pytest.mark.parametrize("amounts, currencies, currency", [
    (("USD 11,500.00", "USD 35,900.00", "USD 9,000.00"), {"USD": 3}, "USD"),
    (("£11,500.00", "£35,900.00", "£9,000.00"), {"GBP": 3}, "GBP"),  # read as the default currency before
    (("EUR 11,500.00", "USD 35,900.00", "USD 9,000.00"), {"USD": 2, "EUR": 1}, None),  # summed without a word before
    (("$11,500.00", "$35,900.00", "9000"), {"$": 2}, None),  # a dollar of no named country
    (("$11,500.00", "USD 35,900.00", "9000"), {"USD": 2}, "USD"),  # beside USD, "$" is USD
    (("$11,500.00", "EUR 35,900.00", "9000"), {"$": 1, "EUR": 1}, None),
    (("11500", "35900", "9000"), {}, None)])
def test_currency_marks_in_report_amounts_name_the_currency(tmp_path, amounts, currencies, currency):
    """A report writes the currency into its amount cells: the number is read as before, and the
    marks name the source's currency (meta.source.currency), or several, which the run then warns
    are added as given."""
    rows = REPORT.split("\r\n")
    for i, (old, new) in enumerate(zip(("USD 11,500.00", "USD 35,900.00", "USD 9,000.00"), amounts)):
        rows[i + 1] = rows[i + 1].replace(old, new)
    write(tmp_path / "rep", "report1713178320000.csv", "\r\n".join(rows), bom=True)
    con = duckdb.connect()
    report = build_star(con, tmp_path / "rep")
    assert sorted(r[0] for r in con.execute("SELECT amount FROM star.fact_opportunity").fetchall()) == [9000, 11500, 35900]
    assert report.currencies == currencies and report.currency == currency


def test_a_report_without_opportunity_ids_stops_with_what_to_add(tmp_path):
    """Names repeat (here: two deals 'Quartz GmbH - Renewal'), so they cannot key the deals."""
    no_id = "\r\n".join(line.rsplit(",", 1)[0] if line.count(",") > 3 else line for line in REPORT.split("\r\n"))
    write(tmp_path / "rep", "report1713178320000.csv", no_id)
    with pytest.raises(SourceError) as err:
        detect_layout(tmp_path / "rep")
    assert err.value.path.name == "report1713178320000.csv" and err.value.line == 1
    assert "add 'Opportunity ID'" in err.value.expected
    # a mapping naming the id column is the user's choice
    write(tmp_path / "rep", "revintel_mapping.yaml", "columns:\n  Opportunity.csv:\n    Id: Opportunity Name\n")
    assert detect_layout(tmp_path / "rep").crm == "salesforce"


def test_list_prices_come_from_the_standard_price_book(sf):
    """PricebookEntry.csv: the standard book's active entry is a product's list price (a partner
    book's, an inactive one's and another currency's are read, not used); a bad price is
    quarantined; every row is accounted for."""
    write(sf, "PricebookEntry.csv",
          "Id,Pricebook2Id,Product2Id,UnitPrice,IsActive,CurrencyIsoCode\r\n"
          f"01u1,01sSTD,{P_CORE},\"1,200.00\",true,USD\r\n"
          f"01u2,01sSTD,{P_PLUS},300,true,USD\r\n"
          f"01u3,01sPARTNER,{P_CORE},900,true,USD\r\n"        # a partner book: fewer products
          f"01u4,01sSTD,{P_PLUS},250,false,USD\r\n"          # inactive
          f"01u5,01sSTD,{P_CORE},1100,true,EUR\r\n"          # another currency
          f"01u6,01sSTD,{P_PLUS},n/a,true,USD\r\n")          # not a number
    con = duckdb.connect()
    report = build_star(con, sf)
    assert report.files["PricebookEntry.csv"]["quarantined"] == {"bad_unit_price": 1}
    prices = dict(con.execute("SELECT product_id, list_price FROM star.dim_product WHERE NOT is_stub").fetchall())
    assert prices == {P_CORE[:15]: 1200.0, P_PLUS[:15]: 300.0}
    assert _q(con, "PricebookEntry.csv") == {7: "UnitPrice 'n/a' is not a number"}
    assert_reconciled(con)


def test_a_multi_currency_org_is_converted_with_its_currency_types(tmp_path):
    """CurrencyType.csv (ConversionRate = units per corporate unit): Opportunity.csv's and
    OpportunityHistory.csv's amounts in the corporate currency, which names the source's currency; a
    code without a rate is quarantined, never added as given (adversarial fixture: USD, EUR and JPY
    summed to 105.15 M for a 5.53 M USD pipeline)."""
    src = tmp_path / "fx"
    write(src, "Opportunity.csv",
          "Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,CurrencyIsoCode\r\n"
          "006A1,Closed Won,1000,2024-03-01,2024-01-02T05:00:00.000Z,true,true,USD\r\n"
          "006A2,Closed Won,900,2024-03-02,2024-01-03T05:00:00.000Z,true,true,EUR\r\n"
          "006A3,Prospecting,150000,2024-06-30,2024-02-01T05:00:00.000Z,false,false,JPY\r\n"
          "006A4,Prospecting,500,2024-06-30,2024-02-01T05:00:00.000Z,false,false,CHF\r\n", bom=True)
    write(src, "OpportunityHistory.csv", "OpportunityId,CreatedDate,StageName,Amount\r\n"
          "006A3,2024-02-01T05:00:00.000Z,Prospecting,120000\r\n006A3,2024-03-01T05:00:00.000Z,Prospecting,150000\r\n")
    write(src, "CurrencyType.csv", "Id,IsoCode,ConversionRate,IsCorporate,IsActive\r\n"
          "01L1,USD,1,true,true\r\n01L2,EUR,0.9,false,true\r\n01L3,JPY,150,false,true\r\n01L4,GBP,n/a,false,true\r\n")
    con = duckdb.connect()
    report = build_star(con, src)
    got = dict(con.execute("SELECT opportunity_id, round(amount, 6) FROM star.fact_opportunity").fetchall())
    assert got == {"006A1": 1000.0, "006A2": 1000.0, "006A3": 1000.0}
    assert report.currency == "USD"
    assert con.execute("SELECT round(amount, 6) FROM star.fact_opportunity_history WHERE NOT derived "
                       "ORDER BY changed_at").fetchall() == [(800.0,), (1000.0,)]
    assert _q(con, "Opportunity.csv") == {5: "CurrencyIsoCode CHF has no rate in CurrencyType.csv"}
    assert _q(con, "CurrencyType.csv") == {5: "ConversionRate 'n/a' is not a positive number"}
    assert_reconciled(con)


def test_bare_amounts_of_an_org_with_a_corporate_currency_are_in_it(tmp_path):
    """An audit: CurrencyType.csv named EUR as the corporate currency and Opportunity.csv had no
    CurrencyIsoCode column; meta.source.currency stayed NULL and every amount showed in dollars."""
    src = tmp_path / "eur"
    write(src, "Opportunity.csv", "Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon\r\n"
          "006A1,Closed Won,1000,2024-03-01,2024-01-02T05:00:00.000Z,true,true\r\n"
          "006A2,Prospecting,,2024-06-30,2024-02-01T05:00:00.000Z,false,false\r\n")
    write(src, "CurrencyType.csv", "Id,IsoCode,ConversionRate,IsCorporate,IsActive\r\n"
          "01L1,EUR,1,true,true\r\n01L2,USD,1.1,false,true\r\n")
    report = build_star(duckdb.connect(), src)
    assert report.currency == "EUR" and report.currencies == {"EUR": 1}
    # a CurrencyIsoCode column empty on every row is bare amounts too (a re-check)
    write(src, "Opportunity.csv", "Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,CurrencyIsoCode\r\n"
          "006A1,Closed Won,1000,2024-03-01,2024-01-02T05:00:00.000Z,true,true,\r\n")
    assert build_star(duckdb.connect(), src).currency == "EUR"
    # no corporate row: nothing is claimed
    write(src, "CurrencyType.csv", "Id,IsoCode,ConversionRate,IsCorporate,IsActive\r\n01L1,EUR,1,false,true\r\n")
    assert build_star(duckdb.connect(), src).currency is None


# --- exports as Salesforce and Excel really write them (an audit's fixtures, 2026-12-07) ---------

def _report_rows(replace: dict[str, str] | None = None, header: dict[str, str] | None = None) -> str:
    text = REPORT
    for old, new in (header or {}).items():
        text = text.replace(old, new, 1)
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return text


def test_a_custom_lost_stage_at_probability_zero_is_lost(tmp_path):
    """A report has no IsClosed, IsWon nor forecast category: a custom stage at Probability 0 is
    Closed Lost's (as 100 is Closed Won's). It was placed as Prospecting: lost deals scored as open."""
    write(tmp_path / "rep", "report1713178320000.csv", _report_rows({'"Closed Lost"': '"Lost to Competitor"'}))
    con = duckdb.connect()
    report = build_star(con, tmp_path / "rep")
    assert con.execute("SELECT stage, is_closed, close_date::VARCHAR FROM star.fact_opportunity "
                       "WHERE opportunity_id = '0065g00000Rep1X'").fetchall() == [("Lost", True, "2023-08-05")]
    assert report.files["report1713178320000.csv"]["custom_stages_placed"] == {"lost to competitor": "Lost"}


def test_probability_written_as_a_fraction_places_custom_stages_as_percentages(tmp_path):
    """A report's percent cells saved as a workbook hold fractions (1.0 for 100 %): read as 1 %, an
    audit's custom won stage ('Signed', 26 deals) became open pipeline at Prospecting."""
    text = _report_rows({'"Closed Won"': '"Signed"', '"Closed Lost"': '"Lost to Competitor"',
                         '"Negotiation/Review"': '"Verbal Yes"', '"0%"': '"0"', '"100%"': '"1"', '"90%"': '"0.9"'})
    def stages(folder: str, text: str) -> dict:
        write(tmp_path / folder, "report1713178320000.csv", text)
        con = duckdb.connect()
        build_star(con, tmp_path / folder)
        return dict(con.execute("SELECT opportunity_id, stage FROM star.fact_opportunity").fetchall())

    assert stages("rep", text) == {"0065g00000Rep1X": "Lost", "0065g00000Rep2X": "Won", "0065g00000Rep3X": "Negotiation"}
    # 0s and 1s alone are 0 % and 1 % (a re-check: open 'Nurture' deals at 1 % were placed as Won)
    text = _report_rows({'"Closed Won"': '"Nurture"', '"Negotiation/Review"': '"Nurture"', '"0%"': '"0"',
                         '"100%"': '"1"', '"90%"': '"1"', '"6/22/2023"': '"6/22/2024"', '"12/15/2023"': '"12/15/2024"'})
    assert stages("rep01", text) == {"0065g00000Rep1X": "Lost", "0065g00000Rep2X": "Prospecting",
                                     "0065g00000Rep3X": "Prospecting"}


@pytest.mark.parametrize("label", ["Opportunity ID (18-char)", "Opportunity ID (Case Safe)"])
def test_a_report_with_the_case_safe_id_column(tmp_path, label):
    write(tmp_path / "rep", "report1713178320000.csv", _report_rows(header={'"Opportunity ID"': f'"{label}"'}))
    con = duckdb.connect()
    build_star(con, tmp_path / "rep")
    assert con.execute("SELECT count(*) FROM star.fact_opportunity").fetchall() == [(3,)]


def test_a_reports_currency_column_names_its_currencies(tmp_path):
    """A multi-currency org's report writes bare amounts and the code beside them ('Opportunity
    Currency'): the codes are counted (the run warns that totals add them as given); they were
    ignored and USD, EUR and JPY summed without a word."""
    text = _report_rows({'"USD 11,500.00"': '"11500"', '"USD 35,900.00"': '"35900"', '"USD 9,000.00"': '"9000"'},
                        header={'"Opportunity ID"': '"Opportunity ID","Opportunity Currency"'})
    text = (text.replace('"0065g00000Rep1XAAA"', '"0065g00000Rep1XAAA","EUR"')
            .replace('"0065g00000Rep2XAAA"', '"0065g00000Rep2XAAA","JPY"')
            .replace('"0065g00000Rep3XAAA"', '"0065g00000Rep3XAAA","USD"'))
    write(tmp_path / "rep", "report1713178320000.csv", text)
    report = import_source(duckdb.connect(), tmp_path / "rep")
    assert report.currencies == {"EUR": 1, "JPY": 1, "USD": 1} and report.currency is None


def test_deleted_records_of_an_export_all_are_quarantined(tmp_path):
    """Data Loader's "Export All" includes the recycle bin (IsDeleted true): such rows are not live
    deals; they were imported and scored."""
    write(tmp_path / "sf", "Opportunity.csv",
          "Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,IsDeleted\r\n"
          "006A,Prospecting,100,2024-06-01,2024-01-02T05:00:00.000Z,false,false,false\r\n"
          "006B,Prospecting,200,2024-06-01,2024-01-03T05:00:00.000Z,false,false,true\r\n"
          "006C,Closed Won,300,2024-02-01,2024-01-04T05:00:00.000Z,true,true,false\r\n")
    write(tmp_path / "sf", "OpportunityHistory.csv", "OpportunityId,CreatedDate,StageName,IsDeleted\r\n"
          "006A,2024-01-02T05:00:00.000Z,Prospecting,false\r\n006B,2024-01-03T05:00:00.000Z,Prospecting,false\r\n"
          "006C,2024-01-04T05:00:00.000Z,Prospecting,true\r\n")
    con = duckdb.connect()
    report = build_star(con, tmp_path / "sf")
    assert report.files["Opportunity.csv"]["quarantined"] == {"deleted_record": 1}
    assert report.files["OpportunityHistory.csv"]["quarantined"] == {"deleted_record": 1, "deleted_opportunity": 1}
    assert "IsDeleted is true" in _q(con, "Opportunity.csv")[3]
    assert sorted(r[0] for r in con.execute("SELECT opportunity_id FROM star.fact_opportunity").fetchall()) == [
        "006A", "006C"]
    assert_reconciled(con)


def test_an_open_deal_of_a_migrated_org_keeps_its_earliest_evidence(tmp_path):
    """Every CreatedDate and history row is the bulk-load date: an open deal's creation is the earliest
    evidence (CloseDate minus the closed deals' cycle), not the load date its first history row
    carries (every open deal was 0 days old), and it is prospecting from then until that row."""
    opp = ["Id,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon"]
    hist = ["OpportunityId,CreatedDate,StageName,CloseDate,Amount"]
    for i in range(6):
        opp.append(f"006C{i},Closed Won,100,2025-0{1 + i}-15,2025-09-01T05:00:00.000Z,true,true")
    opp.append("006O1,Negotiation/Review,900,2025-10-30,2025-09-01T05:00:00.000Z,false,false")
    hist.append("006O1,2025-09-01T05:00:00.000Z,Negotiation/Review,2025-10-30,900")
    write(tmp_path / "sf", "Opportunity.csv", "\r\n".join(opp) + "\r\n")
    write(tmp_path / "sf", "OpportunityHistory.csv", "\r\n".join(hist) + "\r\n")
    con = duckdb.connect()
    build_star(con, tmp_path / "sf")
    created = con.execute("SELECT created_date::VARCHAR FROM star.fact_opportunity WHERE opportunity_id = '006O1'"
                          ).fetchall()[0][0]
    assert created == "2025-08-01"  # 2025-10-30 minus 90 days (no real CreatedDate: the default cycle)
    assert con.execute("SELECT changed_at::VARCHAR, stage, derived FROM star.fact_opportunity_history "
                       "WHERE opportunity_id = '006O1' ORDER BY changed_at").fetchall() == [
        ("2025-08-01", "Prospecting", True), ("2025-09-01", "Negotiation", False)]
    assert_reconciled(con)


def test_a_european_excel_copy_of_a_report_is_read_without_a_mapping(tmp_path):
    """Excel in Germany saves the report with semicolons, day-first dates (dotted or slashed) and
    decimal commas; it went unrecognised ("expected a CRM export"). Its footer has no totals line."""
    text = ('"Opportunity Owner";"Account Name";"Opportunity Name";"Stage";"Amount";"Close Date";"Created Date";'
            '"Opportunity ID"\r\n'
            '"Bob Miller";"Quartz GmbH";"Quartz - Renewal";"Closed Lost";"11.500,00";"05.08.2023";"13.06.2023";'
            '"0065g00000Rep1XAAA"\r\n'
            '"Chen Wei";"Summit Systems";"Summit - New";"Closed Won";"35.900,50";"22.06.2023";"21.11.2022";'
            '"0065g00000Rep2XAAA"\r\n'
            '"Chen Wei";"Summit Systems";"Summit - Upsell";"Negotiation/Review";"9.000";"15.12.2023";"01.09.2023";'
            '"0065g00000Rep3XAAA"\r\n'
            '""\r\n"Confidential Information - Do Not Distribute"\r\n'
            '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\r\n')
    write(tmp_path / "rep", "report1713178320000.csv", text, bom=True)
    con = duckdb.connect()
    report = build_star(con, tmp_path / "rep")
    assert con.execute("SELECT opportunity_id, stage, amount, created_date::VARCHAR, close_date::VARCHAR "
                       "FROM star.fact_opportunity ORDER BY 1").fetchall() == [
        ("0065g00000Rep1X", "Lost", 11500.0, "2023-06-13", "2023-08-05"),
        ("0065g00000Rep2X", "Won", 35900.5, "2022-11-21", "2023-06-22"),
        ("0065g00000Rep3X", "Negotiation", 9000.0, "2023-09-01", None)]
    f = report.files["report1713178320000.csv"]
    assert f["report_footer"] == 3 and f["rejected_unreadable"] == 0
    assert f["flagged_kept"]["amounts_read_with_decimal_comma"] == 3
    assert_reconciled(con)


def test_whole_amounts_grouped_with_dots_are_thousands(tmp_path):
    """'14.904' in every amount cell of a semicolon file is 14,904 (a German export of whole
    amounts), not 14.904; it was read as 14.904 without a word. A mapping's `decimal:` still wins."""
    rows = "".join(f"006A{i};Closed Won;{v};2024-03-01;2024-01-02;true;true\r\n"
                   for i, v in enumerate(["14.904", "5.060", "1.234.000", "870"]))
    write(tmp_path / "sf", "Opportunity.csv", "Id;StageName;Amount;CloseDate;CreatedDate;IsClosed;IsWon\r\n" + rows)
    con = duckdb.connect()
    build_star(con, tmp_path / "sf")
    assert sorted(r[0] for r in con.execute("SELECT amount FROM star.fact_opportunity").fetchall()) == [
        870.0, 5060.0, 14904.0, 1234000.0]
    write(tmp_path / "sf", "revintel_mapping.yaml", "delimiter: ';'\ndecimal: '.'\n")
    con = duckdb.connect()
    build_star(con, tmp_path / "sf")
    assert 14.904 in [r[0] for r in con.execute("SELECT amount FROM star.fact_opportunity").fetchall()]



@pytest.mark.parametrize("cells, decimal", [
    (["14.904", "5.060", "1.234"], ","), (["1.234,56", "12,50"], ","), (["1,234.56", "14904.00"], "."),
    (["14904", "5060"], "."), (["14,904", "1,234"], "."), (["EUR 14.904", "€ 5.060"], ","),
    # three decimals with four digits before the point cannot be thousands: a point ('53.000' beside it)
    (["1054.000", "53.000", "38.000"], "."), (["2.5500", "1.2500"], "."), (["1054,000", "53,000"], ",")])
def test_the_decimal_separator_is_settled_from_the_cells(cells, decimal):
    from revintel_assets.defs.ingest.parse_sql import settle_decimal

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS a", [cells])
    assert settle_decimal(con, "t", ['"a"']) == decimal


def test_a_zero_percent_stage_closing_later_stays_open(tmp_path):
    """Probability 0 is Closed Lost's only once the CloseDate has passed: an 'On Hold' stage at 0 %
    closing after the export stays in the pipeline (a review found it closed as lost, on a future date)."""
    text = _report_rows({'"Negotiation/Review","Q4-2023","USD 9,000.00","90%","12/15/2023"':
                         '"On Hold","Q4-2023","USD 9,000.00","0%","12/15/2024"'})
    write(tmp_path / "rep", "report1713178320000.csv", text)
    con = duckdb.connect()
    build_star(con, tmp_path / "rep")
    assert con.execute("SELECT stage, is_closed FROM star.fact_opportunity WHERE opportunity_id = '0065g00000Rep3X'"
                       ).fetchall() == [("Prospecting", False)]


def test_a_euro_report_names_its_currency_with_a_decimal_comma(tmp_path):
    """'11.500,00 €' read with the file's settled decimal comma names EUR (the currency report parsed
    with the default point, found no amount and named nothing: the app showed dollars)."""
    text = ('"Opportunity Name";"Stage";"Amount";"Close Date";"Created Date";"Opportunity ID"\r\n'
            '"A";"Closed Won";"11.500,00 €";"05.08.2023";"13.06.2023";"0065g00000Rep1XAAA"\r\n'
            '"B";"Closed Lost";"9.000 €";"22.06.2023";"21.11.2022";"0065g00000Rep2XAAA"\r\n')
    write(tmp_path / "rep", "report1713178320000.csv", text)
    report = import_source(duckdb.connect(), tmp_path / "rep")
    assert report.currency == "EUR" and report.currencies == {"EUR": 2}


def test_a_header_label_holding_semicolons_is_still_a_comma_file(tmp_path):
    from revintel_assets.defs.ingest.raw_csv import read_header

    write(tmp_path, "x.csv", 'Id,Name,StageName,"Notes (a;b;c;d;e)"\n1,2,3,4\n')
    assert read_header(tmp_path / "x.csv") == ["Id", "Name", "StageName", "Notes (a;b;c;d;e)"]
