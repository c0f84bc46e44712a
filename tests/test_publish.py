"""Publishing by replaying the write log into a standby copy (revintel_resources/publish.py), against
real DuckDB files: the analyst file must equal the work file after every publish, whichever way it
was brought up to date, and every way the log could miss a write must end in a whole copy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from revintel_resources import publish as publishing
from revintel_resources.warehouse import Warehouse


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse.from_env(tmp_path)


def day(i: int) -> dt.date:
    return dt.date(2025, 1, 1) + dt.timedelta(days=i)


def rows(days: list[int], n: int, version: int) -> pl.DataFrame:
    return pl.DataFrame({"as_of_date": [day(d) for d in days for _ in range(n)],
                         "id": [i for _ in days for i in range(n)], "v": [version] * (len(days) * n)})


def differences(wh: Warehouse) -> dict[str, int]:
    """Per table (and per set of tables, views, comments): rows in one file and not the other."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{wh.work_path}' AS w (READ_ONLY)")
        con.execute(f"ATTACH '{wh.analyst_path}' AS p (READ_ONLY)")
        out = {}
        for what in ("SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = '{}'",
                     "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = '{}' AND NOT internal",
                     "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
                     "WHERE database_name = '{}'"):
            a, b = set(con.execute(what.format("w")).fetchall()), set(con.execute(what.format("p")).fetchall())
            if a != b:
                out[what.split()[-6]] = len(a ^ b)
        for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'w'").fetchall():
            n = sum(con.execute(f'SELECT count(*) FROM (SELECT * FROM {x}."{s}"."{t}" EXCEPT ALL '
                                f'SELECT * FROM {y}."{s}"."{t}")').fetchone()[0] for x, y in (("w", "p"), ("p", "w")))
            if n:
                out[f"{s}.{t}"] = n
        return out
    finally:
        con.close()


def test_replayed_publishes_equal_the_work_file(wh):
    """Partition writes, a range, a whole-table write, a new table, a new column, changed comments:
    from the third publish on (each standby's first is a whole copy) the log is replayed, and the
    analyst file equals the work file every time."""
    wh.write("features.snap", rows([0, 1, 2, 3], 50, 0), partition_column="as_of_date",
             partition_values=[day(i) for i in range(4)], comment="v0")
    wh.write("star.dim", pl.DataFrame({"k": [1, 2], "name": ["a", "b"]}))
    how = []
    steps = [
        lambda: wh.write("features.snap", rows([2], 7, 1), partition_column="as_of_date", partition_values=[day(2)],
                         comment="v1", column_comments={"v": "the version"}),
        lambda: wh.write("features.snap", rows([1, 2, 3], 5, 2), partition_column="as_of_date",
                         partition_range=(day(1), day(3))),
        lambda: wh.write("star.dim", pl.DataFrame({"k": [1, 2, 3], "name": ["a", "b", "c"]})),
        lambda: wh.write("scores.new", rows([4], 3, 3), partition_column="as_of_date", partition_values=[day(4)]),
        lambda: wh.write("features.snap", rows([5], 4, 4).with_columns(pl.lit("x").alias("extra")),
                         partition_column="as_of_date", partition_values=[day(5)]),
        lambda: wh.write("features.snap", rows([0], 0, 5), partition_column="as_of_date", partition_values=[day(0)]),
        lambda: None,  # nothing written since the last publish
    ]
    for step in steps:
        step()
        wh.publish()
        how.append(wh.last_publish.split()[0])
        assert differences(wh) == {}, wh.last_publish
    assert how[:2] == ["copied", "copied"] and set(how[2:]) == {"replayed"}
    assert wh.analyst_path.stat().st_nlink == 2  # a hard link to the standby that was swapped in
    assert not list(publishing.standby_dir(wh.analyst_path).glob("*.wal"))


def _two_publishes(wh: Warehouse) -> None:
    wh.write("features.snap", rows([0, 1], 10, 0), partition_column="as_of_date", partition_values=[day(0), day(1)])
    wh.publish()
    wh.publish()  # both standbys in sync: the next publish would replay


def test_a_write_outside_the_log_makes_the_next_publish_copy_whole(wh):
    _two_publishes(wh)
    wh.execute("UPDATE features.snap SET v = -1 WHERE id = 3")  # raw SQL: no log entry
    wh.publish()
    assert wh.last_publish.startswith("copied") and differences(wh) == {}
    wh.publish()  # the other standby was invalidated too
    assert wh.last_publish.startswith("copied") and differences(wh) == {}
    with wh.session() as con:  # a session may write anything
        con.execute("CREATE VIEW features.v AS SELECT 1 AS one")
    wh.publish()
    assert wh.last_publish.startswith("copied") and differences(wh) == {}


