"""Dagster IO manager that stores polars DataFrames in the revintel DuckDB warehouse.

Replaces `dagster-duckdb-polars`, which cannot load inputs on DuckDB 2.x and replaces a partition
with a DELETE and an INSERT in separate autocommits. Here each output is one `Warehouse.write`
transaction. Asset key `["star", "dim_account"]` is table `star.dim_account`; a one-part key goes
to schema `public`. Partitioned assets name their partition column in the definition metadata
`partition_expr` (for MultiPartitions: a dict dimension name -> column).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from revintel_resources.warehouse import PartitionFilter, Warehouse, qualified, where_clause


def table_for(asset_key: dg.AssetKey) -> str:
    path = asset_key.path
    if len(path) == 1:
        return f"public.{path[0]}"
    if len(path) == 2:
        return f"{path[0]}.{path[1]}"
    raise ValueError(f"asset key {asset_key.to_user_string()} has more than two parts; cannot map it to schema.table")


def _partition_expr(definition_metadata: Mapping[str, Any] | None, asset_key: dg.AssetKey) -> Any:
    expr = (definition_metadata or {}).get("partition_expr")
    expr = getattr(expr, "value", expr)  # may arrive wrapped as a MetadataValue
    if expr is None:
        raise ValueError(
            f"asset {asset_key.to_user_string()} is partitioned but has no 'partition_expr' metadata "
            "naming its partition column"
        )
    return expr


def _time_filter(column: str, window: dg.TimeWindow) -> PartitionFilter:
    # Wall-clock times in the partitions' timezone, compared as naive TIMESTAMPs (as dagster-duckdb does),
    # so a DATE or TIMESTAMP column works without depending on the session time zone.
    return PartitionFilter(column, window=(window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)))


def partition_filters(
    partitions_def: dg.PartitionsDefinition,
    keys: list[str],
    time_window: dg.TimeWindow | None,
    expr: Any,
    asset_key: dg.AssetKey,
) -> list[PartitionFilter]:
    """The rows of `keys` of an asset: a half-open time window, `IN (keys)`, or one of those per dimension."""
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return [_time_filter(str(expr), time_window)]
    if not isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return [PartitionFilter(str(expr), values=list(keys))]

    if not isinstance(expr, Mapping):
        raise ValueError(f"{asset_key.to_user_string()}: MultiPartitions need partition_expr = {{dimension: column}}")
    filters, combos = [], 1
    for dim in partitions_def.partitions_defs:
        if dim.name not in expr:
            raise ValueError(f"{asset_key.to_user_string()}: partition_expr has no column for dimension {dim.name!r}")
        dim_keys = sorted({partitions_def.get_partition_key_from_str(k).keys_by_dimension[dim.name] for k in keys})
        tdef = dim.partitions_def
        if isinstance(tdef, dg.TimeWindowPartitionsDefinition):
            by_start = sorted(dim_keys, key=lambda k: tdef.time_window_for_partition_key(k).start)
            first, last = by_start[0], by_start[-1]
            if len(tdef.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))) != len(by_start):
                raise ValueError(f"{asset_key.to_user_string()}: keys of dimension {dim.name!r} are not contiguous")
            start, end = tdef.time_window_for_partition_key(first).start, tdef.time_window_for_partition_key(last).end
            filters.append(_time_filter(expr[dim.name], dg.TimeWindow(start, end)))
        else:
            filters.append(PartitionFilter(expr[dim.name], values=dim_keys))
        combos *= len(dim_keys)
    # The filters select the bounding box of the keys; it must be exactly the keys, or we would
    # delete (or load) partitions the run does not own.
    if combos != len(set(keys)):
        raise ValueError(f"{asset_key.to_user_string()}: the selected multi-partition keys are not a rectangle")
    return filters


def _markdown(df: pl.DataFrame) -> str:
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):
        return str(df)


class DuckDBPolarsIOManager(dg.ConfigurableIOManager):
    """Stores each asset output as table `schema.name` in the revintel warehouse (work file)."""

    data_dir: str | None = Field(default=None, description="Data directory; default: REVINTEL_DATA_DIR")
    lock_timeout_s: float = Field(default=900, description="Seconds to wait for the warehouse writer lock")

    def warehouse(self) -> Warehouse:
        return Warehouse.from_env(self.data_dir, self.lock_timeout_s)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | None) -> None:
        if obj is None:
            return  # the asset wrote its table itself (e.g. through WarehouseResource)
        if isinstance(obj, pl.LazyFrame):
            obj = obj.collect()
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj)}")
        table = table_for(context.asset_key)
        filters = None
        if context.has_asset_partitions:
            filters = partition_filters(
                context.asset_partitions_def,
                list(context.asset_partition_keys),
                self._window(context),
                _partition_expr(context.definition_metadata, context.asset_key),
                context.asset_key,
            )
        n = self.warehouse().write(table, obj, partition=filters, run_id=context.run_id)
        context.add_output_metadata(
            {
                "table": table,
                "dagster/row_count": n,
                "preview": dg.MetadataValue.md(_markdown(obj.head(5))),
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name, str(dtype)) for name, dtype in obj.schema.items()]
                ),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        upstream = context.upstream_output
        table = table_for(context.asset_key)
        sql, params = f"SELECT * FROM {qualified(table)}", []
        if context.has_asset_partitions:
            filters = partition_filters(
                context.asset_partitions_def,
                list(context.asset_partition_keys),
                self._window(context),
                _partition_expr(upstream.definition_metadata if upstream else None, context.asset_key),
                context.asset_key,
            )
            where, params = where_clause(filters)
            sql += f" WHERE {where}"
        return self.warehouse().query(sql, params)

    @staticmethod
    def _window(context: dg.OutputContext | dg.InputContext) -> dg.TimeWindow | None:
        if isinstance(context.asset_partitions_def, dg.TimeWindowPartitionsDefinition):
            return context.asset_partitions_time_window
        return None
