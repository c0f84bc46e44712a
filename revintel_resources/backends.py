"""Which warehouse engine the assets write to, chosen by ONE environment variable.

    REVINTEL_WAREHOUSE=duckdb       (default) the local two-file design of warehouse.py: runs write
                                    $REVINTEL_DATA_DIR/warehouse/.work/revintel.duckdb under a file
                                    lock, `publish()` swaps in the analyst copy readers open.
    REVINTEL_WAREHOUSE=motherduck   the same SQL on MotherDuck (DuckDB in the cloud):
                                    database `md:$MOTHERDUCK_DATABASE` (default `revintel`), token from
                                    $MOTHERDUCK_TOKEN (or `motherduck_token`). The service serves
                                    concurrent readers and writers itself, so there is no local work
                                    file and `publish()` has nothing to copy.

Every writer goes through `Warehouse` (the `WarehouseResource` and the `DuckDBPolarsIOManager`
both build it with `Warehouse.from_env`), so the switch moves the whole asset graph. Engines whose
SQL dialect is not DuckDB's (Snowflake, BigQuery) are not a switch away: the features use ASOF
joins, `QUALIFY`, list parameters; docs/SCALING.md says what moving there takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_VAR = "REVINTEL_WAREHOUSE"
DEFAULT = "duckdb"
BACKENDS = ("duckdb", "motherduck")
NOT_DUCKDB = {"snowflake", "bigquery", "redshift", "postgres", "databricks"}


def _from_settings() -> dict[str, str]:
    """The variables below as the settings object read them (settings.py is their only reader)."""
    from revintel_resources.settings import settings

    s = settings()
    env = {ENV_VAR: s.warehouse, MEMORY_ENV: s.duckdb_memory_limit, "MOTHERDUCK_DATABASE": s.motherduck_database}
    return env | ({"MOTHERDUCK_TOKEN": s.motherduck_token} if s.motherduck_token else {})


class UnknownWarehouseBackend(ValueError):
    """REVINTEL_WAREHOUSE names no engine revintel can write to."""


@dataclass(frozen=True)
class Backend:
    """How to reach the warehouse.

    name: `duckdb` or `motherduck`; database: what `duckdb.connect` takes (None: the local work
    file); config: extra `duckdb.connect(config=...)` settings; local_file: whether runs write a
    local file that `publish()` copies for readers; memory_limit: DuckDB's buffer limit for the
    local file ($REVINTEL_DUCKDB_MEMORY_LIMIT, default 6GB; `none` = DuckDB's own 80% of RAM).
    """

    name: str
    database: str | None = None
    config: Mapping[str, str] = field(default_factory=dict, repr=False)  # holds the MotherDuck token
    local_file: bool = True
    memory_limit: str | None = None  # local DuckDB only: SET memory_limit (spills beyond it)

    def describe(self) -> str:
        return self.name if self.database is None else f"{self.name} ({self.database})"


MEMORY_ENV = "REVINTEL_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "6GB"  # docs/BENCHMARKS.md: the nightly at scale 100 must stay under 8 GiB in all


def memory_limit(env: Mapping[str, str] | None = None) -> str | None:
    """DuckDB memory_limit for the local file: `6GB` by default, None for `none` (DuckDB's default)."""
    env = _from_settings() if env is None else env
    value = (env.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT).strip()
    if value.lower() in ("none", "default"):
        return None
    from revintel_resources.settings import Settings

    try:  # the one rule, Settings' (the CLI has checked it before anything runs)
        return Settings._memory_limit(value)
    except ValueError as exc:
        raise UnknownWarehouseBackend(f"{MEMORY_ENV}={value!r}: {exc}") from None


def backend_name(env: Mapping[str, str] | None = None) -> str:
    env = _from_settings() if env is None else env
    return (env.get(ENV_VAR) or DEFAULT).strip().lower()


def resolve(env: Mapping[str, str] | None = None) -> Backend:
    """The backend $REVINTEL_WAREHOUSE selects (default duckdb); a clear error for anything else."""
    env = _from_settings() if env is None else env
    name = backend_name(env)
    if name == "duckdb":
        return Backend("duckdb", memory_limit=memory_limit(env))
    if name == "motherduck":
        database = (env.get("MOTHERDUCK_DATABASE") or "revintel").strip()
        if not database or any(c in database for c in "?/ "):
            raise UnknownWarehouseBackend(f"MOTHERDUCK_DATABASE={database!r} is not a database name")
        token = env.get("MOTHERDUCK_TOKEN") or env.get("motherduck_token")
        config = {"motherduck_token": token} if token else {}
        return Backend("motherduck", database=f"md:{database}", config=config, local_file=False)
    hint = (f" {name} does not run DuckDB SQL; see docs/SCALING.md for what moving there takes."
            if name in NOT_DUCKDB else "")
    raise UnknownWarehouseBackend(
        f"{ENV_VAR}={env.get(ENV_VAR)!r} is not a warehouse revintel can write to; "
        f"use one of {', '.join(BACKENDS)} (default {DEFAULT}).{hint}")
