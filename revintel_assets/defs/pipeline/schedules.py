"""The weekly digest: Mondays 06:00 UTC, for the day before the tick, but never past the data's
last date (docs/CONTRACT.md §4): an export that stopped arriving gets one digest of its last
date, not one per week of nothing."""

import datetime as dt

import dagster as dg

from revintel_assets import plan
from revintel_assets.defs.deals.partitions import as_of_dates
from revintel_resources.warehouse import Warehouse


def data_last_date() -> dt.date | None:
    """The export date the published analyst file holds (read-only; None before any run)."""
    import duckdb

    db = Warehouse.from_env().analyst_path
    if not db.exists():
        return None
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT max(export_date)::DATE FROM meta.source").fetchone()[0]
    except duckdb.Error:
        return None
    finally:
        con.close()


@dg.schedule(job_name=plan.job(plan.DIGEST_JOB).name, cron_schedule="0 6 * * 1", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Mondays 06:00 UTC: the weekly digest per manager for the day before (capped at the "
                         "data's last date; skipped when that digest exists).")
def weekly_digest_schedule(context: dg.ScheduleEvaluationContext):
    last = data_last_date()
    if last is None:
        return dg.SkipReason("nothing published yet")
    day = min(context.scheduled_execution_time.date() - dt.timedelta(days=1), last)
    key = day.isoformat()
    # registered only if the run is launched (evaluating or previewing the schedule registers nothing)
    new = [] if context.instance.has_dynamic_partition(as_of_dates.name, key) else [key]
    return dg.RunRequest(run_key=f"digest-{key}", partition_key=key, tags={"revintel/schedule": "weekly"},
                         dynamic_partitions_requests=[as_of_dates.build_add_request(new)] if new else [])


defs = dg.Definitions(schedules=[weekly_digest_schedule])
