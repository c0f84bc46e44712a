"""Detect a source folder's layout and import it into canonical staging tables.

A source may hold a CRM, a transaction log, or both (docs/CONTRACT.md §2). Every importer writes the
same canonical staging tables, created empty first, so the star schema is built by one set of
SQL whatever the source looked like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from revintel_assets.defs.ingest import hubspot, maventech, salesforce
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.expr import quote_ident
from revintel_assets.defs.ingest.mapping import Mapping, check_files, load_mapping
from revintel_assets.defs.ingest.parse_sql import ANY_DOLLAR, UNMAPPED, key_sql
from revintel_assets.defs.ingest.maventech import import_maventech
from revintel_assets.defs.ingest.quarantine import QUARANTINE_STAGING, ensure_quarantine_staging
from revintel_assets.defs.ingest.raw_csv import (header_cells, is_crm_candidate, is_excel, is_unicode_text, label_sheet_rows,
                                                 later_sheet_headers, norm, read_bytes, read_header, transcoded_copies)
from revintel_assets.defs.ingest.salesforce import import_salesforce
from revintel_assets.defs.ingest.sales_log import find_sales_log, import_sales_log
from revintel_assets.defs.ingest.quotas import load_quotas
from revintel_assets.defs.ingest.sku_map import load_sku_map
from revintel_assets.defs.ingest.tidy import find_tidy, import_tidy

CRM_FORMATS = ("maventech", "salesforce", "hubspot")
TX_FORMATS = ("sales_log", "tidy")

CANONICAL = {
    "staging.accounts": "account_id VARCHAR, account_name VARCHAR, sector VARCHAR, employees BIGINT, "
                        "annual_revenue DOUBLE, country VARCHAR, parent_name VARCHAR, parent_id VARCHAR, "
                        "year_established INTEGER, source_file VARCHAR, _line BIGINT",
    "staging.reps": "rep_id VARCHAR, rep_name VARCHAR, manager VARCHAR, region VARCHAR, source_file VARCHAR, "
                    "_line BIGINT",
    # division_given: FALSE when the products file had no division of its own (MavenTech's is optional)
    # and the division is its series: a SKU map naming the product then says its division
    "staging.products": "product_id VARCHAR, product_name VARCHAR, series VARCHAR, division VARCHAR, "
                        "list_price DOUBLE, product_code VARCHAR, division_given BOOLEAN, source_file VARCHAR, "
                        "_line BIGINT",
    # *_name columns are matched by spelling ('GTXPro' = 'GTX Pro'); *_id columns, when a CRM has
    # ids (Salesforce), exactly. created_date / expected_close_date / stage_since / is_closed /
    # is_won are NULL when the layout has no such field (then derived from stage and dates).
    "staging.opportunities": "opportunity_id VARCHAR, rep_name VARCHAR, product_name VARCHAR, "
                             "account_name VARCHAR, stage VARCHAR, engage_date DATE, close_date DATE, "
                             "close_value DOUBLE, account_id VARCHAR, rep_id VARCHAR, product_id VARCHAR, "
                             "created_date DATE, expected_close_date DATE, stage_since DATE, "
                             "is_closed BOOLEAN, is_won BOOLEAN, forecast_category VARCHAR, import_flag VARCHAR, "
                             "deal_type VARCHAR, lead_source VARCHAR, "
                             "source_file VARCHAR, _line BIGINT",
    "staging.history": "opportunity_id VARCHAR, changed_at DATE, stage VARCHAR, "
                       "expected_close_date DATE, amount DOUBLE, source_file VARCHAR, _line BIGINT",
    "staging.transactions": "customer_id VARCHAR, customer_name VARCHAR, order_date DATE, "
                            "product_id VARCHAR, division VARCHAR, quantity DOUBLE, amount DOUBLE, "
                            "rep_name VARCHAR, region VARCHAR, source VARCHAR, source_file VARCHAR, "
                            "_line BIGINT",
    "staging.sku_map": "sku VARCHAR, division VARCHAR, _line BIGINT, source_file VARCHAR",
    "staging.quotas": "owner_type VARCHAR, owner VARCHAR, period_type VARCHAR, period_start DATE, amount DOUBLE, "
                      "source_file VARCHAR, _line BIGINT",  # quotas.py
    # Salesforce PricebookEntry.csv, every row read (salesforce.py: which entry is a product's list price)
    "staging.price_entries": "product_id VARCHAR, pricebook_id VARCHAR, unit_price DOUBLE, is_active BOOLEAN, "
                             "currency VARCHAR, is_standard BOOLEAN, source_file VARCHAR, _line BIGINT",
    # Salesforce CurrencyType.csv, every row read (salesforce.py: amounts converted to the corporate currency)
    "staging.currency_rates": "iso_code VARCHAR, rate DOUBLE, is_corporate BOOLEAN, source_file VARCHAR, _line BIGINT",
    "staging.non_sellable": "division VARCHAR",  # the mapping's non_sellable_divisions
}
# Header signatures: a CRM file under another name is still recognised by its columns.
CRM_SIGNATURES = {
    "maventech": ("sales_pipeline.csv", {"opportunityid", "dealstage", "salesagent"}),
    "salesforce": ("Opportunity.csv", {"id", "stagename", "closedate"}),
    "hubspot": (hubspot.FILE, hubspot.SIGNATURE),
}
CRM_NAMES = {"maventech": "a MavenTech sales_pipeline export", "salesforce": "a Salesforce Opportunity export",
             "hubspot": "a HubSpot deals export"}

ISO_CODE = re.compile(r"[A-Z]{3}")


@dataclass
class SourceLayout:
    folder: Path
    crm: str | None = None
    transactions: str | None = None
    transactions_file: Path | None = None
    mapping: dict | None = None  # the tidy reader's column map
    user_mapping: Mapping = field(default_factory=Mapping)

    @property
    def name(self) -> str:
        return "+".join(p for p in (self.crm, self.transactions) if p) or "none"


@dataclass
class ImportReport:
    layout: SourceLayout
    files: dict[str, dict] = field(default_factory=dict)  # file -> raw_rows, quarantined per rule
    export_date: str | None = None
    unmapped: dict = field(default_factory=dict)  # order lines whose SKU the SKU map lacks
    stray_dates: list[str] = field(default_factory=list)  # latest dates not taken as the export date
    dated_after_today: bool = False  # every date after the machine's today: the data's latest taken
    unread: dict[str, str] = field(default_factory=dict)  # data files of the folder not read -> why

    @property
    def currencies(self) -> dict[str, int]:
        """ISO code -> deals, where an export names its amounts' currency: a code column (Salesforce
        CurrencyIsoCode, HubSpot Deal currency code), else the marks in the amount cells
        (parse_sql.amount_currencies; "$" = a dollar of no named country)."""
        return next((f["currencies"] for f in self.files.values() if f.get("currencies")), {})

    @property
    def currency(self) -> str | None:
        """The currency every amount is in: the one code, or the corporate one they were converted to."""
        converted = next((f["converted_to"] for f in self.files.values() if f.get("converted_to")), None)
        one = next(iter(self.currencies)) if len(self.currencies) == 1 else None
        code = converted or (one if one != ANY_DOLLAR else None)
        # an ISO 4217 code or nothing: the app prints it beside every amount, and a CurrencyIsoCode of
        # "![c](http://host/x.png)" was rendered as an image in its metric cards (an audit)
        return code if code is not None and ISO_CODE.fullmatch(str(code)) else None


def detect_layout(folder: Path, forced: str | None = None, mapping: Mapping | None = None) -> SourceLayout:
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(folder, 0, "a folder of CSV exports", "it does not exist or is not a folder")
    mapping = mapping if mapping is not None else load_mapping(folder)
    _excel_alternatives(folder, mapping)
    layout = SourceLayout(folder, user_mapping=mapping)
    forced = forced or mapping.layout
    if (folder / mapping.file("sales_pipeline.csv")).exists():
        layout.crm = "maventech"
    elif (folder / mapping.file("Opportunity.csv")).exists():
        layout.crm = "salesforce"
        opportunity = folder / mapping.file("Opportunity.csv")
        header = read_header(opportunity)
        if "id" not in {norm(c) for c in header}:  # API names, or a report's labels
            _salesforce_report(opportunity, header, mapping)
    elif (folder / mapping.file(hubspot.FILE)).exists():
        layout.crm = "hubspot"
    else:
        layout.crm = _crm_by_header(folder, mapping)
    log = find_sales_log(folder)
    if log is not None:
        layout.transactions, layout.transactions_file = "sales_log", log
    elif (tidy := find_tidy(folder, mapping)) is not None:
        layout.transactions = "tidy"
        layout.transactions_file, layout.mapping = tidy
    if forced:
        parts = set(str(forced).split("+"))
        unknown = parts - set(CRM_FORMATS) - set(TX_FORMATS)
        if unknown:
            raise SourceError(mapping.path or folder, 0, f"--format (or layout:) among {', '.join(CRM_FORMATS + TX_FORMATS)}",
                              f"got {', '.join(sorted(unknown))}")
        crms, logs = sorted(parts & set(CRM_FORMATS)), sorted(parts & set(TX_FORMATS))
        if len(crms) > 1 or len(logs) > 1:  # a set has no order: which one won changed from process to process
            raise SourceError(mapping.path or folder, 0, "--format (or layout:) naming at most one CRM "
                              f"({', '.join(CRM_FORMATS)}) and one transaction log ({', '.join(TX_FORMATS)}), "
                              "e.g. maventech+sales_log", f"got {forced}")
        layout.crm = crms[0] if crms else None
        layout.transactions = logs[0] if logs else None
        if layout.transactions == "tidy" and layout.mapping is None:
            layout.transactions_file, layout.mapping = find_tidy(folder, mapping, force=True) or (None, None)
        if layout.transactions == "sales_log" and layout.transactions_file is None:
            layout.transactions_file = find_sales_log(folder, force=True)
    titled = _crm_below_title(folder) if layout.crm is None and layout.transactions is None else None
    if titled is not None:  # said instead of "expected a CRM export" and a transaction-log mapping; only
        # when nothing else is found (a CRM-like row in a spec or notes file stopped a transaction log's import)
        path, line, kind = titled
        raise SourceError(path, line, f"{kind}'s header on line 1", f"the header is on line {line}; the "
                          f"{line - 1} line(s) above it (a title?) are not part of the table: delete them and "
                          "import again")
    if layout.crm is None and layout.transactions is None:
        _refuse_data_on_a_later_sheet(folder)
        raise SourceError(folder, 0, "a CRM export (sales_pipeline.csv, Opportunity.csv or a HubSpot deals "
                          "export), a "
                          "sales log (CustomerId, Customer, Rec Date, ...) or tidy transactions "
                          "(customer_id, order_date, sku, quantity, amount)",
                          f"found {', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}" + _tidy_hint(folder))
    return layout


def _refuse_data_on_a_later_sheet(folder: Path) -> None:
    """A workbook whose export is on a later sheet (a 'Summary' sheet first): said, naming the sheet. It
    was "expected a CRM export" with a transaction-log mapping for the summary's columns (an audit)."""
    for path in sorted(p for p in folder.iterdir() if is_excel(p) and p.is_file() and not p.name.startswith("~$")):
        for sheet, header in later_sheet_headers(path):
            keys = {norm(c) for c in header}
            kind = next((CRM_NAMES[crm] for crm, (_, sig) in CRM_SIGNATURES.items() if sig <= keys), None)
            if kind or salesforce.report_columns(header):
                raise SourceError(path, 1, "the export on the workbook's first sheet (revintel reads the first "
                                  "sheet, and later sheets with its header)",
                                  f"its sheet '{sheet}' has {kind or 'a Salesforce opportunity report'}'s header: "
                                  "move that sheet first (or save it as a CSV) and import again")


