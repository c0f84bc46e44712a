"""Operations under load, on 127.0.0.1-free local processes only: a 60-partition backfill run
by concurrent workers while a reader hammers the analyst file, and a run SIGKILLed mid-write.

Bounded: fixed partition counts, timeouts on every process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import os, sys, warnings
    warnings.filterwarnings("ignore")
    import dagster as dg
    from revintel_assets.definitions import load
    from revintel_resources.instance import dagster_instance, run_tags
    from revintel_resources.warehouse import Warehouse
    defs = load()
    instance = dagster_instance()
    job = defs.resolve_job_def("deal_snapshot_job")
    for key in sys.argv[1:]:
        job.execute_in_process(instance=instance, partition_key=key, raise_on_error=True, tags=run_tags(),
                               run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
        Warehouse.from_env().publish()  # what the publish-after-success sensor does
    print("ok", len(sys.argv) - 1)
""")

# Reads the way CONTRACT §4 tells readers to (connect_published: a connect that straddled a swap is
# made again) and, alternately, with a plain duckdb.connect(), whose connect can fail in the instant
# of a swap (README, "Opening the analyst file while a publish swaps it"): those failures are
# counted and printed, not asserted; a torn partition or a failed query is never allowed.
READER = textwrap.dedent("""
    import duckdb, json, os, sys, time
    from revintel_resources.publish import connect_published
    path, stop, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    stats = dict(reads=0, errors=0, torn_partitions=0, plain_reads=0, plain_failures=0)
    deadline = time.time() + seconds
    while time.time() < deadline and not os.path.exists(stop):
        plain = stats["reads"] > stats["plain_reads"]  # every other read
        stats["plain_reads" if plain else "reads"] += 1
        try:
            con = duckdb.connect(path, read_only=True) if plain else connect_published(path)
            rows = con.execute("SELECT as_of_date, count(*), count(DISTINCT opportunity_id) "
                               "FROM features.deal_snapshot GROUP BY 1").fetchall()
            stats["torn_partitions"] += sum(1 for _, n, d in rows if n != d)
            con.close()
        except Exception as exc:
            stats["plain_failures" if plain else "errors"] += 1
            print("plain connect:" if plain else "connect_published:", repr(exc), file=sys.stderr)
        time.sleep(0.02)
    print(json.dumps(stats))
""")


@pytest.fixture(scope="module")
def warehouse(demo_data):
    data, _, env = demo_data
    return data, env


def _as_of_keys(data: Path) -> list[str]:
    con = duckdb.connect(str(data / "warehouse" / "revintel.duckdb"), read_only=True)
    keys = [str(r[0]) for r in con.execute("SELECT DISTINCT as_of_date FROM features.deal_snapshot ORDER BY 1").fetchall()]
    con.close()
    return keys


@pytest.mark.slow
def test_sixty_partition_backfill_with_a_concurrent_reader(warehouse):
    data, env = warehouse
    keys = _as_of_keys(data)[-60:]
    assert len(keys) == 60
    stop = data / "stop-reading"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(data / "warehouse" / "revintel.duckdb"), str(stop), "600"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, *keys[i::3]], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [w.communicate(timeout=600) for w in workers]
    elapsed = time.perf_counter() - start
    stop.touch()
    r_out, r_err = reader.communicate(timeout=60)
    for w, (o, e) in zip(workers, outs):
        assert w.returncode == 0 and o.strip().startswith("ok"), e[-3000:]
        assert "lock" not in e.lower(), e[-3000:]
    stats = json.loads(r_out.strip().splitlines()[-1])
    print(f"backfill: 60 partitions by 3 concurrent workers in {elapsed:.1f}s; reader: {stats}")
    assert stats["reads"] > 50 and stats["errors"] == 0 and stats["torn_partitions"] == 0, r_err[-2000:]
    assert stats["plain_reads"] > 50  # the plain reader's failures are the documented swap instant, printed above


KILLED_WRITER = textwrap.dedent("""
    import sys, warnings
    warnings.filterwarnings("ignore")
    import dagster as dg
    from revintel_assets.definitions import load
    from revintel_resources.instance import dagster_instance, recover_dead_runs, run_tags
    defs = load()
    instance = dagster_instance()
    print("recovered", len(recover_dead_runs(instance)))
    keys = sys.argv[1:]
    defs.resolve_job_def("deal_snapshot_job").execute_in_process(
        instance=instance, raise_on_error=True,
        tags=run_tags({"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}),
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
""")


def _state(data: Path) -> list:
    con = duckdb.connect(str(data / "warehouse" / ".work" / "revintel.duckdb"), read_only=True)
    rows = con.execute("SELECT as_of_date, count(*), sum(hash(opportunity_id, days_in_stage)) "
                       "FROM features.deal_snapshot GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    return rows


@pytest.mark.slow
def test_sigkill_mid_write_leaves_partitions_whole_and_the_rerun_completes(warehouse):
    data, env = warehouse
    keys = _as_of_keys(data)
    before = _state(data)
    lock = data / "warehouse" / ".work" / "writer.lock"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, *keys], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # wait until the run is inside a warehouse write (it holds the writer lock), then kill it hard
    import filelock
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with filelock.FileLock(str(lock), timeout=0):
                pass
            time.sleep(0.05)
        except filelock.Timeout:
            break
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _state(data) == before  # every partition as it was: the transaction never committed
    start = time.perf_counter()
    rerun = subprocess.run([sys.executable, "-c", KILLED_WRITER, *keys], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
    recovery = time.perf_counter() - start
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "recovered 1" in rerun.stdout  # the killed run's pool slot was freed, not waited on forever
    assert _state(data) == before  # same inputs, same tables
    print(f"sigkill mid-write: {len(before)} partitions intact; rerun completed in {recovery:.1f}s")
