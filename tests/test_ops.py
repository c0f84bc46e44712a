"""Schedules and sensors evaluated against a real (temporary, persistent) Dagster instance."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import pytest

from revintel_assets.definitions import load
from revintel_assets.defs.ops.schedules import monthly_retrain, nightly_rescore
from revintel_assets.defs.ops.sensors import source_files_changed
from revintel_resources.source import SourceResource

defs = load()


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def test_nightly_rescore_scores_the_day_before_its_tick(instance):
    tick = dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.timezone.utc)
    request = nightly_rescore(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert request.partition_key == "2026-03-04"
    assert instance.has_dynamic_partition("as_of_date", "2026-03-04")
    # the job it targets exists and covers snapshot -> scores -> explanations
    job = defs.resolve_job_def("nightly_rescore_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"features/deal_snapshot", "scores/deal_scores", "scores/deal_explanations"} <= keys


def test_monthly_retrain_trains_a_new_cutoff_and_refreshes_icp(instance):
    tick = dt.datetime(2026, 4, 1, 3, 0, tzinfo=dt.timezone.utc)
    requests = monthly_retrain(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [r.partition_key for r in requests] == ["2026-03-31", None]
    assert requests[1].job_name == "icp_plan_job"
    assert instance.has_dynamic_partition("training_cutoff", "2026-03-31")


def test_source_sensor_fires_on_new_or_changed_files_only(instance, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    source = SourceResource(path=str(folder))
    empty = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source}))
    first_cursor = None
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
    ctx = dg.build_sensor_context(instance=instance, resources={"source": source}, cursor=first_cursor)
    fired = source_files_changed(ctx)
    assert isinstance(fired, dg.RunRequest)
    again = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source},
                                                         cursor=ctx.cursor))
    assert isinstance(again, dg.SkipReason)
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n2\n")
    changed = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source},
                                                           cursor=ctx.cursor))
    assert isinstance(changed, dg.RunRequest) and changed.run_key != fired.run_key
    assert empty is not None


def test_source_sensor_does_not_reimport_what_the_warehouse_already_holds(instance, tmp_path, monkeypatch):
    import duckdb

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "sales_pipeline.csv").write_text("opportunity_id\n1\n")
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
    again = source_files_changed(dg.build_sensor_context(instance=instance, resources={"source": source},
                                                         cursor=ctx.cursor))
    assert isinstance(again, dg.RunRequest)