def _tidy_hint(folder: Path) -> str:
    """For a folder of one unrecognised table (a log whose headers no synonym knows: `Kunde,
    Belegdatum, ...`): its columns and the mapping that would read it as tidy transactions."""
    from revintel_assets.defs.ingest.mapping import example
    from revintel_assets.defs.ingest.tidy import CANONICAL, _candidates

    files = _candidates(folder)
    if not files:
        return ""
    try:
        header = read_header(files[0])
    except (SourceError, OSError, UnicodeError):
        return ""
    return (f".\nIf {files[0].name} is a transaction log (one row per order line), its columns are "
            f"{', '.join(header)}. " + example(files[0].name, list(CANONICAL), header))


def _excel_alternatives(folder: Path, mapping: Mapping) -> None:
    """Any file of a layout may come as an Excel workbook (CONTRACT §2): `Opportunity.xlsx` stands
    for `Opportunity.csv` when there is no CSV, and a name may come in any case (`account.csv`,
    `OPPORTUNITY.CSV`: a lower-case Account file was skipped without a word, its accounts left as
    stubs); what stands for a file is recorded in the mapping's files:."""
    names = [*maventech.FILES.values(), *salesforce.FILES.values(), hubspot.FILE]
    by_lower: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file() and not path.name.startswith("~$"):  # ~$: Excel's lock file of an open workbook
            by_lower.setdefault(path.name.lower(), []).append(path.name)
    for canonical in names:
        if canonical in mapping.files or (folder / canonical).exists():
            continue
        stem = canonical.rsplit(".", 1)[0].lower()
        for name in (canonical.lower(), f"{stem}.xlsx", f"{stem}.xlsm"):
            found = by_lower.get(name)
            if found:
                mapping.files[canonical] = found[0]
                break


