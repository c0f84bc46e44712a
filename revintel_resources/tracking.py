"""MLflow tracking and model registry in a sqlite store under the data dir.

MLflow >= 3.13 refuses a plain ./mlruns file store, so tracking and registry live in
`sqlite:///<data_dir>/mlflow/mlflow.db` with artifacts beside it. sqlite admits one writer at a
time; registry writes from parallel training runs are serialised by a file lock instead of
being retried until "database is locked" goes away.

Relocatable: MLflow stores absolute artifact locations (experiments, runs, logged models, model
versions), so a copied data directory would write its artifacts into the original. At each start
(`configure()`) the locations that point at another data directory's `mlflow/` are rewritten to
this one's (`relocate()`), and the Default experiment's (MLflow puts it under the working
directory) goes under `mlflow/artifacts/0`.

`run()` wraps `start_run()` with helpers to log params, metrics, the feature list, a figure and
a pyfunc model (e.g. the ICP models)::

    with tracking.run("revintel-icp", "icp Hardware 2025-06-01", tags={...}) as run:
        run.log_params({...}); run.log_metrics({...}); run.log_features([...])
        uri = run.log_model(python_model)
    version = tracking.register(uri, registered_name("revintel-icp", "Hardware"))
    tracking.set_alias(name, "champion", version)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
from urllib.parse import unquote, urlparse
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import filelock
import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import Field

from revintel_resources import paths

# A pickled PythonModel is how a pyfunc carries booster + calibrator; MLflow warns on every log
# (in colour: the message starts with an escape code, hence the leading .*).
logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")

# (table, column) where MLflow keeps an absolute artifact location
LOCATION_COLUMNS = [("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
                    ("model_versions", "source")]
_relocated: set[tuple[int, str]] = set()  # (pid, root) already checked by this process
_CLIENTS: dict[tuple[int, str], MlflowClient] = {}  # (pid, root) -> its client (configure)


def relocate(root: Path) -> int:
    """Point every stored artifact location of `root/mlflow.db` that lies under another data
    directory's `mlflow/` at `root` instead; returns the rows changed. Idempotent."""
    db = root / "mlflow.db"
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=60)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "experiments" not in tables:
            return 0
        new_uri, new_path = root.as_uri(), str(root)
        olds = set()
        for (loc,) in con.execute("SELECT artifact_location FROM experiments WHERE artifact_location LIKE "
                                  "'%/mlflow/artifacts/%'"):
            head = loc[:loc.index("/mlflow/artifacts/") + len("/mlflow")]
            if head not in (new_uri, new_path):
                olds.add(head)
        changed = 0
        with con:
            for old in olds:
                old_uri = old if old.startswith("file:") else Path(old).as_uri()
                old_path = unquote(urlparse(old_uri).path)
                for prefix, new in ((old_uri, new_uri), (old_path, new_path)):
                    for table, column in LOCATION_COLUMNS:
                        if table in tables:
                            changed += con.execute(
                                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                f"WHERE substr({column}, 1, ?) = ? AND substr({column}, ?, 1) IN ('/', '')",
                                [new, len(prefix) + 1, len(prefix), prefix, len(prefix) + 1]).rowcount
            # the Default experiment: MLflow creates it under the working directory (./mlruns/0)
            changed += con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0 "
                                   "AND substr(artifact_location, 1, ?) <> ?",
                                   [(root / "artifacts" / "0").as_uri(), len(new_uri), new_uri]).rowcount
        return changed
    finally:
        con.close()


# Pinned requirements skip MLflow's requirement inference, which imports the model and takes seconds.
PIP_REQUIREMENTS = ["lightgbm", "scikit-learn", "numpy", "polars", "pandas"]


