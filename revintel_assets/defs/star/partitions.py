"""Partitions of the star schema. Months come from the data (registered by the import), so a
source from 2010 and one from 2025 both get exactly the months they have."""

from __future__ import annotations

import dagster as dg

transaction_months = dg.DynamicPartitionsDefinition(name="transaction_month")
