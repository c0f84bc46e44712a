"""MLflowResource against a real sqlite store in tmp_path: runs, models, registry, aliases, and
two processes registering at once (the file lock keeps sqlite from "database is locked")."""

from __future__ import annotations


import mlflow.pyfunc
import numpy as np

from revintel_resources.tracking import MLflowResource, registered_name


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.asarray(model_input["x"]) * 2


def _register_many(data_dir: str, name: str, n: int) -> list[str]:
    tracking = MLflowResource(data_dir=data_dir)
    out = []
    for i in range(n):
        with tracking.run("concurrency", f"run {i}") as run:
            run.log_metrics({"i": i})
            uri = run.log_model(Doubler())
        out.append(str(tracking.register(uri, name)))
    return out


def test_run_log_register_alias_load(tmp_path):
    tracking = MLflowResource(data_dir=str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    name = registered_name("revintel-icp", "Stationery & Party")
    assert name == "revintel-icp-stationery-party"
    versions = []
    for k in range(2):
        with tracking.run("revintel-test", f"try {k}", tags={"division": "Stationery & Party"}) as run:
            run.log_params({"k": k, "long": "x" * 7000})
            run.log_metrics({"auc": 0.8 + k / 100, "nan": float("nan")})
            run.log_features(["a", "b"])
            uri = run.log_model(Doubler())
            run_id = run.run_id
        versions.append(str(tracking.register(uri, name, tags={"run_id": run_id})))
    assert versions == ["1", "2"]
    tracking.set_alias(name, "champion", versions[0])
    assert str(tracking.get_alias(name, "champion").version) == "1"
    assert tracking.get_alias(name, "nope") is None

    stored = tracking.configure().get_run(run_id)
    assert stored.data.metrics["auc"] == 0.81 and "nan" not in stored.data.metrics
    assert stored.data.tags["division"] == "Stationery & Party"
    assert (tmp_path / "mlflow" / "mlflow.db").exists()
    assert any((tmp_path / "mlflow" / "artifacts" / "revintel-test").rglob("features.json"))

    import pandas as pd

    model = tracking.load_model(f"models:/{name}@champion")
    assert model.predict(pd.DataFrame({"x": [1.0, 2.5]})).tolist() == [2.0, 5.0]


def test_two_processes_register_at_once(tmp_path):
    """Two independent Python processes (started as a user would start two runs, not forked or
    spawned from this test process, whose multiprocessing state other tests share) register
    versions of one model at once: every version number handed out exactly once."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    MLflowResource(data_dir=str(tmp_path)).experiment("concurrency")  # schema created once, up front
    here = str(Path(__file__).resolve().parent)
    code = (f"import sys, json; sys.path.insert(0, {here!r}); from test_tracking import _register_many; "
            f"print(json.dumps(_register_many({str(tmp_path)!r}, 'm', 2)))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(v for r in results for v in r) == ["1", "2", "3", "4"]
