"""An ICP refresh on the session's demo, as the monthly chain runs it (features, models and scores,
whitespace, for the scoring cutoff), then a publish: every write went through the log, so the
standby is brought up to date by replaying it, not by a whole copy of the warehouse, and the analyst
file equals the work file. Before, each ICP step opened a session that may write anything and the
whitespace step re-made its view: every ICP refresh published by a whole copy (60-75 s at scale 100)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.test_publish import differences

REPO = Path(__file__).resolve().parents[1]
REFRESH = textwrap.dedent("""
    import json, warnings
    warnings.filterwarnings("ignore")
    import dagster as dg
    from revintel_assets.definitions import load
    from revintel_resources.instance import dagster_instance, run_tags
    from revintel_resources.warehouse import Warehouse
    wh, instance, defs = Warehouse.from_env(), dagster_instance(), load()
    wh.publish()
    wh.publish()  # both standbys in sync with the demo's warehouse
    cutoff = max(instance.get_dynamic_partitions("icp_model_cutoff"))
    division = sorted(instance.get_dynamic_partitions("icp_division"))[0]
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    for job, key in (("icp_features_job", dg.MultiPartitionKey({"cutoff": cutoff, "division": division})),
                     ("icp_models_job", dg.MultiPartitionKey({"cutoff": cutoff, "division": division})),
                     ("icp_whitespace_job", cutoff)):
        defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key, raise_on_error=True,
                                                     tags=run_tags(), run_config=quiet)
    wh.publish()
    print(json.dumps({"publish": wh.last_publish, "cutoff": cutoff}))
""")


def test_an_icp_refresh_publishes_by_replaying_the_log(demo_data, tmp_path):
    src, _, env = demo_data
    data = tmp_path / "data"
    shutil.copytree(src, data)
    env = {**env, "REVINTEL_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")}
    proc = subprocess.run([sys.executable, "-c", REFRESH], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["publish"].startswith("replayed"), out["publish"]

    class Paths:  # what tests.test_publish.differences reads
        work_path = data / "warehouse" / ".work" / "revintel.duckdb"
        analyst_path = data / "warehouse" / "revintel.duckdb"
    assert differences(Paths) == {}