def _crm_by_header(folder: Path, mapping: Mapping) -> str | None:
    """A CRM file exported under another name: recognised by its header, remembered in the mapping."""
    near = None  # a report without Created Date: said when no other file is the CRM export
    for path in sorted(p for p in folder.iterdir() if is_crm_candidate(p) and p.is_file()):
        if path.name.startswith("~$"):  # Excel's lock file of an open workbook
            continue
        columns = read_header(path)
        header = {norm(c) for c in columns}
        for crm, (canonical, signature) in CRM_SIGNATURES.items():
            if signature <= header:
                mapping.files.setdefault(canonical, path.name)
                return crm
        if _salesforce_report(path, columns, mapping):
            mapping.files.setdefault(salesforce.FILES["opportunity"], path.name)
            return "salesforce"
        if (near is None and salesforce.REPORT_SIGNATURE - {"createddate"} <= header
                and "CreatedDate" not in mapping.columns_for(salesforce.FILES["opportunity"])):
            near = path
    if near is not None:  # it was "expected a CRM export" and a transaction-log mapping
        raise SourceError(near, 1, "a Salesforce opportunity report with a 'Created Date' column (in the "
                          "report: Columns > add 'Created Date', then export again), or CreatedDate mapped in "
                          "revintel_mapping.yaml", "found a report without it: a deal's age is counted from it")
    return None


