"""All of revintel's Dagster definitions, loaded from the `defs/` folder (one folder per domain,
each with its assets, checks, partitions and automation side by side). `dg dev`, `dg check defs`
and `dagster dev -w workspace.yaml` all load this module."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import dagster as dg

# single-run backfills are the point of our partitioned assets; the beta label is noise here
warnings.filterwarnings("ignore", category=dg.BetaWarning)


@dg.definitions
def defs() -> dg.Definitions:
    from revintel_assets.lineage import dashboard_specs
    from revintel_assets.parallel import one_blas_thread

    one_blas_thread()  # every process that runs revintel's steps loads this first

    core = dg.load_from_defs_folder(path_within_project=Path(__file__).parent.parent)
    # each Streamlit page as an external asset downstream of the tables it reads
    return dg.Definitions.merge(core, dg.Definitions(assets=dashboard_specs(core)))


@cache
def load() -> dg.Definitions:
    """The resolved definitions, for code that runs jobs itself (the CLI, benchmarks, tests)."""
    return defs()
