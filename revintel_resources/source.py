"""Which source a run reads, and as of when: a typed resource the CLI and the launchpad configure
per run (`resources: source: config: {path, format, mapping, as_of}`); unset fields fall back to
the settings (`settings.py`: REVINTEL_SOURCE, ...); an unset folder then to the source the data
directory holds (the published file's meta.source), and only then to the demo company under it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from revintel_resources import paths
from revintel_resources.settings import settings


class SourceResource(dg.ConfigurableResource):
    path: str | None = Field(default=None, description="Folder of raw exports; default REVINTEL_SOURCE or the demo")
    format: str | None = Field(default=None, description="Force a layout, e.g. 'maventech+sales_log'")
    mapping: str | None = Field(default=None, description="Mapping file (YAML) for a variant export; default "
                                                          "SOURCE/revintel_mapping.yaml")
    as_of: str | None = Field(default=None, description="Score as of this date (YYYY-MM-DD) instead of the "
                                                        "source's export date")
    truth_dir: str | None = Field(default=None, description="The demo's ground truth (oracle metrics only)")

    @field_validator("as_of")
    @classmethod
    def _as_of_is_a_date(cls, value: str | None) -> str | None:
        """A launchpad's as_of is checked where it is given, naming the field (it failed later, in
        some step, as a bare 'Invalid isoformat string')."""
        if value:
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()  # as as_of_override() reads it
            except ValueError:
                raise ValueError(f"source.as_of: expected a date written YYYY-MM-DD, got {value!r}") from None
        return value

    def folder(self) -> Path:
        chosen = self.path or settings().source or held_source() or paths.demo_source_dir()
        return Path(chosen).expanduser().resolve()

    def forced_format(self) -> str | None:
        return self.format or settings().format or None

    def mapping_file(self) -> Path | None:
        chosen = self.mapping or settings().mapping
        return Path(chosen).expanduser() if chosen else None

    def as_of_override(self) -> dt.date | None:
        """The as-of date a user asked for (None: the source's export date)."""
        if self.as_of:
            return dt.date.fromisoformat(self.as_of)
        return settings().as_of

    def as_of_date(self, wh) -> dt.date | None:
        """The date this source is scored as of: the override, else the export date the import
        recorded in meta.source (None before any import); never past the export date (clamp_as_of).
        The one place this rule lives."""
        override = self.as_of_override()
        if not wh.table_exists("meta.source"):
            return override
        return clamp_as_of(override, wh.query("SELECT max(export_date)::DATE AS d FROM meta.source")["d"][0])


    def truth_folder(self) -> Path | None:
        """The demo's ground truth: configured, or the generated demo's own truth/ when the source
        *is* the demo folder. Real sources have none."""
        chosen = self.truth_dir or settings().truth_dir
        if chosen:
            return Path(chosen) if Path(chosen).is_dir() else None
        demo = paths.demo_source_dir()
        if self.folder() == demo.resolve() and (demo / "truth").is_dir():
            return demo / "truth"
        return None


def held_source() -> str | None:
    """The source folder the data directory's published warehouse holds (meta.source), if any. A run
    or tick that names no source follows it (CONTRACT §1: a data directory follows its latest
    source): `revintel ui` in a directory last run on a real export, with a demo folder left from an
    earlier `revintel demo`, imported the demo on its sensor's first tick and replaced the user's data
    (an operations pass)."""
    return _held("source_path")


def held_fingerprint() -> str | None:
    """The fingerprint of the files the published warehouse was imported from (meta.source; None when
    none, or a warehouse from before fingerprints were kept)."""
    return _held("fingerprint")


def _held(column: str) -> str | None:
    """meta.source's `column` in the published warehouse (read-only; readers never block), None when
    there is no warehouse, no row or no such column."""
    import duckdb

    from revintel_resources.publish import connect_published

    try:
        con = connect_published(paths.analyst_db_path())
    except (FileNotFoundError, duckdb.Error):
        return None
    try:
        row = con.execute(f"SELECT {column} FROM meta.source LIMIT 1").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return row[0] if row else None


def clamp_as_of(override: dt.date | None, export_date: dt.date | None) -> dt.date | None:
    """The as-of date of a run: `--as-of` when given, but never after the data's last date (the
    export date): there is nothing to score past it (docs/CONTRACT.md §4: scores never run past
    the data; `--as-of` a year late scored 53 weekly dates of no data)."""
    if override is None or export_date is None:
        return override or export_date
    return min(override, export_date)
