"""Schedules and sensors evaluated against a real (temporary, persistent) Dagster instance."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from revintel_assets.definitions import load
from revintel_assets.defs.ops.schedules import monthly_retrain, nightly_rescore, target_key
from revintel_assets.defs.ops.sensors import source_files_changed
from revintel_resources.source import SourceResource

defs = load()


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


EXPORT = dt.date(2025, 12, 31)  # a 2025 demo's last date
REGISTERED = ["2025-12-01", "2025-12-08", "2025-12-29", "2025-12-31"]  # as the import registers them


@pytest.fixture
def published(tmp_path, monkeypatch, instance):
    """A data dir whose published warehouse holds a source exported on EXPORT, imported (as far as
    Dagster knows) once, with the import's as-of dates and training cutoffs registered."""
    import duckdb

    data = tmp_path / "data"
    (data / "warehouse").mkdir(parents=True)
    con = duckdb.connect(str(data / "warehouse" / "revintel.duckdb"))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.source AS SELECT 'x' AS source_path, ?::DATE AS export_date",
                [EXPORT])
    con.close()
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(data))
    instance.add_dynamic_partitions("as_of_date", REGISTERED)
    instance.add_dynamic_partitions("training_cutoff", ["2025-08-01", "2025-12-31"])
    instance.report_runless_asset_event(dg.AssetMaterialization(["staging", "source_import"]))
    return data


def _partitions(instance) -> dict[str, list[str]]:
    return {name: sorted(instance.get_dynamic_partitions(name)) for name in ("as_of_date", "training_cutoff")}


def _scored(instance, asset: str, key: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset.split("/"), partition=key))


def test_target_key_never_passes_the_data_or_the_tick():
    assert target_key(dt.date(2026, 11, 21), EXPORT, REGISTERED) == "2025-12-31"  # tick after the data
    assert target_key(dt.date(2025, 12, 30), EXPORT, REGISTERED) == "2025-12-29"  # tick inside the data
    assert target_key(dt.date(2025, 11, 1), EXPORT, REGISTERED) is None  # nothing registered that early
    assert target_key(dt.date(2026, 1, 1), None, REGISTERED) is None  # no data yet


def test_nightly_in_2026_on_a_2025_export_scores_its_last_date_and_registers_nothing(instance, published):
    """Issue 13: a 2026-11-22 tick on a 2025 demo registered 2026-11-21 and scored 2,297 'open' deals."""
    before = _partitions(instance)
    tick = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.timezone.utc)
    request = nightly_rescore(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2025-12-31"
    # "Preview tick result" evaluates the tick the way the daemon does (partition key resolved
    # against the instance): it must register nothing either
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                    repository_def=defs.get_repository_def())
    data = nightly_rescore.evaluate_tick(ctx)
    assert [r.partition_key for r in data.run_requests] == ["2025-12-31"]
    assert _partitions(instance) == before
    # scored since the import: no new data, the next ticks skip
    _scored(instance, "scores/deal_scores", "2025-12-31")
    skipped = nightly_rescore(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(skipped, dg.SkipReason) and "no new data" in skipped.skip_message
    # a new import (new data, or another source) makes the date due again
    instance.report_runless_asset_event(dg.AssetMaterialization(["staging", "source_import"]))
    again = nightly_rescore(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(again, dg.RunRequest) and again.partition_key == "2025-12-31"
    assert _partitions(instance) == before


def test_nightly_inside_the_data_scores_the_day_before_when_registered(instance, published):
    tick = dt.datetime(2025, 12, 30, 2, 0, tzinfo=dt.timezone.utc)
    request = nightly_rescore(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert request.partition_key == "2025-12-29"
    # the job it targets exists and covers snapshot -> scores -> explanations
    job = defs.resolve_job_def("nightly_rescore_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"features/deal_snapshot", "scores/deal_scores", "scores/deal_explanations"} <= keys


def test_weekly_judges_run_as_of_the_data_and_the_nightly_stays_a_rescore(instance, published):
    """The judges (backtest, swing tuning, outlook judged on past quarters) re-judge past origins:
    weekly, as of the data's last date, skipped once judged since the import; not in the nightly."""
    from revintel_assets.defs.forecast.schedules import weekly_judges

    tick = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.timezone.utc)
    request = weekly_judges(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2025-12-31"
    judges = {k.to_user_string() for k in defs.resolve_job_def(weekly_judges.job_name)
              .asset_layer.executable_asset_keys}
    assert {"forecast/forecast_backtest", "forecast/shock_tuning", "validation/deal_outlook"} <= judges
    nightly = {k.to_user_string() for k in defs.resolve_job_def("nightly_rescore_job").asset_layer.executable_asset_keys}
    assert "scores/deal_outlook" in nightly and not nightly & {"validation/deal_outlook", "forecast/forecast_backtest"}
    _scored(instance, "forecast/forecast_backtest", "2025-12-31")
    assert isinstance(weekly_judges(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)),
                      dg.SkipReason)


def test_schedules_skip_without_published_data(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "empty"))
    tick = dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.timezone.utc)
    assert isinstance(nightly_rescore(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)),
                      dg.SkipReason)
    assert instance.get_dynamic_partitions("as_of_date") == []


