"""Where the raw exports are. Chosen by environment so the CLI, the UI and the schedules agree:
REVINTEL_SOURCE (default: the generated demo company under the data dir) and REVINTEL_FORMAT."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from revintel_resources import paths


class SourceResource(dg.ConfigurableResource):
    path: str | None = Field(default=None, description="Folder of raw exports; default REVINTEL_SOURCE or the demo")
    format: str | None = Field(default=None, description="Force a layout, e.g. 'maventech+sales_log'")

    def folder(self) -> Path:
        chosen = self.path or os.environ.get("REVINTEL_SOURCE") or str(paths.demo_source_dir())
        return Path(chosen).expanduser().resolve()

    def forced_format(self) -> str | None:
        return self.format or os.environ.get("REVINTEL_FORMAT") or None
