"""Pipeline movement: what changed between consecutive as-of dates, deal by deal, and the
waterfall that reconciles the open pipeline of a period from one date to the next."""

import dagster as dg

from revintel_assets.defs.deals.assets import deal_snapshot
from revintel_assets.defs.deals.partitions import as_of_dates
from revintel_assets.defs.pipeline import changes
from revintel_assets.metadata import table_metadata
from revintel_resources.resources import WarehouseResource
from revintel_resources.warehouse import PartitionFilter

SPEC = dict(group_name="pipeline", owners=["team:revenue-operations"])
DEPS = [deal_snapshot.key, dg.AssetKey(["star", "dim_rep"])]
CHANGES_DOC = ("Every deal open on the as-of date or on the compare date (the as-of date before it), "
               "with what happened in between.", {
    "category": "new / won / lost / pulled_in / pushed_out (expected close moved to an earlier / later "
                "quarter) / amount_up / amount_down / stage_advanced / stage_back / unchanged, first match",
    "amount_before": "Deal value on the compare date (amount, else list price, else 0)",
    "amount_after": "Deal value on the as-of date (NULL: closed in between)",
})
WATERFALL_DOC = ("Open pipeline expected to close in the period (this / next quarter of the as-of date): "
                 "`start` on the compare date, `end` on the as-of date, and each category's signed change; "
                 "start + changes = end to the cent for every segment (check pipeline_waterfall_reconciles).", {
    "amount": "start / end: the period's open pipeline; other categories: signed change",
    "deals": "Deals in the row",
})


@dg.multi_asset(specs=[
    dg.AssetSpec(["scores", "pipeline_changes"], deps=DEPS, kinds={"duckdb", "sql"}, **SPEC,
                 metadata={"partition_expr": "as_of_date"}, description=CHANGES_DOC[0]),
    dg.AssetSpec(["scores", "pipeline_waterfall"], deps=DEPS, kinds={"duckdb", "sql"}, **SPEC,
                 metadata={"partition_expr": "as_of_date"}, description=WATERFALL_DOC[0])],
    partitions_def=as_of_dates, backfill_policy=dg.BackfillPolicy.single_run(), pool="warehouse")
def pipeline_changes(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    wh = warehouse.get()
    keys = sorted(context.partition_keys)  # a range of dates is one SQL pass
    pairs = changes.pairs_sql(keys)
    owned = [PartitionFilter("as_of_date", values=keys)]
    wh.write("scores.pipeline_changes", sql=changes.changes_sql(pairs), partition=owned, run_id=context.run_id,
             comment=CHANGES_DOC[0], column_comments=CHANGES_DOC[1])
    wh.write("scores.pipeline_waterfall", sql=changes.waterfall_sql(pairs), partition=owned,
             run_id=context.run_id, comment=WATERFALL_DOC[0], column_comments=WATERFALL_DOC[1])
    where = f"as_of_date IN ({', '.join('?' * len(keys))})"
    mix = wh.query(f"SELECT category, count(*) AS n FROM scores.pipeline_changes WHERE {where} GROUP BY 1",
                   keys).rows()
    yield dg.MaterializeResult(asset_key=["scores", "pipeline_changes"], metadata={
        **table_metadata(wh, "scores.pipeline_changes", where, keys),
        **{f"deals_{cat}": dg.MetadataValue.int(int(n)) for cat, n in mix}})
    yield dg.MaterializeResult(asset_key=["scores", "pipeline_waterfall"],
                               metadata=table_metadata(wh, "scores.pipeline_waterfall", where, keys))


@dg.asset_check(asset=dg.AssetKey(["scores", "pipeline_waterfall"]), blocking=True,
                description="start + every category's signed change = end, to the cent, for every as-of date, "
                            "period and segment")
def pipeline_waterfall_reconciles(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    if not wh.table_exists("scores.pipeline_waterfall"):
        return dg.AssetCheckResult(passed=True, metadata={"checked": "no waterfall yet"})
    gaps = wh.query(changes.RECONCILE_SQL)
    rows = wh.query("SELECT count(*) AS n FROM scores.pipeline_waterfall")["n"][0]
    return dg.AssetCheckResult(passed=gaps.is_empty(), metadata={
        "rows": dg.MetadataValue.int(int(rows)), "unreconciled_segments": dg.MetadataValue.int(gaps.height),
        **({"first_gaps": dg.MetadataValue.md(gaps.head(10).to_pandas().to_markdown(index=False))}
           if gaps.height else {})})


defs = dg.Definitions(assets=[pipeline_changes], asset_checks=[pipeline_waterfall_reconciles])
