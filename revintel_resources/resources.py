"""Dagster resource for assets that run SQL inside the warehouse instead of returning a DataFrame."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable

import dagster as dg
from pydantic import Field

from revintel_resources.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """`warehouse.get()` gives a Warehouse; e.g. `get().write("star.fact_x", sql="SELECT ...")`, then return None."""

    data_dir: str | None = Field(default=None, description="Data directory; default: REVINTEL_DATA_DIR")
    lock_timeout_s: float = Field(default=900, description="Seconds to wait for the warehouse writer lock")

    def get(self) -> Warehouse:
        return Warehouse.from_env(self.data_dir, self.lock_timeout_s)


def warehouse_step(fn: Callable) -> Callable:
    """An asset's or check's body as one warehouse session (Warehouse.step_session): its queries and
    writes share one connection instead of opening the work file each time. Put it under the
    Dagster decorator; the step's `warehouse` argument names the file. Per step, not per run: a step
    holds the `warehouse` pool, so it never waits for the pool while it holds the writer lock
    (a run-wide lock would, between steps, and another process's step holding the pool would wait
    for that lock). Not for the import, which locks its connection's configuration down."""

    @contextlib.contextmanager
    def scope(kwargs: dict):
        from revintel_assets import parallel

        resource = kwargs.get("warehouse")
        # and the step's `compute` resource decides where its map_tasks go (its run's --cluster), for the
        # whole step: declared here once, not by each asset (plan_job's quota attainment had not)
        with resource.get().step_session() if isinstance(resource, WarehouseResource) else contextlib.nullcontext(), \
                parallel.step(kwargs.get("compute")):
            yield

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def steps(*args, **kwargs):
            with scope(kwargs):
                yield from fn(*args, **kwargs)
        return steps

    @functools.wraps(fn)
    def step(*args, **kwargs):
        with scope(kwargs):
            return fn(*args, **kwargs)
    return step
