"""docs/CONTRACT.md §3's tables exist whatever the source holds: an analyst's query of a table the
source cannot produce (the ICP tables of a CRM-only export, the deal tables of a transactions log)
finds no rows, not no table. revintel_assets/contract.py declares them once; these tests hold it to
the contract's text and hold the placeholder views to the one write path and to publishing. The runs
of real sources check it in test_cli_sources.py, the demo's real tables in test_end_to_end.py."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from revintel_assets import contract
from revintel_resources import publish as publishing
from revintel_resources.warehouse import PLACEHOLDER, Warehouse
from tests.test_publish import differences

REPO = Path(__file__).resolve().parents[1]


def _outside_parentheses(text: str) -> str:
    out, depth = [], 0
    for ch in text:
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")" and depth > 0
    return "".join(out)


def contract_columns() -> dict[str, list[str]]:
    """Each §3 table's key columns as docs/CONTRACT.md lists them (the first code span of the row's
    last cell, notes in parentheses left out; a later `label` span for customer_division)."""
    text = (REPO / "docs" / "CONTRACT.md").read_text()
    section = text[text.index("## 3."):text.index("## 4.")]
    tables = {}
    for table, cell in re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| [^|]+ \| (.*) \|$", section, flags=re.M):
        spans = re.findall(r"`([^`]+)`", _outside_parentheses(cell))
        tables[table] = [c.strip() for c in spans[0].split(",")] + (["label"] if "`label`" in cell else [])
    return tables


def test_the_declaration_is_the_contracts_table():
    documented = contract_columns()
    assert len(documented) >= 25  # the parse found the table
    assert {t: list(c) for t, c in contract.TABLES.items()} == documented


def contract_tables_hold(path: Path) -> dict[str, str]:
    """Every declared table answers a query with its declared columns; {table: 'table' | 'placeholder'}.
    A placeholder is an empty view whose comment says why."""
    kinds = {}
    with duckdb.connect(str(path), read_only=True) as con:
        views = {f"{s}.{v}": c for s, v, c in con.execute(
            "SELECT schema_name, view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()}
        for table, cols in contract.TABLES.items():
            have = [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
            assert set(cols) <= set(have), (table, set(cols) - set(have))
            if table in views:
                assert views[table].startswith(PLACEHOLDER), table
                assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
                kinds[table] = "placeholder"
            else:
                kinds[table] = "table"
    return kinds


def test_a_placeholder_is_replaced_by_the_first_write_and_publishing_follows(tmp_path):
    wh = Warehouse.from_env(tmp_path)
    wanted = {"scores.icp_scores": contract.TABLES["scores.icp_scores"], "star.dim_rep": contract.TABLES["star.dim_rep"]}
    wh.write("star.dim_rep", pl.DataFrame({"rep_id": ["r1"], "rep_name": ["Ann"], "manager": ["M"], "region": ["W"]}))
    assert wh.ensure_placeholders(wanted, "no rows yet") == ["scores.icp_scores"]  # dim_rep is a table already
    assert wh.ensure_placeholders(wanted, "no rows yet") == []  # made once
    assert not wh.table_exists("scores.icp_scores")  # writers' checks do not see it
    wh.publish()
    assert contract_tables_hold_subset(wh.analyst_path, wanted) == {"scores.icp_scores": "placeholder",
                                                                    "star.dim_rep": "table"}
    wh.publish()  # both standbys hold the placeholder: the next publish replays the log
    scores = pl.DataFrame({"cutoff_date": [dt.date(2025, 1, 1)], "division": ["A"], "account_id": ["a1"],
                           "propensity": [0.4], "decile": [1], "model_version": ["3"]})
    wh.write("scores.icp_scores", scores, partition_column="division", partition_values=["A"])
    assert wh.table_exists("scores.icp_scores")
    wh.publish()
    assert wh.last_publish.startswith("replayed"), wh.last_publish  # the view gave way in the standby too
    assert differences(wh) == {}
    assert contract_tables_hold_subset(wh.analyst_path, wanted)["scores.icp_scores"] == "table"
    with duckdb.connect(str(wh.analyst_path), read_only=True) as con:
        assert con.execute("SELECT account_id, propensity FROM scores.icp_scores").fetchall() == [("a1", 0.4)]


def contract_tables_hold_subset(path: Path, tables: dict[str, dict[str, str]]) -> dict[str, str]:
    saved = contract.TABLES
    try:
        contract.TABLES = tables
        return contract_tables_hold(path)
    finally:
        contract.TABLES = saved


def test_a_write_keeps_a_view_that_is_not_a_placeholder(tmp_path):
    """Only the placeholder gives way: a table named like a user's own view still fails to be created."""
    wh = Warehouse.from_env(tmp_path)
    wh.execute("CREATE SCHEMA scores; CREATE VIEW scores.mine AS SELECT 1 AS x")
    with pytest.raises(duckdb.Error):
        wh.write("scores.mine", pl.DataFrame({"x": [2]}))
    assert publishing.PLACEHOLDER == PLACEHOLDER


@pytest.mark.slow
def test_the_demo_writes_every_contract_table_with_the_declared_types(demo_data):
    """On the demo company every §3 table is a real table (no placeholder left), and its key columns
    have the types the declaration gives the placeholders."""
    data, _, _ = demo_data
    path = data / "warehouse" / "revintel.duckdb"
    assert set(contract_tables_hold(path).values()) == {"table"}
    with duckdb.connect(str(path), read_only=True) as con:
        types = {(f"{s}.{t}", c): typ for s, t, c, typ in con.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()").fetchall()}
    wrong = {(t, c): (typ, types[(t, c)]) for t, cols in contract.TABLES.items() for c, typ in cols.items()
             if types[(t, c)] != typ}
    assert wrong == {}
    # CONTRACT §3: every analyst table and column carries a COMMENT ON text (24 columns had none)
    with duckdb.connect(str(path), read_only=True) as con:
        said = {(f"{s}.{t}", c): cm for s, t, c, cm in con.execute(
            "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns()").fetchall()}
        tables = dict(con.execute("SELECT schema_name || '.' || table_name, comment FROM duckdb_tables()").fetchall())
    assert [(t, c) for t, cols in contract.TABLES.items() for c in cols if not said[(t, c)]] == []
    assert [t for t in contract.TABLES if not tables[t]] == []


def test_a_placeholders_columns_say_what_they_will_hold(tmp_path):
    wh = Warehouse.from_env(tmp_path)
    wh.ensure_placeholders({"scores.icp_scores": contract.TABLES["scores.icp_scores"]}, "no transactions")
    comments = dict(wh.query("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'icp_scores'").rows())
    assert comments["propensity"] and comments["account_id"]
