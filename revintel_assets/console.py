"""What `revintel demo/run` show on the console: their own progress lines and nothing else.

Libraries talk on their own: MLflow installs a stderr handler on its loggers (INFO "Creating
initial MLflow database tables..."), Python warnings (MLflow's UserWarnings, pydantic's, Dagster's
preview warnings, FutureWarnings) print where they are raised, LightGBM prints through its own
callback. Interleaved with the progress lines they read as errors a user must act on. Here they
all go to one log file under the data directory instead (`logs/revintel.log`), next to the
Dagster run log that keeps the steps' own events and stack traces.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# Loggers that configure a console handler of their own (and propagate=False) on import.
_SELF_CONFIGURED = ("mlflow", "alembic", "sqlalchemy", "huey")
_HANDLER_NAME = "revintel-log-file"


def route_library_output(log_file: Path) -> Path:
    """Send every library's logging (INFO and up) and every Python warning to `log_file`, none to
    the console. Idempotent; returns the file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _LogFile(log_file, encoding="utf-8")
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [h for h in root.handlers if not _is_console(h)]
    if handler not in root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the file
    import mlflow  # noqa: F401  (configures its loggers at import: do it now, then take them over)

    for name in (*_SELF_CONFIGURED, *logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        if any(_is_console(h) for h in logger.handlers):
            logger.handlers = [h for h in logger.handlers if not _is_console(h)]
            logger.propagate = True
    _route_lightgbm()
    return log_file


class _LogFile(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        """A log file that cannot be written (a full disk) stays silent: logging's default prints
        a traceback to stderr, and the run's own message says what is wrong."""


def _is_console(handler: logging.Handler) -> bool:
    """A handler writing to the terminal: stderr, stdout, or MLflow's wrapper of stderr (not a
    file, and not an in-memory stream such as pytest's capture)."""
    stream = getattr(handler, "stream", None)
    return (isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            and (stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
                 or type(stream).__name__ == "MlflowLoggingStream"))


def _route_lightgbm() -> None:
    """LightGBM's messages (its C++ log lines included) go through the logger registered here;
    without one it prints them and raises its warnings as Python warnings."""
    try:
        import lightgbm
    except ImportError:  # pragma: no cover - a dependency
        return
    lightgbm.register_logger(logging.getLogger("lightgbm"))
