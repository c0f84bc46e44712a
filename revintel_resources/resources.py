"""Dagster resource for assets that run SQL inside the warehouse instead of returning a DataFrame."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from revintel_resources.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """`warehouse.get()` gives a Warehouse; e.g. `get().write("star.fact_x", sql="SELECT ...")`, then return None."""

    data_dir: str | None = Field(default=None, description="Data directory; default: REVINTEL_DATA_DIR")
    lock_timeout_s: float = Field(default=900, description="Seconds to wait for the warehouse writer lock")

    def get(self) -> Warehouse:
        return Warehouse.from_env(self.data_dir, self.lock_timeout_s)