def _crm_below_title(folder: Path, lines: int = 20) -> tuple[Path, int, str] | None:
    """(file, line, what it is) of a CSV whose header, a CRM export's or a Salesforce report's, stands below
    line 1 (a title or an export note above it), when no file is one from line 1. A file found by
    its name says so when loaded (raw_csv._header_below); one under another name was met with "expected a
    CRM export" and a transaction-log mapping to fill in."""
    for path in sorted(p for p in folder.iterdir() if (p.suffix.lower() == ".csv" or is_unicode_text(p)) and p.is_file()):
        try:
            text = read_bytes(path, 1 << 16).decode("utf-8-sig", errors="replace")
        except SourceError:
            continue
        for k, line in enumerate(text.splitlines()[1:lines], start=2):
            cells = header_cells(line)
            header = {norm(c) for c in cells}
            kind = next((CRM_NAMES[crm] for crm, (_, sig) in CRM_SIGNATURES.items() if sig <= header), None)
            if kind or salesforce.report_columns(cells):
                return path, k, kind or "a Salesforce opportunity report"
    return None


def _salesforce_report(path: Path, columns: list[str], mapping: Mapping) -> bool:
    """Is `path` a Salesforce opportunity report (salesforce.REPORT_LABELS)? Then its labels become
    the Opportunity.csv columns a mapping file does not name; without 'Opportunity ID' it stops."""
    labels = salesforce.report_columns(columns)
    canonical = salesforce.FILES["opportunity"]
    own = mapping.columns_for(canonical)
    if labels is None or "Id" in own:
        return labels is not None
    if "Id" not in labels:
        raise SourceError(path, 1, "an 'Opportunity ID' column in a Salesforce opportunity report (in the report: "
                          "Columns > add 'Opportunity ID', then export again), or Id mapped in revintel_mapping.yaml",
                          "found a report without it; deal names repeat and line numbers move between exports, so "
                          "they cannot key the deals")
    named = mapping.columns.setdefault(canonical, {})
    for api, label in labels.items():  # a mapping file's own names win
        if api not in own:
            named[api] = label
    mapping.read_as[path.name] = "a Salesforce opportunity report: " + ", ".join(
        f"{a} <- '{l}'" for a, l in labels.items() if a not in own)
    return True


