"""The warehouse engine switch (REVINTEL_WAREHOUSE): the local default end to end, the others'
selection logic without a network."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from revintel_resources import backends
from revintel_resources.io_manager import DuckDBPolarsIOManager
from revintel_resources.resources import WarehouseResource
from revintel_resources.warehouse import Warehouse


def test_default_is_local_duckdb():
    b = backends.resolve({})
    assert b.name == "duckdb" and b.local_file and b.database is None
    assert backends.resolve({"REVINTEL_WAREHOUSE": " DuckDB "}).name == "duckdb"
    assert backends.resolve({"REVINTEL_WAREHOUSE": ""}).name == "duckdb"


def test_duckdb_memory_limit():
    assert backends.resolve({}).memory_limit == "6GB"
    assert backends.resolve({"REVINTEL_DUCKDB_MEMORY_LIMIT": "512MiB"}).memory_limit == "512MiB"
    assert backends.resolve({"REVINTEL_DUCKDB_MEMORY_LIMIT": "none"}).memory_limit is None
    with pytest.raises(backends.UnknownWarehouseBackend, match="expected a size"):
        backends.resolve({"REVINTEL_DUCKDB_MEMORY_LIMIT": "lots"})
    # DuckDB's own share-of-memory form (it was refused), but not one DuckDB refuses
    assert backends.resolve({"REVINTEL_DUCKDB_MEMORY_LIMIT": " 80% "}).memory_limit == "80%"
    for bad in ("120%", "0%", "%", "0.5%", "0GB", "0 MiB"):
        with pytest.raises(backends.UnknownWarehouseBackend, match="a share of this machine's memory"):
            backends.resolve({"REVINTEL_DUCKDB_MEMORY_LIMIT": bad})


def test_motherduck_selection_without_network():
    b = backends.resolve({"REVINTEL_WAREHOUSE": "motherduck", "MOTHERDUCK_DATABASE": "sales_prod",
                          "MOTHERDUCK_TOKEN": "tok"})
    assert (b.name, b.database, dict(b.config), b.local_file) == ("motherduck", "md:sales_prod",
                                                                  {"motherduck_token": "tok"}, False)
    default = backends.resolve({"REVINTEL_WAREHOUSE": "motherduck"})
    assert default.database == "md:revintel" and dict(default.config) == {}  # duckdb reads the env token itself
    with pytest.raises(backends.UnknownWarehouseBackend, match="not a database name"):
        backends.resolve({"REVINTEL_WAREHOUSE": "motherduck", "MOTHERDUCK_DATABASE": "a/b"})


@pytest.mark.parametrize("value, hint", [("snowflake", "does not run DuckDB SQL"), ("sqlite", "use one of")])
def test_unknown_backend_is_a_clear_error(value, hint, monkeypatch, tmp_path):
    with pytest.raises(backends.UnknownWarehouseBackend, match=hint) as e:
        backends.resolve({"REVINTEL_WAREHOUSE": value})
    assert "REVINTEL_WAREHOUSE" in str(e.value) and "duckdb" in str(e.value)
    monkeypatch.setenv("REVINTEL_WAREHOUSE", value)  # the resource fails loudly, not silently local
    with pytest.raises(backends.UnknownWarehouseBackend):
        WarehouseResource(data_dir=str(tmp_path)).get()


def test_motherduck_warehouse_connects_to_the_service_and_skips_publish(monkeypatch, tmp_path):
    monkeypatch.setenv("REVINTEL_WAREHOUSE", "motherduck")
    monkeypatch.setenv("MOTHERDUCK_DATABASE", "rv")
    monkeypatch.setenv("MOTHERDUCK_TOKEN", "secret")
    wh = Warehouse.from_env(tmp_path)
    assert wh.backend.database == "md:rv"
    calls, real_connect = [], duckdb.connect

    def fake_connect(database, config=None, **kw):  # no network: record the call, use memory
        calls.append((database, config))
        return real_connect(":memory:")

    monkeypatch.setattr("revintel_resources.warehouse.duckdb.connect", fake_connect)
    assert wh.write("star.t", pl.DataFrame({"a": [1, 2]})) == 2
    assert calls == [("md:rv", {"motherduck_token": "secret"})]
    assert wh.publish() == wh.analyst_path and not wh.analyst_path.exists()  # the service serves readers
    assert not wh.work_path.exists()


def test_local_default_end_to_end(monkeypatch, tmp_path: Path):
    """REVINTEL_WAREHOUSE unset: a Dagster asset through the resource and the I/O manager writes the
    local work file, publish() gives readers the analyst copy."""
    monkeypatch.delenv("REVINTEL_WAREHOUSE", raising=False)

    @dg.asset(key=["star", "numbers"])
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": [1, 2, 3]})

    @dg.asset(key=["star", "doubled"], deps=[numbers])
    def doubled(warehouse: WarehouseResource) -> None:
        warehouse.get().write("star.doubled", sql="SELECT n * 2 AS n FROM star.numbers")

    result = dg.materialize([numbers, doubled], resources={
        "warehouse": WarehouseResource(data_dir=str(tmp_path)),
        "io_manager": DuckDBPolarsIOManager(data_dir=str(tmp_path))})
    assert result.success
    wh = Warehouse.from_env(tmp_path)
    assert wh.backend.name == "duckdb" and wh.work_path.exists()
    with wh.connect() as con:  # the default cap is applied to every connection
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("5.5 GiB", "6.0 GB", "5.5GiB")
    analyst = wh.publish()
    con = duckdb.connect(str(analyst), read_only=True)
    try:
        assert con.execute("SELECT sum(n) FROM star.doubled").fetchone()[0] == 12
    finally:
        con.close()
