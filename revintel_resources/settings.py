"""Every setting of revintel, in one typed object: the only reader of `REVINTEL_*` variables.

Environment variables give the defaults; the CLI
and the Dagster launchpad override them per run through the resources' config
(`revintel_resources/source.py`, `resources.py`), never by writing `os.environ`. The README's
"Configuration" table lists these fields; `tests/test_settings.py` keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVINTEL_", extra="ignore", frozen=True,
                                      env_ignore_empty=True)

    data_dir: Path = Field(Path("./data"), description="Where everything is written (warehouse, MLflow, "
                                                        "Dagster home, the generated demo)")
    source: Path | None = Field(None, description="Folder of raw exports the import reads; default: the "
                                                   "source the data directory holds, else the demo company "
                                                   "under it (`--source`)")
    format: str | None = Field(None, description="Force the layout: maventech, salesforce, sales_log, tidy, "
                                                  "or a pair such as salesforce+tidy (`--format`)")
    mapping: Path | None = Field(None, description="Mapping file for a variant export; default "
                                                    "SOURCE/revintel_mapping.yaml (`--mapping`)")
    as_of: dt.date | None = Field(None, description="Score as of this date instead of the export date "
                                                     "(`--as-of`); never later than the data")
    truth_dir: Path | None = Field(None, description="The demo's ground truth, read only to report oracle "
                                                      "metrics (set by `revintel demo`)")
    workers: int | None = Field(None, ge=1, description="Cores the heavy kernels use (forecast engine: "
                                                         "processes, TreeSHAP: threads); default: the cores "
                                                         "this process may use (at most 8)")
    cluster: str | None = Field(None, description="Dask scheduler (tcp://HOST:PORT) the heavy kernels' tasks go "
                                                   "to (`--cluster`); unset: this machine's cores")
    folder_mapping: bool = Field(False, description="Let runs the sensor, a schedule or the UI started use a "
                                                    "revintel_mapping.yaml found in the source folder (`revintel run` "
                                                    "always may)")
    source_roots: str | None = Field(None, description="Folders (separated by ':') a source may lie under; "
                                                       "set it to limit what the launchpad can point the import at")
    app_url: str = Field("http://127.0.0.1:8501", description="Where the Streamlit app is reached: the digest's "
                                                               "links to Deal Detail start with it")
    digest_webhook_url: str | None = Field(None, repr=False, description="POST the weekly digest here as JSON {\"text\": ...} "
                                                             "(a Slack incoming webhook, or any endpoint)")
    fiscal_year_start_month: int = Field(1, ge=1, le=12, description="Month (1-12) the fiscal year starts in; "
                                                                      "every quarter (quotas, plan, forecast, outlook, waterfall) follows it")
    currency: str = Field("USD", description="Currency shown on every amount in the app when the source names "
                                             "none (an ISO code such as EUR, or a symbol such as €)")
    warehouse: str = Field("duckdb", description="Warehouse engine: duckdb (local files) or motherduck")
    duckdb_memory_limit: str = Field("6GB", description="DuckDB memory_limit of the local file: a size (6GB, "
                                                        "512MiB) or a share of this machine's memory (50%); "
                                                        "`none`: DuckDB's default")
    motherduck_database: str = Field("revintel", validation_alias=AliasChoices(
        "MOTHERDUCK_DATABASE", "REVINTEL_MOTHERDUCK_DATABASE"), description="MotherDuck database name")
    motherduck_token: str | None = Field(None, validation_alias=AliasChoices(
        "MOTHERDUCK_TOKEN", "motherduck_token"), repr=False,
        description="MotherDuck token (MOTHERDUCK_TOKEN)")

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_limit(cls, value: str) -> str:
        # checked here, before anything runs: it was refused only when the first job opened the
        # warehouse, and DuckDB's own percentage form (`80%`) was refused though DuckDB takes it
        value = value.strip()
        size = MEMORY_SIZE.fullmatch(value)
        if value.lower() in ("none", "default") or (size and float(size.group(1)) > 0):
            return value
        share = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", value)
        if share and 1 <= float(share.group(1)) <= 100:
            return value
        raise ValueError("expected a size above 0 such as 6GB or 512MiB, a share of this machine's memory from "
                         "1% to 100% such as 50%, or none")

    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()


MEMORY_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
READ_PREFIXES = ("REVINTEL_", "MOTHERDUCK_")  # every variable Settings reads (names are case-insensitive)
_BUILT: dict[tuple, Settings] = {}


def settings() -> Settings:
    """The settings as the environment gives them now: a test or a process that sets a variable
    sees it. Built once per distinct set of the variables it reads (building one costs a few ms of
    pydantic validation, and the kernels ask for it thousands of times in a run)."""
    import os

    key = tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith(READ_PREFIXES)))
    built = _BUILT.get(key)
    if built is None:
        if len(_BUILT) > 64:  # test suites go through many environments
            _BUILT.clear()
        built = _BUILT[key] = Settings()
    return built


def child_env(**values) -> dict[str, str]:
    """Environment variables that give a child process (the UI started by `revintel run`) these
    settings, e.g. child_env(source="/exports") -> {"REVINTEL_SOURCE": "/exports"}."""
    unknown = set(values) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")
    return {f"REVINTEL_{k.upper()}": str(v) for k, v in values.items() if v is not None}