def lock_down(con: duckdb.DuckDBPyConnection, folder: Path, copies: Path | None = None) -> None:
    """Second door behind the mapping grammar and the quoted identifiers (docs/SECURITY.md): the
    connection may read files only inside the source folder (symlinks are resolved by DuckDB),
    write or attach no file, install no extension, and this cannot be undone by SQL. The settings
    belong to the database instance, which lives as long as its connections: the warehouse opens
    a fresh one per `connect()`, so later steps are not affected. `copies`: the import's own folder
    of UTF-8 copies of Windows-1252 files (raw_csv.transcoded_copies), readable too."""
    roots = [str(Path(f).resolve()).replace("'", "''") for f in (folder, copies) if f is not None]
    allowed = ", ".join(f"'{r}/'" for r in roots)
    con.execute(f"SET allowed_directories = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def import_source(con: duckdb.DuckDBPyConnection, folder: Path, forced: str | None = None,
                  mapping: str | Path | Mapping | None = None, locked: bool = True,
                  fy_start_month: int = 1) -> ImportReport:
    """_import_source with a folder for the UTF-8 copies of Windows-1252 files, removed after."""
    with transcoded_copies() as copies:
        return _import_source(con, folder, forced, mapping, locked, fy_start_month, copies)


def _import_source(con: duckdb.DuckDBPyConnection, folder: Path, forced: str | None = None,
                   mapping: str | Path | Mapping | None = None, locked: bool = True,
                   fy_start_month: int = 1, copies: Path | None = None) -> ImportReport:
    """Read every file of the source into the canonical staging tables and the quarantine.

    `mapping`: a mapping file (or a parsed Mapping); default the folder's revintel_mapping.yaml.
    `locked`: lock the connection down to reading the source folder (lock_down) before any file
    is read; irreversible for the connection's database instance. `fy_start_month`: the fiscal
    year's first month, which quarterly quotas must start a quarter of."""
    folder = Path(folder)
    if folder.is_dir() and not isinstance(mapping, Mapping):
        mapping = load_mapping(folder, mapping)
    layout = detect_layout(folder, forced, mapping)
    check_files(layout.user_mapping, folder)
    if locked:
        lock_down(con, folder, copies)
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    for (old,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'staging' "
                              "AND NOT temporary AND table_name LIKE 'raw\\_%' ESCAPE '\\'").fetchall():
        con.execute(f"DROP TABLE staging.{quote_ident(old)}")  # raw rows are temporary tables now
    con.execute(f"DROP TABLE IF EXISTS {QUARANTINE_STAGING}")
    con.execute("DROP TABLE IF EXISTS temp._sheet_lines")
    ensure_quarantine_staging(con)
    for table, columns in CANONICAL.items():
        con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    report = ImportReport(layout)
    user = layout.user_mapping
    if layout.crm and not _crm_files(layout):
        raise SourceError(layout.folder, 0, f"a {layout.crm} CRM export",
                          f"--format names {layout.crm} but its main file was not found")
    if layout.crm == "maventech":
        report.files.update(import_maventech(con, layout.folder, user))
    elif layout.crm == "salesforce":
        report.files.update(import_salesforce(con, layout.folder, user))
    elif layout.crm == "hubspot":
        report.files.update(hubspot.import_hubspot(con, layout.folder, user))
    report.files.update(load_sku_map(con, layout.folder, user.delimiter))
    con.execute("""UPDATE staging.products SET division = m.division FROM staging.sku_map m
                   WHERE m.sku = staging.products.product_code""")
    # A products file without a division column: its series stood in, but a SKU map naming the
    # product (its sku, or its name by spelling) is the division the transactions are counted in. With
    # the series the CRM's products and the log's lines were in different divisions, no division had
    # both, and no ICP division was left (an audit: the demo without products.csv's division column).
    con.execute(f"""UPDATE staging.products SET division = m.division
                    FROM (SELECT {key_sql('sku')} AS k, arg_min(division, _line) AS division FROM staging.sku_map
                          GROUP BY 1) m
                    WHERE NOT staging.products.division_given
                      AND m.k IN ({key_sql('staging.products.product_id')}, {key_sql('staging.products.product_name')})""")
    if layout.transactions and layout.transactions_file is None:
        raise SourceError(layout.folder, 0, f"a {layout.transactions} transactions file",
                          f"--format names {layout.transactions} but no such file was found")
    if layout.transactions == "sales_log":
        report.files.update(import_sales_log(con, layout.transactions_file, user))
    elif layout.transactions == "tidy":
        report.files.update(import_tidy(con, layout.transactions_file, layout.mapping, user))
    report.files.update(load_quotas(con, layout.folder, fy_start_month, user))
    non_sellable = [*user.non_sellable, *((layout.mapping or {}).get("non_sellable_divisions") or [])]
    for division in dict.fromkeys(str(d).strip() for d in non_sellable):
        con.execute("INSERT INTO staging.non_sellable VALUES (?)", [division])
    _check_partition_keys(con, layout.folder)
    label_sheet_rows(con)
    report.export_date, report.stray_dates, report.dated_after_today = _export_date(con)
    report.unread = unread_files(layout.folder, report.files, user)
    lines, revenue, skus = con.execute("SELECT count(*), coalesce(sum(amount), 0), count(DISTINCT product_id) "
                                       "FROM staging.transactions WHERE division = ?", [UNMAPPED]).fetchall()[0]
    if lines:
        report.unmapped = {"lines": lines, "revenue": round(float(revenue), 2), "skus": skus,
                           "share_of_lines": round(lines / max(1, con.execute(
                               "SELECT count(*) FROM staging.transactions").fetchall()[0][0]), 4)}
    return report


