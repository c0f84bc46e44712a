"""Pipeline movement: what changed between consecutive as-of dates, deal by deal, and the
waterfall that reconciles the open pipeline of a period from one date to the next."""

import dataclasses
import datetime as dt

import dagster as dg
import polars as pl

from revintel_assets.defs.deals.assets import SCORES, deal_snapshot
from revintel_assets.defs.deals.partitions import as_of_dates, snapshot_batches
from revintel_assets.defs.deals.snapshot import LOGGED_HISTORY_MIN, LOGGED_SHARE_SQL
from revintel_assets.defs.pipeline import changes, digest
from revintel_assets.defs.pipeline.alerts import AlertRules, alerts_sql
from revintel_assets.metadata import table_metadata
from revintel_resources import paths
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.settings import settings
from revintel_resources.warehouse import PartitionFilter

SPEC = dict(group_name="pipeline", owners=["team:revenue-operations"])
DEPS = [deal_snapshot.key, dg.AssetKey(["star", "dim_rep"])]
CHANGES_DOC = ("Every deal open on the as-of date or on the compare date (the as-of date before it), "
               "with what happened in between.", {
    "category": "new / won / lost / pulled_in / pushed_out (expected close moved to an earlier / later "
                "quarter) / amount_entered (the amount became known: valued at list price or 0 before) / amount_up / amount_down / stage_advanced / stage_back / unchanged, first match",
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
@warehouse_step
def pipeline_changes(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    wh = warehouse.get()
    keys = sorted(context.partition_keys)  # a range of dates is one SQL pass per batch of dates
    fy = settings().fiscal_year_start_month
    dates = wh.query(changes.DATES_SQL)["as_of_date"].to_list()
    for batch in snapshot_batches(wh.query, keys):  # scale 100 in one pass: DuckDB out of memory
        pairs, owned = changes.pairs_sql(batch, dates), [PartitionFilter("as_of_date", values=batch)]
        wh.write("scores.pipeline_changes", sql=changes.changes_sql(pairs, fy), partition=owned, run_id=context.run_id,
                 comment=CHANGES_DOC[0], column_comments=CHANGES_DOC[1])
        wh.write("scores.pipeline_waterfall", sql=changes.waterfall_sql(pairs, fy), partition=owned,
                 run_id=context.run_id, comment=WATERFALL_DOC[0], column_comments=WATERFALL_DOC[1])
    where = f"as_of_date IN ({', '.join('?' * len(keys))})"
    mix = wh.query(f"SELECT category, count(*) AS n FROM scores.pipeline_changes WHERE {where} GROUP BY 1",
                   keys).rows()
    yield dg.MaterializeResult(asset_key=["scores", "pipeline_changes"], metadata={
        **table_metadata(wh, "scores.pipeline_changes", where, keys),
        **{f"deals_{cat}": dg.MetadataValue.int(int(n)) for cat, n in mix}})
    latest = wh.query("SELECT count(*) AS n FROM scores.pipeline_waterfall WHERE as_of_date = ?", [keys[-1]])["n"][0]
    why = "" if latest else changes.why_empty(next(iter(wh.query(changes.empty_waterfall_sql(changes.pairs_sql(keys[-1:], dates), fy)).rows(named=True)),
                                                    None))
    if why:
        context.log.warning(f"pipeline waterfall of {keys[-1]} is empty: {why}")
    ends = {r["category"]: r["deals"] for r in wh.query(
        "SELECT category, deals FROM scores.pipeline_waterfall WHERE as_of_date = ? AND period = 'this_quarter' "
        "AND segment_type = 'total' AND category IN ('start', 'new')", [keys[-1]]).rows(named=True)}
    note = (changes.no_change_log_note(wh.query(LOGGED_SHARE_SQL)["share"][0] or 0.0, ends.get("start", 0),
                                       ends.get("new", 0)) if latest else None)
    if note:
        context.log.warning(f"pipeline waterfall of {keys[-1]}: {note}")
    yield dg.MaterializeResult(asset_key=["scores", "pipeline_waterfall"],
                               metadata={**table_metadata(wh, "scores.pipeline_waterfall", where, keys),
                                         "why_empty": why, **({"no_change_log": note} if note else {})})


@dg.asset_check(asset=dg.AssetKey(["scores", "pipeline_waterfall"]), blocking=True,
                description="start + every category's signed change = end, to the cent, for every as-of date, "
                            "period and segment")
@warehouse_step
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


class AlertConfig(dg.Config):
    """Thresholds of the deal warnings (alerts.AlertRules; defaults there)."""
    stalled_ratio: float = AlertRules.stalled_ratio
    pushes: int = AlertRules.pushes
    amount_cut: float = AlertRules.amount_cut
    idle_days: int = AlertRules.idle_days
    score_drop: float = AlertRules.score_drop


ALERTS_DOC = ("Deal warnings on the as-of date: stalled in stage, close date passed, pushed repeatedly, amount cut "
              "since the previous as-of date, no activity, win probability dropped (thresholds: the asset's config).", {
    "alert_type": "stalled / close_date_passed / pushed_repeatedly / amount_cut / no_activity (only where the "
                  "source has a change log) / score_dropped",
    "detail": "What the rule saw, in words"})


@dg.asset(key=["scores", "deal_alerts"], partitions_def=as_of_dates, backfill_policy=dg.BackfillPolicy.single_run(),
          deps=[deal_snapshot.key, dg.AssetKey(["scores", "pipeline_changes"]), SCORES,
                dg.AssetKey(["star", "fact_opportunity_history"])],
          kinds={"duckdb", "sql"}, metadata={"partition_expr": "as_of_date"}, description=ALERTS_DOC[0],
          pool="warehouse", **SPEC)
@warehouse_step
def deal_alerts(context: dg.AssetExecutionContext, config: AlertConfig, warehouse: WarehouseResource):
    wh = warehouse.get()
    keys = sorted(context.partition_keys)
    rules = AlertRules(**config.model_dump())
    scored = (wh.query("SELECT DISTINCT as_of_date FROM scores.deal_scores ORDER BY 1")["as_of_date"].to_list()
              if wh.table_exists("scores.deal_scores") else None)
    # without a change log the source says nothing of a deal's activity (alerts.py: no no_activity alert)
    logged = (wh.query(LOGGED_SHARE_SQL)["share"][0] or 0.0) >= LOGGED_HISTORY_MIN
    for batch in snapshot_batches(wh.query, keys):
        wh.write("scores.deal_alerts", sql=alerts_sql(batch, rules, scored, logged_history=logged),
                 partition=[PartitionFilter("as_of_date", values=batch)], run_id=context.run_id,
                 comment=ALERTS_DOC[0], column_comments=ALERTS_DOC[1])
    where = f"as_of_date IN ({', '.join('?' * len(keys))})"
    mix = wh.query(f"SELECT alert_type, count(*) AS n FROM scores.deal_alerts WHERE {where} GROUP BY 1", keys).rows()
    return dg.MaterializeResult(metadata={**table_metadata(wh, "scores.deal_alerts", where, keys),
                                          "rules": dg.MetadataValue.json(dataclasses.asdict(rules)),
                                          **{f"alerts_{t}": dg.MetadataValue.int(int(n)) for t, n in mix}})


@dg.asset(key=["reports", "weekly_digest"], partitions_def=as_of_dates, kinds={"markdown", "html"},
          deps=[dg.AssetKey(["scores", "pipeline_changes"]), dg.AssetKey(["scores", "deal_alerts"]),
                dg.AssetKey(["star", "dim_rep"])],
          description="The weekly digest per manager (Markdown and HTML under the data directory's digests/<date>/, "
                      "one section per rep: top movers, new risks, slipped deals, linked to Deal Detail), posted to "
                      "the digest webhook when one is set.", **SPEC)
@warehouse_step
def weekly_digest(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    as_of = dt.date.fromisoformat(context.partition_key)
    moved = wh.query("SELECT c.*, coalesce(r.manager, 'no manager') AS manager FROM scores.pipeline_changes c "
                     "LEFT JOIN star.dim_rep r USING (rep_id) WHERE c.as_of_date = ?", [as_of])
    compare = moved["compare_date"][0] if len(moved) else None
    # new risks: alerts of the date that the date before did not raise for the same deal
    alerts = wh.query("""SELECT a.*, coalesce(r.manager, 'no manager') AS manager FROM scores.deal_alerts a
                         LEFT JOIN star.dim_rep r USING (rep_id) WHERE a.as_of_date = ? AND NOT EXISTS (
                           SELECT 1 FROM scores.deal_alerts p WHERE p.as_of_date = ? AND p.opportunity_id = a.opportunity_id
                           AND p.alert_type = a.alert_type)""", [as_of, compare])
    folder = paths.digests_dir() / str(as_of)
    folder.mkdir(parents=True, exist_ok=True)
    s = settings()
    managers = sorted(set(moved["manager"]) | set(alerts["manager"]))
    names = digest.file_names(managers)
    texts = []
    for manager in managers:
        md = digest.manager_digest(manager, as_of, compare, moved.filter(pl.col("manager") == manager),
                                   alerts.filter(pl.col("manager") == manager), s.app_url)
        name = names[manager]
        (folder / f"{name}.md").write_text(md)
        (folder / f"{name}.html").write_text(digest.to_html(md, f"Pipeline digest — {manager}"))
        texts.append(md)
    posted, failed = None, None
    if s.digest_webhook_url and texts:
        # an unreachable or refusing webhook is said, not raised: it stopped `revintel run` at step 7 of 14,
        # so nothing after it ran and nothing was published, for a chat outage (an audit)
        try:
            posted = digest.post_webhook(s.digest_webhook_url, "\n\n".join(texts))
            context.log.info(f"digest posted to the webhook: HTTP {posted}")
        except digest.WebhookFailed as e:
            failed = f"{e}; the digest files were written to {folder}"
            context.log.warning(failed)
    return dg.MaterializeResult(metadata={"folder": dg.MetadataValue.path(str(folder)),
                                          "managers": dg.MetadataValue.int(len(managers)),
                                          "new_risks": dg.MetadataValue.int(len(alerts)),
                                          "webhook_status": dg.MetadataValue.int(posted or 0),
                                          **({"webhook_error": dg.MetadataValue.text(failed)} if failed else {})})


defs = dg.Definitions(assets=[pipeline_changes, deal_alerts, weekly_digest],
                      asset_checks=[pipeline_waterfall_reconciles])
