"""A data directory follows its latest source (issue 13 item 6, docs/CONTRACT.md §1).

Before: `revintel demo` then `revintel run --source <MavenTech>` in one data dir died with
`TypeError: validation.icp_models.message: new type VARCHAR cannot be stored in the existing
INTEGER column`, reused the demo's partitions and scored MavenTech as of 2025-12-31."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from revintel_assets import source_switch
from revintel_assets.source_switch import Source, replace_previous_source
from revintel_resources.tracking import MLflowResource
from revintel_resources.warehouse import Warehouse
from tests.conftest import MAVENTECH, need

REPO = Path(__file__).resolve().parents[1]
ANALYST_SCHEMAS = ("star", "features", "scores", "forecast", "validation")


def test_is_switch():
    a, b = Source("/data/a", "maventech"), Source("/data/b", "maventech")
    assert not source_switch.is_switch(None, a)  # a new warehouse
    assert not source_switch.is_switch(a, Source("/data/a", "maventech"))  # a re-export of the same source
    assert source_switch.is_switch(a, b)
    assert source_switch.is_switch(a, Source("/data/a", "tidy"))  # same folder read as another layout
    # an older export copied back into the same folder (an operations pass: the dates after its own kept
    # the newer export's scores, and the run rescored them from the older data)
    later, older = dt.date(2025, 10, 28), dt.date(2025, 9, 30)
    assert source_switch.is_switch(Source("/data/a", "maventech", later), Source("/data/a", "maventech", older))
    assert not source_switch.is_switch(Source("/data/a", "maventech", older), Source("/data/a", "maventech", later))
    assert not source_switch.is_switch(Source("/data/a", "maventech", later), Source("/data/a", "maventech", later))
    assert source_switch.is_changed_export(Source("/data/a", "maventech", older), Source("/data/a", "maventech", later))
    assert not source_switch.is_changed_export(Source("/data/a", "maventech", later), Source("/data/a", "maventech", later))
    assert not source_switch.is_changed_export(Source("/data/b", "maventech", older), Source("/data/a", "maventech", later))
    # the same last date from other files (a corrected export, a demo regenerated with another seed: a
    # re-check found it kept the models of the export before it); the same files, or a warehouse from
    # before the fingerprint was kept, are the same export
    a1, a2 = Source("/data/a", "maventech", later, "f1"), Source("/data/a", "maventech", later, "f2")
    assert source_switch.is_changed_export(a1, a2)
    assert not source_switch.is_changed_export(a1, Source("/data/a", "maventech", later, "f1"))
    assert not source_switch.is_changed_export(Source("/data/a", "maventech", later), a2)


def test_an_older_export_of_the_same_folder_replaces_the_newer_one_twice_over(tmp_path):
    """A, B, A, B, A in one folder: each older export replaces what the newer left, and a model archived
    twice under the same source's label gets a name of its own (MLflow refuses a taken one)."""
    wh = Warehouse.from_env(tmp_path)
    tracking = MLflowResource(data_dir=str(tmp_path))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        for _ in range(2):
            wh.execute("CREATE SCHEMA IF NOT EXISTS meta; CREATE OR REPLACE TABLE meta.source AS SELECT '/data/a' AS "
                       "source_path, 'maventech' AS source_format, DATE '2025-10-28' AS export_date")
            tracking.register((tmp_path / "model").as_uri(), "win_probability", tags={"cutoff": "2025-10-28"})
            note = replace_previous_source(instance, wh, tracking, Source("/data/a", "maventech", dt.date(2025, 9, 30)))
            assert note.startswith("an older export of /data/a (its data ends 2025-09-30; the warehouse held one "
                                   "ending 2025-10-28) replaces the newer one")
    names = sorted(m.name for m in tracking.configure().search_registered_models())
    label = Source("/data/a", "maventech").label
    assert names == [f"win_probability--{label}", f"win_probability--{label}-2"]


