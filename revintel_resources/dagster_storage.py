"""Dagster's sqlite event log, with its connections kept open (dagster.yaml names this class).

A range run of 154 as-of dates writes one materialization event per date and asset: ~1,500
events in `revintel demo`. Dagster's sqlite storage opens a new engine and connection for each
write and closes it again; closing the last connection of a WAL database checkpoints it, and
every commit is fsynced: ~130 ms per event on this box, a third of the demo's wall time. Here
each database file keeps one connection (per process), and commits use synchronous=NORMAL,
which in WAL mode is still consistent after a crash (a power cut can lose the last events, never
corrupt the file): ~10 ms per event. Same files, same schema, same layout as `storage: sqlite`,
so the UI, the daemon and older data directories read it unchanged.

A range run's materializations of one asset are stored as one batch (`store_event_batch`): one
transaction per file for the batch instead of two per event (3,238 events in the demo; measured
76.9 -> 74.4 s for the whole demo). Dagster hands batches to the storage only when the instance's
`_get_event_batch_size` is positive; stock Dagster reads it from DAGSTER_EVENT_BATCH_SIZE, and
`RevintelInstance` (dagster.yaml's `instance_class`, instance.py) answers it instead, so no
setting travels through the environment.

Two schema probes are remembered too: Dagster asks "does table asset_event_tags exist?" (through a
new engine and connection each time) and "has asset_keys column X?" (a PRAGMA through the
inspector) on every materialization event: ~3 s of the demo's ~90. Only a "yes" is remembered: a
migration adds tables and columns, none removes them while the instance runs (`wipe` forgets).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from dagster import DagsterInstance
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine, event
from sqlalchemy.pool import StaticPool

OPEN_RUN_FILES = 8  # one file per run plus the index: the runs of one CLI invocation come one after another
EVENT_BATCH = 10_000  # events per batch: a range run's whole step output (154 dates in the demo)


class RevintelInstance(DagsterInstance):
    """Dagster's instance with event batching on (dagster.yaml `instance_class`): a step output's
    per-partition materializations reach the event log as one `store_event_batch` call."""

    @classmethod
    def config_schema(cls) -> dict:  # no settings of its own (Dagster asks a custom class for them)
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> dict:
        from dagster._core.instance.ref import InstanceRef

        return InstanceRef.config_defaults(base_dir)

    def _get_event_batch_size(self) -> int:
        return EVENT_BATCH


def _normal_sync(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PersistentSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose per-file connections stay open between writes."""

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        # A range run announces each asset once, with its partition range, instead of one planned
        # event per partition (154 dates x 10 assets in the demo). Dagster's trade-off: the
        # partitions of a range run that fails show as missing, not failed, in the UI (the run itself
        # shows failed). Stock Dagster turns this on with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS.
        return True

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str):
        if getattr(self, "_pid", None) != os.getpid():  # a forked child opens its own connections
            self._pid, self._engines = os.getpid(), {}
        engine = self._engines.get(shard)
        if engine is None:
            # one connection, used under Dagster's own _db_lock (every access goes through _connect)
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=StaticPool,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            event.listen(engine, "connect", _normal_sync)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            runs = [k for k in self._engines if k != INDEX_SHARD_NAME]
            for old in runs[: max(0, len(runs) - OPEN_RUN_FILES + 1)]:
                self._engines.pop(old).dispose()
            self._engines[shard] = engine
        return engine

    def store_event_batch(self, events) -> None:
        """A range run's materializations of one asset: the events as store_event writes them, in
        the same order, but one transaction per file for the whole batch instead of two per event.
        Anything else (mixed runs or kinds) goes event by event, as Dagster's default does."""
        kinds = {e.dagster_event_type for e in events}
        if len({e.run_id for e in events}) != 1 or not kinds <= ASSET_EVENTS:
            for e in events:
                self.store_event(e)
            return
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            if any(i is None for i in ids):
                raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
            self._store_asset_event_tags(conn, events, ids)
            for e, event_id in zip(events, ids):
                self._store_asset_event(conn, e, event_id)

    def has_table(self, table_name: str) -> bool:
        known = self._known("_tables")
        if table_name not in known and super().has_table(table_name):
            known.add(table_name)
        return table_name in known

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        known = self._known("_asset_key_columns")
        if column_name not in known and super()._has_asset_key_col_on_connection(conn, column_name):
            known.add(column_name)
        return column_name in known

    def _known(self, name: str) -> set[str]:
        """The schema facts seen so far (facts about the files: they hold in a forked child too)."""
        if not hasattr(self, "_tables"):  # on first use: nothing depends on what Dagster's __init__ calls
            self._forget_schema()
        return getattr(self, name)

    def _forget_schema(self) -> None:
        self._tables, self._asset_key_columns = set(), set()

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:
            with self._engine(shard).connect() as conn, conn.begin():
                yield conn

    def _close_all(self) -> None:
        for engine in getattr(self, "_engines", {}).values():
            engine.dispose()
        self._engines = {}

    def wipe(self) -> None:
        with self._db_lock:
            self._close_all()  # the files are deleted: no connection may keep writing to them
            self._forget_schema()  # and the tables with them
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()
