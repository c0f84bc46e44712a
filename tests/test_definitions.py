"""The Dagster definitions load the way users load them, and every asset tells its story."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


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


# Ground truth is reachable through these and only these: the generator writes it, the CLI and
# the source resource / settings locate it, the oracle module reads it, and the two model assets
# hand what the oracle read to their evaluation (after training), nothing else.
TRUTH_ALLOWED = {
    "revintel_assets/defs/validation/oracle.py": "reads the truth files",
    "revintel_assets/cli.py": "`revintel demo` points the source at the demo's truth folder",
    "revintel_resources/source.py": "SourceResource.truth_folder()",
    "revintel_resources/settings.py": "the truth_dir setting",
    "revintel_assets/defs/deals/assets.py": "deal_truth(...) -> evaluate(), after training",
    "revintel_assets/defs/icp/assets.py": "division_truth(...) -> evaluation, after training",
    "revintel_assets/defs/deals/evaluate.py": "oracle metrics beside the model's",
    "revintel_assets/defs/icp/evaluate.py": "oracle metrics beside the model's",
}
TRUTH_MARKERS = re.compile(r"REVINTEL_TRUTH_DIR|truth_dir|truth_folder|[\"']truth[\"']|truth/|_truth\.csv|"
                           r"deal_truth|division_truth|validation\.oracle|import oracle")
SCANNED_PACKAGES = ("revintel_assets", "revintel_resources", "dashboards")


def truth_offenders(files: list[Path], root: Path) -> list[str]:
    """Files outside the generator and TRUTH_ALLOWED that name the truth or the oracle."""
    out = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel.startswith("revintel_assets/demo/") or rel in TRUTH_ALLOWED:
            continue
        if TRUTH_MARKERS.search(path.read_text()):
            out.append(rel)
    return out


def test_only_the_oracle_modules_can_find_the_demo_truth():
    """Ground truth measures models; it must never feed one. It is reachable only through the
    source resource's truth_folder() (configured by `revintel demo`), only the oracle module
    reads its files, and only the model assets pass it on, to evaluation. Every package the
    definitions load is scanned (checked below against sys.modules), and the dashboards too."""
    files = [f for pkg in SCANNED_PACKAGES for f in (REPO / pkg).rglob("*.py")]
    loaded = {Path(m.__file__).resolve() for m in list(sys.modules.values())
              if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(REPO)
              and not Path(m.__file__).resolve().is_relative_to(REPO / "tests")
              and not Path(m.__file__).resolve().is_relative_to(REPO / "benchmarks")}  # other tests import these
    unscanned = loaded - {f.resolve() for f in files}
    assert not unscanned, f"modules the definitions load that the truth scan misses: {sorted(map(str, unscanned))}"
    assert not truth_offenders(files, REPO), truth_offenders(files, REPO)
    # the allowed model assets touch truth only to evaluate: the oracle call sits inside evaluation
    for rel in ("revintel_assets/defs/deals/assets.py", "revintel_assets/defs/icp/assets.py"):
        text = (REPO / rel).read_text()
        assert "_truth.csv" not in text and "truth/" not in text, rel
        for line in text.splitlines():
            if "truth_folder()" in line:
                assert re.search(r"(deal|division)_truth\(source\.truth_folder\(\)", line), (rel, line)


def test_the_truth_scan_catches_a_planted_reader(tmp_path):
    """The scan above can fail: a feature module that reads the truth file is flagged."""
    pkg = tmp_path / "revintel_assets" / "defs" / "deals"
    pkg.mkdir(parents=True)
    (pkg / "features_extra.py").write_text(
        'import polars as pl\n\ndef leak(folder):\n    return pl.read_csv(folder / "deal_truth.csv")\n')
    (pkg / "clean.py").write_text("def f():\n    return 1\n")
    (pkg / "assets.py").write_text("from revintel_assets.defs.validation.oracle import deal_truth\n")
    found = truth_offenders(sorted(pkg.glob("*.py")), tmp_path)
    assert found == ["revintel_assets/defs/deals/features_extra.py"]
