"""The Dagster home under the data dir, with the concurrency settings revintel relies on.

Why these numbers: DuckDB admits one writing process per file, and the warehouse lock already
serialises connections; the `warehouse` pool (limit 1) keeps steps that write the warehouse from
queueing on that lock across runs, so a 60-partition backfill waits in Dagster's queue (visible
in the UI) rather than inside a step. Two runs at once keep both cores busy on a 2-core machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from revintel_resources import paths

DAGSTER_YAML = """\
# Written by revintel (revintel_resources/instance.py); edit freely, it is not overwritten.
storage:
  sqlite:
    base_dir: {home}/storage
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/logs
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
telemetry:
  enabled: false
"""


def ensure_dagster_home() -> Path:
    """Create $REVINTEL_DATA_DIR/dagster_home with dagster.yaml and point DAGSTER_HOME at it."""
    home = paths.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML.format(home=home))
    os.environ["DAGSTER_HOME"] = str(home)
    return home
