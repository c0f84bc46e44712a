"""Live progress of a run `revintel demo/run` executes in this process.

A job runs inside `execute_in_process`, which returns only when the job is done: minutes for a
backfill range at full scale, silent all along. A thread reads the run's Dagster event log
meanwhile: it echoes the steps' warnings when they are logged (not after the job) and, when
nothing was printed for a while, says which step is running and for how long.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

HEARTBEAT_S = 30.0  # a line at least this often while a step runs
POLL_S = 1.0


def clock(seconds: float) -> str:
    """12.3s, 4m05s, 1h02m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


# A warning can name files of the source folder, whose names may hold a newline or a terminal escape:
# a name with "\n      star|quarantine: 0 rows" printed a forged line of the summary, and "\x1b[2J"
# cleared the screen (an audit). Control characters are printed escaped, as Python writes them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


class RunWatch:
    """Context manager around one in-process run (its id chosen before it starts)."""

    def __init__(self, instance, run_id: str, say: Callable[[str], None], heartbeat_s: float = HEARTBEAT_S,
                 poll_s: float = POLL_S):
        self.instance, self.run_id, self.say = instance, run_id, say
        self.heartbeat_s, self.poll_s = heartbeat_s, poll_s
        self.cursor: str | None = None
        self.running: dict[str, float] = {}  # step key -> when it started
        self.start = self.last_line = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"revintel-progress-{run_id[:8]}", daemon=True)

    def __enter__(self) -> RunWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()  # what was logged after the last poll (the failure's warnings, say)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read()
            now = time.perf_counter()
            if self.running and now - self.last_line >= self.heartbeat_s:
                step, since = min(self.running.items(), key=lambda kv: kv[1])
                self._say(f"      ... {clock(now - self.start)} so far; running {step.replace('__', '/')} "
                          f"for {clock(now - since)}")

    def _say(self, line: str) -> None:
        self.say(line)
        self.last_line = time.perf_counter()

    def _read(self) -> None:
        try:
            conn = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        except Exception:  # the run is not stored yet, or the event log is unreadable (disk full?)
            return
        self.cursor = conn.cursor
        for record in conn.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                if entry.level == logging.WARNING:  # context.log.warning: quarantined rows, skipped models
                    self._say(f"      warning: {printable(entry.user_message)}")
            elif event.event_type_value == "STEP_START":
                self.running[event.step_key] = time.perf_counter()
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                self.running.pop(event.step_key, None)
