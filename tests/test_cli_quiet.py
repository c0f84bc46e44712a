"""Issue 13 item 8: a quiet, clean CLI, tried as a user meets it (real subprocesses, real ports).

- a malformed file stops the run with one `revintel:` line naming the file, the line and what was
  expected, exit 2; the stack trace is in the Dagster run log, not on the console;
- library warnings and INFO lines (MLflow, Dagster, LightGBM, pydantic...) never reach the console:
  they are in the log file under the data directory;
- `revintel ui` stops every process it started on SIGTERM and on SIGINT, and frees its ports.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import MAVENTECH, need

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def cli_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVINTEL_", "DAGSTER_"))}
    return {**env, "REVINTEL_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}


def run_cli(args: list[str], data: Path, timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revintel_assets.cli", *args], cwd=ROOT, env=cli_env(data),
                          capture_output=True, text=True, timeout=timeout)


def test_malformed_file_exits_2_with_one_line_and_the_trace_in_the_run_log(tmp_path):
    """A quote opened on line 6 of sales_pipeline.csv and never closed (DuckDB only says it could not
    sniff the dialect): one line naming the file, line 6 and what was expected; exit 2."""
    src = tmp_path / "export"
    shutil.copytree(need(MAVENTECH), src)
    lines = (src / "sales_pipeline.csv").read_text().splitlines()
    lines[5] = '"' + lines[5]
    (src / "sales_pipeline.csv").write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    proc = run_cli(["run", "--source", str(src), "--no-serve"], data, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert err[0].startswith(f"revintel: cannot import the source: {src / 'sales_pipeline.csv'}, line 6: expected ")
    assert "quote opened on line 6 is never closed" in err[0]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Error when sniffing" not in out

    # the stack trace is kept: in the failed Dagster run's event log and in the log file
    code = ("from revintel_resources.instance import dagster_instance\n"
            "i = dagster_instance(); r = i.get_runs(limit=1)[0]\n"
            "f = [e for e in i.all_logs(r.run_id) if e.dagster_event and e.dagster_event.event_type_value == "
            "'STEP_FAILURE']\n"
            "print(r.status.value, f[0].step_key, len(f[0].dagster_event.event_specific_data.error.to_string()"
            ".splitlines()))")
    status, step, stack_lines = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(data),
                                               capture_output=True, text=True, check=True).stdout.split()
    assert (status, step) == ("FAILURE", "source_import") and int(stack_lines) > 10
    log = (data / "logs" / "revintel.log").read_text()
    assert "Traceback" in log and "SourceError" in log


# A line on the console that comes from a library, not from revintel's own progress lines.
LIBRARY_LINE = re.compile(r"\b(INFO|DEBUG)\b|Warning\b|warnings\.warn|color_warning|\[LightGBM\]|"
                          r"^\d{4}[-/]\d\d[-/]\d\d \d\d:\d\d:\d\d", re.MULTILINE)


def test_console_of_a_real_run_has_only_revintel_lines(tmp_path):
    """A whole-graph run on a small Salesforce export (MLflow creates its database, models are
    tried, LightGBM and Dagster are imported): stdout + stderr hold no library warning or INFO
    line; those are in logs/revintel.log. Each job ends with its time and the time since the start."""
    data = tmp_path / "data"
    proc = run_cli(["run", "--source", str(FIXTURES / "salesforce_no_history"), "--no-serve"], data)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-4000:]
    found = [m.group(0) for m in LIBRARY_LINE.finditer(console)]
    assert not found, f"library output on the console: {found}\n{console[-4000:]}"
    assert proc.stderr.strip() == "", proc.stderr[-3000:]
    assert re.search(r"^      warning: rows kept but flagged: ", proc.stdout, re.MULTILINE)  # ours stay
    assert re.search(r"done in [\d.]+s \(run \w{8}; [\dms.]+ since the start\)", proc.stdout)
    log = (data / "logs" / "revintel.log").read_text()
    assert "mlflow" in log and "UserWarning" in log, log[-2000:]  # routed, not lost


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE  # exited; holds no port, only its exit status
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_ui_stops_every_child_and_frees_its_ports(tmp_path, sig):
    ports = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "revintel_assets.cli", "ui", "--dagster-port", str(ports[0]),
                             "--streamlit-port", str(ports[1])], cwd=ROOT, env=cli_env(tmp_path / "data"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not all(answers(p) for p in ports):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the UI did not come up in 5 minutes"
            time.sleep(1)
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "dagster_webserver" in names and "dagster._daemon" in names and "streamlit" in names, names
        proc.send_signal(sig)
        if sig == signal.SIGKILL:  # nothing of it runs: its children must stop on their own
            proc.wait(timeout=10)
            psutil.wait_procs(tree, timeout=120)
            again = sum(answers(p) for p in ports)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # the test failed: do not leave the UI running
            stop = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
            for p in stop:
                p.kill()
    if sig == signal.SIGKILL:
        assert again == 0  # nothing left answering on the ports
    else:
        assert proc.returncode == 0, out
        assert f"{sig.name} received" in out and "are free" in out, out
    alive = [" ".join(p.cmdline()[:4]) for p in tree if not gone(p)]
    assert not alive, f"still running after {sig.name}: {alive}"
    assert all(port_is_free(p) for p in ports), out


def test_any_other_failure_is_one_line_exit_1_naming_the_run(tmp_path, monkeypatch, capsys):
    """A step failing with a library error (not a source problem): one `revintel:` line naming the
    step, the error and where the stack trace is (the Dagster run, the log file); exit 1."""
    import revintel_assets.definitions as definitions
    import revintel_assets.orchestrate as orchestrate
    from revintel_assets import cli

    class StepError(Exception):  # Dagster's wrapper: the user's exception and the step key
        def __init__(self, user_exception):
            super().__init__("step failed")
            self.user_exception, self.step_key = user_exception, "forecast__revenue_forecast"

    def failing(*args, **kwargs):
        try:
            raise StepError(ValueError("shapes (3,) and (4,) not aligned\nmore detail"))
        except StepError as exc:
            raise orchestrate.RunFailed("forecast_job", "0123456789abcdef") from exc

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(definitions, "load", lambda: None)
    monkeypatch.setattr(orchestrate, "materialize_all", failing)
    assert cli.main(["run", "--no-serve", "--source", str(FIXTURES / "hubspot")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    log = tmp_path / "data" / "logs" / "revintel.log"
    assert err == [f"revintel: the run failed in step forecast__revenue_forecast: ValueError: shapes (3,) and (4,) "
                   f"not aligned (stack trace: the Dagster run log of run 01234567 (forecast_job) and {log})"]
    assert "Traceback" in log.read_text() and "more detail" in log.read_text()
    logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not isinstance(h, logging.FileHandler)]


def test_ui_refuses_ports_already_taken(tmp_path, capsys):
    """Another program (or an orphaned UI) on the port: it said "Streamlit app is up (0s)" (the
    other program answered), then "exited with code 1" with old log lines."""
    import socket

    from revintel_assets.serve import Child, serve

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code = serve([Child("Streamlit app", [sys.executable, "-c", "pass"], port, tmp_path / "s.log")],
                     "127.0.0.1", tmp_path, dict(os.environ))
    assert code == 1 and not (tmp_path / "s.log").exists()
    assert f"port {port} (Streamlit app) is already in use" in capsys.readouterr().err


def test_ui_gives_the_digest_the_apps_own_port(tmp_path, monkeypatch):
    """A re-check: the digest's Deal Detail links pointed at 127.0.0.1:8501 while `revintel ui
    --streamlit-port 8630` served the app there. The children get REVINTEL_APP_URL on that port, unless
    the user set it."""
    from revintel_assets import cli

    seen = []
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REVINTEL_APP_URL", raising=False)
    monkeypatch.setattr(cli, "_serve_children", lambda d, s, env, logs: seen.append(env["REVINTEL_APP_URL"]) or 0)
    cli._serve(3330, 8630)
    monkeypatch.setenv("REVINTEL_APP_URL", "https://revintel.example.com")
    cli._serve(3330, 8630)
    assert seen == ["http://127.0.0.1:8630", "https://revintel.example.com"]