DATA_SUFFIXES = (".csv", ".xlsx", ".xlsm", ".tsv", ".csv.gz")


def _unicode_table(path: Path) -> bool:
    """Excel's Unicode Text with a header of columns (a UTF-16 readme from Notepad is no data file)."""
    return is_unicode_text(path) and len(read_header(path)) > 1


def unread_files(folder: Path, read: dict[str, dict], mapping: Mapping) -> dict[str, str]:
    """Data files in the folder the import did not read, each with why: a second export of a kind
    already read (HubSpot deals exported per pipeline, a transaction log split by half-year) was
    skipped in silence, half the deals or lines missing."""
    done = set(read)  # exact names: 'account.csv' beside the 'Account.csv' read is a file left out
    if mapping.path is not None:
        done.add(Path(mapping.path).name)
    headers: dict[tuple, str] = {}
    for name in sorted(read):
        try:
            headers.setdefault(tuple(norm(c) for c in read_header(folder / name)), name)
        except Exception:  # noqa: BLE001 (a file read through the mapping under another name: no header to compare)
            continue
    out: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if (not path.is_file() or path.name.startswith(("~$", ".")) or path.name in done
                or not (path.name.lower().endswith(DATA_SUFFIXES) or _unicode_table(path))):
            continue
        try:
            twin = headers.get(tuple(norm(c) for c in read_header(path)))
        except Exception:  # noqa: BLE001 (unreadable as a table: still named, not read)
            twin = None
        out[path.name] = (f"it has the columns of {twin}, which was read: revintel reads one file of each kind, so "
                          f"put its rows into {twin} (one header) to have them imported" if twin else
                          "not one of the files revintel reads for this source (if it holds one of them under "
                          "another name, revintel_mapping.yaml's files: can name it)")
    return out


