"""Run `revintel demo` as a user runs it: a subprocess of this interpreter, from the checkout, in
its own REVINTEL_DATA_DIR, with none of the caller's run-selecting settings (the session demo, the
shuffled-rows run and the Dask run must differ only in what each test asks for)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOT_INHERITED = ("DAGSTER_HOME", "REVINTEL_CLUSTER", "REVINTEL_AS_OF", "REVINTEL_SOURCE")


def demo_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    return {**env, "REVINTEL_DATA_DIR": str(data), **extra}


def run_demo(data: Path, *args: str, timeout: float = 1800, log: Path | None = None,
             **extra_env: str) -> subprocess.CompletedProcess:
    """`revintel demo --no-serve --scale 0.1 ARGS` into `data`; fails the test (with the output's
    tail) unless it exits 0. `log`: where to keep the exit code and output either way."""
    proc = subprocess.run([sys.executable, "-m", "revintel_assets.cli", "demo", "--no-serve", "--scale", "0.1", *args],
                          cwd=REPO, env=demo_env(data, **extra_env), capture_output=True, text=True, timeout=timeout)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-6000:]}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
