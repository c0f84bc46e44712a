"""Detect a source folder's layout and import it into canonical staging tables.

A source may hold a CRM, a transaction log, or both (CONTRACT §2). Every importer writes the
same canonical staging tables, created empty first, so the star schema is built by one set of
SQL whatever the source looked like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from revintel_assets.ingest.errors import SourceError
from revintel_assets.ingest.maventech import import_maventech
from revintel_assets.ingest.quarantine import QUARANTINE_STAGING, ensure_quarantine_staging
from revintel_assets.ingest.sales_log import find_sales_log, import_sales_log
from revintel_assets.ingest.sku_map import load_sku_map
from revintel_assets.ingest.tidy import find_tidy, import_tidy

CRM_FORMATS = ("maventech", "salesforce")
TX_FORMATS = ("sales_log", "tidy")

CANONICAL = {
    "staging.accounts": "account_id VARCHAR, account_name VARCHAR, sector VARCHAR, employees BIGINT, "
                        "annual_revenue DOUBLE, country VARCHAR, parent_name VARCHAR, "
                        "year_established INTEGER, source_file VARCHAR, _line BIGINT",
    "staging.reps": "rep_name VARCHAR, manager VARCHAR, region VARCHAR, source_file VARCHAR, _line BIGINT",
    "staging.products": "product_id VARCHAR, product_name VARCHAR, series VARCHAR, division VARCHAR, "
                        "list_price DOUBLE, source_file VARCHAR, _line BIGINT",
    "staging.opportunities": "opportunity_id VARCHAR, rep_name VARCHAR, product_name VARCHAR, "
                             "account_name VARCHAR, stage VARCHAR, engage_date DATE, close_date DATE, "
                             "close_value DOUBLE, source_file VARCHAR, _line BIGINT",
    "staging.history": "opportunity_id VARCHAR, changed_at DATE, stage VARCHAR, "
                       "expected_close_date DATE, amount DOUBLE, source_file VARCHAR, _line BIGINT",
    "staging.transactions": "customer_id VARCHAR, customer_name VARCHAR, order_date DATE, "
                            "product_id VARCHAR, division VARCHAR, quantity DOUBLE, amount DOUBLE, "
                            "rep_name VARCHAR, region VARCHAR, source VARCHAR, source_file VARCHAR, "
                            "_line BIGINT",
    "staging.sku_map": "sku VARCHAR, division VARCHAR, _line BIGINT, source_file VARCHAR",
}


@dataclass
class SourceLayout:
    folder: Path
    crm: str | None = None
    transactions: str | None = None
    transactions_file: Path | None = None
    mapping: dict | None = None

    @property
    def name(self) -> str:
        return "+".join(p for p in (self.crm, self.transactions) if p) or "none"


@dataclass
class ImportReport:
    layout: SourceLayout
    files: dict[str, dict] = field(default_factory=dict)  # file -> raw_rows, quarantined per rule
    export_date: str | None = None


def detect_layout(folder: Path, forced: str | None = None) -> SourceLayout:
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(folder, 0, "a folder of CSV exports", "it does not exist or is not a folder")
    layout = SourceLayout(folder)
    if (folder / "sales_pipeline.csv").exists():
        layout.crm = "maventech"
    elif (folder / "Opportunity.csv").exists():
        layout.crm = "salesforce"
    log = find_sales_log(folder)
    if log is not None:
        layout.transactions, layout.transactions_file = "sales_log", log
    elif (tidy := find_tidy(folder)) is not None:
        layout.transactions = "tidy"
        layout.transactions_file, layout.mapping = tidy
    if forced:
        parts = set(forced.split("+"))
        unknown = parts - set(CRM_FORMATS) - set(TX_FORMATS)
        if unknown:
            raise SourceError(folder, 0, f"--format among {', '.join(CRM_FORMATS + TX_FORMATS)}",
                              f"got {', '.join(sorted(unknown))}")
        layout.crm = next((p for p in parts if p in CRM_FORMATS), None)
        layout.transactions = next((p for p in parts if p in TX_FORMATS), None)
    if layout.crm is None and layout.transactions is None:
        raise SourceError(folder, 0, "a CRM export (sales_pipeline.csv or Opportunity.csv), a "
                          "sales log (CustomerId, Customer, Rec Date, ...) or tidy transactions "
                          "(customer_id, order_date, sku, quantity, amount)",
                          f"found {', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}")
    return layout


def import_source(con: duckdb.DuckDBPyConnection, folder: Path, forced: str | None = None) -> ImportReport:
    layout = detect_layout(folder, forced)
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute(f"DROP TABLE IF EXISTS {QUARANTINE_STAGING}")
    ensure_quarantine_staging(con)
    for table, columns in CANONICAL.items():
        con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    report = ImportReport(layout)
    if layout.crm == "maventech":
        report.files.update(import_maventech(con, layout.folder))
    elif layout.crm == "salesforce":
        raise SourceError(layout.folder / "Opportunity.csv", 0, "a supported CRM layout",
                          "the Salesforce importer is not available yet; export in the MavenTech layout")
    report.files.update(load_sku_map(con, layout.folder))
    if layout.transactions and layout.transactions_file is None:
        raise SourceError(layout.folder, 0, f"a {layout.transactions} transactions file",
                          f"--format names {layout.transactions} but no such file was found")
    if layout.transactions == "sales_log":
        report.files.update(import_sales_log(con, layout.transactions_file))
    elif layout.transactions == "tidy":
        report.files.update(import_tidy(con, layout.transactions_file, layout.mapping))
    report.export_date = _export_date(con)
    return report


def _export_date(con) -> str | None:
    """The latest date in the data: what `demo` and `run` score as of (CONTRACT §1)."""
    row = con.execute("""SELECT max(d) FROM (
        SELECT greatest(engage_date, close_date) AS d FROM staging.opportunities
        UNION ALL SELECT changed_at FROM staging.history
        UNION ALL SELECT order_date FROM staging.transactions)""").fetchall()[0]
    return row[0].isoformat() if row and row[0] else None
