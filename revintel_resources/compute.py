"""Where the heavy kernels' tasks run (issue 17): this machine's cores, or a Dask cluster.

A typed resource the CLI (`--cluster`) and the launchpad configure per run (`resources: compute:
config: {cluster}`); unset, REVINTEL_CLUSTER (settings.py) decides. Assets whose kernels fan out
(forecast engine chunks, TreeSHAP blocks) open `active()` around their work, so every
`parallel.map_tasks` inside goes where the run said.
"""

from __future__ import annotations

import contextlib

import dagster as dg
from pydantic import Field


class ComputeResource(dg.ConfigurableResource):
    cluster: str | None = Field(default=None, description="Dask scheduler for the heavy kernels' tasks, e.g. "
                                                          "tcp://10.0.0.5:8786; default REVINTEL_CLUSTER, unset: "
                                                          "this machine's cores")

    def active(self) -> contextlib.AbstractContextManager:
        from revintel_assets import parallel

        return parallel.using(self.cluster)
