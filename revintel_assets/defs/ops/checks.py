"""Operational asset checks: nightly freshness, forecast calibration watch, and key checks on the
star schema and the ICP scores.

Every computation is a small pure function taking an open DuckDB connection (tests call them
directly); the Dagster checks only open the warehouse, call them and report metadata.
Freshness never looks at the wall clock: "fresh" means scored up to the source's export date
(or the source's as_of when set), the same anchor the partitions are built from.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from revintel_assets.defs.deals.assets import SCORES
from revintel_assets.defs.forecast.assets import BACKTEST
from revintel_assets.defs.icp.assets import icp_scores
from revintel_assets.defs.star.assets import dim_account, fact_opportunity
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.source import SourceResource
from revintel_resources.warehouse import key_violations, table_exists

COVERAGE_BAND = (0.70, 0.90)


# -- pure computations ----------------------------------------------------------------------------


def trained_division_models(con: duckdb.DuckDBPyConnection) -> int:
    if not table_exists(con, "validation.icp_models"):
        return 0
    return con.execute("SELECT count(*) FROM validation.icp_models WHERE status = 'trained'").fetchall()[0][0]


def propensity_out_of_range(con: duckdb.DuckDBPyConnection) -> int:
    """ICP score rows whose propensity is NULL or outside [0, 1]."""
    return int(con.execute("SELECT count(*) FROM scores.icp_scores "
                           "WHERE propensity IS NULL OR NOT propensity BETWEEN 0 AND 1").fetchone()[0])


def export_date(con: duckdb.DuckDBPyConnection, override: dt.date | None = None) -> dt.date | None:
    """The date the data is as of: `override` (the source's as_of) or meta.source's export date."""
    if override:
        return override
    if not table_exists(con, "meta.source"):
        return None
    return con.execute("SELECT max(export_date)::DATE FROM meta.source").fetchone()[0]


def freshness(con: duckdb.DuckDBPyConnection, override: dt.date | None = None) -> dict:
    """Latest scored as_of_date vs the export date; lag_days > 0 means the scores are stale."""
    latest = (con.execute("SELECT max(as_of_date)::DATE FROM scores.deal_scores").fetchone()[0]
              if table_exists(con, "scores.deal_scores") else None)
    export = export_date(con, override)
    lag = (export - latest).days if latest is not None and export is not None else None
    return {"latest_scored": latest, "export_date": export, "lag_days": lag,
            "fresh": latest is not None and (export is None or latest >= export)}


def forecast_coverage(con: duckdb.DuckDBPyConnection, period_type: str = "week", segment_type: str = "total") -> dict:
    """P10–P90 coverage of the latest backtest (share of origin × period rows with p10 <= actual <= p90)."""
    if not table_exists(con, "forecast.forecast_backtest"):
        return {"backtest_as_of": None, "coverage": None, "origins": 0, "rows": 0}
    backtest_as_of, coverage, origins, rows = con.execute(
        """SELECT backtest_as_of, avg(CASE WHEN actual BETWEEN p10 AND p90 THEN 1.0 ELSE 0.0 END),
                  count(DISTINCT as_of_date), count(*)
           FROM forecast.forecast_backtest
           WHERE backtest_as_of = (SELECT max(backtest_as_of) FROM forecast.forecast_backtest)
             AND period_type = ? AND segment_type = ?
           GROUP BY backtest_as_of""", [period_type, segment_type]).fetchone() or (None, None, 0, 0)
    return {"backtest_as_of": backtest_as_of, "coverage": None if coverage is None else float(coverage),
            "origins": int(origins), "rows": int(rows)}


def coverage_ok(coverage: float | None, band: tuple[float, float] = COVERAGE_BAND) -> bool:
    return coverage is not None and band[0] <= coverage <= band[1]


# -- checks ---------------------------------------------------------------------------------------


def _key_result(wh, table: str, keys: list[str]) -> dg.AssetCheckResult:
    with wh.connect(writes=False) as con:
        v = key_violations(con, table, keys)
    return dg.AssetCheckResult(
        passed=v["duplicates"] == v["null_keys"] == v["missing_table"] == 0,
        metadata={"key": ", ".join(keys), "rows": dg.MetadataValue.int(v["rows"]),
                  "duplicates": dg.MetadataValue.int(v["duplicates"]),
                  "null_keys": dg.MetadataValue.int(v["null_keys"]),
                  **({"missing_table": table} if v["missing_table"] else {})})


@dg.asset_check(asset=fact_opportunity, blocking=True,
                description="star.fact_opportunity: opportunity_id is unique and never NULL")
@warehouse_step
def fact_opportunity_keys(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _key_result(warehouse.get(), "star.fact_opportunity", ["opportunity_id"])


@dg.asset_check(asset=dim_account, blocking=True,
                description="star.dim_account: account_id is unique and never NULL")
@warehouse_step
def dim_account_keys(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _key_result(warehouse.get(), "star.dim_account", ["account_id"])


@dg.asset_check(asset=icp_scores, blocking=True,
                description="scores.icp_scores: (cutoff_date, division, account_id) is unique and not NULL, "
                            "and every propensity is in [0, 1]")
@warehouse_step
def icp_scores_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    with wh.connect(writes=False) as con:
        v = key_violations(con, "scores.icp_scores", ["cutoff_date", "division", "account_id"])
        bad_p = propensity_out_of_range(con) if not v["missing_table"] else 0
        # no table because no division had data enough for a model (e.g. MavenTech's 85 accounts):
        # nothing was scored, which the models' own metadata explains; not a broken table
        nothing_to_score = v["missing_table"] and not trained_division_models(con)
    return dg.AssetCheckResult(
        passed=nothing_to_score or v["duplicates"] == v["null_keys"] == v["missing_table"] == bad_p == 0,
        metadata={"rows": dg.MetadataValue.int(v["rows"]), "duplicates": dg.MetadataValue.int(v["duplicates"]),
                  "null_keys": dg.MetadataValue.int(v["null_keys"]),
                  "propensity_out_of_range": dg.MetadataValue.int(bad_p),
                  **({"missing_table": "scores.icp_scores"} if v["missing_table"] else {})})


@dg.asset_check(asset=SCORES, description="Nightly freshness: the latest scored as_of_date is not older than the "
                "source's export date (the source's as_of if set); never compared with the wall clock (warning)")
@warehouse_step
def nightly_freshness(warehouse: WarehouseResource, source: SourceResource) -> dg.AssetCheckResult:
    # the --as-of as asked (not clamped to the data): an as-of past the data then reads as not
    # fresh, which is what it is (the scores stop at the data's last date)
    with warehouse.get().connect(writes=False) as con:
        f = freshness(con, source.as_of_override())
    return dg.AssetCheckResult(
        passed=f["fresh"], severity=dg.AssetCheckSeverity.WARN,
        metadata={"latest_scored": str(f["latest_scored"]), "export_date": str(f["export_date"]),
                  **({"lag_days": dg.MetadataValue.int(f["lag_days"])} if f["lag_days"] is not None else {})})


@dg.asset_check(asset=BACKTEST, description="P10–P90 coverage of the latest backtest (weekly, total) "
                f"is between {COVERAGE_BAND[0]:.2f} and {COVERAGE_BAND[1]:.2f}: an 80 % interval that "
                "covers much less (or more) is miscalibrated (warning)")
@warehouse_step
def forecast_coverage_watch(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get().connect(writes=False) as con:
        c = forecast_coverage(con)
    return dg.AssetCheckResult(
        passed=coverage_ok(c["coverage"]), severity=dg.AssetCheckSeverity.WARN,
        metadata={"coverage": dg.MetadataValue.float(c["coverage"] if c["coverage"] is not None else float("nan")),
                  "origins": dg.MetadataValue.int(c["origins"]), "rows": dg.MetadataValue.int(c["rows"]),
                  "backtest_as_of": str(c["backtest_as_of"]),
                  "band": f"[{COVERAGE_BAND[0]:.2f}, {COVERAGE_BAND[1]:.2f}]"})


defs = dg.Definitions(asset_checks=[nightly_freshness, forecast_coverage_watch, fact_opportunity_keys, dim_account_keys,
                                    icp_scores_valid])
