"""Stored snapshot partitions learn outcomes known since they were written (an audit: after the source
sensor imported a newer export, the nightly wrote only its own date; an older partition kept a deal
that had been won since as open, the pipeline changes called it "lost", the digest told its manager so,
and the training rows of the monthly retrain never gained a new outcome)."""

from __future__ import annotations

import dagster as dg

from conftest import build_star
from test_import_salesforce import OPPORTUNITY, write


def _warehouse(tmp_path, monkeypatch):
    """(a work warehouse holding the Salesforce fixture's star, a function materializing the deal
    snapshot of one of the as-of dates 2024-02-01 and 2024-02-15 through Dagster)."""
    from revintel_assets.defs.deals.assets import deal_snapshot
    from revintel_assets.defs.deals.partitions import as_of_dates
    from revintel_resources.resources import WarehouseResource
    from revintel_resources.warehouse import Warehouse

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    write(tmp_path / "sf", "Opportunity.csv", OPPORTUNITY)
    wh = Warehouse.from_env()
    with wh.connect() as con:
        build_star(con, tmp_path / "sf")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(as_of_dates.name, ["2024-02-01", "2024-02-15"])

    def snapshot(key: str) -> None:
        assert dg.materialize([deal_snapshot], partition_key=key, instance=instance,
                              resources={"warehouse": WarehouseResource()}).success
    return wh, snapshot


def test_a_deal_closed_since_gets_its_outcome_in_earlier_partitions(tmp_path, monkeypatch):
    wh, snapshot = _warehouse(tmp_path, monkeypatch)
    a, b = "2024-02-01", "2024-02-15"
    snapshot(a)
    cols = "opportunity_id, days_in_stage, amount, is_won, outcome_date"
    before = {r[0]: r for r in wh.query(f"SELECT {cols} FROM features.deal_snapshot WHERE as_of_date = '{a}'").rows()}
    open_at_a = sorted(o for o, r in before.items() if r[3] is None)
    assert open_at_a, before
    deal = open_at_a[0]
    # the newer export, as the sensor's import leaves the star: the deal was won on 2024-02-10
    with wh.connect() as con:
        con.execute("UPDATE star.fact_opportunity SET stage = 'Won', is_closed = true, is_won = true, "
                    "close_date = DATE '2024-02-10' WHERE opportunity_id = ?", [deal])
    snapshot(b)
    after = {r[0]: r for r in wh.query(f"SELECT {cols} FROM features.deal_snapshot WHERE as_of_date = '{a}'").rows()}
    assert after[deal][3:] == (True, __import__("datetime").date(2024, 2, 10))
    assert after[deal][:3] == before[deal][:3]  # the features as they were on the date
    assert {o: r for o, r in after.items() if o != deal} == {o: r for o, r in before.items() if o != deal}


def test_a_close_dated_before_a_rows_own_date_is_not_given_to_it(tmp_path, monkeypatch):
    """A re-check: a close entered late, dated before an earlier partition's as-of date, gave that row an
    outcome before its own date (a training row closing in negative days). It keeps what it had."""
    wh, snapshot = _warehouse(tmp_path, monkeypatch)
    a, b = "2024-02-01", "2024-02-15"
    snapshot(a)
    deal = sorted(o for o, w in wh.query(f"SELECT opportunity_id, is_won FROM features.deal_snapshot "
                                         f"WHERE as_of_date = '{a}'").rows() if w is None)[0]
    with wh.connect() as con:  # won on 2024-01-20, before the row's date, as a late entry says
        con.execute("UPDATE star.fact_opportunity SET stage = 'Won', is_closed = true, is_won = true, "
                    "close_date = DATE '2024-01-20' WHERE opportunity_id = ?", [deal])
    snapshot(b)
    assert wh.query(f"SELECT is_won, outcome_date FROM features.deal_snapshot WHERE as_of_date = '{a}' "
                    "AND opportunity_id = ?", [deal]).rows() == [(None, None)]
    from revintel_assets.defs.deals.snapshot import STALE_OUTCOMES_SQL

    assert wh.query(STALE_OUTCOMES_SQL).is_empty()  # and it is not rewritten on every run