def create_store(db: Path) -> None:
    """A new MLflow store: MLflow's own schema (its initial tables, then every migration), built
    in a side file without fsyncs and moved into place. MLflow builds it in place otherwise, with
    a sync per migration: 17 s on this box instead of 3.5 s, in every fresh data directory."""
    if db.exists():
        return
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    side = db.with_name(db.name + ".init")
    side.unlink(missing_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{side}")
    # a half-built side file is deleted and built again: nothing here needs to survive a crash
    sqlalchemy.event.listen(engine, "connect", lambda con, _: (con.execute("PRAGMA synchronous=OFF"),
                                                               con.execute("PRAGMA journal_mode=MEMORY")))
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    os.replace(side, db)


def registered_name(prefix: str, key: str) -> str:
    """Registry-safe name: ('revintel-icp', 'Stationery & Party') -> 'revintel-icp-stationery-party'."""
    return f"{prefix}-{re.sub(r'[^a-z0-9]+', '-', key.lower()).strip('-')}"


class Run:
    """Helpers on one active run (fluent API; the store lock is held by `MLflowResource.run`)."""

    def __init__(self, active: mlflow.ActiveRun) -> None:
        self.active = active

    @property
    def run_id(self) -> str:
        return self.active.info.run_id

    def log_params(self, params: dict) -> None:
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})  # params are short strings

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v}  # NaN dropped
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_features(self, features: list[str], name: str = "features.json") -> None:
        mlflow.log_dict({"features": list(features)}, name)

    def log_figure(self, figure, name: str) -> None:
        """A matplotlib figure, e.g. a gains chart, as a run artifact."""
        mlflow.log_figure(figure, name)

    def log_model(self, python_model, name: str = "model") -> str:
        """Log a pyfunc model (an mlflow.pyfunc.PythonModel); returns its model URI."""
        info = mlflow.pyfunc.log_model(name=name, python_model=python_model, pip_requirements=PIP_REQUIREMENTS)
        return info.model_uri


class MLflowResource(dg.ConfigurableResource):
    """Typed access to revintel's MLflow store; `data_dir` defaults to REVINTEL_DATA_DIR."""

    data_dir: str | None = Field(default=None, description="Data directory; default: REVINTEL_DATA_DIR")

    def root(self) -> Path:
        return (Path(self.data_dir).expanduser().resolve() if self.data_dir else paths.data_dir()) / "mlflow"

    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root() / 'mlflow.db'}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root().mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(self.root() / "registry.lock"), timeout=600):
            yield

    def configure(self) -> MlflowClient:
        self.root().mkdir(parents=True, exist_ok=True)
        if not (self.root() / "mlflow.db").exists():
            with self._locked():
                create_store(self.root() / "mlflow.db")
        key = (os.getpid(), str(self.root()))
        if key not in _relocated and (self.root() / "mlflow.db").exists():
            with self._locked():
                relocate(self.root())
            _relocated.add(key)
        mlflow.set_tracking_uri(self.tracking_uri())
        mlflow.set_registry_uri(self.tracking_uri())
        # one client per store and process: building one took ~20 ms, 45 times in the ICP models step
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = MlflowClient(self.tracking_uri(), self.tracking_uri())
        return client

    def experiment(self, name: str) -> str:
        client = self.configure()
        with self._locked():
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                return exp.experiment_id
            created = client.create_experiment(name, artifact_location=(self.root() / "artifacts" / name).as_uri())
            relocate(self.root())  # a new store: its Default experiment under this data directory
            return created

    @contextlib.contextmanager
    def start_run(self, experiment: str, run_name: str) -> Iterator[mlflow.ActiveRun]:
        """A run in `experiment`; the whole run holds the store's lock (runs are short)."""
        experiment_id = self.experiment(experiment)
        with self._locked(), mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            yield run

    @contextlib.contextmanager
    def run(self, experiment: str, run_name: str, tags: dict | None = None) -> Iterator[Run]:
        """`start_run` with the `Run` helpers; `tags` are set on the run."""
        with self.start_run(experiment, run_name) as active:
            if tags:
                mlflow.set_tags({k: str(v) for k, v in tags.items()})
            yield Run(active)

    def load_model(self, model_uri: str):
        """A pyfunc model, e.g. 'models:/revintel-icp-hardware@champion' or 'runs:/<id>/model'."""
        self.configure()
        return mlflow.pyfunc.load_model(model_uri)

    def register(self, model_uri: str, name: str, tags: dict[str, str] | None = None) -> str:
        client = self.configure()
        with self._locked():
            with contextlib.suppress(MlflowException):
                client.create_registered_model(name)
            run_id = (tags or {}).get("run_id")
            mv = client.create_model_version(name, model_uri, run_id=run_id, tags=tags or {})
            return mv.version

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        client = self.configure()
        with self._locked():
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        client = self.configure()
        with self._locked():
            client.set_registered_model_alias(name, alias, version)

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        client = self.configure()
        try:
            return client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric logged on a run."""
        return dict(self.configure().get_run(run_id).data.metrics)

    def log_run_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        """Add metrics to a finished run (evidence computed after registration, e.g. a gate)."""
        client = self.configure()
        with self._locked():
            for key, value in metrics.items():
                client.log_metric(run_id, key, float(value))

    def versions(self, name: str) -> list[ModelVersion]:
        return list(self.configure().search_model_versions(f"name = '{name}'"))
