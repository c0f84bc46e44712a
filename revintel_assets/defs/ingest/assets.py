"""The import: one asset that reads the source folder into canonical staging tables and the
quarantine. Everything downstream is SQL over those tables."""


import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from revintel_assets.defs.deals import partitions as deal_partitions
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.ingest.errors import InputError, SourceError
from revintel_assets.defs.ingest.mapping import USER_MAPPING
from revintel_assets.defs.ingest.source import import_source
from revintel_assets.defs.partitions import register
from revintel_assets.metadata import table_metadata
from revintel_assets.source_switch import Source, fingerprint, is_switch, previous_source, replace_previous_source
from revintel_assets.defs.star.docs import table_doc
from revintel_assets.defs.star.partitions import transaction_months
from revintel_resources.resources import WarehouseResource
from revintel_resources.settings import settings
from revintel_resources.source import SourceResource, clamp_as_of
from revintel_resources.tracking import MLflowResource


INGEST = dict(group_name="ingest", owners=["team:data-engineering"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["staging", "source_import"], kinds={"duckdb", "csv"}, **INGEST,
                     description="Detects the source layout (MavenTech CRM, wide sales log, ...), loads every "
                                 "file into canonical staging tables, and registers the months, as-of dates and "
                                 "training cutoffs found in the data as partitions."),
        dg.AssetSpec(["star", "quarantine"], kinds={"duckdb"}, metadata={"table": "star.quarantine"}, **INGEST,
                     description="Every raw row the import rejected: file, physical line, the raw row, the reason."),
        dg.AssetSpec(["meta", "source"], kinds={"duckdb"}, metadata={"table": "meta.source"}, **INGEST,
                     description="What was loaded: source folder, detected layout, export date, files."),
        dg.AssetSpec(["meta", "source_files"], kinds={"duckdb"}, metadata={"table": "meta.source_files"},
                     **INGEST, description="Raw rows read per source file (the reconciliation's left side)."),
    ],
    pool="warehouse",
)
def source_import(context: dg.AssetExecutionContext, warehouse: WarehouseResource, source: SourceResource,
                  mlflow_tracking: MLflowResource):
    wh = warehouse.get()
    _check_source_root(source)
    _check_folder_mapping(source, context.run.tags)
    with wh.connect() as con:
        con.execute("BEGIN TRANSACTION")
        # a local work file: locked down to reading the source folder (MotherDuck runs remotely)
        report = import_source(con, source.folder(), source.forced_format(), source.mapping_file(),
                               locked=wh.backend.local_file, fy_start_month=settings().fiscal_year_start_month)
        try:
            _check_as_of(con, source, report, context.run.tags)  # before the new staging tables are committed
            _check_unattended_switch(con, report, context.run.tags)
        except InputError:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    # the rest of the step in one session (resources.warehouse_step), opened only now: the block
    # above locked its connection's configuration down, which must end with that connection
    with wh.step_session():
        yield from _record(context, wh, source, mlflow_tracking, report)


UNATTENDED = ("dagster/sensor_name", "dagster/schedule_name", "revintel/trigger")  # tags of runs no person launched


def _new_source(report) -> Source:
    return Source(str(report.layout.folder), report.layout.name,
                  dt.date.fromisoformat(report.export_date) if report.export_date else None,
                  fingerprint(Path(report.layout.folder)))


def _check_unattended_switch(con, report, tags) -> None:
    """A sensor's or schedule's import never replaces the source the warehouse holds (docs/CONTRACT.md
    §1: the run refuses, naming what replaces it). The source-files sensor imported a half-written
    re-export (its data ending earlier: "an older export ... replaces the newer one"), which dropped
    every score, forecast and model, and the publish sensor published the emptied warehouse. Refused
    inside the import's transaction: staging and the warehouse keep what they held."""
    if not any(t in tags for t in UNATTENDED):
        return
    old, new = previous_source(con), _new_source(report)
    if not is_switch(old, new):
        _check_shrunk_files(con, report)
        return
    what = (f"its data now ends {new.export_date}, before the {old.export_date} of the export the warehouse holds "
            "(a file still being written, or an older export copied back?)"
            if Path(old.path).resolve() == Path(new.path).resolve() and old.format == new.format
            else f"it holds {new.path} ({new.format}), the warehouse {old.path} ({old.format})")
    raise InputError(f"the source folder changed, but {what}. An unattended import does not replace the "
                     f"warehouse's source; to replace it run `revintel run --source {new.path}`")