def test_monthly_retrain_trains_at_most_to_the_data_and_refreshes_icp(instance, published):
    before = _partitions(instance)
    tick = dt.datetime(2026, 4, 1, 3, 0, tzinfo=dt.timezone.utc)
    requests = monthly_retrain(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [r.partition_key for r in requests] == ["2025-12-31", None]
    assert requests[1].job_name == "icp_plan_job"
    assert _partitions(instance) == before
    _scored(instance, "models/win_probability", "2025-12-31")
    skipped = monthly_retrain(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(skipped, dg.SkipReason)


def _settled(folder: Path) -> None:
    """The folder's files as an export that finished writing minutes ago (the sensor waits for quiet)."""
    for f in folder.iterdir():
        os.utime(f, (time.time() - 600, time.time() - 600))


def test_the_source_sensor_waits_until_an_export_has_stopped_changing(instance, tmp_path):
    """A half-written sales_pipeline.csv was imported (and, its data ending earlier, replaced the
    warehouse's source). Files changed less than SETTLE_SECONDS ago are waited for, the cursor
    kept, and imported once quiet; a missing folder says so."""
    from revintel_assets.defs.ops.sensors import SETTLE_SECONDS

    folder = tmp_path / "exports"
    folder.mkdir()
    source = SourceResource(path=str(folder))
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
    ctx = dg.build_sensor_context(instance=instance, resources={"source": source})
    waiting = source_files_changed(ctx)
    assert isinstance(waiting, dg.SkipReason) and f"not changed for {SETTLE_SECONDS} s" in waiting.skip_message
    assert ctx.cursor is None
    _settled(folder)
    assert isinstance(source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source})),
                      dg.RunRequest)
    gone = source_files_changed(dg.build_sensor_context(
        instance=instance, resources={"source": SourceResource(path=str(tmp_path / "nowhere"))}))
    assert isinstance(gone, dg.SkipReason) and "is missing" in gone.skip_message


def test_source_sensor_fires_on_new_or_changed_files_only(instance, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    source = SourceResource(path=str(folder))
    empty = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source}))
    first_cursor = None
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
    _settled(folder)
    ctx = dg.build_sensor_context(instance=instance, resources={"source": source}, cursor=first_cursor)
    fired = source_files_changed(ctx)
    assert isinstance(fired, dg.RunRequest)
    again = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source},
                                                         cursor=ctx.cursor))
    assert isinstance(again, dg.SkipReason)
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n2\n")
    _settled(folder)
    changed = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source},
                                                           cursor=ctx.cursor))
    assert isinstance(changed, dg.RunRequest) and changed.run_key != fired.run_key
    assert empty is not None


def test_a_source_named_nowhere_is_the_one_the_data_directory_holds_not_the_demo(instance, tmp_path, monkeypatch):
    """`revintel ui` (no REVINTEL_SOURCE) in a directory last run on a real export, with a demo folder
    left from an earlier `revintel demo`: the sensor watched the demo folder, asked for an import on its
    first tick, and the import replaced the user's warehouse with the demo (an operations pass)."""
    import duckdb

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
    _settled(folder)
    data = tmp_path / "data"
    (data / "demo").mkdir(parents=True)
    (data / "demo" / "sales_pipeline.csv").write_text("opportunity_id\n9\n")
    _settled(data / "demo")
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(data))
    monkeypatch.delenv("REVINTEL_SOURCE", raising=False)
    assert SourceResource().folder() == (data / "demo").resolve()  # nothing imported yet: the demo
    (data / "warehouse").mkdir()
    con = duckdb.connect(str(data / "warehouse" / "revintel.duckdb"))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.source AS SELECT ? AS source_path", [str(folder)])
    con.close()
    assert SourceResource().folder() == folder.resolve()
    tick = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": SourceResource()}))
    assert isinstance(tick, dg.SkipReason)  # first look: the folder the warehouse holds, no import


def test_source_sensor_does_not_reimport_what_the_warehouse_already_holds(instance, tmp_path, monkeypatch):
    import duckdb

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
    _settled(folder)
    data = tmp_path / "data"
    (data / "warehouse").mkdir(parents=True)
    con = duckdb.connect(str(data / "warehouse" / "revintel.duckdb"))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.source AS SELECT ? AS source_path", [str(folder)])
    con.close()
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(data))
    source = SourceResource(path=str(folder))
    ctx = dg.build_sensor_context(instance=instance, resources={"source": source})
    assert isinstance(source_files_changed(ctx), dg.SkipReason)
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n2\n")
    _settled(folder)
    again = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source},
                                                         cursor=ctx.cursor))
    assert isinstance(again, dg.RunRequest)


