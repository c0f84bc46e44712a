"""Shared fixtures: real data locations and a warehouse built by the real import + star SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from revintel_assets.defs.ingest.source import import_source
from revintel_assets.defs.star import build

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAVENTECH = SHARED / "maventech_crm"
ONLINE_RETAIL = SHARED / "online_retail"

STAR_ORDER = ["dim_account", "dim_rep", "dim_product", "fact_opportunity", "unmapped_skus",
              "fact_opportunity_history", "dim_date", "fact_transactions", "quotas"]


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    return path


def build_star(con: duckdb.DuckDBPyConnection, folder: Path, fmt: str | None = None):
    """Import a folder and build every star table in `con`, as the assets do (minus Dagster)."""
    report = import_source(con, folder, fmt)
    con.execute("CREATE SCHEMA IF NOT EXISTS star; CREATE SCHEMA IF NOT EXISTS meta")
    con.execute("CREATE OR REPLACE TABLE star.quarantine AS SELECT * FROM staging.quarantine_new")
    con.execute("CREATE OR REPLACE TABLE meta.source_files (source_file VARCHAR, raw_rows BIGINT)")
    for name, f in report.files.items():
        con.execute("INSERT INTO meta.source_files VALUES (?, ?)", [name, f["raw_rows"]])
    con.execute("CREATE OR REPLACE TABLE meta.source AS SELECT ?::DATE AS export_date", [report.export_date])
    for name in STAR_ORDER:
        con.execute(f"CREATE OR REPLACE TABLE star.{name} AS {getattr(build, name)()}")
    return report


def assert_reconciled(con: duckdb.DuckDBPyConnection) -> None:
    """Every source file's raw rows = its rows in the star schema + its quarantined rows."""
    for file, raw, star, quarantined, unaccounted in con.execute(build.reconciliation()).fetchall():
        assert unaccounted == 0, (file, raw, star, quarantined)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """One `revintel demo --no-serve --scale 0.1` for the whole session, run as a user runs it
    (a subprocess, its own REVINTEL_DATA_DIR). Tests that change it copy it first, except the
    stress tests, which only rewrite partitions with identical contents and run last."""
    from tests.cli_run import demo_env, run_demo

    data = tmp_path_factory.mktemp("demo_session") / "data"
    proc = run_demo(data, timeout=1200, log=data / "demo.log")
    return data, proc.stdout, {**demo_env(data), "DAGSTER_HOME": str(data / "dagster_home")}


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A real Dask cluster on 127.0.0.1: `dask scheduler` and two `dask worker --nthreads 1`
    processes, as a team would start them (the workers import this checkout: PYTHONPATH). Yields
    the scheduler's address; `tasks_run(address)` says which revintel tasks the workers executed."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    repo = str(Path(__file__).resolve().parents[1])
    # a long low-level log, so every task of a demo run is still in it when the test asks
    env = {**os.environ, "PYTHONPATH": repo, "DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH": "1000000"}
    dask = [str(Path(sys.executable).with_name("dask"))]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              env=env, stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT)]
    for i in range(2):
        procs.append(subprocess.Popen([*dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                       "--name", f"w{i}"], env=env, cwd=repo,
                                      stdout=open(logs / f"worker{i}.log", "w"), stderr=subprocess.STDOUT))
    from distributed import Client

    try:
        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def tasks_run(address: str) -> dict[str, dict[str, int]]:
    """Per worker: how many revintel tasks of each function it executed (its transition log)."""
    from distributed import Client

    def ran(dask_worker):
        done = {e[0] for e in dask_worker.state.log
                if isinstance(e[0], str) and e[0].startswith("revintel-") and e[1:3] == ("executing", "memory")}
        counts: dict[str, int] = {}
        for key in done:
            name = key.rsplit("-", 1)[0].removeprefix("revintel-")
            counts[name] = counts.get(name, 0) + 1
        return counts

    with Client(address, timeout="60s") as c:
        return c.run(ran)


class ReadOnlyWarehouse:
    """A finished demo's analyst file (read-only) behind the one Warehouse method the model
    code's row readers use (`query`), for tests that fit models on the session demo's rows."""

    def __init__(self, path):
        import duckdb

        self.con = duckdb.connect(str(path), read_only=True)

    def query(self, sql, params=None):
        return self.con.sql(sql, params=params).pl()
