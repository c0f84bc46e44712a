"""Plan assets: quota attainment of an as-of date (forecast.quota_attainment, forecast.plan_deals),
and p_hit_quota judged on past quarters (validation.model_metrics, model_family 'quota_attainment').
The computations live in attainment.py / honesty.py; these read and write the warehouse."""


import datetime as dt
import time

import dagster as dg
import polars as pl

from revintel_assets import rules
from revintel_assets.defs.deals.assets import SCORES, deal_snapshot  # SCORES: the date's scores (_Inputs.origin)
from revintel_assets.defs.deals.partitions import as_of_dates
from revintel_assets.defs.forecast import backtest, history, probabilities
from revintel_assets.defs.forecast.assets import (LABEL_COUNTS_SQL, OPPS_SQL, SCORED_SQL, ForecastConfig, _shock,
                                                  crm_categories, fit_rows, snapshot_version, timing_fit)
from revintel_assets.defs.forecast.periods import DEFAULT_HORIZON_WEEKS
from revintel_assets.defs.plan import attainment, honesty
from revintel_assets.defs.validation.metrics import defined
from revintel_assets.metadata import family_rows, table_metadata
from revintel_resources.compute import ComputeResource
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.settings import settings
from revintel_resources.tracking import MLflowResource
from revintel_resources.warehouse import PartitionFilter

SPEC = dict(group_name="plan", owners=["team:revenue-data-science"])
STAR = [dg.AssetKey(["star", t]) for t in ("fact_opportunity", "dim_rep", "dim_product", "quotas")]
ATTAINMENT = dg.AssetKey(["forecast", "quota_attainment"])
SHOCK_DEPS = [dg.AssetKey(["forecast", "shock_tuning"]), dg.AssetKey(["forecast", "forecast_backtest"])]


_FORECAST = ForecastConfig()  # the plan's defaults are the forecast's (declared there once)


class PlanConfig(dg.Config):
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS  # the forecast calendar (a quarter needs 13 weeks)
    n_sims: int = _FORECAST.n_sims  # as the revenue forecast: the same seed gives the same shock draws
    backtest_sims: int = _FORECAST.backtest_sims  # per past origin of the honesty check
    seed: int = _FORECAST.seed


class _Inputs:
    """What every origin reads, once: opportunities, reps, quotas, label counts, the probability
    rule and the timing rows of the window the origins' fits look at."""

    def __init__(self, wh, tracking, first: dt.date, last: dt.date):
        self.wh = wh
        self.opps = wh.query(OPPS_SQL)
        self.dim_rep = wh.query("SELECT rep_id, manager, region FROM star.dim_rep")
        self.quotas = (wh.query("SELECT * FROM star.quotas") if wh.table_exists("star.quotas")
                       else pl.DataFrame(schema={"owner_type": pl.Utf8, "owner": pl.Utf8, "period_type": pl.Utf8,
                                                 "period_start": pl.Date, "amount": pl.Float64}))
        self.counts = wh.query(LABEL_COUNTS_SQL, [last])
        self.prob = probabilities.registry(tracking, self.counts, counts=True)
        self.has_scores = wh.table_exists("scores.deal_scores")
        self.snaps = fit_rows(wh, self.cutoff(first), self.cutoff(last))
        self.version = snapshot_version(wh)  # the plan steps do not write the snapshot

    @staticmethod
    def cutoff(o: dt.date) -> dt.date:
        """The timing model of o: the forecast's (fitted on the first Monday of o's refit block)."""
        return history.timing_cutoff(o, history.REFIT_TIMING_WEEKS)

    def origin(self, o: dt.date, horizon_weeks: int) -> backtest.Origin:
        """The forecast inputs as known on o, as the forecast of o has them (backtest.prepare_origin:
        the snapshot of o, the deal scores of o or else the win probability rule of o, the forecast's
        timing model of o, deals and outcomes truncated to o)."""
        with self.wh.session(writes=False):  # one connection for the origin's two reads
            rows = self.wh.query("SELECT * EXCLUDE (outcome_date, is_won) FROM features.deal_snapshot "
                                 "WHERE as_of_date = ?", [o])
            scored = self.wh.query(SCORED_SQL, [o]) if self.has_scores else None
        fitted = timing_fit(self.wh, self.cutoff(o), self.snaps, self.version)
        return backtest.prepare_origin(o, None, self.opps, self.dim_rep, self.prob, fitted, horizon_weeks,
                                       rows=rows, label_counts=self.counts, scored=scored)


