"""One `revintel run` (or `demo`) per data directory at a time (issue 18, docs/SECURITY.md).

The warehouse's writer lock serialises single connections, not runs: two runs on one data
directory interleaved their steps and published a file that mixed both sources. A run now holds
an exclusive lock on `DATA_DIR/.run.lock` for its whole length; a second run waits for it, saying
so once and naming the holder (pid and start time, written into the file once the lock is held),
or with `--no-wait` refuses at once (exit 3).

`fcntl.flock` on an open file: the kernel drops the lock when the holder's process dies, even by
SIGKILL, so a crashed run never blocks the next one; the descriptor is not inherited by programs
the run starts (`dagster dev`), only by forked workers, which end with the run.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from revintel_resources import paths

LOCK_NAME = ".run.lock"


class RunLocked(RuntimeError):
    """Another run holds the data directory."""

    def __init__(self, data_dir: Path, holder: str):
        self.data_dir, self.holder = data_dir, holder
        super().__init__(f"another revintel run ({holder}) is using the data directory {data_dir}; "
                         "wait for it to finish, or use another REVINTEL_DATA_DIR")


def lock_path(data_dir: Path | None = None) -> Path:
    return Path(data_dir or paths.data_dir()) / LOCK_NAME


@contextmanager
def run_lock(data_dir: Path | None = None, what: str = "run", wait: bool = False,
             say: Callable[[str], None] = print, poll_s: float = 1.0) -> Iterator[Path]:
    """Hold the data directory's run lock for the block. Taken by another run: RunLocked at once,
    or with `wait`, say who holds it (once) and wait until it is free."""
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "pid unknown"
                if not wait:
                    raise RunLocked(path.parent, holder) from None
                if not told:
                    say(f"revintel: waiting for another revintel run ({holder}) on {path.parent} to finish "
                        "(--no-wait: exit instead)")
                    told = True
                time.sleep(poll_s)
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")  # ok-now: when this run took the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {what} since {since}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
