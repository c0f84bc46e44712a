"""Deal partitions, registered from the data by the import (never from the wall clock):
as-of dates (a day each: weekly history plus the export date, and any day a schedule asks for)
and training cutoffs (the evaluation cutoff and the as-of date)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from revintel_assets.defs import partitions
from revintel_assets.defs.deals.calendar import DealPlan

as_of_dates = dg.DynamicPartitionsDefinition(name="as_of_date")
training_cutoffs = dg.DynamicPartitionsDefinition(name="training_cutoff")


def register(instance: dg.DagsterInstance, plan: DealPlan) -> DealPlan:
    for definition, keys in ((as_of_dates, plan.snapshot_dates), (training_cutoffs, plan.model_cutoffs)):
        partitions.register(instance, definition, [k.isoformat() for k in keys])
    return plan