@dg.multi_asset(specs=[
    dg.AssetSpec(ATTAINMENT, deps=[deal_snapshot.key, SCORES, dg.AssetKey(["models", "win_probability"]), *STAR,
                                   *SHOCK_DEPS],
                 kinds={"numpy", "duckdb"}, metadata={"partition_expr": "as_of_date"}, description=attainment.DOC[0],
                 **SPEC),
    dg.AssetSpec(["forecast", "plan_deals"], deps=[deal_snapshot.key, SCORES, *STAR], kinds={"duckdb"},
                 metadata={"partition_expr": "as_of_date"}, description=attainment.DEALS_DOC[0], **SPEC)],
    partitions_def=as_of_dates, pool="warehouse")
@warehouse_step
def quota_attainment(context: dg.AssetExecutionContext, config: PlanConfig, warehouse: WarehouseResource,
                     mlflow_tracking: MLflowResource, compute: ComputeResource):  # the engine: here or the cluster
    wh = warehouse.get()
    as_of = dt.date.fromisoformat(context.partition_key)
    start = time.perf_counter()
    inputs = _Inputs(wh, mlflow_tracking, as_of, as_of)
    sigma_h, sigma_w, tuned_on = _shock(wh, as_of, config.horizon_weeks)
    if tuned_on is None:
        context.log.warning("no backtest tuning of the shared shock yet: ranges and p_hit_quota without it (too sure)")
    frame, deals = attainment.attainment(inputs.origin(as_of, config.horizon_weeks), inputs.quotas, inputs.opps,
                                         config.n_sims, config.seed, sigma_h, sigma_w,
                                         settings().fiscal_year_start_month, crm_categories(wh, as_of))
    if inputs.quotas.is_empty():
        rejected = rules.quarantined_quotas_note(wh.query(rules.QUARANTINED_QUOTAS_SQL).rows()) \
            if wh.table_exists("star.quarantine") else None
        context.log.warning((rejected or "no quotas (quotas.csv / ForecastingQuota.csv, or either as .xlsx)")
                            + ": attainment without quota, coverage or p_hit_quota; the forecast and the call are "
                            "still written")
    if not wh.query(rules.HAS_CALL_SQL)["has_call"][0]:  # no deal ever in Commit or Best Case: no call
        frame = frame.with_columns(pl.lit(None, pl.Float64).alias("commit"), pl.lit(None, pl.Float64).alias("best_case"))
    owned = dict(partition_column="as_of_date", partition_values=[as_of], run_id=context.run_id)
    wh.write("forecast.quota_attainment", frame, comment=attainment.DOC[0], column_comments=attainment.DOC[1], **owned)
    wh.write("forecast.plan_deals", deals, comment=attainment.DEALS_DOC[0], column_comments=attainment.DEALS_DOC[1],
             **owned)
    total = frame.filter((pl.col("segment_type") == "total") & (pl.col("period") == "quarter")).row(0, named=True)
    yield dg.MaterializeResult(asset_key=ATTAINMENT, metadata={
        **table_metadata(wh, "forecast.quota_attainment", "as_of_date = ?", [as_of]),
        **{f"quarter_total_{k}": dg.MetadataValue.float(float(total[k])) for k in
           ("quota", "booked_to_date", "p10", "p50", "p90", "p_hit_quota", "commit", "best_case", "weighted_pipeline")
           if total[k] is not None},
        "quarter": total["period_label"], "segments_with_quota": dg.MetadataValue.int(
            int(frame.filter(pl.col("quota").is_not_null())["segment"].n_unique())),
        "sigma_horizon": dg.MetadataValue.float(sigma_h), "sigma_week": dg.MetadataValue.float(sigma_w),
        "seconds": dg.MetadataValue.float(time.perf_counter() - start)})
    yield dg.MaterializeResult(asset_key=["forecast", "plan_deals"],
                               metadata=table_metadata(wh, "forecast.plan_deals", "as_of_date = ?", [as_of]))


