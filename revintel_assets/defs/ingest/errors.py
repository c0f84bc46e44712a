"""The one error a user sees when a source file cannot be used at all."""

from __future__ import annotations

from pathlib import Path


class SourceError(Exception):
    """A source file that cannot be read: names the file, the line and what was expected."""

    def __init__(self, path: Path | str, line: int, expected: str, found: str):
        self.path, self.line, self.expected, self.found = Path(path), line, expected, found
        # line 0: the file or folder as a whole (a folder has no lines)
        super().__init__(f"{path}{f', line {line}' if line else ''}: expected {expected}; {found}")


class InputError(Exception):
    """A run's input that cannot be used, though every file reads (e.g. an --as-of date before
    anything in the data): the message says what was given, what was expected and what to do.
    Shown as one line like a SourceError (exit 2), never as a stack trace."""
