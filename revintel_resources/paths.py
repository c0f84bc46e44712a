"""Where revintel writes things. Everything lives under one data directory so two
directories never interfere (docs/CONTRACT.md §1)."""

from __future__ import annotations

from pathlib import Path

from revintel_resources.settings import settings


def data_dir() -> Path:
    return settings().resolved_data_dir()


def warehouse_dir() -> Path:
    return data_dir() / "warehouse"


def analyst_db_path() -> Path:
    """The published, read-only-for-everyone analyst file (docs/CONTRACT.md §3)."""
    return warehouse_dir() / "revintel.duckdb"


def work_dir() -> Path:
    return warehouse_dir() / ".work"


def work_db_path() -> Path:
    """The file runs write; never opened by readers."""
    return work_dir() / "revintel.duckdb"


def writer_lock_path() -> Path:
    return work_dir() / "writer.lock"


def dagster_home() -> Path:
    return data_dir() / "dagster_home"


def log_file() -> Path:
    """Where `revintel demo/run` write library messages (MLflow, warnings) and failed runs' stack
    traces, instead of the console."""
    return data_dir() / "logs" / "revintel.log"


def demo_source_dir() -> Path:
    return data_dir() / "demo"


def digests_dir() -> Path:
    """The weekly digests, one folder per as-of date, one Markdown + HTML file per manager."""
    return data_dir() / "digests"
