"""The star schema (docs/CONTRACT.md §3) as assets: SQL over the staging tables, run in the warehouse."""


import dagster as dg

from revintel_assets import contract
from revintel_assets.metadata import table_metadata
from revintel_assets.defs.star import build
from revintel_assets.defs.star.docs import table_doc
from revintel_assets.defs.star.partitions import transaction_months
from revintel_resources.resources import WarehouseResource, warehouse_step

SOURCE = dg.AssetKey(["staging", "source_import"])
COMMON = dict(group_name="star", kinds={"duckdb"}, owners=["team:data-engineering"], pool="warehouse")


def _star_asset(name: str, sql_fn, deps: list, description: str):
    table = f"star.{name}"

    @dg.asset(key=["star", name], deps=deps, description=description, **COMMON,
              metadata={"table": table})
    @warehouse_step
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        wh = warehouse.get()
        wh.write(table, sql=sql_fn(), run_id=context.run_id, **table_doc(table))
        return dg.MaterializeResult(metadata=table_metadata(wh, table))

    return _asset


dim_account = _star_asset("dim_account", build.dim_account, [SOURCE],
                          "Accounts with firmographics and parent company; stubs for unknown accounts.")
dim_rep = _star_asset("dim_rep", build.dim_rep, [SOURCE], "Sales reps with manager and region.")
dim_product = _star_asset("dim_product", build.dim_product, [SOURCE],
                          "Products and SKUs with series, division and list price.")
fact_opportunity = _star_asset(
    "fact_opportunity", build.fact_opportunity,
    [SOURCE, dim_account.key, dim_rep.key, dim_product.key],
    "Opportunities in their latest state, keys resolved ('GTXPro' = 'GTX Pro').")
fact_opportunity_history = _star_asset(
    "fact_opportunity_history", build.fact_opportunity_history, [SOURCE, fact_opportunity.key],
    "Stage, close-date and amount changes; derived from dates when the source has no history.")
unmapped_skus = _star_asset("unmapped_skus", build.unmapped_skus, [SOURCE],
                            "Order lines whose SKU the SKU map does not name: lines, quantity, revenue per SKU. "
                            "They stay in fact_transactions under 'Unmapped SKUs', never a division of their own.")
quotas = _star_asset("quotas", build.quotas, [SOURCE, dim_rep.key],
                     "Quotas per rep / manager / region / total and month or fiscal quarter (quotas.csv, Salesforce "
                     "ForecastingQuota.csv); empty when the source has none.")
dim_date = _star_asset("dim_date", build.dim_date, [SOURCE, fact_opportunity.key],
                       "Calendar covering the data plus a forecast year.")


@dg.asset(
    key=["star", "fact_transactions"], deps=[SOURCE, dim_account.key, fact_opportunity.key],
    partitions_def=transaction_months, backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"table": "star.fact_transactions", "partition_expr": "month_start"},
    description="Order lines by month (sales log, or won deals when there is none). A single-run "
                "backfill writes a range of months in one transaction.", **COMMON)
@warehouse_step
def fact_transactions(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    months = sorted(context.partition_keys)
    sql = f"SELECT * FROM ({build.fact_transactions()}) WHERE month_start IN ({', '.join('?' * len(months))})"
    wh.write("star.fact_transactions", sql=sql, params=months, partition_column="month_start",
             partition_values=months, run_id=context.run_id, **table_doc("star.fact_transactions"))
    where = f"month_start IN ({', '.join('?' * len(months))})"
    return dg.MaterializeResult(metadata={**table_metadata(wh, "star.fact_transactions", where, months),
                                          "months": dg.MetadataValue.int(len(months))})


PLACEHOLDER_WHY = ("no rows: nothing in this source produced this table yet (the run's log says why, e.g. no "
                   "transactions for the ICP tables, no CRM for the deal tables); the contract's columns "
                   "(docs/CONTRACT.md §3), replaced by the table when its asset first writes it")


@dg.asset(key=["meta", "contract_placeholders"],
          deps=[dim_account.key, dim_rep.key, dim_product.key, fact_opportunity.key, fact_opportunity_history.key,
                dim_date.key, unmapped_skus.key, quotas.key],
          description="An empty view with the contract's columns (revintel_assets/contract.py) for every analyst "
                      "table of docs/CONTRACT.md §3 that no asset has written, so that an analyst's query of a table "
                      "this source cannot produce finds no rows instead of no table. Each table's own asset "
                      "replaces its view with the table on its first write.", **COMMON)
@warehouse_step
def contract_placeholders(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    made = warehouse.get().ensure_placeholders(contract.TABLES, PLACEHOLDER_WHY)
    if made:
        context.log.info(f"{len(made)} contract table(s) not written yet, each an empty view until its asset writes "
                         f"it: {', '.join(made)}")
    return dg.MaterializeResult(metadata={"placeholders": dg.MetadataValue.json(made),
                                          "dagster/row_count": dg.MetadataValue.int(0)})


defs = dg.Definitions(assets=[dim_account, dim_rep, dim_product, fact_opportunity, fact_opportunity_history, dim_date,
                              fact_transactions, unmapped_skus, quotas, contract_placeholders])
