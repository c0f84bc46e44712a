"""All of revintel's Dagster definitions: `dagster dev -w workspace.yaml` loads this module."""

from __future__ import annotations

import warnings

import dagster as dg

# single-run backfills are the point of our partitioned assets; the beta label is noise here
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from revintel_assets.deals.assets import ASSETS as DEAL_ASSETS
from revintel_assets.deals.assets import deal_scores, deal_snapshot, win_probability
from revintel_assets.deals.checks import CHECKS as DEAL_CHECKS
from revintel_assets.ops.checks import CHECKS as OPS_CHECKS
from revintel_assets.ops.schedules import SCHEDULES
from revintel_assets.ops.sensors import icp_chain, publish_after_success, source_files_changed
from revintel_assets.forecast.assets import ASSETS as FORECAST_ASSETS
from revintel_assets.forecast.assets import revenue_forecast
from revintel_assets.icp.assets import ASSETS as ICP_ASSETS
from revintel_assets.icp.assets import customer_division, division_propensity, icp_cutoffs, icp_scores, whitespace
from revintel_assets.ingest.assets import source_import
from revintel_assets.star.assets import ASSETS as STAR_ASSETS
from revintel_assets.star.assets import fact_transactions
from revintel_assets.star.checks import ASSETS as STAR_CHECK_ASSETS
from revintel_assets.star.checks import CHECKS as STAR_CHECKS
from revintel_resources.io_manager import DuckDBPolarsIOManager
from revintel_resources.resources import WarehouseResource
from revintel_resources.source import SourceResource
from revintel_resources.tracking import MLflowResource

import_job = dg.define_asset_job(
    "import_job", selection=dg.AssetSelection.assets(source_import)
    | (dg.AssetSelection.groups("star") - dg.AssetSelection.assets(fact_transactions)),
    description="Read the source folder and rebuild the star schema's dimensions and opportunities.")
transactions_job = dg.define_asset_job(
    "transactions_job", selection=dg.AssetSelection.assets(fact_transactions),
    description="Rebuild star.fact_transactions for the selected months (one run per range).")

snapshot_job = dg.define_asset_job(
    "deal_snapshot_job", selection=dg.AssetSelection.assets(deal_snapshot),
    description="Build as-of deal snapshots; a range of dates runs as one vectorised pass.")
win_model_job = dg.define_asset_job(
    "win_model_job", selection=dg.AssetSelection.assets(win_probability),
    description="Train, evaluate, register (and maybe promote) the win model for a training cutoff.")
deal_scoring_job = dg.define_asset_job(
    "deal_scoring_job", selection=dg.AssetSelection.assets(deal_scores),
    description="Score and explain the deals open on an as-of date with the champion of that date.")

icp_plan_job = dg.define_asset_job(
    "icp_plan_job", selection=dg.AssetSelection.assets(icp_cutoffs),
    description="ICP calendar and divisions from the data; registers the ICP partitions.")
icp_features_job = dg.define_asset_job(
    "icp_features_job", selection=dg.AssetSelection.assets(customer_division),
    description="Account × division feature matrices for the selected cutoffs × divisions (one SQL pass per cutoff).")
icp_models_job = dg.define_asset_job(
    "icp_models_job", selection=dg.AssetSelection.assets(division_propensity, icp_scores),
    description="Train, validate and register the division models, then score every account × division.")
icp_whitespace_job = dg.define_asset_job(
    "icp_whitespace_job", selection=dg.AssetSelection.assets(whitespace),
    description="Rank never-bought divisions by propensity × expected value, per cutoff.")

nightly_rescore_job = dg.define_asset_job(
    "nightly_rescore_job", selection=dg.AssetSelection.assets(deal_snapshot, deal_scores, revenue_forecast),
    description="One as-of date end to end: snapshot -> scores + explanations -> forecast (with the swing "
                "tuned by the latest backtest); a successful run publishes the analyst file.")

forecast_job = dg.define_asset_job(
    "forecast_job", selection=dg.AssetSelection.groups("forecast"),
    description="Backtest the revenue forecast on past weekly origins (tuning its shared swing), then "
                "forecast booked revenue per week / month / segment as of the date.")

JOBS = [import_job, nightly_rescore_job, transactions_job, snapshot_job, win_model_job, deal_scoring_job,
        icp_plan_job, icp_features_job, icp_models_job, icp_whitespace_job, forecast_job]

defs = dg.Definitions(
    assets=[source_import, *STAR_ASSETS, *STAR_CHECK_ASSETS, *DEAL_ASSETS, *ICP_ASSETS, *FORECAST_ASSETS],
    jobs=JOBS,
    asset_checks=[*DEAL_CHECKS, *STAR_CHECKS, *OPS_CHECKS],
    schedules=SCHEDULES,
    sensors=[source_files_changed, publish_after_success, icp_chain({j.name: j for j in JOBS})],
    resources={
        "warehouse": WarehouseResource(),
        "source": SourceResource(),
        "io_manager": DuckDBPolarsIOManager(),
        "mlflow_tracking": MLflowResource(),
    },
    executor=dg.in_process_executor,
)
