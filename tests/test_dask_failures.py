"""A Dask cluster that cannot run revintel's tasks, met for real (a `dask scheduler` and `dask worker`
processes on 127.0.0.1), as an audit of the cluster met it: a worker that cannot import revintel or
runs other code is named before the first job; a cluster with no worker able to run a task, or a
scheduler lost mid-run, ends the wait with one sentence in revintel's words (the run waited for
ever, or failed with a library's ConnectionResetError); a step that fans out without the `compute`
resource (plan_job's did: its engine ignored --cluster) fails loudly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revintel_assets import cli, parallel

REPO = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and `workers` worker processes (each with its own PYTHONPATH, `None`: this checkout)."""

    def __init__(self, tmp: Path, workers: list[str | None]):
        self.address = f"tcp://127.0.0.1:{_port()}"
        self.procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port",
                                        self.address.rsplit(":", 1)[1], "--no-dashboard"],
                                       stdout=open(tmp / "scheduler.log", "w"), stderr=subprocess.STDOUT)]
        self.scheduler = self.procs[0]
        for i, path in enumerate(workers):
            env = {**os.environ, "PYTHONPATH": path or str(REPO)}
            self.procs.append(subprocess.Popen([DASK, "worker", self.address, "--nthreads", "1", "--no-dashboard",
                                                "--name", f"w{i}"], env=env, cwd=str(tmp),
                                               stdout=open(tmp / f"worker{i}.log", "w"), stderr=subprocess.STDOUT))
        from distributed import Client

        try:
            with Client(self.address, timeout="60s") as c:
                if workers:
                    c.wait_for_workers(len(workers), timeout=120)
        except BaseException:  # the fixture never sees a cluster that did not start: stop its processes here
            self.stop()
            raise

    def stop(self) -> None:
        parallel.close_clients()
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def cluster(tmp_path):
    made = []

    def start(workers: list[str | None]) -> Cluster:
        made.append(Cluster(tmp_path, workers))
        return made[-1]
    yield start
    for c in made:
        c.stop()


def _no_revintel(tmp: Path) -> str:
    """A PYTHONPATH whose interpreter cannot import revintel (the virtualenv's editable install hidden)."""
    site = tmp / "no_revintel"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(getattr(f, '__module__', '')).lower()]\n"
        f"sys.path[:] = [p for p in sys.path if not p.startswith({str(REPO)!r})]\n")
    return str(site)


def _other_code(tmp: Path) -> str:
    """A copy of revintel with one line changed."""
    other = tmp / "other"
    for package in ("revintel_assets", "revintel_resources"):
        shutil.copytree(REPO / package, other / package, ignore=shutil.ignore_patterns("__pycache__"))
    rules = other / "revintel_assets" / "rules.py"
    rules.write_text(rules.read_text() + "\n# another revision\n")
    return str(other)


@pytest.mark.slow
def test_workers_that_cannot_run_revintel_are_named_before_the_first_job(cluster, tmp_path):
    good = cluster([None])
    assert cli._cluster_problem(good.address) is None
    bad = cluster([_no_revintel(tmp_path), _other_code(tmp_path)])
    problem = cli._cluster_problem(bad.address)
    assert problem and problem.startswith(f"the Dask cluster at {bad.address} (--cluster) cannot run"), problem
    assert "cannot import revintel (ModuleNotFoundError" in problem and "runs other revintel code" in problem


def test_addresses_that_cannot_be_a_scheduler_are_said_at_once():
    started = time.monotonic()
    assert cli._scheduler_silent("tcp://127.0.0.1:99999") == "its port is not a number from 1 to 65535"
    assert time.monotonic() - started < 1  # Dask's client waited 30 s on it


@pytest.mark.slow
def test_a_cluster_without_a_worker_able_to_run_a_task_ends_the_wait(cluster, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(parallel, "NO_WORKER_S", 3.0)
    monkeypatch.setattr(parallel, "_POLL_S", 0.5)
    empty = cluster([])
    assert cli._cluster_problem(empty.address) is None  # workers may join later: said, not refused
    assert "has no worker yet" in capsys.readouterr().out
    started = time.monotonic()
    with parallel.using(empty.address), pytest.raises(parallel.ClusterError, match="no worker"):
        list(parallel.map_tasks(time.sleep, [(0.1,)] * 3))
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_a_scheduler_lost_mid_run_is_said_in_revintels_words(cluster):
    c = cluster([None])
    results = []
    with parallel.using(c.address), pytest.raises(parallel.ClusterError, match=f"lost the Dask scheduler at {c.address}"):
        for r in parallel.map_tasks(time.sleep, [(1.0,)] * 8):
            results.append(r)
            if len(results) == 1:
                c.scheduler.send_signal(signal.SIGKILL)
    assert len(results) >= 1


def test_a_step_without_the_compute_resource_may_not_fan_out():
    with parallel.step(None), pytest.raises(RuntimeError, match="without the `compute` resource"):
        parallel.map_tasks(abs, [(-1,), (-2,)])
    with parallel.step(None), parallel.step(_Compute()):  # a step inside a step's code: its own resource
        assert list(parallel.map_tasks(abs, [(-1,), (-2,)], 1)) == [1, 2]


class _Compute:
    def active(self):
        return parallel.using("")


def test_an_empty_cluster_option_means_this_machine(monkeypatch):
    """`--cluster ""` could not override REVINTEL_CLUSTER: the run refused with the environment's address."""
    monkeypatch.setenv("REVINTEL_CLUSTER", f"tcp://127.0.0.1:{_port()}")  # nothing listens there
    assert cli._cluster_problem("") is None
    problem = cli._cluster_problem(None)
    assert problem and "(REVINTEL_CLUSTER)" in problem and "refused" in problem.lower(), problem
    with parallel.using(""):
        assert parallel.cluster() is None
