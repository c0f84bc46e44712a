"""The DuckDB warehouse: one *work* file that runs write, one *published* file that readers open.

DuckDB lets only one process hold a database file at a time (even a read-only open fails while a
writer has it), so:

* every access to the work file goes through `Warehouse.connect()`, which takes a cross-process
  file lock and opens a short-lived connection; the lock is held only as long as that connection;
* readers (Streamlit, analysts) never touch the work file; they open the analyst file, which
  `publish()` swaps atomically with `os.replace`, so a reader sees the old or the new file, never
  a half-written one (an already open reader keeps the old inode). The file swapped in is one of
  two standby copies, brought up to date by replaying the logged partition writes or copied
  whole (publish.py).

`write()` replaces a whole table or some of its partitions in a single transaction, so a crash at
any point leaves the previous contents in place.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import filelock
import polars as pl

from revintel_resources import paths
from revintel_resources import publish as publishing
from revintel_resources.backends import DEFAULT as DEFAULT_BACKEND
from revintel_resources.backends import Backend
from revintel_resources.backends import resolve as resolve_backend
from revintel_resources.glossary import GLOSSARY, TABLE_GLOSSARY

TABLE_LOG = publishing.TABLE_LOG  # the write log publish() replays
PLACEHOLDER = publishing.PLACEHOLDER  # how the comment of an empty stand-in view starts (ensure_placeholders)
# connections this process opened that may write outside the log: what is cached from the log's
# position (forecast/assets.py timing_fit) is stale once this moves
unlogged_opens = 0

# Open sessions (Warehouse.session), by (process, thread, work file): every Warehouse object of
# that file in the thread uses the session's connection. Keyed by file, not by object, because a
# step builds several (`warehouse.get()`, `Warehouse.from_env()`), and a second object opening the
# file itself would wait on the writer lock its own thread holds.
_SESSIONS: dict[tuple[int, int, str], list] = {}  # -> [connection, opened (or used) for writing]

# A step's session (step_session) only on a work file smaller than this. Inside a session DuckDB
# keeps the blocks it has read cached until the session ends, where each closed connection used to
# drop them: on a small file that costs little memory and saves the ~13 ms of every open (212
# opens, 4.7 s of the demo's main process, measured); at scale 100 (a 20 GB file, a 6 GB buffer
# limit, a build with 100 MiB of margin under 8 GiB) it could cost gigabytes. Opening is then a
# small share of each step anyway.
STEP_SESSION_MAX_BYTES = 1 << 30


class WarehouseLockTimeout(TimeoutError):
    """Another process held the writer lock for longer than we were willing to wait."""


class PublishRefused(RuntimeError):
    """The work file holds another source than the run that asked to publish it read."""


class PartitionViolation(ValueError):
    """A write put rows outside the partition it declared (it does not own those rows)."""


@dataclass(frozen=True)
class PartitionFilter:
    """The rows of one partition dimension; exactly one of:

    values: `column IN values`; range: `column BETWEEN lo AND hi` (inclusive, for key ranges);
    window: `column >= start AND column < end` (half-open, for time windows: right for DATE and TIMESTAMP).
    """

    column: str
    values: Sequence[Any] | None = None
    range: tuple[Any, Any] | None = None
    window: tuple[Any, Any] | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.values, self.range, self.window)) != 1:
            raise ValueError(f"partition on {self.column!r}: give exactly one of values / range / window")
        if self.values is not None and len(self.values) == 0:
            raise ValueError(f"partition on {self.column!r}: values must not be empty")

    def sql(self) -> tuple[str, list[Any]]:
        col = quote(self.column)
        if self.range is not None:
            return f"{col} BETWEEN ? AND ?", list(self.range)
        if self.window is not None:
            return f"{col} >= ? AND {col} < ?", list(self.window)
        return f"{col} IN ({', '.join('?' * len(self.values))})", list(self.values)

    def key(self) -> str:
        """The partition as logged in meta.table_log: `a,b` for values, `lo..hi` / `[start, end)` for ranges."""
        if self.range is not None:
            return f"{self.range[0]}..{self.range[1]}"
        if self.window is not None:
            return f"[{self.window[0]}, {self.window[1]})"
        return ",".join(map(str, self.values))


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def split_table(table: str) -> tuple[str, str]:
    parts = table.split(".")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"table must be 'schema.name', got {table!r}")
    return parts[0], parts[1]


def qualified(table: str) -> str:
    return ".".join(quote(p) for p in split_table(table))


def _sql_literal(text: str) -> str:
    # COMMENT ON does not take bound parameters, so the comment is inlined as a string literal.
    return "'" + text.replace("'", "''") + "'"


class Warehouse:
    def __init__(
        self,
        work_path: Path,
        lock_path: Path,
        analyst_path: Path,
        lock_timeout_s: float = 900,
        backend: Backend | None = None,
    ) -> None:
        self.work_path = Path(work_path)
        self.lock_path = Path(lock_path)
        self.analyst_path = Path(analyst_path)
        self.lock_timeout_s = lock_timeout_s
        self.backend = backend or Backend(DEFAULT_BACKEND)  # backends.py: REVINTEL_WAREHOUSE; no memory cap
        self._lock: filelock.FileLock | None = None
        self._lock_pid: int | None = None
        self.last_publish: str | None = None  # what the last publish() did (replayed or copied whole), and how long

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, lock_timeout_s: float = 900) -> Warehouse:
        """Paths from `paths.py`; with `data_dir`, the same layout re-rooted there. The engine comes
        from $REVINTEL_WAREHOUSE (backends.py; default: the local DuckDB files)."""

        def at(p: Path) -> Path:
            return Path(data_dir).expanduser().resolve() / p.relative_to(paths.data_dir()) if data_dir else p

        return cls(
            at(paths.work_db_path()), at(paths.writer_lock_path()), at(paths.analyst_db_path()), lock_timeout_s,
            backend=resolve_backend(),
        )

    # -- connections ----------------------------------------------------------------------------

    def _file_lock(self) -> filelock.FileLock:
        # A FileLock object must not cross a fork, so each process builds its own.
        if self._lock is None or self._lock_pid != os.getpid():
            self._lock, self._lock_pid = filelock.FileLock(str(self.lock_path)), os.getpid()
        return self._lock

    def _session_key(self) -> tuple[int, int, str]:
        # the real path: the same file reached through a symlink or a relative data directory is
        # one session (another key would wait on the lock its own thread holds)
        return os.getpid(), threading.get_ident(), os.path.realpath(self.work_path)

    @property
    def in_session(self) -> bool:
        """Is a session (session(), step_session()) open on this work file in this thread?"""
        return self._session_key() in _SESSIONS

    @contextmanager
    def session(self, writes: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection (and the writer lock) for the whole block: every `connect()` (query,
        write, ...) on this work file in this thread inside it, from this Warehouse object or
        another one, reuses that connection instead of opening the file again. Opening and closing
        cost ~15-25 ms each, closing after a write also a checkpoint: the ICP steps made 124 of
        them (7 s of CPU, 14 s of wall on a busy box). For a step that holds the `warehouse` pool
        anyway; the lock is held until the block ends. Re-entrant.
        writes=False: as connect(writes=False) until a connect(writes=True) inside it, which
        counts as an unlogged write from then on."""
        key = self._session_key()
        if key in _SESSIONS:
            with self.connect(writes=writes) as con:
                yield con
            return
        with self.connect(writes=writes) as con:
            _SESSIONS[key] = [con, writes]
            try:
                yield con
            finally:
                del _SESSIONS[key]

    def _small(self) -> bool:
        return bool(self.backend.local_file and self.work_path.exists()
                    and self.work_path.stat().st_size < STEP_SESSION_MAX_BYTES)

    @contextmanager
    def step_session(self) -> Iterator[None]:
        """A session for a whole Dagster step (resources.warehouse_step), where it pays: a local work
        file under STEP_SESSION_MAX_BYTES (see there). Otherwise the step's connections open one by one."""
        with self.session(writes=False) if self._small() else contextlib.nullcontext():
            yield

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """An in-memory database attached to this session's connection for the block; yields its
        name. Its tables are visible to the session's cursors (an attached database belongs to the
        DuckDB instance, not to one connection, unlike TEMP tables), cost no writes to the work file,
        and are dropped with it at the end. Inside a session only (a connection of its own would
        lose the database when it closes)."""
        session = _SESSIONS.get(self._session_key())
        if session is None:
            raise RuntimeError("Warehouse.scratch() needs an open session()")
        con, db = session[0], f"revintel_scratch_{uuid.uuid4().hex[:12]}"
        con.execute(f"ATTACH ':memory:' AS {db}")
        try:
            yield db
        finally:
            con.complete()
            con.execute(f"DETACH {db}")  # and every table left in it

    @contextmanager
    def selects_ahead(self, selects: Sequence[str]) -> Iterator[Iterator[str]]:
        """The SELECTs of `selects`, in order, for `write(sql=...)`: each one's rows are computed while
        the caller writes the one before, so no SELECT may read what those writes change. Inside a
        session on a small work file (STEP_SESSION_MAX_BYTES), a cursor of the session's connection
        runs the next SELECT on a thread of its own into a table of an in-memory database attached
        for the block, and the caller gets `SELECT * FROM` that table (at most two are held). Why:
        one cutoff's ICP feature SQL keeps DuckDB's threads only partly busy, and the two statements
        run at once (the demo's icp_features_job, 21 cutoffs: 6.0 / 6.2 / 6.8 -> 4.3 / 4.8 / 4.3 s,
        the same rows). Elsewhere (a large file, where a cutoff's rows would be gigabytes held in
        memory, or no session) the SELECTs come back as they are. The write path stays `write()`:
        one transaction per partition, logged."""
        session = _SESSIONS.get(self._session_key())
        if session is None or len(selects) < 2 or not self._small():
            yield iter(selects)
            return
        con = session[0]

        def build(i: int, cur: duckdb.DuckDBPyConnection) -> None:
            """Table i, on its own cursor; every change to the attached database's catalog is made
            here, one after the other (table i - 2 was written by the caller before this began)."""
            try:
                _session_settings(cur)
                if i >= 2:
                    cur.execute(f"DROP TABLE {db}.t{i - 2}")
                cur.execute(f"CREATE TABLE {db}.t{i} AS {selects[i]}")
            finally:
                cur.close()

        def tables() -> Iterator[str]:
            # a cursor is a connection of its own to the same database (made here: a connection
            # object is not shared between threads), so the two statements run at once
            pending = worker.submit(build, 0, con.cursor())
            for i in range(len(selects)):
                pending.result()  # re-raises the SELECT's error here
                if i + 1 < len(selects):  # the caller has written table i - 1 by now
                    pending = worker.submit(build, i + 1, con.cursor())
                yield f"SELECT * FROM {db}.t{i}"

        with self.scratch() as db:
            worker = ThreadPoolExecutor(1, thread_name_prefix="revintel-ahead")
            try:
                yield tables()
            finally:
                worker.shutdown(wait=True, cancel_futures=True)

    def _unlogged_write(self) -> None:
        """A connection that may write outside the log: the published copy must be copied whole next
        time (invalidate, before anything is written), and timing_fit's kept fits are stale."""
        global unlogged_opens
        unlogged_opens += 1
        if self.backend.local_file:
            publishing.invalidate(self.analyst_path)

    @contextmanager
    def connect(self, writes: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Writer lock + a read-write connection to the work file, both released on exit
        (inside `session()`: the session's connection, released when the session ends).

        writes=False promises the block changes nothing a reader sees (queries; scratch tables in an
        attached in-memory database). Otherwise its writes are not in the log, so the next publish
        copies the whole file instead of replaying the log (publish.py): `write()` logs its own.

        Keep the block short: every other run and `publish()` waits for it.
        """
        open_session = _SESSIONS.get(self._session_key())
        if open_session is not None:
            con, wrote = open_session
            if writes and not wrote:  # a read-only session's first write
                open_session[1] = True
                self._unlogged_write()
            # a caller may have left a result of execute() half-read (fetchone): DuckDB refuses
            # any other statement on the connection until it is run to its end
            con.complete()
            yield con
            return
        self.work_path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._file_lock()
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except filelock.Timeout as e:
            raise WarehouseLockTimeout(
                f"could not get the warehouse writer lock {self.lock_path} within {self.lock_timeout_s:g}s; "
                "another run (or publish) is holding it"
            ) from e
        try:
            if writes:  # before anything is written: a crash after it costs a whole copy, not a stale table
                self._unlogged_write()
            if self.backend.local_file:
                con = duckdb.connect(str(self.work_path))
                if self.backend.memory_limit:
                    # DuckDB's default (80% of RAM) let a 154-date snapshot backfill at scale 100
                    # take 20 GB; capped, it spills to warehouse/.work/revintel.duckdb.tmp instead.
                    con.execute(f"SET memory_limit = '{self.backend.memory_limit}'")
            else:  # e.g. MotherDuck: the service arbitrates concurrent writers and readers
                con = duckdb.connect(self.backend.database, config=dict(self.backend.config))
            _session_settings(con)
            try:
                yield con
            finally:
                con.close()
        finally:
            lock.release()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        with self.connect(writes=False) as con:
            # DuckDB 2.x: the DB-API result has no .pl()/.arrow(); a relation does, and reads rows once.
            return con.sql(sql, params=params).pl()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        with self.connect() as con:
            con.execute(sql, params)

    def table_exists(self, table: str) -> bool:
        with self.connect(writes=False) as con:
            return table_exists(con, table)

    def row_count(self, table: str, where: str | None = None) -> int:
        sql = f"SELECT count(*) FROM {qualified(table)}" + (f" WHERE {where}" if where else "")
        with self.connect(writes=False) as con:
            return con.execute(sql).fetchone()[0]

    def ensure_view(self, view: str, select: str) -> bool:
        """CREATE OR REPLACE VIEW `view` AS `select`, only when the file's view is missing or defined
        otherwise; True when it was (re)made. A view is not in the write log, so making it costs the
        next publish a whole copy: re-made on every whitespace run, it did so for every ICP refresh.
        DuckDB keeps a view's SQL normalised, so the wanted one is made in a transaction rolled back
        (nothing written) and its normalised SQL compared."""
        schema, name = split_table(view)
        normalised = ("SELECT sql FROM duckdb_views() WHERE database_name = current_database() "
                      "AND schema_name = ? AND view_name = ?")
        with self.connect(writes=False) as con:
            have = con.execute(normalised, [schema, name]).fetchall()
            if have:
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {qualified(view)} AS {select}")
                    want = con.execute(normalised, [schema, name]).fetchall()
                finally:
                    con.execute("ROLLBACK")
                if want == have:
                    return False
        with self.connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            con.execute(f"CREATE OR REPLACE VIEW {qualified(view)} AS {select}")
        return True

    def ensure_placeholders(self, tables: dict[str, dict[str, str]], why: str) -> list[str]:
        """An empty view with the given columns ({column: DuckDB type}) for every table of `tables`
        that is neither a table nor a view yet, so that a query naming it finds no rows instead of
        no table (docs/CONTRACT.md §3: the tables are stable, whatever the source could produce).
        Its comment starts with PLACEHOLDER and says `why`; the first write() of the table replaces
        it, and writers' `table_exists` does not see it (a view). Returns the views made."""
        def missing(con) -> dict[str, dict[str, str]]:
            have = {f"{s}.{t}" for s, t in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal").fetchall()}
            return {t: cols for t, cols in tables.items() if t not in have}

        with self.connect(writes=False) as con:
            if not missing(con):
                return []  # nothing to write: the published copy stays replayable
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            wanted = missing(con)  # again inside the transaction: a writer may have made one since
            for table, cols in wanted.items():
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(split_table(table)[0])}")
                select = ", ".join(f"NULL::{typ} AS {quote(col)}" for col, typ in cols.items())
                con.execute(f"CREATE VIEW {qualified(table)} AS SELECT {select} WHERE false")
                con.execute(f"COMMENT ON VIEW {qualified(table)} IS {_sql_literal(f'{PLACEHOLDER}: {why}')}")
                for col in (c for c in cols if c in GLOSSARY):  # its columns say what they will hold
                    con.execute(f"COMMENT ON COLUMN {qualified(table)}.{quote(col)} IS {_sql_literal(GLOSSARY[col])}")
            con.execute("COMMIT")
        return sorted(wanted)

    # -- writes ---------------------------------------------------------------------------------

    def write(
        self,
        table: str,
        data: pl.DataFrame | None = None,
        *,
        sql: str | None = None,
        params: Sequence[Any] | None = None,
        partition_column: str | None = None,
        partition_values: Sequence[Any] | None = None,
        partition_range: tuple[Any, Any] | None = None,
        partition: Sequence[PartitionFilter] | None = None,
        comment: str | None = None,
        column_comments: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> int:
        """Replace the table (or the given partition of it) with `data` or the rows of `sql`; returns rows written.

        Partition: `partition_column` with `partition_values` (IN) or `partition_range` (inclusive BETWEEN),
        or `partition` = several PartitionFilter ANDed together (multi-dimensional partitions).
        `sql` is a SELECT run in the same connection (with `params`), so big tables stay in DuckDB.
        All of it is one transaction: on any error the table keeps its previous contents.
        """
        if (data is None) == (sql is None):
            raise ValueError("write(): give exactly one of data / sql")
        filters = list(partition or [])
        if partition_column is not None:
            filters.append(PartitionFilter(partition_column, partition_values, partition_range))
        elif partition_values is not None or partition_range is not None:
            raise ValueError("partition_values / partition_range need partition_column")

        with self.connect(writes=False) as con:  # logged below, in the write's transaction: replayable
            src_name = None
            if data is not None:
                src_name = f"__revintel_src_{uuid.uuid4().hex}"
                con.register(src_name, data)
                source, source_params = f"SELECT * FROM {quote(src_name)}", []
            else:
                source, source_params = f"SELECT * FROM ({sql.strip().rstrip(';')})", list(params or [])
            con.execute("BEGIN TRANSACTION")
            try:
                n = self._write_in_transaction(con, table, source, source_params, filters)
                self._comment(con, table, comment, column_comments)
                _log(con, table, filters, n, run_id)
                con.execute("COMMIT")
            except BaseException:
                # BaseException too: a KeyboardInterrupt must not leave a half-applied transaction behind.
                with contextlib.suppress(duckdb.Error):  # e.g. the failure was in COMMIT itself
                    con.execute("ROLLBACK")
                raise
            finally:
                if src_name is not None:  # a session's connection lives on: do not keep the frame
                    con.unregister(src_name)
            return n

    def _write_in_transaction(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        source: str,
        source_params: list[Any],
        filters: list[PartitionFilter],
    ) -> int:
        schema, _ = split_table(table)
        qtable = qualified(table)
        rel = con.sql(source, params=source_params or None)  # binds only: names and types, no rows read
        # An all-null polars column has type NULL: it takes the existing table's type, or its
        # placeholder view's (the contract's type: a source without quotas wrote quota_source as
        # INTEGER, VARCHAR elsewhere); a new one is stored as DuckDB's CTAS would (INTEGER).
        null_cols = {c for c, t in zip(rel.columns, rel.types) if str(t) == '"NULL"'}
        new_cols = {c: ("INTEGER" if c in null_cols else str(t)) for c, t in zip(rel.columns, rel.types)}
        if null_cols:
            new_cols.update({c: t for c, t in _columns(con, table).items() if c in null_cols})
        missing = [f.column for f in filters if f.column not in new_cols]
        if missing:
            raise ValueError(f"{table}: partition column(s) {missing} not in the data ({list(new_cols)})")

        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        drop_placeholder(con, table)  # the table's first rows: its empty stand-in goes, in this transaction
        if table_exists(con, table):
            self._evolve(con, table, new_cols, full_replace=not filters)
        else:
            _create(con, table, new_cols)

        where, where_params = where_clause(filters)
        con.execute(f"DELETE FROM {qtable}" + (f" WHERE {where}" if where else ""), where_params)
        n = self._insert(con, qtable, source, source_params)
        if filters:
            # The partition was emptied above, so every row now in it came from this insert.
            inside = con.execute(f"SELECT count(*) FROM {qtable} WHERE {where}", where_params).fetchone()[0]
            if inside != n:
                raise PartitionViolation(
                    f"{table}: {n - inside} of {n} rows fall outside the declared partition "
                    f"({'; '.join(f'{f.column}: {f.key()}' for f in filters)}); nothing was written"
                )
        return n

    def _insert(self, con: duckdb.DuckDBPyConnection, qtable: str, source: str, source_params: list[Any]) -> int:
        # Its own method so the crash test can signal "inside the transaction" right before it.
        # BY NAME: column order does not matter, and table columns absent from the source become NULL.
        return con.execute(f"INSERT INTO {qtable} BY NAME {source}", source_params or None).fetchone()[0]

    def _evolve(self, con: duckdb.DuckDBPyConnection, table: str, new_cols: dict[str, str], full_replace: bool) -> None:
        """Make the existing table accept the new columns: add missing ones, widen types, or rebuild it."""
        qtable = qualified(table)
        old_cols = _columns(con, table)
        alters = []
        for col, new_t in new_cols.items():
            old_t = old_cols.get(col)
            if old_t is None:
                alters.append(f"ALTER TABLE {qtable} ADD COLUMN {quote(col)} {new_t}")
            elif old_t == new_t or _casts_implicitly(con, new_t, old_t):
                continue  # e.g. INTEGER into BIGINT: the INSERT casts losslessly
            elif _casts_implicitly(con, old_t, new_t):
                # Widen (e.g. BIGINT -> DOUBLE) so rows of other partitions keep their values.
                alters.append(f"ALTER TABLE {qtable} ALTER COLUMN {quote(col)} TYPE {new_t}")
            elif full_replace:
                # Every row is replaced anyway: rebuild with the new types (still inside the transaction).
                con.execute(f"DROP TABLE {qtable}")
                _create(con, table, new_cols)
                return
            elif _only_nulls(con, qtable, col):
                # Typed from nothing but NULLs (e.g. INTEGER for a message no row had yet): no value
                # can be lost, so the column takes the type of the first real values.
                alters.append(f"ALTER TABLE {qtable} ALTER COLUMN {quote(col)} TYPE {new_t}")
            else:
                raise TypeError(f"{table}.{col}: new type {new_t} cannot be stored in the existing {old_t} column")
        for stmt in alters:
            con.execute(stmt)

    @staticmethod
    def _comment(
        con: duckdb.DuckDBPyConnection, table: str, comment: str | None, column_comments: dict[str, str] | None
    ) -> None:
        qtable = qualified(table)
        schema, name = split_table(table)
        if comment is None and table in TABLE_GLOSSARY and not con.execute(
                "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, name]).fetchone()[0]:
            comment = TABLE_GLOSSARY[table]
        if comment is not None:
            con.execute(f"COMMENT ON TABLE {qtable} IS {_sql_literal(comment)}")
        uncommented = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? AND comment IS NULL",
            [schema, name]).fetchall()}
        defaults = {c: t for c, t in GLOSSARY.items() if c in uncommented}
        for col, text in {**defaults, **(column_comments or {})}.items():
            con.execute(f"COMMENT ON COLUMN {qtable}.{quote(col)} IS {_sql_literal(text)}")

    # -- publishing -----------------------------------------------------------------------------

    def _stale_publish_files(self) -> list[Path]:
        return sorted([*self.analyst_path.parent.glob(f".{self.analyst_path.name}.*.tmp"),
                       *publishing.standby_dir(self.analyst_path).glob(".*.tmp")])

    def remove_stale_publish_files(self) -> list[Path]:
        """Copies left by a publish that was killed before its rename (each as large as the work
        file). Every publish holds the writer lock while its copy exists, so under the lock any
        such file is stale."""
        if not self.backend.local_file or not self.analyst_path.parent.is_dir():
            return []
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._file_lock()
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except filelock.Timeout:
            return []  # a long writer: the next start cleans up
        try:
            stale = self._stale_publish_files()
            for path in stale:
                path.unlink(missing_ok=True)
            return stale
        finally:
            lock.release()

    def publish(self, expected_source: str | Path | None = None) -> Path:
        """Atomically give readers a consistent copy of the work file (publish.py: a standby copy,
        replayed from the write log or copied whole, then swapped in). What it did is in
        `self.last_publish`.

        expected_source: the source folder the publishing run read; when the work file's
        meta.source names another (a run on another source slipped in between), refuse rather
        than publish a mix. On a remote backend (MotherDuck) readers query the service itself:
        nothing to copy."""
        if not self.backend.local_file:
            return self.analyst_path
        if self.in_session:
            raise RuntimeError("publish() inside a Warehouse.session(): its connection would stay open on the work file")
        self.analyst_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with self.connect(writes=False) as con:
            for stale in self._stale_publish_files():  # a publish killed before its rename
                stale.unlink(missing_ok=True)
            if expected_source is not None and table_exists(con, "meta.source"):
                held = [r[0] for r in con.execute("SELECT DISTINCT source_path FROM meta.source").fetchall()]
                if held and any(Path(h).resolve() != Path(expected_source).resolve() for h in held):
                    raise PublishRefused(f"the warehouse holds {', '.join(held)}, not {expected_source} that this "
                                         "run was given as its source: not published (another run on another "
                                         "source wrote it, or this run's source.path names another folder)")
            # Fold the WAL into the file; closing the connection (below) makes the file self-contained.
            con.execute("CHECKPOINT")
            standby = publishing.pick_standby(self.analyst_path)
            position = publishing.log_position(con)
            work = con.execute("SELECT current_database()").fetchone()[0]
            replayed, done = publishing.replay(con, work, standby, logged_where)
            con.close()
            wal = self.work_path.with_name(self.work_path.name + ".wal")
            if wal.exists():
                # Only happens if this process holds another connection to the work file.
                raise RuntimeError(f"{wal} still exists after checkpoint; refusing to publish a partial copy")
            if not replayed:  # still under the lock: no writer can change the work file while we copy it
                publishing.copy_whole(self.work_path, standby)
                done = f"copied the whole work file ({self.work_path.stat().st_size / 2**30:.2f} GiB; {done})"
            publishing.mark_synced(standby, position)
            publishing.swap(standby, self.analyst_path)
        self.last_publish = f"{done}; published in {time.perf_counter() - start:.1f} s"
        return self.analyst_path


# -- helpers on an open connection ------------------------------------------------------------------


def _session_settings(con: duckdb.DuckDBPyConnection) -> None:
    """What every connection to the warehouse sets for itself (SET is per connection)."""
    # DuckDB turns an ASOF join whose probe side it *estimates* below 64 rows into a nested
    # loop; a list of as-of dates is always estimated tiny, and the snapshot of 20 dates
    # took 14 s instead of 1 s that way (the whole demo backfill: 351 s instead of 7).
    con.execute("SET asof_loop_join_threshold = 0")


def drop_placeholder(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Drop the placeholder view (ensure_placeholders) standing in for `table`, if there is one; any
    other view of that name stays (creating the table then fails, as it always did)."""
    schema, name = split_table(table)
    found = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() "
                        "AND schema_name = ? AND view_name = ? AND starts_with(coalesce(comment, ''), ?)",
                        [schema, name, PLACEHOLDER]).fetchone()[0]
    if found:
        con.execute(f"DROP VIEW {qualified(table)}")
    return bool(found)


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = split_table(table)
    sql = (
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = ? AND table_name = ?"
    )
    return con.execute(sql, [schema, name]).fetchone()[0] > 0


def has_columns(con: duckdb.DuckDBPyConnection, table: str, *columns: str) -> bool:
    """Does `table` exist with every one of `columns` (a reader of a file an older revintel wrote)?"""
    return set(columns) <= set(_columns(con, table))


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = split_table(table)
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name],
    ).fetchall()
    return dict(rows)


def _create(con: duckdb.DuckDBPyConnection, table: str, cols: dict[str, str]) -> None:
    col_sql = ", ".join(f"{quote(c)} {t}" for c, t in cols.items())
    con.execute(f"CREATE TABLE {qualified(table)} ({col_sql})")


def _only_nulls(con: duckdb.DuckDBPyConnection, qtable: str, col: str) -> bool:
    return con.execute(f"SELECT count({quote(col)}) = 0 FROM {qtable}").fetchone()[0]


def _casts_implicitly(con: duckdb.DuckDBPyConnection, src_type: str, dst_type: str) -> bool:
    return con.execute(f"SELECT can_cast_implicitly(NULL::{src_type}, NULL::{dst_type})").fetchone()[0]


def where_clause(filters: Sequence[PartitionFilter]) -> tuple[str, list[Any]]:
    """SQL condition (filters ANDed) and its parameters; empty for no filters."""
    parts, params = [], []
    for f in filters:
        s, p = f.sql()
        parts.append(f"({s})")
        params += p
    return " AND ".join(parts), params


def _log(con: duckdb.DuckDBPyConnection, table: str, filters: Sequence[PartitionFilter], n: int,
         run_id: str | None) -> None:
    """One row per write: what the Home page's freshness reads, and what publish() replays (`filters`:
    the partition as JSON, NULL for the whole table; `kind` 'write')."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE_LOG} (table_name VARCHAR, partition_key VARCHAR, "
        "row_count BIGINT, written_at TIMESTAMP, run_id VARCHAR, kind VARCHAR, filters VARCHAR)"
    )
    if "filters" not in _columns(con, TABLE_LOG):  # a log written before publish replayed it
        con.execute(f"ALTER TABLE {TABLE_LOG} ADD COLUMN kind VARCHAR")
        con.execute(f"ALTER TABLE {TABLE_LOG} ADD COLUMN filters VARCHAR")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # ok-now: when the write happened (a log), never a feature
    as_json = json.dumps([{"column": f.column, "values": None if f.values is None else list(f.values),
                           "range": f.range and list(f.range), "window": f.window and list(f.window)}
                          for f in filters], default=str, sort_keys=True) if filters else None
    con.execute(f"INSERT INTO {TABLE_LOG} BY NAME SELECT ? AS table_name, ? AS partition_key, ? AS row_count, "
                "? AS written_at, ? AS run_id, 'write' AS kind, ? AS filters",
                [table, "|".join(f.key() for f in filters) or None, n, now, run_id,
                 as_json])


def logged_where(filters_json: str) -> tuple[str, list[Any]]:
    """The WHERE of a logged partition (the inverse of _log's `filters`), for publish's replay."""
    filters = [PartitionFilter(f["column"], f["values"], f["range"] and tuple(f["range"]),
                               f["window"] and tuple(f["window"])) for f in json.loads(filters_json)]
    return where_clause(filters)


def rows_moved(con: duckdb.DuckDBPyConnection, left: str, right: str) -> int:
    """Rows one of two SELECTs (same columns) holds and the other does not, duplicates counted: 0
    when they hold the same rows (the time-travel checks: stored vs rebuilt from the cut star)."""
    return con.execute(f"SELECT count(*) FROM (({left} EXCEPT ALL {right}) UNION ALL ({right} EXCEPT ALL {left}))"
                       ).fetchall()[0][0]


def key_violations(con: duckdb.DuckDBPyConnection, table: str, keys: list[str], where: str = "TRUE",
                   params: Sequence[Any] = ()) -> dict[str, int]:
    """Rows, duplicated key rows (rows beyond the first per key) and rows with any NULL key column,
    among the rows `where` selects."""
    if not table_exists(con, table):
        return {"rows": 0, "duplicates": 0, "null_keys": 0, "missing_table": 1}
    cols = ", ".join(quote(k) for k in keys)
    nulls = " OR ".join(f"{quote(k)} IS NULL" for k in keys)
    # duplicates among complete keys only: rows with a NULL key are counted once, as null_keys
    rows, dup, null_keys = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT ({nulls})) - count(DISTINCT ({cols})) FILTER (WHERE NOT ({nulls})), "
        f"count(*) FILTER (WHERE {nulls}) FROM {qualified(table)} WHERE {where}", list(params)).fetchone()
    return {"rows": int(rows), "duplicates": int(dup), "null_keys": int(null_keys), "missing_table": 0}