def test_a_materialization_from_the_asset_graph_is_published(instance, tmp_path, monkeypatch):
    """A partition materialized (or backfilled) from the asset graph runs as Dagster's __ASSET_JOB:
    it wrote the work file, but the publish sensor skipped it ("run did not write the warehouse"),
    so readers saw stale tables until some plan job succeeded (an audit, following the runbook's
    backfill recipe)."""
    import duckdb
    import polars as pl

    from revintel_assets.defs.ops.sensors import publish_after_success
    from revintel_resources.warehouse import Warehouse

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    wh = Warehouse.from_env()
    wh.write("scores.deal_scores", pl.DataFrame({"as_of_date": [dt.date(2025, 12, 22)], "opportunity_id": ["O1"]}))
    run = instance.create_run_for_job(job_def=defs.resolve_implicit_global_asset_job_def(),
                                      status=dg.DagsterRunStatus.SUCCESS)
    assert run.job_name.startswith("__ASSET_JOB")
    event = dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=run.job_name)
    context = dg.build_run_status_sensor_context(sensor_name="publish_after_success", dagster_instance=instance,
                                                 dagster_run=run, dagster_event=event)
    result = publish_after_success(context)
    assert not isinstance(result, dg.SkipReason), result
    with duckdb.connect(str(wh.analyst_path), read_only=True) as con:
        assert con.execute("SELECT opportunity_id FROM scores.deal_scores").fetchall() == [("O1",)]


def test_a_source_without_deals_gets_its_icp_refreshed_monthly_once_per_import(instance, published):
    """Online Retail (a transaction log): no training cutoff, and monthly_retrain skipped ("no
    registered training_cutoff"), so its ICP and whitespace went stale for good."""
    instance.delete_dynamic_partition("training_cutoff", "2025-08-01")
    instance.delete_dynamic_partition("training_cutoff", "2025-12-31")
    tick = dt.datetime(2026, 4, 1, 3, 0, tzinfo=dt.timezone.utc)
    first = monthly_retrain(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(first, dg.RunRequest) and first.job_name == "icp_plan_job"
    instance.report_runless_asset_event(dg.AssetMaterialization(["features", "icp_cutoffs"]))
    done = monthly_retrain(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(done, dg.SkipReason) and "no deals" in done.skip_message
    instance.report_runless_asset_event(dg.AssetMaterialization(["staging", "source_import"]))  # a new export
    again = monthly_retrain(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(again, dg.RunRequest) and again.run_key != first.run_key


def test_an_import_the_cli_did_not_start_rebuilds_every_transaction_month(instance):
    """An audit: after the source sensor imported a newer export, its new month was registered but never
    built (transactions_job ran from no schedule or sensor): star_reconciles failed and the monthly ICP
    refresh scored a cutoff without that month. A successful import not started by the CLI (which runs
    transactions_job itself) now requests it over every registered month."""
    from revintel_assets.defs.ops.sensors import transactions_after_import

    def evaluate(tags):
        run = instance.create_run_for_job(job_def=defs.resolve_job_def("import_job"), status=dg.DagsterRunStatus.SUCCESS,
                                          tags=tags)
        event = dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=run.job_name)
        return transactions_after_import(dg.build_run_status_sensor_context(
            sensor_name="transactions_after_import", dagster_instance=instance, dagster_run=run, dagster_event=event))

    assert isinstance(evaluate({"revintel/trigger": "source files"}), dg.SkipReason)  # nothing registered yet
    instance.add_dynamic_partitions("transaction_month", ["2025-11-01", "2025-12-01", "2026-01-01"])
    request = evaluate({"revintel/trigger": "source files"})
    assert isinstance(request, dg.RunRequest), request
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) \
        == ("2025-11-01", "2026-01-01")
    assert isinstance(evaluate({"revintel/launched_by": "cli"}), dg.SkipReason)


def test_a_newer_export_copied_in_before_the_sensors_first_look_is_imported(instance, tmp_path, monkeypatch):
    """A re-check: files copied over the source folder after `revintel demo` (or before the first `revintel
    ui`) were never imported: the sensor's first settled look asked only whether the warehouse came from
    this folder. It now asks whether it came from these files (meta.source.fingerprint)."""
    import duckdb

    from revintel_assets.source_switch import fingerprint

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
    _settled(folder)
    data = tmp_path / "data"
    (data / "warehouse").mkdir(parents=True)
    con = duckdb.connect(str(data / "warehouse" / "revintel.duckdb"))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.source AS SELECT ? AS source_path, ? AS fingerprint",
                [str(folder), fingerprint(folder)])
    con.close()
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(data))
    source = SourceResource(path=str(folder))
    tick = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source}))
    assert isinstance(tick, dg.SkipReason) and "first look" in str(tick.skip_message)  # the files it holds
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n2\n")  # a newer export, copied in
    _settled(folder)
    first = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source}))
    assert isinstance(first, dg.RunRequest), first
