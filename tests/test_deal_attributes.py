"""The deal's type and lead source (Salesforce Type / LeadSource, HubSpot Deal Type, optional
deal_type / lead_source in the MavenTech layout) reach the star schema and the snapshot, and the
win model reads them where the export has them; where it has none, the model is the one it was
without them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from conftest import build_star
from revintel_assets.defs.deals.snapshot import ATTRIBUTE_MIN_SHARE, DEAL_ATTRIBUTES, FEATURES_CATEGORICAL, snapshot_sql
from revintel_assets.defs.deals.win_model import Windows, split_by_time, train
from test_win_model_features import snaps  # noqa: F401  (the fixture: synthetic snapshots with every feature column)

FIXTURES = Path(__file__).parent / "fixtures"


def _imported(folder: Path, files: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """The star schema of a source folder holding `files` (name -> text)."""
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    con = duckdb.connect()
    build_star(con, folder)
    return con


def _attributes(con) -> dict[str, tuple]:
    return {o: (t, s) for o, t, s in con.execute(
        "SELECT opportunity_id, deal_type, lead_source FROM star.fact_opportunity").fetchall()}


def test_salesforce_type_and_lead_source(tmp_path):
    con = _imported(tmp_path / "sf", {"Opportunity.csv": (
        "Id,AccountId,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,Type,LeadSource\r\n"
        "0065g00000Opp1XAAA,0015g00000AcmeXAAA,Closed Won,100,2024-03-28,2024-01-15T10:22:33.000Z,true,true,"
        "Existing Customer - Upgrade,Partner Referral\r\n"
        "0065g00000Opp2XAAA,0015g00000AcmeXAAA,Prospecting,50,2024-06-28,2024-02-15T10:22:33.000Z,false,false,"
        "New Customer,\r\n"
        "0065g00000Opp3XAAA,0015g00000AcmeXAAA,Closed Lost,70,2024-04-28,2024-02-01T10:22:33.000Z,true,false,,Web\r\n")})
    assert _attributes(con) == {"0065g00000Opp1X": ("Existing Customer - Upgrade", "Partner Referral"),
                                "0065g00000Opp2X": ("New Customer", None), "0065g00000Opp3X": (None, "Web")}
    snap = con.sql(snapshot_sql("SELECT DATE '2024-03-01' AS as_of_date")).pl()
    assert dict(zip(snap["opportunity_id"], snap["deal_type"])) == {
        "0065g00000Opp1X": "Existing Customer - Upgrade", "0065g00000Opp2X": "New Customer", "0065g00000Opp3X": None}


def test_salesforce_report_labels_type_and_lead_source(tmp_path):
    con = _imported(tmp_path / "report", {"report1713178320000.csv": (
        '"Opportunity ID","Opportunity Name","Stage","Close Date","Created Date","Amount","Type","Lead Source"\n'
        '"0065g00000Opp1XAAA","Acme","Closed Won","3/28/2024","1/15/2024","100.00","Renewal","Web"\n'
        '"0065g00000Opp2XAAA","Beta","Prospecting","6/28/2024","2/15/2024","50.00","New Customer","Trade Show"\n')})
    assert _attributes(con) == {"0065g00000Opp1X": ("Renewal", "Web"), "0065g00000Opp2X": ("New Customer", "Trade Show")}


def test_hubspot_deal_type_as_its_labels():
    """HubSpot's export writes the default Deal Type options by their internal names."""
    con = duckdb.connect()
    build_star(con, FIXTURES / "hubspot")
    types = dict(con.execute("SELECT deal_type, count(*) FROM star.fact_opportunity GROUP BY 1").fetchall())
    assert set(types) == {"New Business", "Existing Business"} and sum(types.values()) == 39  # 40, 1 quarantined


def test_maventech_layout_optional_columns(tmp_path):
    con = _imported(tmp_path / "mt", {"sales_pipeline.csv": (
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value,deal_type\n"
        "O1,Ann,GTX,Acme,Won,2024-01-02,2024-02-02,100,Renewal\n"
        "O2,Ann,GTX,Acme,Engaging,2024-01-05,,,New Business\n")})
    assert _attributes(con) == {"O1": ("Renewal", None), "O2": ("New Business", None)}