def test_a_newer_export_a_person_runs_is_rebuilt_from_alone_and_keeps_one_archive(tmp_path):
    """An audit: exports of one CRM run in turn into one folder kept each older export's date as an
    as-of date and a training cutoff, its plan and ICP cutoffs beside the rebuilt scores, and its
    models scoring and gating: one export's P(hit quota) was 0.62, 0.91 or 0.75 by what ran before.
    `revintel run` (rebuild_newer) now rebuilds a newer export alone; the sensor's import keeps the
    history (the nightly adds its date); weekly exports leave one archive per model, not one a week."""
    wh = Warehouse.from_env(tmp_path)
    tracking = MLflowResource(data_dir=str(tmp_path))
    (tmp_path / "dagster").mkdir()
    label = Source("/data/a", "maventech").label
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        for held, new in ((dt.date(2025, 9, 24), dt.date(2025, 10, 1)), (dt.date(2025, 10, 1), dt.date(2025, 10, 8))):
            wh.execute("CREATE SCHEMA IF NOT EXISTS meta; CREATE SCHEMA IF NOT EXISTS scores; "
                       "CREATE OR REPLACE TABLE meta.source AS SELECT '/data/a' AS source_path, 'maventech' AS "
                       f"source_format, DATE '{held}' AS export_date; "
                       f"CREATE OR REPLACE TABLE scores.deal_scores AS SELECT DATE '{held}' AS as_of_date")
            instance.add_dynamic_partitions("as_of_date", [str(held)])
            version = tracking.register((tmp_path / "model").as_uri(), "win_probability", tags={"cutoff": str(held)})
            tracking.set_alias("win_probability", "champion", version)
            # the sensor's import (no rebuild_newer): the same source, nothing goes
            kept = replace_previous_source(instance, wh, tracking, Source("/data/a", "maventech", new))
            assert kept is None and instance.get_dynamic_partitions("as_of_date") == [str(held)]
            # the same export again, by a person: nothing goes either
            assert replace_previous_source(instance, wh, tracking, Source("/data/a", "maventech", held),
                                           rebuild_newer=True) is None
            note = replace_previous_source(instance, wh, tracking, Source("/data/a", "maventech", new), rebuild_newer=True)
            assert note.startswith(f"a newer export of /data/a (its data ends {new}; the warehouse held one ending "
                                   f"{held}): rebuilt from it alone")
            assert instance.get_dynamic_partitions("as_of_date") == []
            assert wh.query("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'scores'").item() == 0
            assert tracking.get_alias("win_probability", "champion") is None and tracking.versions("win_probability") == []
            archived = tracking.configure().get_registered_model(f"win_probability--{label}")
            assert archived.tags["champion_before_archive"] == str(version)
    names = sorted(m.name for m in tracking.configure().search_registered_models())
    assert names == [f"win_probability--{label}"]  # the second export's archive replaced the first's


