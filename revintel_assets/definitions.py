"""All of revintel's Dagster definitions: `dagster dev -w workspace.yaml` loads this module."""

from __future__ import annotations

import warnings

import dagster as dg

# single-run backfills are the point of our partitioned assets; the beta label is noise here
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from revintel_assets.ingest.assets import source_import
from revintel_assets.star.assets import ASSETS as STAR_ASSETS
from revintel_assets.star.assets import fact_transactions
from revintel_resources.io_manager import DuckDBPolarsIOManager
from revintel_resources.resources import WarehouseResource
from revintel_resources.source import SourceResource

import_job = dg.define_asset_job(
    "import_job", selection=dg.AssetSelection.assets(source_import)
    | (dg.AssetSelection.groups("star") - dg.AssetSelection.assets(fact_transactions)),
    description="Read the source folder and rebuild the star schema's dimensions and opportunities.")
transactions_job = dg.define_asset_job(
    "transactions_job", selection=dg.AssetSelection.assets(fact_transactions),
    description="Rebuild star.fact_transactions for the selected months (one run per range).")

JOBS = [import_job, transactions_job]

defs = dg.Definitions(
    assets=[source_import, *STAR_ASSETS],
    jobs=JOBS,
    resources={
        "warehouse": WarehouseResource(),
        "source": SourceResource(),
        "io_manager": DuckDBPolarsIOManager(),
    },
    executor=dg.in_process_executor,
)
