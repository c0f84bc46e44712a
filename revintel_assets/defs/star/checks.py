"""Every raw row is accounted for (docs/CONTRACT.md §4): the reconciliation check, and the report of
foreign keys that did not resolve (rows kept, pointing at stub members flagged `is_stub`)."""


import dagster as dg

from revintel_assets.metadata import table_metadata
from revintel_assets.defs.star import build
from revintel_assets.defs.star.assets import dim_account, dim_product, dim_rep, fact_opportunity, fact_transactions
from revintel_resources.resources import WarehouseResource, warehouse_step

UNKNOWN_DOC = ("Foreign keys of kept rows that name no member of their dimension: one row per "
               "unknown account / rep / product, with how many rows reference it and the first of "
               "them. The rows stay in the star schema, pointing at a stub member (is_stub).", {
                   "member": "account, rep or product",
                   "key": "The unknown key as the source wrote it",
                   "referencing_rows": "Rows of the star schema that reference it",
                   "source_file": "File of the first referencing row",
                   "first_line": "Line of the first referencing row in source_file",
               })


@dg.asset(
    key=["star", "unknown_references"], deps=[dim_account.key, dim_rep.key, dim_product.key, fact_opportunity.key],
    group_name="star", kinds={"duckdb"}, owners=["team:data-engineering"], pool="warehouse",
    metadata={"table": "star.unknown_references"},
    description="Unknown foreign keys (accounts, reps, products referenced but not in their file), "
                "kept with stub members and reported here.")
@warehouse_step
def unknown_references(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    wh.write("star.unknown_references", sql=build.unknown_references(), run_id=context.run_id,
             comment=UNKNOWN_DOC[0], column_comments=UNKNOWN_DOC[1])
    by_member = {r[0]: r[1] for r in wh.query(
        "SELECT member, sum(referencing_rows)::BIGINT AS n FROM star.unknown_references GROUP BY 1").rows()}
    # A source without the file that describes a dimension (a Salesforce report has no Account.csv)
    # names every member by the key the deals carry: that is not a broken reference, and a warning
    # of "unknown foreign keys" on every row read as one.
    described = {k: wh.query(f"SELECT count(*) FILTER (WHERE NOT is_stub) AS n FROM star.dim_{k}")["n"][0] > 0
                 for k in by_member}
    unknown = {k: v for k, v in sorted(by_member.items()) if described[k]}
    bare = {k: v for k, v in sorted(by_member.items()) if not described[k]}
    if unknown:
        context.log.warning("rows kept with unknown foreign keys (stub members): "
                            + ", ".join(f"{k}: {v}" for k, v in unknown.items()))
    if bare:
        context.log.info("no file in the source describes the " + " or the ".join(f"{k}s" for k in bare)
                         + ": they are known by the name or id the rows carry (no sector, size, team ...; "
                         + ", ".join(f"{k}: {v} rows" for k, v in bare.items()) + ")")
    return dg.MaterializeResult(metadata={
        **table_metadata(wh, "star.unknown_references"),
        **{f"rows_with_unknown_{k}": dg.MetadataValue.int(int(v)) for k, v in by_member.items()}})


@dg.asset_check(asset=fact_transactions, name="star_reconciles", blocking=True,
                additional_deps=[unknown_references.key, dg.AssetKey(["star", "quarantine"]),
                                 dg.AssetKey(["meta", "source_files"])],
                description="Raw rows read = rows in the star schema + rows in star.quarantine, per source file.")
@warehouse_step
def star_reconciles(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    rows = wh.query(build.reconciliation())
    bad = rows.filter(rows["unaccounted"] != 0)
    quarantine = wh.query("SELECT reason, count(*)::BIGINT AS n FROM star.quarantine GROUP BY 1 ORDER BY 2 DESC")
    return dg.AssetCheckResult(
        passed=bad.is_empty() and not rows.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        description=("every raw row is in the star schema or in star.quarantine" if bad.is_empty() else
                     f"{int(bad['unaccounted'].sum())} raw rows unaccounted for in {bad.height} file(s)"),
        metadata={
            "files": dg.MetadataValue.md(rows.to_pandas().to_markdown(index=False)),
            "raw_rows": dg.MetadataValue.int(int(rows["raw_rows"].sum() or 0)),
            "star_rows": dg.MetadataValue.int(int(rows["star_rows"].sum() or 0)),
            "quarantined_rows": dg.MetadataValue.int(int(rows["quarantined_rows"].sum() or 0)),
            "quarantine_by_reason": dg.MetadataValue.md(
                quarantine.to_pandas().to_markdown(index=False) if quarantine.height else "(none)"),
        })


defs = dg.Definitions(assets=[unknown_references], asset_checks=[star_reconciles])
