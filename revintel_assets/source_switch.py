"""A data directory follows its latest source (docs/CONTRACT.md §1, "successive sources").

The import calls `replace_previous_source` once it knows which source it read. When the
warehouse holds another source (meta.source: a different folder or layout), everything derived
from that source goes before any of the new one is written:

* tables: every table and view but the import's own staging and the write log (meta.table_log)
  is dropped, so no `star.*`, `features.*`, `scores.*`, `forecast.*` or `validation.*` row of the
  old source can mix with the new one's (their partitions would not be overwritten: the new
  source has other dates);
* partitions: every dynamic partition (months, as-of dates, cutoffs, divisions) is emptied; the
  import then registers the new source's keys, the ICP plan its own;
* models: the registered MLflow models are renamed `<name>--<old source>`, so the new source's
  champion lookups, promotion gate and "latest eligible model" never see a model trained on other
  data (the runs stay in their experiments, the renamed models keep their versions for audit).

The same folder read again (a re-export) is the same source: its history, partitions and models
stay, and the champion gate compares new models with the previous ones. Unless the export is older
than the one the warehouse holds (an earlier export copied back into the folder): the dates after
its own would keep the newer export's scores, models and ICP rows, so it replaces it as another
source would. And a *newer* or *changed* export (the same last date, other files: a corrected
export, a demo regenerated with another seed) that a person runs (`revintel run`, which rebuilds every date
anyway) is rebuilt from alone as well: kept, the older export's date stayed an as-of date and a
training cutoff, its plan, outlook and ICP cutoffs stayed beside the rebuilt scores of the same
dates, and its models kept scoring and gating, so one export gave a quarter's P(hit quota) of
0.62, 0.91 or 0.75 depending on the exports run before it (an audit). The sensor's import of a
newer export keeps the history: the nightly scores the new date, the monthly retrain adds a cutoff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from revintel_assets.defs.deals.partitions import as_of_dates, training_cutoffs
from revintel_assets.defs.icp.partitions import divisions, feature_cutoffs, model_cutoffs
from revintel_assets.defs.partitions import register
from revintel_assets.defs.star.partitions import transaction_months
from revintel_resources.tracking import MLflowResource
from revintel_resources.warehouse import TABLE_LOG, Warehouse, qualified

DYNAMIC_PARTITIONS = (transaction_months, as_of_dates, training_cutoffs, divisions, feature_cutoffs, model_cutoffs)
KEEP_SCHEMAS = {"staging"}  # rebuilt by the import that calls us, before the switch
KEEP_TABLES = {TABLE_LOG}  # the write path's log: history, not data of a source


@dataclass(frozen=True)
class Source:
    path: str
    format: str
    export_date: dt.date | None = None  # the latest date in its data (meta.source.export_date)
    fingerprint: str | None = None  # its files' names, sizes and times (meta.source.fingerprint)

    @property
    def label(self) -> str:
        """Registry-safe and recognisable: `maventech_crm-3f2a9c1b`."""
        digest = hashlib.sha256(f"{self.path}|{self.format}".encode()).hexdigest()[:8]
        return f"{re.sub(r'[^A-Za-z0-9_]+', '_', Path(self.path).name).strip('_') or 'source'}-{digest}"


def is_switch(previous: Source | None, new: Source) -> bool:
    """Another folder, or the same folder read as another layout, or an older export of it than the
    warehouse holds; nothing before is no switch."""
    if previous is None:
        return False
    if (Path(previous.path).resolve(), previous.format) != (Path(new.path).resolve(), new.format):
        return True
    return previous.export_date is not None and new.export_date is not None and new.export_date < previous.export_date


def fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the source files: cheap, and any re-export changes it
    (a copy of the same files too: then a person's run rebuilds what it would have kept, the same
    tables a little slower)."""
    if not folder.is_dir():
        return "missing"
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]


def is_changed_export(previous: Source | None, new: Source) -> bool:
    """The same folder and layout, its data ending later than the export the warehouse holds, or on
    the same date from other files (a corrected export kept the models of the one before it: 14,603
    deal-date scores moved by up to 0.35, a re-check)."""
    if (previous is None or previous.export_date is None or new.export_date is None
            or (Path(previous.path).resolve(), previous.format) != (Path(new.path).resolve(), new.format)):
        return False
    return new.export_date > previous.export_date or (
        new.export_date == previous.export_date and None not in (previous.fingerprint, new.fingerprint)
        and previous.fingerprint != new.fingerprint)


def previous_source(con: duckdb.DuckDBPyConnection) -> Source | None:
    try:
        rel = con.execute("SELECT * FROM meta.source LIMIT 1")
    except duckdb.CatalogException:
        return None
    names, row = [d[0] for d in rel.description], rel.fetchone()
    if not row:
        return None
    r = dict(zip(names, row))
    return Source(r["source_path"], r["source_format"], r.get("export_date"), r.get("fingerprint"))