def test_a_write_that_bypasses_the_log_is_caught_by_the_row_counts(wh, monkeypatch):
    """A bug: rows inserted through a connection that promised not to write (no log entry, no
    invalidation). The replay's check (same tables, columns and row counts) sends the publish to a
    whole copy. Planted: without that check the analyst file silently misses the rows."""
    def bypass():
        with wh.connect(writes=False) as con:
            con.execute("INSERT INTO features.snap SELECT as_of_date, id + 100, v FROM features.snap")

    _two_publishes(wh)
    bypass()
    wh.publish()
    assert wh.last_publish.startswith("copied") and differences(wh) == {}

    wh.publish()  # the other standby missed the rows too: caught the same way
    assert wh.last_publish.startswith("copied") and differences(wh) == {}

    monkeypatch.setattr(publishing, "_differs", lambda con, work: None)
    bypass()
    wh.publish()
    assert wh.last_publish.startswith("replayed") and set(differences(wh)) == {"features.snap"}


READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("open", flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*), max(v) FROM features.snap WHERE as_of_date = DATE '2025-01-02'").fetchone(), flush=True)
"""


def test_a_reader_holding_the_standby_gets_a_whole_copy_and_keeps_its_file(wh):
    """A reader (another process, as Streamlit and analysts are: DuckDB's file locks are per
    process) still holds the file the next publish would replay into: that publish copies whole."""
    import subprocess
    import sys

    _two_publishes(wh)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(wh.analyst_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"  # holds the file published now
        wh.write("features.snap", rows([1], 3, 1), partition_column="as_of_date", partition_values=[day(1)])
        wh.publish()  # the other standby: replayed
        assert wh.last_publish.startswith("replayed")
        wh.write("features.snap", rows([1], 4, 2), partition_column="as_of_date", partition_values=[day(1)])
        wh.publish()  # the standby is the reader's file: it cannot be written, so a whole copy replaces it
        assert wh.last_publish.startswith("copied") and differences(wh) == {}
        out, _ = reader.communicate("go\n", timeout=30)
        assert out.strip() == "(10, 0)"  # what it opened, unchanged
    finally:
        reader.kill()


def test_a_replay_that_dies_half_way_leaves_the_published_file_and_costs_a_whole_copy(wh, monkeypatch):
    _two_publishes(wh)
    before = duckdb.connect(str(wh.analyst_path), read_only=True).execute("SELECT count(*) FROM features.snap").fetchone()

    def die(con, work, pub):
        raise KeyboardInterrupt  # killed inside the replay's transaction

    wh.write("features.snap", rows([2], 5, 1), partition_column="as_of_date", partition_values=[day(2)])
    monkeypatch.setattr(publishing, "_copy_comments", die)
    with pytest.raises(KeyboardInterrupt):
        wh.publish()
    monkeypatch.undo()
    con = duckdb.connect(str(wh.analyst_path), read_only=True)
    assert con.execute("SELECT count(*) FROM features.snap").fetchone() == before  # readers: the old file
    con.close()
    wh.publish()
    assert wh.last_publish.startswith("copied") and differences(wh) == {}


def test_a_standby_whose_log_has_other_columns_still_publishes_the_work_file(wh):
    """A standby copied before the log had its replay columns (an older revintel), or any table the
    replay cannot take as logged: the publish still gives readers the work file."""
    _two_publishes(wh)
    with wh.connect(writes=False) as con:  # the work file's log gains a column the standbys lack
        con.execute("ALTER TABLE meta.table_log ADD COLUMN note VARCHAR")
    wh.write("features.snap", rows([1], 3, 1), partition_column="as_of_date", partition_values=[day(1)])
    wh.publish()
    assert differences(wh) == {}, wh.last_publish
    wh.write("features.snap", rows([1], 4, 2), partition_column="as_of_date", partition_values=[day(1)])
    wh.publish()
    assert differences(wh) == {}, wh.last_publish


def test_a_view_made_again_unchanged_keeps_the_publish_a_replay(wh):
    """The whitespace step re-made scores.whitespace_by_rep on every run, a write outside the log: every
    ICP refresh published by a whole copy. ensure_view makes it only when it is missing or differs."""
    _two_publishes(wh)
    assert wh.ensure_view("features.top", "SELECT * FROM features.snap WHERE id < 3")  # new: made
    wh.publish()
    wh.publish()
    assert differences(wh) == {}
    assert not wh.ensure_view("features.top", "select *  from features.snap where id<3")  # the same, spelt otherwise
    wh.write("features.snap", rows([1], 4, 1), partition_column="as_of_date", partition_values=[day(1)])
    wh.publish()
    assert wh.last_publish.startswith("replayed"), wh.last_publish
    assert differences(wh) == {}
    assert wh.ensure_view("features.top", "SELECT * FROM features.snap WHERE id < 2")  # changed: made again
    wh.publish()
    assert wh.last_publish.startswith("copied") and differences(wh) == {}
    with duckdb.connect(str(wh.analyst_path), read_only=True) as con:
        assert con.execute("SELECT max(id) FROM features.top").fetchone()[0] == 1
