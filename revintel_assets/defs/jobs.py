"""The jobs, derived from the run plan (revintel_assets/plan.py)."""

import dagster as dg

from revintel_assets.plan import PLAN

JOBS = {j.name: dg.define_asset_job(j.name, selection=dg.AssetSelection.from_string(j.select),
                                    description=j.description) for j in PLAN}

defs = dg.Definitions(jobs=list(JOBS.values()))
