"""The instance's event log (revintel_resources/dagster_storage.py): Dagster's sqlite files, kept open.

What is written through one instance is read by another process (the UI, the daemon) at once,
a range run's partitions are announced once per asset, not once per partition, and its
materializations are stored as one batch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]

READER = textwrap.dedent("""
    import sys
    import dagster as dg
    instance = dg.DagsterInstance.from_config(sys.argv[1])
    key = dg.AssetKey(["t", "a"])
    print(len(instance.fetch_materializations(key, limit=1000).records),
          len(instance.get_materialized_partitions(key)))
""")


def test_events_written_with_open_connections_are_read_by_another_process(tmp_path):
    from revintel_resources.dagster_storage import PersistentSqliteEventLogStorage
    from revintel_resources.instance import ensure_dagster_home

    home = ensure_dagster_home(tmp_path / "dagster_home")
    instance = dg.DagsterInstance.from_config(str(home))
    assert isinstance(instance.event_log_storage, PersistentSqliteEventLogStorage)
    key = dg.AssetKey(["t", "a"])
    for i in range(40):  # the connection stays open between these writes
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=f"p{i:02d}"))
    out = subprocess.run([sys.executable, "-c", READER, str(home)], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.split() == ["40", "40"]  # committed, and visible outside this process
    instance.wipe()  # the open files are closed before Dagster deletes them; writing goes on
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition="after"))
    assert len(instance.fetch_materializations(key, limit=100).records) == 1


def test_a_range_run_announces_each_asset_once(tmp_path, monkeypatch):
    from revintel_resources.instance import dagster_instance

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)
    days = dg.StaticPartitionsDefinition([f"2025-01-{d:02d}" for d in range(1, 21)])

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
    def daily(context) -> None:
        assert len(context.partition_keys) == 20

    instance = dagster_instance()
    storage = type(instance.event_log_storage)
    batches = []
    original = storage.store_event_batch
    monkeypatch.setattr(storage, "store_event_batch", lambda self, events: batches.append(len(events)) or original(self, events))
    job = dg.Definitions(assets=[daily]).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, tags={
        "dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-20"})
    events = instance.get_records_for_run(result.run_id, limit=1000).records
    kinds = [r.event_log_entry.dagster_event.event_type_value for r in events if r.event_log_entry.dagster_event]
    assert kinds.count("ASSET_MATERIALIZATION_PLANNED") == 1
    assert kinds.count("ASSET_MATERIALIZATION") == 20
    assert len(instance.get_materialized_partitions(daily.key)) == 20
    # the 20 materializations went to the index in one batch (one transaction), in the order Dagster
    # emitted them (the run's log), and the asset's record points at the last of them, as 20 single
    # writes would leave it
    assert batches == [20]
    emitted = [r.event_log_entry.dagster_event.partition for r in events if r.event_log_entry.dagster_event
               and r.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"]
    indexed = instance.fetch_materializations(daily.key, limit=100, ascending=True).records
    assert [r.partition_key for r in indexed] == emitted and sorted(emitted) == days.get_partition_keys()
    assert instance.get_latest_materialization_event(daily.key).dagster_event.partition == emitted[-1]


def test_schema_probes_are_asked_once_and_event_tags_still_stored(tmp_path, monkeypatch):
    """Dagster probes the index for table asset_event_tags on every materialization; the storage
    asks the file once, and the tags of every event are still written (and again after a wipe)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from revintel_resources.instance import ensure_dagster_home

    probes = []
    original = SqliteEventLogStorage.has_table
    monkeypatch.setattr(SqliteEventLogStorage, "has_table", lambda self, name: probes.append(name) or original(self, name))
    instance = dg.DagsterInstance.from_config(str(ensure_dagster_home(tmp_path / "dagster_home")))
    key = dg.AssetKey(["t", "tagged"])

    def report(version: str) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, tags={"dagster/data_version": version}))

    for i in range(30):
        report(f"v{i}")
    assert probes.count("asset_event_tags") == 1
    # a "no" is not remembered, and stays a plain False
    assert instance.event_log_storage.has_table("no_such_table") is False
    assert instance.event_log_storage.has_table("no_such_table") is False
    assert probes.count("no_such_table") == 2
    tags = instance.event_log_storage.get_event_tags_for_asset(key)
    assert sorted(t["dagster/data_version"] for t in tags) == sorted(f"v{i}" for i in range(30))
    instance.wipe()
    report("after")
    assert probes.count("asset_event_tags") == 2  # forgotten with the files, asked again
    assert [t["dagster/data_version"] for t in instance.event_log_storage.get_event_tags_for_asset(key)] == ["after"]