# Divisions become Dagster partition keys (icp_division; "cutoff|division" in the multi-partition
# keys): these substrings make Dagster refuse them, several steps after the import.
BAD_KEY_PARTS = ["|", "...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0"]


def _check_partition_keys(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """A division name that cannot be a partition key stops the import, naming file and line."""
    where = " OR ".join("contains(division, ?)" for _ in BAD_KEY_PARTS)
    for table in ("staging.sku_map", "staging.products", "staging.transactions"):
        row = con.execute(f"SELECT source_file, _line, division FROM {table} WHERE {where} "
                          "ORDER BY source_file, _line LIMIT 1", BAD_KEY_PARTS).fetchall()
        if row:
            file, line, division = row[0]
            raise SourceError(folder / file, line or 0,
                              "division names without '|', '...', tabs or line breaks (each division is a "
                              "partition of the ICP models)", f"found division {division!r}")


def _crm_files(layout: SourceLayout) -> bool:
    main = {"maventech": maventech.FILES["pipeline"], "salesforce": salesforce.FILES["opportunity"],
            "hubspot": hubspot.FILE}
    return (layout.folder / layout.user_mapping.file(main[layout.crm])).exists()


# A date this far past every other date of the source is a typo ('2027' for '2025'), not the day
# of the export: one such close date made the as-of date two years late (101 weekly dates scored
# past the data, the forecast for the wrong quarter) and nothing said so.
STRAY_GAP_DAYS = 183


def _export_date(con) -> tuple[str | None, list[str], bool]:
    """(the latest date in the data: what `demo` and `run` score as of, docs/CONTRACT.md §1; the
    later dates set aside; whether every date was after today): dates after the machine's today
    cannot be in an export, and a latest date more than STRAY_GAP_DAYS past the next one is a typo.
    Both are reported, not taken."""
    # one scan of the dates: the latest 64 after today and the latest 64 up to it, apart (64 future
    # dates must not hide the past ones)
    rows = con.execute("""SELECT d, d > current_date AS future FROM (SELECT DISTINCT d FROM (
        SELECT greatest(engage_date, close_date, created_date, stage_since) AS d FROM staging.opportunities
        UNION ALL SELECT changed_at FROM staging.history
        UNION ALL SELECT order_date FROM staging.transactions) WHERE d IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY d > current_date ORDER BY d DESC) <= 64 ORDER BY d DESC""").fetchall()
    stray = [d for d, future in rows if future]
    latest = [d for d, future in rows if not future]
    after_today = not latest and bool(stray)
    if after_today:  # every date after today: the machine's clock (or the data) is off; the data decides
        latest, stray = stray, []
    while len(latest) > 1 and (latest[0] - latest[1]).days > STRAY_GAP_DAYS and _busy(latest[1:]):
        stray.append(latest.pop(0))
    return (latest[0].isoformat() if latest else None), sorted(d.isoformat() for d in stray), after_today


def _busy(dates: list, days: int = 90, at_least: int = 10) -> bool:
    """Do the dates (newest first) hold `at_least` distinct days in the `days` before the newest?
    A typo stands apart from a busy export; a small, sparse source's last date is kept."""
    return sum(1 for d in dates if (dates[0] - d).days <= days) >= at_least