@dg.asset_check(asset=ATTAINMENT, additional_deps=[dg.AssetKey(["star", "fact_opportunity"])],
                description="booked_to_date of the total equals the won amount in star.fact_opportunity closed from "
                            "the period start to the as-of date, for the latest stored as-of date and each period "
                            "(an earlier date's rows hold what was known then: a close entered later moves its "
                            "won total).")
@warehouse_step
def attainment_reconciles(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    rows = wh.query("""
        SELECT a.as_of_date, a.period, a.booked_to_date,
               (SELECT coalesce(sum(coalesce(o.amount, p.list_price)), 0) FROM star.fact_opportunity o
                LEFT JOIN star.dim_product p USING (product_id)
                WHERE o.is_won AND o.close_date BETWEEN a.period_start AND a.as_of_date) AS won
        FROM forecast.quota_attainment a WHERE a.segment_type = 'total'
          -- the date plan_job writes: a close entered after an earlier date's run (a re-check: dated
          -- before it) failed this ERROR check on every later nightly until a full rebuild
          AND a.as_of_date = (SELECT max(as_of_date) FROM forecast.quota_attainment)""")
    bad = rows.filter((pl.col("booked_to_date") - pl.col("won")).abs() > 0.01 + 1e-9 * pl.col("won").abs())
    return dg.AssetCheckResult(passed=not rows.is_empty() and bad.is_empty(), metadata={
        "rows": dg.MetadataValue.int(len(rows)), "mismatches": dg.MetadataValue.int(len(bad))},
        description="booked_to_date reconciles with star.fact_opportunity" if bad.is_empty() else
        f"{len(bad)} (as-of date, period) totals differ from the won amounts of star.fact_opportunity")


def _walk_forward_shock(wh, as_of: dt.date) -> pl.DataFrame:
    """(as_of_date, sigma_horizon, sigma_week) of the latest backtest run by as_of, when its rows are
    walk-forward (its forecast metrics are 'holdout'): each origin's shock tuned on earlier origins only."""
    if not wh.table_exists("forecast.forecast_backtest"):
        return pl.DataFrame(schema={"as_of_date": pl.Date, "sigma_horizon": pl.Float64, "sigma_week": pl.Float64})
    run = wh.query("SELECT max(backtest_as_of) AS d FROM forecast.forecast_backtest WHERE backtest_as_of <= ?", [as_of])["d"][0]
    holdout = run is not None and wh.table_exists("validation.model_metrics") and len(wh.query(
        "SELECT 1 FROM validation.model_metrics WHERE model_family = 'forecast' AND cutoff_date = ? AND split = 'holdout' "
        "AND model_name = 'revenue_forecast' LIMIT 1", [run]))
    if not holdout:
        return pl.DataFrame(schema={"as_of_date": pl.Date, "sigma_horizon": pl.Float64, "sigma_week": pl.Float64})
    return wh.query("SELECT DISTINCT as_of_date, sigma_horizon, sigma_week FROM forecast.forecast_backtest "
                    "WHERE backtest_as_of = ? ORDER BY 1", [run])


@dg.asset(key=["validation", "quota_attainment"],
          deps=[deal_snapshot.key, SCORES, dg.AssetKey(["models", "win_probability"]), *STAR, *SHOCK_DEPS],
          partitions_def=as_of_dates, kinds={"numpy", "duckdb"}, pool="warehouse",
          metadata={"tables": "validation.model_metrics", "model_family": honesty.FAMILY},
          description="p_hit_quota judged on past fiscal quarters: at each quarter's start and middle, computed from "
                      "what was known then (backtest origins), against whether the quota was made; calibration bins "
                      "(of the pairs said 70-90 %, how many were made) and Brier, beside the weighted-pipeline rule.",
          **SPEC)
@warehouse_step
def quota_attainment_validation(context: dg.AssetExecutionContext, config: PlanConfig, warehouse: WarehouseResource,
                                mlflow_tracking: MLflowResource, compute: ComputeResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    as_of = dt.date.fromisoformat(context.partition_key)
    fy = settings().fiscal_year_start_month
    dates = wh.query("SELECT DISTINCT as_of_date FROM features.deal_snapshot WHERE as_of_date <= ?", [as_of])
    chosen = honesty.origins(dates["as_of_date"].to_list(), as_of, fy)
    quotas = wh.query("SELECT * FROM star.quotas") if wh.table_exists("star.quotas") else pl.DataFrame()
    if not chosen or quotas.is_empty():
        context.log.warning("p_hit_quota not judged: " + ("no quotas" if quotas.is_empty() else
                                                          "no past quarter with snapshots before it"))
        return dg.MaterializeResult(metadata={"status": "skipped", "n_origins": dg.MetadataValue.int(0)})
    start = time.perf_counter()
    inputs = _Inputs(wh, mlflow_tracking, chosen[0][0], chosen[-1][0])
    walk = _walk_forward_shock(wh, as_of)
    in_sample = _shock(wh, as_of, config.horizon_weeks)[:2]
    frames = []
    for o, kind, qs in chosen:  # two origins per past quarter; everything inside is vectorised
        prior = walk.filter(pl.col("as_of_date") <= o).tail(1)
        sh, sw, shock = ((prior["sigma_horizon"][0], prior["sigma_week"][0], "walk_forward") if len(prior)
                         else (*in_sample, "in_sample"))
        origin = inputs.origin(o, config.horizon_weeks)
        rows, _ = attainment.attainment(origin, quotas, inputs.opps, config.backtest_sims, config.seed, sh, sw, fy,
                                        quarter_start=qs)
        pers = attainment.periods(o, fy, qs)
        labels, groups = attainment.segment_labels(origin.prep.segments)
        made = attainment.booked(inputs.opps, pers[0].end, pers, origin.prep.segments, groups)[:, 0]
        actual = pl.DataFrame({"period_start": [qs] * len(labels), "segment_type": [t for t, _ in labels],
                               "segment": [s for _, s in labels], "booked_in_quarter": made})
        frames.append(honesty.judged(rows, actual).with_columns(pl.lit(kind).alias("origin_kind"),
                                                                pl.lit(shock).alias("shock")))
    judged = honesty.stack(frames)
    if judged.is_empty():  # quotas, but none for a past quarter the snapshots reach
        context.log.warning("p_hit_quota not judged: no past quarter with snapshots before it has a quota "
                            f"(quotas cover {quotas['period_start'].min()} .. {quotas['period_start'].max()})")
        return dg.MaterializeResult(metadata={"status": "skipped", "n_origins": dg.MetadataValue.int(len(chosen))})
    metrics = honesty.metrics(judged).with_columns(
        pl.lit(f"quota_attainment@{as_of}").alias("model_version"), pl.lit(as_of).alias("cutoff_date"),
        pl.lit("all").alias("division"), pl.lit(honesty.FAMILY).alias("model_family"))
    wh.write("validation.model_metrics", defined(metrics), run_id=context.run_id,
             partition=[PartitionFilter("model_family", values=[honesty.FAMILY]),
                        PartitionFilter("cutoff_date", values=[as_of])])

    def value(metric: str, kind: str = "all") -> float:
        hit = metrics.filter((pl.col("model_name") == "p_hit_quota") & (pl.col("metric") == metric)
                             & (pl.col("period_type") == kind) & (pl.col("segment_type") == "all"))
        return float(hit["value"][0]) if len(hit) and hit["value"][0] is not None else float("nan")

    return dg.MaterializeResult(metadata={
        "validation.model_metrics_rows": dg.MetadataValue.int(family_rows(wh, "validation.model_metrics", honesty.FAMILY)),
        "judged_pairs": dg.MetadataValue.int(len(judged)), "n_origins": dg.MetadataValue.int(len(chosen)),
        "shock_walk_forward_share": dg.MetadataValue.float(float((judged["shock"] == "walk_forward").mean())),
        **{k: dg.MetadataValue.float(v) for k, v in {
            "brier": value("brier"), "made_rate": value("positives") / max(value("n"), 1),
            "bin_70_90_n": value("bin_70_90_n"), "bin_70_90_made": value("bin_70_90_made"),
            "bin_70_90_predicted_mean": value("bin_70_90_predicted_mean")}.items() if v == v},
        "seconds": dg.MetadataValue.float(time.perf_counter() - start)})


defs = dg.Definitions(assets=[quota_attainment, quota_attainment_validation], asset_checks=[attainment_reconciles])