SHRUNK = 0.5  # an unattended re-export whose file holds fewer than half the rows it held is refused


def _check_shrunk_files(con, report) -> None:
    """The same source, its data not ending earlier, but a file cut off and left so (an exporter
    that crashed: accounts.csv at 36 of its 86 lines): imported by the sensor and published, half
    the accounts became stubs without firmographics. A sensor's import refuses a file that shrank
    below SHRUNK of the rows it held at the last import; a person's run takes it as it is."""
    try:
        before = dict(con.execute("SELECT source_file, raw_rows FROM meta.source_files").fetchall())
    except duckdb.CatalogException:
        return
    shrunk = [f"{name} holds {info['raw_rows']:,} rows, {before[name]:,} at the last import"
              for name, info in report.files.items()
              if before.get(name, 0) >= 20 and info.get("raw_rows", 0) < SHRUNK * before[name]]
    if shrunk:
        raise InputError(f"the source folder changed, but {'; '.join(shrunk)} (a file cut off?). An unattended "
                         "import does not take it; to import it as it is run `revintel run --source "
                         f"{report.layout.folder}`")


def _check_as_of(con, source: SourceResource, report, tags: dict | None = None) -> None:
    """An --as-of before everything in the data has nothing to score, train or rank on (it
    crashed in the win model's windows): refused, naming the dates the data covers, inside the
    import's transaction, so that staging and the warehouse keep the source they held."""
    asked = source.as_of_override()
    if asked is None:
        return
    first = con.execute("SELECT min(d)::DATE AS d FROM (SELECT min(coalesce(engage_date, created_date)) d "
                        "FROM staging.opportunities UNION ALL SELECT min(changed_at) FROM staging.history "
                        "UNION ALL SELECT min(order_date) FROM staging.transactions)").fetchone()[0]
    if first is not None and asked < first:
        # named as the user gave it: the CLI's flag, else the launchpad's field (it said --as-of to a
        # launchpad user who never typed one)
        given = "source.as_of" if source.as_of and (tags or {}).get("revintel/launched_by") != "cli" else "--as-of"
        raise InputError(f"{given} {asked} is before the first date in the source ({first}): nothing was known "
                         f"then. Give a date from {first} to {report.export_date or 'the export date'}, or no "
                         f"{given} to score as of the export date")


