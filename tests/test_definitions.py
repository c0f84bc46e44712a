"""The Dagster definitions load the way users load them, and every asset tells its story."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from revintel_assets.definitions import load

defs = load()

REPO = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "REVINTEL_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Validation successful" in out.stdout + out.stderr


def test_every_asset_has_description_group_kinds_and_owner():
    graph = defs.resolve_asset_graph()
    missing = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        spec_ok = node.description and node.group_name and node.group_name != "default" and node.kinds and node.owners
        if not spec_ok:
            missing.append(key.to_user_string())
    assert not missing, f"assets without description/group/kinds/owners: {missing}"


def test_only_the_oracle_modules_can_find_the_demo_truth():
    """Ground truth measures models; it must never feed one. It is reachable only through the
    source resource's truth_folder() (configured by `revintel demo`), and only the oracle module
    reads its files, to put oracle metrics beside the models' on the same rows."""
    offenders = []
    for path in [*(REPO / "revintel_assets").rglob("*.py"), *(REPO / "revintel_resources").rglob("*.py")]:
        if path.parent.name == "demo" or path.name in {"oracle.py", "cli.py", "source.py", "settings.py"}:
            continue
        text = path.read_text()
        if "REVINTEL_TRUTH_DIR" in text or '"truth"' in text or "'truth'" in text or "truth/" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders
