"""The seams of the codebase: one run plan, one settings reader, every table with an asset as its
producer, a `dg` project, and a snapshot of the whole definitions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from revintel_assets import plan
from revintel_assets.definitions import load

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
CODE = [p for d in ("revintel_assets", "revintel_resources", "dashboards", "benchmarks")
        for p in (REPO / d).rglob("*.py")]


def snapshot_text() -> str:
    """Every asset (key, group, partitioned, deps), check, job (its assets), schedule and sensor."""
    defs = load()
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        deps = ", ".join(sorted(k.to_user_string() for k in node.parent_keys))
        lines.append(f"asset {key.to_user_string()} [{node.group_name}{', partitioned' if node.partitions_def else ''}]"
                     f" <- {deps or '-'}")
    for check in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name)):
        lines.append(f"check {check.asset_key.to_user_string()}:{check.name}")
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        keys = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        lines.append(f"job {job.name}: {', '.join(keys)}")
    for s in sorted(defs.schedules or [], key=lambda s: s.name):
        lines.append(f"schedule {s.name}: {s.cron_schedule} -> {s.job_name}")
    for s in sorted(defs.sensors or [], key=lambda s: s.name):
        lines.append(f"sensor {s.name}")
    return "\n".join(lines) + "\n"


def test_definitions_snapshot():
    """A change to the graph shows up here as a diff to review. To accept it:
    `python -m tests.test_architecture` rewrites the snapshot."""
    assert SNAPSHOT.read_text() == snapshot_text()


def test_jobs_are_the_run_plan():
    defs = load()
    names = {j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")}
    assert names == {j.name for j in plan.PLAN}
    # every job of the plan writes the warehouse, so every one publishes on success (forecast_job was
    # once missing from a hand-kept list and its runs were never published)
    assert set(plan.warehouse_jobs()) == names
    assert list(plan.icp_chain()) == ["icp_plan_job", "icp_features_job", "icp_models_job"]


def test_one_module_reads_revintel_settings():
    readers = [str(p.relative_to(REPO)) for p in CODE
               if re.search(r"os\.environ(\.get)?\(?\[?[\"']REVINTEL_|getenv\([\"']REVINTEL_", p.read_text())]
    assert readers == [], readers
    # nothing in the product writes the environment to pass a setting along
    writers = [str(p.relative_to(REPO)) for p in CODE if re.search(r"os\.environ\[[^\]]+\]\s*=|os\.environ\.setdefault|"
                                                                   r"os\.putenv", p.read_text())]
    assert writers == [], writers


def test_no_os_fork():
    """Worker processes come from joblib (revintel_assets/parallel.py): forking the threaded
    Dagster process can leave a child stuck on a lock another thread held."""
    offenders = [str(p.relative_to(REPO)) for p in CODE if "os.fork" in p.read_text()]
    assert offenders == [], offenders


def test_nothing_refers_outside_the_repository():
    offenders = []
    for p in [*CODE, *REPO.glob("*.md"), *(REPO / "docs").glob("*.md")]:
        if "../shared" in p.read_text() or "shared/CONTRACT" in p.read_text():
            offenders.append(str(p.relative_to(REPO)))
    assert offenders == [], offenders
    assert (REPO / "docs" / "CONTRACT.md").exists()


def test_validation_assets_are_partitioned_like_their_models():
    graph = load().resolve_asset_graph()
    for model_key, validation_key in (("models/win_probability", "validation/win_probability"),
                                      ("models/division_propensity", "validation/division_propensity"),
                                      ("forecast/forecast_backtest", "validation/revenue_forecast")):
        model = graph.get(_key(model_key))
        validation = graph.get(_key(validation_key))
        assert validation.partitions_def == model.partitions_def


def test_every_table_written_has_a_producing_asset():
    """Each `wh.write("schema.table", ...)` in the code names a table some asset declares (its key,
    or its `table` / `tables` metadata). meta.table_log is the write path's own log, not a table
    any asset computes."""
    graph = load().resolve_asset_graph()
    declared = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        declared.add(".".join(key.path))
        meta = node.metadata or {}
        for field in ("table", "tables"):
            value = meta.get(field)
            value = getattr(value, "value", value) or getattr(value, "text", None)
            if value:
                declared |= {t.strip() for t in str(value).split(",")}
    written = set()
    for p in (REPO / "revintel_assets" / "defs").rglob("*.py"):
        written |= set(re.findall(r"\.write\(\s*\"([a-z_]+\.[a-z_]+)\"", p.read_text()))
    undeclared = sorted(written - declared - {"meta.table_log"})
    assert undeclared == [], undeclared


def test_readme_asset_graph_is_generated_from_the_definitions():
    """Stale graph? `python -m revintel_assets.lineage` rewrites it."""
    from revintel_assets.lineage import readme_block

    assert readme_block(load()) in (REPO / "README.md").read_text()


def test_readme_lists_every_setting():
    from revintel_resources.settings import Settings

    readme = (REPO / "README.md").read_text()
    missing = [name for name, field in Settings.model_fields.items()
               if f"`{_env_name(name, field)}`" not in readme]
    assert missing == [], f"settings missing from the README's Configuration table: {missing}"


def test_every_dashboard_page_is_downstream_of_what_it_reads():
    from revintel_assets.lineage import producers, tables_read
    from dashboards.pages import PAGES

    defs = load()
    graph = defs.resolve_asset_graph()
    made_by = producers(defs)
    for file, _, _, url in PAGES:
        deps = graph.get(_key("dashboards/" + url.replace("-", "_"))).parent_keys
        for table in tables_read(file):
            assert made_by.get(table, set()) <= deps
    # the model health page reads validation.model_metrics: every model family's validation asset
    deps = graph.get(_key("dashboards/model_health")).parent_keys
    assert {_key(f"validation/{m}") for m in ("win_probability", "division_propensity", "revenue_forecast")} <= deps


def _env_name(name: str, field) -> str:
    alias = getattr(field.validation_alias, "choices", None)
    return alias[0] if alias else f"REVINTEL_{name.upper()}"


@pytest.mark.slow
def test_dg_check_defs(tmp_path):
    env = {**os.environ, "REVINTEL_DATA_DIR": str(tmp_path)}
    out = subprocess.run(["dg", "check", "defs"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "All definitions loaded successfully" in out.stdout + out.stderr


def _key(text: str):
    import dagster as dg

    return dg.AssetKey(text.split("/"))


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(snapshot_text())
    print(f"wrote {SNAPSHOT}")
    sys.exit(0)