def test_switch_replaces_tables_partitions_and_models(tmp_path):
    wh = Warehouse.from_env(tmp_path)
    wh.execute("CREATE SCHEMA meta; CREATE SCHEMA star; CREATE SCHEMA scores; CREATE SCHEMA staging; "
               "CREATE TABLE meta.source AS SELECT '/data/demo' AS source_path, 'maventech+sales_log' AS source_format, "
               "DATE '2025-12-31' AS export_date; "
               "CREATE TABLE star.dim_account AS SELECT 1 AS account_id; "
               "CREATE TABLE scores.deal_scores AS SELECT DATE '2025-12-31' AS as_of_date; "
               "CREATE VIEW scores.latest AS SELECT * FROM scores.deal_scores; "
               "CREATE TABLE staging.opportunities AS SELECT 'new source' AS x; "
               "CREATE TABLE meta.table_log AS SELECT 'star.dim_account' AS table_name")
    tracking = MLflowResource(data_dir=str(tmp_path))
    version = tracking.register((tmp_path / "model").as_uri(), "win_probability", tags={"cutoff": "2025-12-31"})
    tracking.set_alias("win_probability", "champion", version)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions("as_of_date", ["2025-12-29", "2025-12-31"])
        instance.add_dynamic_partitions("icp_division", ["Hardware"])

        same = replace_previous_source(instance, wh, tracking, Source("/data/demo", "maventech+sales_log"))
        assert same is None and instance.get_dynamic_partitions("as_of_date") == ["2025-12-29", "2025-12-31"]

        note = replace_previous_source(instance, wh, tracking, Source("/data/maventech_crm", "maventech"))
        assert "replaces /data/demo" in note
        tables = {r[0] for r in wh.query("SELECT schema_name || '.' || table_name FROM duckdb_tables()").rows()}
        assert tables == {"staging.opportunities", "meta.table_log"}  # the new import's staging and the log stay
        assert wh.query("SELECT count(*) FROM duckdb_views() WHERE NOT internal").item() == 0  # none left dangling
        for name in source_switch.DYNAMIC_PARTITIONS:
            assert instance.get_dynamic_partitions(name.name) == []
    assert tracking.get_alias("win_probability", "champion") is None  # nothing of the demo serves MavenTech
    assert tracking.versions("win_probability") == []
    label = Source("/data/demo", "maventech+sales_log").label
    archived = tracking.configure().get_registered_model(f"win_probability--{label}")
    assert archived.tags["archived_source"] == "/data/demo" and archived.tags["champion_before_archive"] == str(version)


def test_cli_latest_steps_run_as_of_the_source_date_not_the_largest_key():
    """Before: MavenTech was scored as of 2025-12-31, the largest partition the demo had left."""
    from revintel_assets import plan
    from revintel_assets.orchestrate import _runs

    step = plan.job("forecast_backtest_job")  # a "latest" step
    assert step.mode == "latest"
    assert _runs(step, ["2017-12-31", "2025-12-31"], "2017-12-31") == [{"dagster/partition": "2017-12-31"}]
    assert _runs(step, ["2017-06-30", "2017-12-31"], None) == [{"dagster/partition": "2017-12-31"}]
    ranged = plan.job("forecast_job")  # a range of as-of dates ends at the source's date too
    assert ranged.mode == "range"
    assert _runs(ranged, ["2017-06-30", "2017-12-31", "2025-12-31"], "2017-12-31") == [
        {"dagster/asset_partition_range_start": "2017-06-30", "dagster/asset_partition_range_end": "2017-12-31"}]


def test_an_earlier_as_of_runs_no_later_date_whatever_order_the_keys_were_added_in():
    """`revintel run --as-of 2025-08-15` after a run to 2025-09-30 (an operations pass): Dagster keeps
    dynamic keys in the order they were added, so 2025-08-15 came last and the range "to 2025-08-15"
    covered every date up to 2025-09-30, rescored with a model trained after them; the range steps were
    not even given the as-of date. Now every dated step stops at it, in stretches of consecutive keys."""
    from revintel_assets import plan
    from revintel_assets.orchestrate import _runs

    keys = ["2025-08-04", "2025-08-11", "2025-08-18", "2025-09-29", "2025-09-30", "2025-08-15"]  # as added
    assert _runs(plan.job("deal_scoring_job"), keys, "2025-08-15") == [
        {"dagster/asset_partition_range_start": "2025-08-04", "dagster/asset_partition_range_end": "2025-08-11"},
        {"dagster/asset_partition_range_start": "2025-08-15", "dagster/asset_partition_range_end": "2025-08-15"}]
    cutoffs = ["2025-04-01", "2025-09-30", "2025-02-01", "2025-08-15"]
    assert _runs(plan.job("win_model_job"), cutoffs, "2025-08-15") == [  # cutoff by cutoff, in date order
        {"dagster/asset_partition_range_start": k, "dagster/asset_partition_range_end": k}
        for k in ("2025-02-01", "2025-04-01", "2025-08-15")]
    assert _runs(plan.job("plan_job"), keys, "2025-08-15") == [{"dagster/partition": "2025-08-15"}]
    # a nightly's day added after the export date's key: still one run, nothing past the as-of date
    nightly = ["2025-10-13", "2025-10-20", "2025-10-28", "2025-10-27"]
    assert _runs(plan.job("deal_scoring_job"), nightly, "2025-10-28") == [
        {"dagster/asset_partition_range_start": "2025-10-13", "dagster/asset_partition_range_end": "2025-10-27"}]
    assert _runs(plan.job("deal_scoring_job"), keys, "2024-01-01") == []  # nothing up to it: the step is skipped


