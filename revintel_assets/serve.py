"""`revintel ui`: the Dagster UI + daemon (`dagster dev`) and the Streamlit app, as children that
never outlive it.

The children run in their own sessions (a Ctrl+C in the terminal reaches this process only), so
stopping them is this process's job, on Ctrl+C (SIGINT), SIGTERM (systemd, docker stop, a
supervisor) or when one of them dies: each is asked to stop (SIGTERM: `dagster dev` then shuts
its webserver, daemon and code servers down in order), and whatever of the process tree seen
just before is still alive after a grace period is killed, so no port stays held. Their output
goes to log files under the data directory, not to this console.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

GRACE_S = 20.0  # dagster dev waits for its webserver and daemon; then whatever is left is killed


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    ready: bool = False


def port_answers(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _die_with_parent(parent: int) -> Callable[[], None]:
    """In a child, before it runs: SIGTERM when this process dies, whatever kills it. A `kill -9`
    of `revintel ui` left `dagster dev` (its webserver, daemon, code server) and Streamlit running,
    holding the ports, and the next `revintel ui` started a second daemon on the same instance."""
    def arm() -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG; sent when the parent's thread ends (main: for good)
        if os.getppid() != parent:  # the parent died before the prctl
            os._exit(1)
    return arm


def serve(children: list[Child], host: str, cwd: Path, env: dict[str, str], say=print) -> int:
    """Run the children until a signal or until one exits; 0 when stopped by a signal."""
    taken = [c for c in children if port_answers(host, c.port)]
    if taken:  # it said "is up (0s)" (whatever held the port answered), then the child died
        print("revintel: " + "; ".join(f"port {c.port} ({c.name}) is already in use" for c in taken)
              + ": another `revintel ui`, or another program, holds it. Stop it, or choose other ports "
              "(--dagster-port, --streamlit-port)", file=sys.stderr)
        return 1
    stop = threading.Event()
    caught: list[int] = []

    def on_signal(signum, _frame):
        caught.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    died: Child | None = None
    try:
        for c in children:
            c.log.parent.mkdir(parents=True, exist_ok=True)
            with open(c.log, "ab") as out:  # the child keeps its own descriptor
                c.proc = subprocess.Popen(c.argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=_die_with_parent(os.getpid()))
        for c in children:
            say(f"{c.name + ':':<15}http://{host}:{c.port}   (log: {c.log})")
        say("Starting; Ctrl+C stops both.")
        started = time.perf_counter()
        while not stop.is_set():
            died = next((c for c in children if c.proc.poll() is not None), None)
            if died:
                break
            for c in children:
                if not c.ready and port_answers(host, c.port):
                    c.ready = True
                    say(f"{c.name} is up ({time.perf_counter() - started:.0f}s)")
            stop.wait(0.5)
    finally:
        if caught:
            say(f"\nrevintel: {signal.Signals(caught[0]).name} received; stopping the UI processes ...")
        stopped = stop_children([c.proc for c in children if c.proc is not None])
        for s, handler in previous.items():
            signal.signal(s, handler)
    if died:
        tail = died.log.read_text(errors="replace").strip().splitlines()[-5:] if died.log.exists() else []
        print(f"revintel: the {died.name} exited with code {died.proc.returncode}; the others were stopped. "
              f"Last lines of {died.log}:\n  " + "\n  ".join(tail), file=sys.stderr)
        return 1
    say(f"Stopped {stopped} processes; ports {', '.join(str(c.port) for c in children)} are free.")
    return 0


def stop_children(procs: list[subprocess.Popen], grace_s: float = GRACE_S) -> int:
    """SIGTERM to each child, then SIGKILL to anything of their process trees (as seen before the
    SIGTERM) still alive after `grace_s`. Returns how many processes there were."""
    tree: list[psutil.Process] = []
    for p in procs:
        try:
            root = psutil.Process(p.pid)
            tree += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    for p in procs:  # reap our own children (no zombies left behind)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    return len(tree)
