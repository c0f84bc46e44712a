"""Quality gates on the ICP features."""

import random

import dagster as dg

from revintel_assets.defs.icp.assets import customer_division, load_plan
from revintel_assets.defs.icp.features import LABELS, feature_sql, star_cut_sql
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.warehouse import rows_moved


def candidate_cutoffs(wh) -> list:
    """The cutoffs the check samples from: the plan's that are stored, the scoring one (the as-of
    date: no future to remove) left out. Rows of an earlier export's cutoffs, no longer in the plan,
    were built from another star."""
    return wh.query("SELECT DISTINCT cutoff_date FROM features.customer_division WHERE cutoff_date IN "
                    "(SELECT cutoff_date FROM features.icp_cutoffs WHERE role <> 'score') ORDER BY 1")["cutoff_date"].to_list()


@dg.asset_check(asset=customer_division, description="Time travel on a sampled stored cutoff: rebuilt from the "
                "star tables cut at that date (later lines and deals gone, later closes undone), no feature "
                "may move (no leakage); the label columns, which look past the cutoff, are left out")
@warehouse_step
def features_time_travel(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    if not wh.table_exists("features.customer_division") or not wh.table_exists("features.icp_cutoffs"):
        return dg.AssetCheckResult(passed=True, metadata={"checked": "no features yet"})
    cutoffs = candidate_cutoffs(wh)
    if not cutoffs:
        return dg.AssetCheckResult(passed=True, metadata={"checked": "no partitions yet"})
    t = random.Random(len(cutoffs)).choice(cutoffs)
    plan, _ = load_plan(wh)
    divs = wh.query("SELECT DISTINCT division FROM features.customer_division WHERE cutoff_date = ? ORDER BY 1",
                    [t])["division"].to_list()
    # the cut star lives in an attached in-memory database: nothing is written to the work file
    with wh.connect(writes=False) as con:
        con.execute("ATTACH ':memory:' AS time_travel")
        try:
            for stmt in star_cut_sql(t, "time_travel.cut"):
                con.execute(stmt)
            rebuilt = feature_sql(t, divs, plan.window_months, plan.as_of, star="time_travel.cut")
            con.execute(f"CREATE TABLE time_travel.cut.rebuilt AS {rebuilt}")
            stored = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'features' "
                "AND table_name = 'customer_division' AND database_name = current_database()").fetchall()}
            names = [r[0] for r in con.execute("SELECT * FROM time_travel.cut.rebuilt LIMIT 0").description]
            cols = ", ".join(f'"{c}"' for c in names if c not in LABELS and c in stored)
            moved = rows_moved(con, f"SELECT {cols} FROM features.customer_division WHERE cutoff_date = DATE '{t}'",
                               f"SELECT {cols} FROM time_travel.cut.rebuilt")
        finally:
            con.execute("DETACH time_travel")
    return dg.AssetCheckResult(passed=moved == 0, metadata={"cutoff_date": str(t), "divisions": len(divs),
                                                            "rows_that_moved": dg.MetadataValue.int(moved)})


defs = dg.Definitions(asset_checks=[features_time_travel])