# -- end to end: demo -> MavenTech -> demo in one data directory -------------------------------


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revintel_assets.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800)


def _state(data: Path) -> dict:
    """What the published warehouse, Dagster's partitions and MLflow hold (read from a subprocess,
    as an analyst and the UI would)."""
    code = r"""
import json, os, sys, duckdb
import dagster as dg
from mlflow import MlflowClient
data = sys.argv[1]
con = duckdb.connect(f"{data}/warehouse/revintel.duckdb", read_only=True)
out = {"source": con.execute("SELECT source_path, export_date::VARCHAR FROM meta.source").fetchall(),
       "scored": [r[0] for r in con.execute("SELECT DISTINCT as_of_date::VARCHAR FROM scores.deal_scores").fetchall()],
       "tables": {}, "dates": {}}
views = con.execute("SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal").fetchall()
for (v,) in views:  # a view over a dropped table would fail here
    out["tables"][v] = con.execute(f"SELECT count(*) FROM {v}").fetchone()[0]
cols = con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE schema_name IN "
                   "('star','features','scores','forecast','validation') AND data_type = 'DATE' "
                   "AND column_name IN ('as_of_date','cutoff_date','order_date','close_date','created_date',"
                   "'changed_at','period_start') AND (schema_name, table_name) IN (SELECT (schema_name, table_name) "
                   "FROM duckdb_tables())").fetchall()  # (star.dim_date is a calendar: it reaches past the data)
for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN "
                        "('star','features','scores','forecast','validation')").fetchall():
    out["tables"][f"{s}.{t}"] = con.execute(f'SELECT count(*) FROM {s}."{t}"').fetchone()[0]
for s, t, c in cols:
    lo, hi = con.execute(f'SELECT min("{c}")::VARCHAR, max("{c}")::VARCHAR FROM {s}."{t}"').fetchone()
    out["dates"][f"{s}.{t}.{c}"] = [lo, hi]
os.environ["DAGSTER_HOME"] = f"{data}/dagster_home"
inst = dg.DagsterInstance.get()
out["partitions"] = {n: sorted(inst.get_dynamic_partitions(n)) for n in (
    "transaction_month", "as_of_date", "training_cutoff", "icp_division", "icp_feature_cutoff", "icp_model_cutoff")}
uri = f"sqlite:///{data}/mlflow/mlflow.db"
client = MlflowClient(uri, uri)
out["models"] = {m.name: {"aliases": dict(m.aliases or {}),
                          "cutoffs": sorted(v.tags.get("cutoff", "") for v in client.search_model_versions(f"name = '{m.name}'"))}
                 for m in client.search_registered_models()}
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _only(state: dict, first: str, last: str) -> None:
    """Everything the data dir holds belongs to the source spanning first..last (the two sources
    do not overlap in time: MavenTech is 2016-2017, the demo 2023-2025)."""
    # scored on every as-of date of this source, up to its export date, and on no date of the other
    assert sorted(state["scored"]) == state["partitions"]["as_of_date"] and max(state["scored"]) == last, state["scored"]
    lo, hi = dt.date.fromisoformat(first) - dt.timedelta(days=400), dt.date.fromisoformat(last) + dt.timedelta(days=400)
    strays = {col: span for col, span in state["dates"].items()
              if span[0] is not None and not (lo <= dt.date.fromisoformat(span[0]) and dt.date.fromisoformat(span[1]) <= hi)}
    assert strays == {}, f"rows of another source: {strays}"
    for name, keys in state["partitions"].items():
        dates = [k.split("|")[0] for k in keys if k[:2] in ("19", "20")]
        assert all(lo.isoformat() <= k <= last for k in dates), (name, keys)
    assert max(state["partitions"]["as_of_date"]) == last
    assert max(state["partitions"]["training_cutoff"]) == last
    live = {n: m for n, m in state["models"].items() if "--" not in n}
    for name, model in live.items():  # the models a lookup finds were all trained on this source
        assert all(lo.isoformat() <= c <= last for c in model["cutoffs"]), (name, model)
    for name, model in state["models"].items():
        if "--" in name:
            assert model["aliases"] == {}, (name, model)  # archived models serve nothing


@pytest.mark.slow
def test_demo_then_maventech_then_demo_in_one_data_dir(tmp_path):
    need(MAVENTECH)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "REVINTEL_AS_OF", "REVINTEL_SOURCE")}
    env.update(REVINTEL_DATA_DIR=str(data), PYTHONPATH=str(REPO))
    log = tmp_path / "runs.log"

    demo = _cli(env, "demo", "--no-serve", "--scale", "0.05")
    log.write_text(f"demo: {demo.returncode}\n{demo.stdout}\n{demo.stderr[-4000:]}\n")
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    first_demo = _state(data)
    (demo_path, demo_end), = first_demo["source"]
    demo_start = min(span[0] for col, span in first_demo["dates"].items() if col.startswith("star.fact_opportunity.")
                     and span[0])
    _only(first_demo, demo_start, demo_end)

    maven = _cli(env, "run", "--source", str(MAVENTECH), "--no-serve")
    with log.open("a") as f:
        f.write(f"maventech: {maven.returncode}\n{maven.stdout}\n{maven.stderr[-4000:]}\n")
    assert maven.returncode == 0, maven.stdout[-2000:] + maven.stderr[-3000:]
    assert "TypeError" not in maven.stderr
    state = _state(data)
    assert state["source"] == [[str(MAVENTECH.resolve()), "2017-12-31"]]
    _only(state, "2016-10-01", "2017-12-31")
    assert state["tables"]["scores.deal_scores"] > 0 and state["tables"]["star.fact_opportunity"] == 8800

    # the reverse: MavenTech's tables, partitions and models give way to the demo again
    again = _cli(env, "demo", "--no-serve", "--scale", "0.05")
    with log.open("a") as f:
        f.write(f"demo again: {again.returncode}\n{again.stdout}\n{again.stderr[-4000:]}\n")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    state = _state(data)
    assert state["source"] == [[demo_path, demo_end]]
    _only(state, demo_start, demo_end)
    # the same tables as the first demo run, the same rows in the data and scores (the models'
    # validation tables may differ by a calibration bin between two trainings): nothing of
    # MavenTech mixed in, nothing of the demo lost
    assert state["tables"].keys() == first_demo["tables"].keys()
    exact = {t: n for t, n in first_demo["tables"].items() if t.split(".")[0] in ("star", "features", "scores")}
    assert {t: state["tables"][t] for t in exact} == exact


def test_the_fingerprint_is_kept_and_read_back(tmp_path):
    """meta.source.fingerprint: names, sizes and times of the folder's files; a warehouse written
    before it existed reads back None (the same export, nothing rebuilt)."""
    import duckdb

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    first = source_switch.fingerprint(folder)
    assert first == source_switch.fingerprint(folder) and source_switch.fingerprint(tmp_path / "none") == "missing"
    (folder / "a.csv").write_text("x\n12\n")
    assert source_switch.fingerprint(folder) != first
    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.source AS SELECT '/d' AS source_path, 'tidy' AS source_format, "
                "DATE '2025-01-01' AS export_date")
    assert source_switch.previous_source(con) == Source("/d", "tidy", dt.date(2025, 1, 1), None)
    con.execute("ALTER TABLE meta.source ADD COLUMN fingerprint VARCHAR; UPDATE meta.source SET fingerprint = 'f'")
    assert source_switch.previous_source(con).fingerprint == "f"
