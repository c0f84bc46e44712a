"""Shared fixtures: real data locations and a warehouse built by the real import + star SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from revintel_assets.ingest.source import import_source
from revintel_assets.star import build

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAVENTECH = SHARED / "maventech_crm"
ONLINE_RETAIL = SHARED / "online_retail"

STAR_ORDER = ["dim_account", "dim_rep", "dim_product", "fact_opportunity",
              "fact_opportunity_history", "dim_date", "fact_transactions"]


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
    for name in STAR_ORDER:
        con.execute(f"CREATE OR REPLACE TABLE star.{name} AS {getattr(build, name)()}")
    return report