def _record(context: dg.AssetExecutionContext, wh, source: SourceResource, mlflow_tracking: MLflowResource, report):
    """After the import: the previous source replaced, quarantine and source metadata written, the
    transaction months and deal dates registered, and what was read reported."""
    # Another source than the warehouse holds: its tables, partitions and models go first (docs/CONTRACT.md §1);
    # so do an older export's when `revintel run` reads a newer one (source_switch.py)
    by_cli = context.run.tags.get("revintel/launched_by") == "cli" and not any(t in context.run.tags for t in UNATTENDED)
    new = _new_source(report)
    replaced = replace_previous_source(context.instance, wh, mlflow_tracking, new, rebuild_newer=by_cli)
    if replaced:
        context.log.warning(replaced)
    wh.write("star.quarantine", sql="SELECT *, current_timestamp::TIMESTAMP AS loaded_at "
             "FROM staging.quarantine_new ORDER BY source_file, line_number",
             run_id=context.run_id, **table_doc("star.quarantine"))
    currencies = report.currencies
    wh.write("meta.source", sql="SELECT ? AS source_path, ? AS source_format, ?::DATE AS export_date, "
             "current_timestamp::TIMESTAMP AS loaded_at, ? AS files, ?::VARCHAR AS currency, "
             "?::VARCHAR AS fingerprint",
             params=[str(report.layout.folder), report.layout.name, report.export_date,
                     json.dumps(report.files), report.currency, new.fingerprint],
             run_id=context.run_id)
    if len(currencies) > 1 and report.currency:
        context.log.info(f"amounts in {len(currencies)} currencies converted to {report.currency} at CurrencyType.csv's rates")
    elif len(currencies) > 1:
        context.log.warning(f"amounts in {len(currencies)} currencies ({', '.join(f'{c} {n:,} deals' for c, n in currencies.items())}) "
                            "are added as given: pipeline, forecasts and risk sum them. Export the amounts converted to one "
                            "currency (Salesforce: CurrencyType.csv with IsoCode, ConversionRate beside Opportunity.csv) for "
                            "totals that mean something")

    wh.write("meta.source_files", pl.DataFrame(
        {"source_file": list(report.files), "raw_rows": [f["raw_rows"] for f in report.files.values()]},
        schema={"source_file": pl.Utf8, "raw_rows": pl.Int64}), run_id=context.run_id)

    months = [r[0].isoformat() for r in wh.query(
        "SELECT DISTINCT date_trunc('month', d)::DATE FROM (SELECT order_date d FROM staging.transactions "
        "UNION ALL SELECT close_date FROM staging.opportunities WHERE stage = 'Won' "
        "AND NOT EXISTS (SELECT 1 FROM staging.transactions)) WHERE d IS NOT NULL "
        "ORDER BY 1").rows()]
    register(context.instance, transaction_months, months)

    first_deal = wh.query("SELECT min(d) AS d FROM (SELECT min(coalesce(engage_date, created_date)) d FROM staging.opportunities "
                          "UNION ALL SELECT min(changed_at) FROM staging.history)")["d"][0]
    if first_deal is not None and report.export_date:
        export = dt.date.fromisoformat(report.export_date)
        as_of = clamp_as_of(source.as_of_override(), export)
        if as_of != (source.as_of_override() or export):
            context.log.warning(f"--as-of {source.as_of_override()} is after the data's last date {export}: scored "
                                f"as of {as_of} (nothing is scored past the data)")
        plan = deal_partitions.register(context.instance, DealPlan(first_deal, as_of))
        context.log.info(f"deal as-of dates: {len(plan.snapshot_dates)}, training cutoffs: {plan.model_cutoffs}")

    raw_rows = sum(f["raw_rows"] for f in report.files.values())
    quarantined = sum(sum(f.get("quarantined", {}).values()) for f in report.files.values())  # unreadable, footers too
    by_rule: dict[str, int] = {}
    flagged: dict[str, int] = {}
    for name, f in report.files.items():
        context.log.info(f"{name}: {f['raw_rows']} raw rows, quarantined {f.get('quarantined') or {}}, "
                         f"unreadable {f.get('rejected_unreadable', 0)}"
                         + (f", a report's footer {f['report_footer']} (set aside)" if f.get("report_footer") else "")
                         + (f", {f['encoding']}" if f.get("encoding") else ""))
        for rule, n in (f.get("quarantined") or {}).items():
            by_rule[rule] = by_rule.get(rule, 0) + n
        for flag, n in (f.get("flagged_kept") or {}).items():
            flagged[flag] = flagged.get(flag, 0) + n
    if quarantined:
        context.log.warning(f"{quarantined} of {raw_rows} raw rows quarantined (star.quarantine): "
                            + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items(), key=lambda kv: -kv[1])))
    if flagged:
        context.log.warning(f"rows kept but flagged: {flagged}")
    if report.unmapped:
        u = report.unmapped
        context.log.warning(f"{u['lines']:,} order lines ({u['share_of_lines']:.1%}, revenue {u['revenue']:,.2f}, "
                            f"{u['skus']:,} SKUs) have a SKU the SKU map does not name: kept under 'Unmapped SKUs', "
                            "never modelled nor recommended (star.unmapped_skus)")
    if report.dated_after_today:  # said, never silent
        context.log.warning("every date of the source is after today by this machine's clock: the export date is the "
                            f"data's latest, {report.export_date}; check the clock, or set --as-of")
    if report.stray_dates:
        context.log.warning(f"dates not taken as the export date: {', '.join(report.stray_dates)} (after today, or "
                            f"more than half a year past every other date: a typo?); the export date is "
                            f"{report.export_date} (--as-of sets it)")
    for name, f in report.files.items():
        if f.get("empty_rows_skipped"):
            context.log.info(f"{name}: {f['empty_rows_skipped']} row(s) of empty fields only (a spreadsheet's "
                             "blank rows saved as delimiters) skipped")
    # a file of the folder the import did not read: said, never silent; a second export of a kind
    # read is a warning of its own, the other files (a data dictionary, a Contact.csv) one line
    others = [name for name, why in report.unread.items() if not why.startswith("it has the columns of")]
    for name, why in report.unread.items():
        if name not in others:
            context.log.warning(f"{name}: not read: {why}")
    if others:
        context.log.warning(f"not read, not among the files revintel reads for this source: {', '.join(others)} "
                            "(revintel_mapping.yaml's files: can name one that holds a file revintel reads)")
    for name, how in report.layout.user_mapping.read_as.items():
        context.log.warning(f"{name} read as {how} (a revintel_mapping.yaml can name other columns)")
    notes = {name: f["missing_optional_columns"] for name, f in report.files.items()
             if f.get("missing_optional_columns")}
    for name, cols in notes.items():  # no amount column is no deal value at all: a warning, not a note
        log = context.log.warning if "Amount" in cols else context.log.info
        log(f"{name}: optional column(s) {', '.join(cols)} not in the export; left empty")
    for name, f in report.files.items():  # sheets of a workbook that were not read: said, never silent
        for sheet, why in (f.get("skipped_sheets") or {}).items():
            context.log.warning(f"{name}: sheet '{sheet}' not read: {why}")
        for sheet, columns in (f.get("merged_cells_filled") or {}).items():
            context.log.warning(f"{name}: sheet '{sheet}': merged cells filled down their range (a grouped report's "
                                "labels): " + ", ".join(f"{c} ({n:,} cells)" for c, n in columns.items()))
        for sheet, above in (f.get("title_rows") or {}).items():
            context.log.warning(f"{name}: sheet '{sheet}' has its header on row {above + 1}; the {above} row(s) above "
                                "it (a title) were not read")
        if f.get("unpaired_columns"):
            context.log.warning(f"{name}: column(s) neither fixed nor a '<SKU>' / '<SKU>_Qty' pair, not read: "
                                + ", ".join(f"{c} ({n:,} non-empty cells)" for c, n in f["unpaired_columns"].items()))
    yield dg.MaterializeResult(asset_key=["staging", "source_import"], metadata={
        "quarantined_by_rule": dg.MetadataValue.json(by_rule),
        "flagged_kept": dg.MetadataValue.json(flagged),
        "source": dg.MetadataValue.path(str(report.layout.folder)),
        "format": report.layout.name,
        "export_date": report.export_date or "",
        "raw_rows": dg.MetadataValue.int(raw_rows),
        "dagster/row_count": dg.MetadataValue.int(raw_rows - quarantined),  # rows staged for the star
        "quarantined_rows": dg.MetadataValue.int(quarantined),
        "transaction_months": dg.MetadataValue.int(len(months)),
        "replaced_source": replaced or "",
        "files": dg.MetadataValue.json(report.files),
        "unmapped_skus": dg.MetadataValue.json(report.unmapped),
        "files_not_read": dg.MetadataValue.json(report.unread),
        **{f"quarantine_{k}": v for k, v in table_metadata(wh, "star.quarantine").items()
           if k == "preview"},
    })
    for table in ("star.quarantine", "meta.source", "meta.source_files"):
        yield dg.MaterializeResult(asset_key=table.split("."), metadata=table_metadata(wh, table))


