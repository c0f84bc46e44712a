"""The Dagster home under the data dir, with the concurrency settings revintel relies on.

Why these numbers: DuckDB admits one writing process per file, and the warehouse lock already
serialises connections; the `warehouse` pool (limit 1) keeps steps that write the warehouse from
queueing on that lock across runs, so a 60-partition backfill waits in Dagster's queue (visible
in the UI) rather than inside a step. Two runs at once keep both cores busy on a 2-core machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from revintel_resources import paths

DAGSTER_YAML = """\
# Written by revintel (revintel_resources/instance.py); edit freely, it is not overwritten, except
# that base_dir paths under another data directory's dagster_home (a copied or restored data
# directory) are moved to this one at each start.
# Dagster's sqlite storage, in its usual layout; the event log keeps its connections open
# (revintel_resources/dagster_storage.py: ~10 ms per event instead of ~130 ms), and a range run's
# materializations stored as one batch (the instance class turns batching on)
instance_class:
  module: revintel_resources.dagster_storage
  class: RevintelInstance
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config:
    base_dir: {home}/storage/history
event_log_storage:
  module: revintel_resources.dagster_storage
  class: PersistentSqliteEventLogStorage
  config:
    base_dir: {home}/storage/history/runs
schedule_storage:
  module: dagster._core.storage.schedules
  class: SqliteScheduleStorage
  config:
    base_dir: {home}/storage/schedules
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
run_monitoring:
  enabled: true  # a launched run whose process died is marked failed, freeing its pool slot
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 60  # a run that ended without freeing its slot (killed) frees it
telemetry:
  enabled: false
"""


def ensure_dagster_home(home: Path | None = None) -> Path:
    """Create $REVINTEL_DATA_DIR/dagster_home with its dagster.yaml (child processes such as
    `dagster dev` get it as DAGSTER_HOME in their environment; this process is never changed).
    A dagster.yaml copied from another data directory is relocated here (relocate_config)."""
    home = Path(home) if home else paths.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML.format(home=home))
    else:
        relocate_config(config, home)
        free_slots_after_run_end(config)
    return home


FREE_SLOTS = "  free_slots_after_run_end_seconds: 60  # a run that ended without freeing its slot (killed) frees it\n"


def free_slots_after_run_end(config: Path) -> bool:
    """A dagster.yaml written before `free_slots_after_run_end_seconds` gets it under its run_monitoring:
    without it a run killed with SIGKILL (the OOM killer) ended FAILURE but kept its `warehouse` pool
    slot, and every later run, the nightly included, queued for ever (an audit). True when changed."""
    text = config.read_text()
    if "free_slots_after_run_end_seconds" in text or not re.search(r"^run_monitoring:\s*$", text, re.MULTILINE):
        return False
    new = re.sub(r"^(run_monitoring:\s*\n)", lambda m: m.group(1) + FREE_SLOTS, text, count=1, flags=re.MULTILINE)
    tmp = config.with_suffix(".yaml.tmp")
    tmp.write_text(new)
    os.replace(tmp, config)
    return True


def relocate_config(config: Path, home: Path) -> bool:
    """Dagster's sqlite storage takes absolute base_dirs (no paths relative to DAGSTER_HOME), so a
    copied data directory's dagster.yaml still names the original's: its runs, event logs and
    compute logs would go there. Every base_dir under another `.../dagster_home` is moved under
    `home` (a base_dir the user pointed elsewhere is left alone). True when the file changed."""
    import yaml

    text = config.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return False  # the user's file; Dagster will say what is wrong with it
    stored = ((data.get("local_artifact_storage") or {}).get("config") or {}).get("base_dir")
    if not isinstance(stored, str) or not Path(stored).is_absolute() or Path(stored).name != home.name \
            or Path(stored) == home:
        return False
    pattern = re.compile(r"(base_dir:\s*['\"]?)" + re.escape(stored) + r"(?=[/'\"\s]|$)", re.MULTILINE)
    new = pattern.sub(lambda m: m.group(1) + str(home), text)
    if new == text:
        return False
    tmp = config.with_suffix(".yaml.tmp")
    tmp.write_text(new)
    os.replace(tmp, config)
    return True


def dagster_instance():
    """The Dagster instance of this data directory (the one the UI and the daemon use)."""
    import dagster as dg

    return dg.DagsterInstance.from_config(str(ensure_dagster_home()))


PID_TAG = "revintel/pid"


def run_tags(tags: dict[str, str] | None = None) -> dict[str, str]:
    """Tags for an in-process run: its process id, so a later run can tell it died."""
    return {**(tags or {}), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_runs(instance, every_started: bool = False) -> list[str]:
    """Mark in-process runs whose process is gone as failed and free their pool slots.

    A run killed with SIGKILL (or by the OOM killer) never reports its end: it stays STARTED
    and keeps its `warehouse` pool slot, and every later step would wait for that slot forever.
    Daemon-launched runs are covered by run monitoring (dagster.yaml); runs started in-process
    by the CLI carry their pid, and this is their recovery. `every_started`: also runs without a
    pid tag (a benchmark directory, where nothing else can be running).
    """
    import dagster as dg

    recovered = []
    # NOT_STARTED: an in-process run whose process was killed between creating the run and
    # starting it stays NOT_STARTED forever (issue 18); with a dead pid it is failed like the others
    for record in instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                                            dg.DagsterRunStatus.NOT_STARTED])):
        run = record.dagster_run
        pid = run.tags.get(PID_TAG)
        if pid is None and (not every_started or run.status == dg.DagsterRunStatus.NOT_STARTED):
            continue
        if pid is not None and (int(pid) == os.getpid() or _alive(int(pid))):
            continue
        instance.report_run_failed(run, message=f"process {pid} is gone (killed?); marked failed by revintel")
        # Dagster frees a failed run's pool slots only from its own run monitoring (daemon-launched
        # runs); an in-process run's slots are freed here, through the event log storage
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
    # a run that ended (FAILURE after a SIGKILL: Dagster marks it so from outside) but still holds a pool
    # slot: its slots are freed too, or the next warehouse run queues behind a finished run for ever
    storage = instance.event_log_storage
    if getattr(storage, "supports_global_concurrency_limits", False):
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                if run_id not in recovered:
                    recovered.append(run_id)
    return recovered
