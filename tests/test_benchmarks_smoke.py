"""The benchmark harness at a tiny scale (CI's only benchmark; the real figures are docs/BENCHMARKS.md).

One run of `generate` and of `import` (import + star schema), each as its own measured process,
on a company of scale 0.03; nothing else is materialized. Checks the mechanics
(processes, wall time, peak memory, load average, JSON, table), not the speed.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.__main__ import table

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_smoke(tmp_path: Path):
    out = tmp_path / "bench.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scales", "0.03", "--runs", "1", "--stages", "generate", "import",
         # --table: the temp dir, never the real docs (it also rewrites SCALING.md beside it)
         "--root", str(tmp_path / "root"), "--json", str(out), "--table", str(tmp_path / "BENCHMARKS.md"),
         "--timeout", "120",
         "--prepare-jobs", "none"],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.perf_counter() - start < 120  # ~25 s on an idle 2-core box; generous for a shared one
    results = json.loads(out.read_text())
    stages = results["scales"]["0.03"]
    for stage in ("generate", "import"):
        r = stages[stage]
        assert r["status"] == "ok", r
        assert r["wall_s"] > 0 and r["peak_rss_mb"] > 20 and r["load_avg"] >= 0
        assert r["raw"][0]["info"]["stage"] == stage
        assert r["box"]["total_s"] > 0  # the box probe measured with it (benchmarks/machine.py)
    assert stages["import"]["raw"][0]["info"]["months"] > 0
    assert "full_run" not in stages  # nothing was materialized as a whole
    assert not (tmp_path / "BENCHMARKS.md").exists()  # no table markers there: nothing written
    assert REPO.joinpath("docs", "benchmarks.json").read_text().count('"0.03"') == 0
    rendered = table(results)
    assert "import + star schema" in rendered and "not run" in rendered and "box " in rendered
