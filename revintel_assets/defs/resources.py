"""Resources every asset may ask for, and the executor. Their defaults come from the settings
(revintel_resources/settings.py); the CLI and the launchpad override them per run."""

import dagster as dg

from revintel_resources.compute import ComputeResource
from revintel_resources.io_manager import DuckDBPolarsIOManager
from revintel_resources.resources import WarehouseResource
from revintel_resources.source import SourceResource
from revintel_resources.tracking import MLflowResource

defs = dg.Definitions(
    resources={
        "warehouse": WarehouseResource(),
        "source": SourceResource(),
        "compute": ComputeResource(),
        "io_manager": DuckDBPolarsIOManager(),
        "mlflow_tracking": MLflowResource(),
    },
    # steps of a run share the warehouse writer; processes fan out inside the heavy kernels instead
    executor=dg.in_process_executor,
)