def _check_source_root(source: SourceResource) -> None:
    """With REVINTEL_SOURCE_ROOTS set, a source (from the CLI, the settings or the launchpad) must
    lie under one of those folders, symlinks resolved."""
    roots = [Path(r).expanduser().resolve() for r in (settings().source_roots or "").split(":") if r.strip()]
    folder = source.folder().resolve()
    if roots and not any(folder == r or r in folder.parents for r in roots):
        raise SourceError(folder, 0, f"a folder under REVINTEL_SOURCE_ROOTS ({', '.join(map(str, roots))})",
                          "a source outside them")


def _check_folder_mapping(source: SourceResource, tags) -> None:
    """A mapping file that merely sits in the source folder is trusted by runs a person started
    (`revintel run`, launched_by=cli, or one that names it with --mapping / source.mapping); a run
    the sensor, a schedule or the UI started uses it only when REVINTEL_FOLDER_MAPPING=true: whoever
    can drop files into a watched folder should not decide how it is read."""
    found = source.folder() / USER_MAPPING
    if (found.exists() and not source.mapping_file() and tags.get("revintel/launched_by") != "cli"
            and not settings().folder_mapping):
        raise SourceError(found, 0, "a mapping this run may use",
                          "a revintel_mapping.yaml in the watched folder; runs not started by `revintel run` "
                          "use one only when REVINTEL_FOLDER_MAPPING=true, or when it is named as the source's "
                          "mapping (launchpad: resources.source.config.mapping)")


defs = dg.Definitions(assets=[source_import])
