"""Deal partitions, registered from the data by the import (never from the wall clock):
as-of dates (a day each: weekly history plus the export date, and any day a schedule asks for)
and training cutoffs (the evaluation cutoff and the as-of date)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from revintel_assets.defs import partitions
from revintel_assets.defs.deals.calendar import DealPlan

as_of_dates = dg.DynamicPartitionsDefinition(name="as_of_date")
training_cutoffs = dg.DynamicPartitionsDefinition(name="training_cutoff")


def register(instance: dg.DagsterInstance, plan: DealPlan) -> DealPlan:
    for definition, keys in ((as_of_dates, plan.snapshot_dates), (training_cutoffs, plan.model_cutoffs)):
        partitions.register(instance, definition, [k.isoformat() for k in keys])
    return plan


# Snapshot rows a range run over as-of dates (scores, explanations, forecasts) holds and writes per
# pass (the demo: every date in one pass; scale 100: ~5 dates of ~190,000 open deals).
ROWS_PER_PASS = 1_000_000
# Rows one statement of the snapshot backfill builds (deal_snapshot writes a range in batches of
# dates up to this). The statement joins, sorts and widens every row it builds; past what DuckDB's
# memory limit (6 GB) holds it spills: scale 100's 154 dates (28.7 M rows) in one statement spilled
# 37 GB and took 190 s, in three statements of <= 10 M rows 125 s (identical rows). Much smaller
# batches repeat the statement's fixed part (every deal's history windows, the stage norms):
# 16 statements of ~10 dates took 255 s.
SNAPSHOT_ROWS_PER_STATEMENT = 10_000_000


def date_batches(dates: list[dt.date], n_rows: dict, max_rows: int) -> list[list[dt.date]]:
    """`dates` (in order) cut into consecutive batches of at most `max_rows` rows each by `n_rows`
    (rows per date; a date not in it counts 0), a batch holding one date at least. A range run
    over every as-of date works batch by batch, so its memory follows the batch, not the range
    (at scale 100 the 154 dates hold 28.7 M snapshot rows)."""
    out: list[list[dt.date]] = []
    total = 0
    for d in dates:
        n = n_rows.get(d, 0)
        if not out or total + n > max_rows:
            out.append([])
            total = 0
        out[-1].append(d)
        total += n
    return out


def rows_by_date(query, dates: list, table: str = "features.deal_snapshot") -> dict[dt.date, int]:
    """Rows of `table` per as_of_date among `dates` (dates or ISO keys; `query(sql, params)`: the
    warehouse's): what date_batches cuts by."""
    if not dates:
        return {}
    sizes = query(f"SELECT as_of_date, count(*) AS n FROM {table} WHERE as_of_date IN "
                  f"({', '.join('?' * len(dates))}) GROUP BY 1", list(dates))
    return dict(zip(sizes["as_of_date"].to_list(), sizes["n"].to_list()))


def snapshot_batches(query, keys: list[str], max_rows: int = ROWS_PER_PASS) -> list[list[str]]:
    """date_batches of as-of date keys by their rows in features.deal_snapshot."""
    dates = [dt.date.fromisoformat(k) for k in keys]
    return [[d.isoformat() for d in b] for b in date_batches(dates, rows_by_date(query, dates), max_rows)]