def _typed(snaps: pl.DataFrame) -> pl.DataFrame:
    """A type that moves the odds (renewals are won more often) and a lead source that does not."""
    rng = np.random.default_rng(11)
    ids = snaps["opportunity_id"].unique().sort()
    won = snaps.group_by("opportunity_id").agg(pl.col("is_won").max())
    deals = pl.DataFrame({"opportunity_id": ids, "u": rng.random(len(ids)), "v": rng.random(len(ids))}).join(
        won, on="opportunity_id")
    deals = deals.with_columns(
        pl.when(pl.col("u") < pl.when(pl.col("is_won").fill_null(False)).then(0.7).otherwise(0.2))
        .then(pl.lit("Renewal")).otherwise(pl.lit("New Business")).alias("deal_type"),
        pl.when(pl.col("v") < 0.5).then(pl.lit("Web")).otherwise(pl.lit("Partner")).alias("lead_source"))
    return snaps.drop(DEAL_ATTRIBUTES).join(deals.select("opportunity_id", *DEAL_ATTRIBUTES), on="opportunity_id")


def test_the_model_reads_the_deal_type_where_the_export_has_it(snaps):
    cutoff = dt.date(2024, 9, 1)
    typed = split_by_time(_typed(snaps).sort(["as_of_date", "opportunity_id"]), cutoff, Windows())
    model = train(typed, max_rounds=60)
    assert set(DEAL_ATTRIBUTES) <= set(model.encoder.features)
    rows = typed.holdout
    p = model.predict(rows)
    renewal = (rows["deal_type"] == "Renewal").to_numpy()
    assert p[renewal].mean() > p[~renewal].mean() + 0.1
    blind = train(typed, max_rounds=60, categorical=FEATURES_CATEGORICAL)
    y = rows["is_won"].cast(pl.Int8).to_numpy()
    assert roc_auc_score(y, p) > roc_auc_score(y, blind.predict(rows)) + 0.03


def test_without_them_the_model_is_the_one_before(snaps):
    """No value in the export (the demo, MavenTech): left out, the same model bit for bit."""
    split = split_by_time(snaps, dt.date(2024, 9, 1), Windows())
    now = train(split, max_rounds=30)
    assert not set(DEAL_ATTRIBUTES) & set(now.encoder.features)
    before = train(split, max_rounds=30, categorical=FEATURES_CATEGORICAL)
    rows = split.holdout
    assert np.array_equal(now.predict(rows), before.predict(rows))


def test_an_attribute_most_training_rows_lack_is_left_out(snaps):
    """A field the CRM added late (filled on the newest deals only) would be learnt as "missing =
    old" and read on every deal scored today: below ATTRIBUTE_MIN_SHARE of the rows, left out."""
    typed = _typed(snaps).with_columns(
        pl.when(pl.col("created_date") >= dt.date(2023, 12, 1)).then(pl.col("deal_type")).alias("deal_type"))
    split = split_by_time(typed.sort(["as_of_date", "opportunity_id"]), dt.date(2024, 9, 1), Windows())
    share = split.train["deal_type"].drop_nulls().len() / len(split.train)
    assert 0.05 < share < ATTRIBUTE_MIN_SHARE  # some training rows have it, most do not
    features = train(split, max_rounds=30).encoder.features
    assert "deal_type" not in features and "lead_source" in features


def test_hubspot_lead_source_and_a_custom_deal_type(tmp_path):
    """A portal's own Deal Type option (not one of HubSpot's two defaults) is kept as written; the
    lead source comes from 'Original Source Type'."""
    con = _imported(tmp_path / "hs", {"hubspot-crm-exports-all-deals-2025-03-06.csv": (
        "Record ID,Deal Name,Deal Stage,Amount,Close Date,Create Date,Deal Type,Original Source Type\n"
        "9001,A,Closed Won,100,2025-03-02 12:00,2025-01-10 09:00,Renewal,Organic Search\n"
        "9002,B,Appointment Scheduled,50,2025-05-05 12:00,2025-02-12 09:00,newbusiness,\n")})
    assert _attributes(con) == {"9001": ("Renewal", "Organic Search"), "9002": ("New Business", None)}
