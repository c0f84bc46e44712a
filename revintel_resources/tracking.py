"""MLflow tracking and model registry in a sqlite store under the data dir.

MLflow >= 3.13 refuses a plain ./mlruns file store, so tracking and registry live in
`sqlite:///<data_dir>/mlflow/mlflow.db` with artifacts beside it. sqlite admits one writer at a
time; registry writes from parallel training runs are serialised by a file lock instead of
being retried until "database is locked" goes away.
"""

from __future__ import annotations

import contextlib
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
        mlflow.set_tracking_uri(self.tracking_uri())
        mlflow.set_registry_uri(self.tracking_uri())
        return MlflowClient(self.tracking_uri(), self.tracking_uri())

    def experiment(self, name: str) -> str:
        client = self.configure()
        with self._locked():
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                return exp.experiment_id
            return client.create_experiment(name, artifact_location=(self.root() / "artifacts" / name).as_uri())

    @contextlib.contextmanager
    def start_run(self, experiment: str, run_name: str) -> Iterator[mlflow.ActiveRun]:
        """A run in `experiment`; the whole run holds the store's lock (runs are short)."""
        experiment_id = self.experiment(experiment)
        with self._locked(), mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            yield run

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

    def versions(self, name: str) -> list[ModelVersion]:
        return list(self.configure().search_model_versions(f"name = '{name}'"))