def derived_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(kind, name) of every view and table a source's runs wrote, i.e. all but the staging schema
    and the write log; views first (e.g. scores.whitespace_by_rep), so none is left dangling."""
    rows = con.execute(
        "SELECT 'VIEW', schema_name || '.' || view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal UNION ALL "
        "SELECT 'TABLE', schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() ORDER BY 1 DESC, 2").fetchall()
    return [(kind, t) for kind, t in rows if t.split(".")[0] not in KEEP_SCHEMAS and t not in KEEP_TABLES]


def drop_tables(wh: Warehouse) -> list[str]:
    """Drop the previous source's views and tables in one transaction (all or nothing). meta.source
    goes with them, so a run that dies after this sees no previous source and does not redo it."""
    with wh.connect() as con:
        objects = derived_tables(con)
        con.execute("BEGIN TRANSACTION")
        for kind, name in objects:
            con.execute(f"DROP {kind} {qualified(name)}")
        con.execute("COMMIT")
    return [name for _, name in objects]


def clear_partitions(instance: dg.DagsterInstance) -> dict[str, int]:
    """Empty every dynamic partition; returns how many keys each had."""
    counts = {d.name: len(instance.get_dynamic_partitions(d.name)) for d in DYNAMIC_PARTITIONS}
    for definition in DYNAMIC_PARTITIONS:
        register(instance, definition, [], exact=True)
    return counts


def archive_models(tracking: MLflowResource, old: Source, replace_archive: bool = False) -> list[str]:
    """Rename every registered model `<name>--<old source label>`; returns the new names. Lookups
    are by exact name (win_probability, revintel-icp-<division>), so the new source starts with
    an empty registry: no champion, no promoted version, no holdout evidence of the old data.
    `replace_archive` (a newer export of the same folder): an earlier archive of that name is
    deleted first (its runs stay in the experiments), so weekly exports keep one archive, not 52."""
    client = tracking.configure()
    renamed = []
    models = client.search_registered_models()
    taken = {m.name for m in models}
    for model in models:
        if "--" in model.name:  # archived by an earlier switch
            continue
        new_name = f"{model.name}--{old.label}"
        if replace_archive and new_name in taken:
            client.delete_registered_model(new_name)
            taken.discard(new_name)
        n = 1
        while new_name in taken:  # the same source archived before (an older export of it came back)
            n += 1
            new_name = f"{model.name}--{old.label}-{n}"
        taken.add(new_name)
        client.rename_registered_model(model.name, new_name)
        client.set_registered_model_tag(new_name, "archived_source", old.path)
        for alias, version in (model.aliases or {}).items():
            # an archived model serves nothing: its `champion` becomes a tag, for the record
            client.delete_registered_model_alias(new_name, alias)
            client.set_registered_model_tag(new_name, f"{alias}_before_archive", str(version))
        renamed.append(new_name)
    return renamed


def replace_previous_source(instance: dg.DagsterInstance, wh: Warehouse, tracking: MLflowResource,
                            new: Source, rebuild_newer: bool = False) -> str | None:
    """If the warehouse holds another source (or, with `rebuild_newer`, an older export of this
    one), remove what was derived from it; returns a line saying what was replaced (None when the
    source is kept, or the warehouse is new).

    Order matters for a run that dies half-way: models and partitions first, the tables (with
    meta.source) last, so until the tables are gone the next import still sees the old source
    and redoes the whole switch."""
    with wh.connect(writes=False) as con:
        old = previous_source(con)
    newer = rebuild_newer and is_changed_export(old, new)
    if not (newer or is_switch(old, new)):
        return None
    models = archive_models(tracking, old, replace_archive=newer)
    keys = clear_partitions(instance)
    tables = drop_tables(wh)
    if newer:
        what = (f"a newer export of {new.path} (its data ends {new.export_date}; the warehouse held one ending "
                f"{old.export_date})" if new.export_date != old.export_date else
                f"a changed export of {new.path} (its data ends {new.export_date} as before, from other files)")
        return (f"{what}: rebuilt from it alone, as a fresh run would be: dropped {len(tables)} tables, "
                f"{sum(keys.values())} partition keys, archived {len(models)} registered models as "
                f"'<name>--{old.label}'")
    if (Path(old.path).resolve(), old.format) == (Path(new.path).resolve(), new.format):
        return (f"an older export of {new.path} (its data ends {new.export_date}; the warehouse held one ending "
                f"{old.export_date}) replaces the newer one: dropped {len(tables)} tables, {sum(keys.values())} "
                f"partition keys, archived {len(models)} registered models as '<name>--{old.label}'")
    return (f"new source {new.path} ({new.format}) replaces {old.path} ({old.format}): dropped {len(tables)} "
            f"tables, {sum(keys.values())} partition keys, archived {len(models)} registered models as "
            f"'<name>--{old.label}'")
