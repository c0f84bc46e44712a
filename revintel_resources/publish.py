"""Publishing without copying what did not change: two standby copies, brought up to date from the write log.

The analyst file (`warehouse/revintel.duckdb`) is a hard link to one of two files in
`warehouse/.published/` (`a.duckdb`, `b.duckdb`). A publish brings the *other* one, the standby,
up to date with the work file and then swaps the link with `os.replace`, so readers still see the
old file or the new one, never a half-written one, and an open reader keeps its inode.

Up to date means one of two things:

* **replayed**: every write since the standby was last synced went through `Warehouse.write()`,
  which logs its table and partition in `meta.table_log` (in the write's own transaction). The
  standby gets exactly those partitions from the work file (DELETE + INSERT, one transaction).
  A nightly rescore at scale 100 changes a few hundred MB of a 16 GB file, which a whole copy
  took 60-75 s to write.
* **copied whole**, as every publish did before: the first publish of each standby, after any
  other access that may have written (`Warehouse.connect()` without `writes=False`, `execute()`,
  a `session()` without `writes=False`: the import, a source switch, a view made or changed by
  `Warehouse.ensure_view`), when a reader still holds the
  standby open, or when the replayed standby does not match the work file (the same tables and
  views, the same row count in each).

Each standby has a sidecar `<x>.synced.json`: the work file's log position it holds (the first
and the last `written_at` of the log). Any write that the log cannot replay deletes both sidecars
*before* it runs (under the writer lock), so a crash in between costs a whole copy, never a stale
table.

Readers open the analyst path with `connect_published()`: DuckDB (2.0.1, seen with strace) reads
a file's headers through one open and locks and reads its blocks through another, so a plain
`duckdb.connect()` that straddles a swap pairs one copy's header with the other's blocks ("IO
Error: No more data remaining in MetadataReader" in CI, 1 of 253 reads).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb

TABLE_LOG = "meta.table_log"
# The comment of an empty view standing in for a contract table no asset has written yet
# (Warehouse.ensure_placeholders); the table's first write replaces it.
PLACEHOLDER = "placeholder"
STANDBYS = ("a", "b")


def _identity(path: Path) -> tuple[int, int, int, int]:
    # A swap changes the inode the path names; the ctime of a file changes whenever a link to it is
    # made or removed, so a swap away and back (two publishes) shows too.
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_ctime_ns, st.st_mtime_ns


def connect_published(path: str | Path, within_s: float = 10.0) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the analyst file that did not straddle a publish (module doc):
    the path names the same file before and after connecting, else connect again. A connect that
    straddled one may also fail outright (an IO or a deserialization error): connect again too.
    Gives up after `within_s` seconds of publishes (they come once per run, not many a second).
    FileNotFoundError when there is no published file."""
    path = Path(path)
    deadline, attempt = time.monotonic() + within_s, 0
    while True:
        attempt += 1
        before = _identity(path)
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            if time.monotonic() > deadline or (attempt > 1 and _identity(path) == before):
                raise  # not a swap but the file itself (a first failure is retried regardless)
        else:
            if _identity(path) == before:
                return con
            con.close()
            if time.monotonic() > deadline:
                raise duckdb.IOException(f"{path} was published again during every connect for {within_s:.0f} s")
        time.sleep(min(0.01 * attempt, 0.1))


def standby_dir(analyst_path: Path) -> Path:
    return analyst_path.parent / ".published"


def sidecar(standby: Path) -> Path:
    return standby.with_suffix(".synced.json")


def invalidate(analyst_path: Path) -> None:
    """A write the log cannot replay is about to happen: neither standby may be replayed again."""
    for name in STANDBYS:
        sidecar(standby_dir(analyst_path) / f"{name}.duckdb").unlink(missing_ok=True)


def pick_standby(analyst_path: Path) -> Path:
    """The copy readers are not given now: the one the analyst path does not link to."""
    d = standby_dir(analyst_path)
    current = analyst_path.stat().st_ino if analyst_path.exists() else None
    for name in STANDBYS:
        p = d / f"{name}.duckdb"
        if not p.exists() or p.stat().st_ino != current:
            return p
    return d / f"{STANDBYS[0]}.duckdb"  # both link to it (cannot happen): a whole copy replaces one


def log_position(con: duckdb.DuckDBPyConnection) -> dict | None:
    try:
        first, last = con.execute(f"SELECT min(written_at), max(written_at) FROM {TABLE_LOG}").fetchone()
    except duckdb.CatalogException:
        return None
    return None if first is None else {"first": str(first), "last": str(last)}


def _objects(con: duckdb.DuckDBPyConnection, db: str) -> tuple[set, dict]:
    views = set(con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = ? "
                            "AND NOT internal", [db]).fetchall())
    tables = {(s, t): [] for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [db]).fetchall()}
    for s, t, c, typ in con.execute("SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                                    "WHERE database_name = ? ORDER BY schema_name, table_name, column_index", [db]).fetchall():
        if (s, t) in tables:
            tables[(s, t)].append((c, typ))
    return views, tables


def _q(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _copy_comments(con: duckdb.DuckDBPyConnection, work: str, pub: str) -> None:
    """Table and column comments as the work file has them (write() sets them on every write)."""
    for s, t, comment in con.execute("""
            SELECT w.schema_name, w.table_name, w.comment FROM duckdb_tables() w JOIN duckdb_tables() p
              ON p.database_name = ? AND p.schema_name = w.schema_name AND p.table_name = w.table_name
            WHERE w.database_name = ? AND w.comment IS DISTINCT FROM p.comment""", [pub, work]).fetchall():
        con.execute(f"COMMENT ON TABLE {_q(pub, s, t)} IS {_literal(comment)}")
    for s, t, c, comment in con.execute("""
            SELECT w.schema_name, w.table_name, w.column_name, w.comment FROM duckdb_columns() w JOIN duckdb_columns() p
              ON p.database_name = ? AND p.schema_name = w.schema_name AND p.table_name = w.table_name
                 AND p.column_name = w.column_name
            WHERE w.database_name = ? AND w.comment IS DISTINCT FROM p.comment""", [pub, work]).fetchall():
        con.execute(f"COMMENT ON COLUMN {_q(pub, s, t, c)} IS {_literal(comment)}")


def _literal(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def replay(con: duckdb.DuckDBPyConnection, work: str, standby: Path, where_sql) -> tuple[bool, str]:
    """Bring `standby` up to date from the log of the work file `con` holds (under the writer lock).
    Returns (True, what it did), or (False, why the standby must be copied whole; see the module doc).
    `where_sql(filters_json)` turns a logged partition back into (WHERE sql, params)."""
    side = sidecar(standby)
    if not standby.exists() or not side.exists():
        return False, "its first publish, or a write outside the log since its last one"
    held = json.loads(side.read_text())
    now = log_position(con)
    if now is None or held.get("first") != now["first"] or held.get("last") > now["last"]:
        return False, "the work file is not the one it was synced from"
    side.unlink()  # from here the standby changes: a crash leaves it to a whole copy
    try:
        con.execute(f"ATTACH {_literal(str(standby))} AS pub")
    except duckdb.Error:
        return False, "a reader still holds it"  # it was published until the last swap
    try:
        return _replay_attached(con, work, held["last"], where_sql)
    finally:
        con.execute("DETACH pub")


def _replay_attached(con: duckdb.DuckDBPyConnection, work: str, since: str, where_sql) -> tuple[bool, str]:
    entries = con.execute(f"SELECT table_name, kind, filters FROM {TABLE_LOG} WHERE written_at > ?::TIMESTAMP",
                          [since]).fetchall()
    if any(kind != "write" for _, kind, _ in entries):
        return False, "a log entry of an older revintel"  # no kind: not replayable
    _, work_tables = _objects(con, work)
    pub_views, pub_tables = _objects(con, "pub")
    pub_views = {(s, v) for s, v, _ in pub_views}
    log = ("meta", "table_log")
    whole, parts = ({log} if work_tables.get(log) != pub_tables.get(log) else set()), {}  # a log of an older revintel
    for table, _, filters in entries:
        key = tuple(table.split(".", 1))  # write() logs 'schema.name'
        if filters is None or work_tables.get(key) != pub_tables.get(key):
            whole.add(key)  # a whole-table write, a new table or changed columns
        else:
            parts.setdefault(key, set()).add(filters)
    start = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    try:
        n = 0
        for s, t in sorted(whole):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q('pub', s)}")
            if (s, t) in pub_views:  # the placeholder its first write replaced in the work file
                con.execute(f"DROP VIEW {_q('pub', s, t)}")
            if (s, t) in work_tables:
                con.execute(f"CREATE OR REPLACE TABLE {_q('pub', s, t)} AS SELECT * FROM {_q(work, s, t)}")
            else:
                con.execute(f"DROP TABLE IF EXISTS {_q('pub', s, t)}")
            n += 1
        for (s, t), filters in sorted(parts.items()):
            if (s, t) in whole:
                continue
            for f in sorted(filters):
                where, params = where_sql(f)
                con.execute(f"DELETE FROM {_q('pub', s, t)} WHERE {where}", params)
                con.execute(f"INSERT INTO {_q('pub', s, t)} BY NAME SELECT * FROM {_q(work, s, t)} WHERE {where}", params)
                n += 1
        if log not in whole:
            con.execute(f"INSERT INTO pub.meta.table_log SELECT * FROM {TABLE_LOG} WHERE written_at > ?::TIMESTAMP",
                        [since])
        _copy_comments(con, work, "pub")
        problem = _differs(con, work)
        if problem:
            con.execute("ROLLBACK")
            return False, f"the replayed copy differed ({problem})"
        con.execute("COMMIT")
    except duckdb.Error as e:  # e.g. a partition the standby cannot take: the whole copy is always right
        con.execute("ROLLBACK")
        return False, f"the replay failed ({type(e).__name__})"
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT pub")
    return True, (f"replayed {len(entries)} logged writes ({n} partitions or tables) into the standby in "
                  f"{time.perf_counter() - start:.1f} s")


def _differs(con: duckdb.DuckDBPyConnection, work: str) -> str | None:
    """Why the replayed standby is not the work file, or None: the same views, tables, columns
    and row counts (a write that bypassed the log would show in one of them)."""
    wv, wt = _objects(con, work)
    pv, pt = _objects(con, "pub")
    if wv != pv or wt != pt:
        return "tables, views or columns differ"
    for s, t in wt:
        a = con.execute(f"SELECT count(*) FROM {_q(work, s, t)}").fetchone()[0]
        b = con.execute(f"SELECT count(*) FROM {_q('pub', s, t)}").fetchone()[0]
        if a != b:
            return f"{s}.{t}: {a} rows in the work file, {b} in the standby"
    return None


def copy_whole(work_path: Path, standby: Path) -> None:
    """The standby becomes a byte copy of the (checkpointed, closed) work file."""
    standby.parent.mkdir(parents=True, exist_ok=True)
    tmp = standby.with_name(f".{standby.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(work_path, tmp)  # sendfile(2): in the kernel, no Python buffers
        with open(tmp, "rb+") as dst:
            os.fsync(dst.fileno())
        Path(str(standby) + ".wal").unlink(missing_ok=True)  # of a replay killed half-way: not this file's
        os.replace(tmp, standby)
    finally:
        tmp.unlink(missing_ok=True)


def mark_synced(standby: Path, position: dict | None) -> None:
    if position is not None:
        sidecar(standby).write_text(json.dumps(position))


def swap(standby: Path, analyst_path: Path) -> None:
    """Readers get the standby: the analyst path becomes a hard link to it, atomically."""
    if Path(str(standby) + ".wal").exists():
        raise RuntimeError(f"{standby}.wal exists after the sync; refusing to publish a file readers would see partly")
    tmp = analyst_path.with_name(f".{analyst_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    os.link(standby, tmp)
    try:
        os.replace(tmp, analyst_path)  # atomic: readers see old or new, never partial
    finally:
        tmp.unlink(missing_ok=True)
    for d in (analyst_path.parent, standby.parent):  # make the rename (and the standby's entry) durable
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
