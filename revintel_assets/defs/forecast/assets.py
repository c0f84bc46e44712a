"""Revenue forecast assets: rolling-origin backtests (which also tune the shared shock) -> the
forecast of the as-of date. The computations live in timing / simulate / model / backtest; these
functions read and write the warehouse and report metadata."""


import datetime as dt
import functools
import time
from collections.abc import Callable

import dagster as dg
import numpy as np
import polars as pl

from revintel_assets import rules
from revintel_assets.defs.deals.assets import SCORES, deal_snapshot
from revintel_assets.defs.deals.partitions import ROWS_PER_PASS, as_of_dates, date_batches, rows_by_date
from revintel_assets.defs.deals.scoring import LABEL_COUNTS_SQL
from revintel_assets.defs.forecast import accuracy, backtest, docs, history, model, outlook, probabilities, timing
from revintel_assets.defs.forecast.new_pipeline import code_opps, fit_new_pipeline
from revintel_assets.defs.forecast.periods import DEFAULT_HORIZON_WEEKS, calendar
from revintel_assets.defs.forecast.tasks import backtest_evaluation, backtest_tuning, forecast_past_date
from revintel_assets.defs.validation.metrics import classification_metrics, defined
from revintel_assets.metadata import family_rows, range_metadata, table_metadata
from revintel_assets.parallel import LazyTasks, map_tasks, warm_up
from revintel_resources.compute import ComputeResource
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.settings import settings
from revintel_resources.tracking import MLflowResource
from revintel_resources import warehouse
from revintel_resources.warehouse import TABLE_LOG, PartitionFilter

FAMILY = "forecast"
COMMON = dict(group_name="forecast", owners=["team:revenue-data-science"], pool="warehouse")
STAR = [dg.AssetKey(["star", t]) for t in ("fact_opportunity", "dim_rep", "dim_product")]
# what timing.fit reads of the snapshots, and how far back (its history_days)
TIMING_COLUMNS = ["as_of_date", "opportunity_id", "stage", "days_to_expected_close", "n_pushes", "deal_age_days",
                  "rep_id", "product_id", "outcome_date", "is_won"]
TIMING_DAYS = 730


def _timing_rows(wh, where: str, params: list, extra: str = "") -> pl.DataFrame:
    """TIMING_COLUMNS of the snapshot rows `where` selects, compactly (22M rows at scale 100):
    opportunity ids hashed (timing only counts distinct won deals with them), integer pushes, and
    stage / rep / product as categoricals (4 bytes a row instead of a string each)."""
    cols = {"opportunity_id": "hash(opportunity_id) AS opportunity_id", "n_pushes": "CAST(n_pushes AS INTEGER) AS n_pushes"}
    select = ", ".join(cols.get(c, c) for c in TIMING_COLUMNS) + extra
    frame = wh.query(f"SELECT {select} FROM features.deal_snapshot WHERE {where}", params)
    return frame.with_columns(pl.col("stage", "rep_id", "product_id").cast(pl.Categorical))


def fit_rows(wh, first: dt.date, last: dt.date) -> Callable[[], timing.FitRows]:
    """The snapshot rows the timing fits at cutoffs first..last read ([first - TIMING_DAYS, last)),
    read and prepared (timing.FitRows) on the first call and kept: a range run reads and codes them
    once for all its fits, and not at all when timing_fit keeps every fit it asks for. It holds wh
    and the dates only: a caller's object holding it would otherwise make a cycle that kept the rows
    (22M at scale 100) past the step."""
    return functools.cache(lambda: timing.FitRows.of(_timing_rows(
        wh, "as_of_date < ? AND as_of_date >= ?", [last, first - dt.timedelta(days=TIMING_DAYS)])))


_FITS: dict[tuple, timing.TimingModel] = {}


def crm_categories(wh, as_of: dt.date) -> pl.DataFrame | None:
    """The CRM's forecast categories of open deals, for the export date only: the CRM holds today's
    category, not the one a deal had on a past date (there the stage rule of that date stands).
    The forecast's and the plan's calls both read them."""
    export = wh.query("SELECT max(export_date)::DATE AS d FROM meta.source")["d"][0] if wh.table_exists("meta.source") else None
    if export is None or as_of != export:
        return None
    return wh.query("SELECT opportunity_id, forecast_category FROM star.fact_opportunity WHERE NOT is_closed")


def snapshot_version(wh) -> tuple | None:
    """The snapshot table's logged writes (latest time, count) and this process's unlogged opens of
    the warehouse: what timing_fit keys its fits on (None: no write log, nothing is kept)."""
    with wh.connect(writes=False) as con:  # one connection for both (each open is ~15 ms)
        if not warehouse.table_exists(con, TABLE_LOG):
            return None
        stamp = con.execute(f"SELECT max(written_at), count(*) FROM {TABLE_LOG} "
                            "WHERE table_name = 'features.deal_snapshot'").fetchone()
    return stamp, warehouse.unlogged_opens


def timing_fit(wh, cutoff: dt.date, rows: Callable[[], timing.FitRows] | None = None,
               version: tuple | None = None) -> timing.TimingModel:
    """timing.fit at `cutoff` on the TIMING_DAYS of snapshots before it, once per process and
    snapshot version. The nightly's forecast, outlook and quota attainment use the same model (at
    scale 100 a 4-6 s read of 22M rows and a 5 s fit), and a run's steps share one process
    (in_process_executor). The key holds the snapshot table's logged writes and this process's
    unlogged ones, so a rewritten snapshot is fitted again. rows: fit_rows of a window holding
    this cutoff's (default: its own); version: snapshot_version(wh) read once by a step that asks
    for many fits and does not write the snapshot (default: read now)."""
    version = version or snapshot_version(wh)
    key = (str(wh.work_path), wh.backend.describe(), cutoff, TIMING_DAYS, version)
    if version is None or key not in _FITS:
        fitted = timing.fit((rows or fit_rows(wh, cutoff, cutoff))(), cutoff, history_days=TIMING_DAYS)
        if version is None:
            return fitted
        if len(_FITS) >= 64:  # ~1 MB each: a range's forecast (39 fits at scale 100), then the plan judge's
            # past quarters reuse them (plan_job runs right after forecast_job: plan.py); the oldest goes
            del _FITS[next(iter(_FITS))]
        _FITS[key] = fitted
    return _FITS[key]


class ForecastConfig(dg.Config):
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS  # 4..13
    n_sims: int = 10_000  # the forecast of the as-of date (the latest of a range run: the one the pages open on)
    # every earlier date of a range run: quantiles to ~3 %, 20x cheaper. 500 instead of 1,000 changed
    # forecast_accuracy on the demo (seed 42, scale 0.5, 153 dates) by <= 1.4 points of coverage and
    # <= 0.6 % of pinball loss / WAPE per period type and segment type, and the engine's time per date by ~35 %
    history_sims: int = 500
    backtest_sims: int = 2_000  # per backtest origin: quantiles to ~1 %, 5x cheaper
    # backtest origins: every 3rd Monday whose whole horizon is observed, counted back from the
    # latest, over the whole history (n_origins = 0; else the latest n). Walk forward judges those
    # with at least MIN_PRIOR_ORIGINS origins observed before them: ~38 of ~46 on the demo, spread
    # over two years, where 40 weekly origins gave ~22 judged within eight months (overlapping
    # horizons: a few independent months, so coverage swung from 62 % to 96 % between seeds)
    n_origins: int = 0
    origin_every_weeks: int = 3
    # timing models are refit every 4 weeks (backtest: on pre-origin data); the outlook and the quota
    # attainment use history.REFIT_TIMING_WEEKS: set another value here and they no longer share the fit
    refit_timing_weeks: int = history.REFIT_TIMING_WEEKS
    seed: int = 7


OPPS_SQL = ("SELECT o.opportunity_id, o.account_id, o.rep_id, o.product_id, o.division, o.created_date, "
            "o.close_date, o.is_won, o.amount, p.list_price FROM star.fact_opportunity o "
            "LEFT JOIN star.dim_product p USING (product_id) ORDER BY o.opportunity_id")  # a join's row order varies
# the deal scores of one as-of date as probabilities.known_deals takes them (the forecast and the quota
# attainment of a date read the probabilities the deal pages show, not a second prediction)
SCORED_COLUMNS = "opportunity_id, win_probability, expected_close_date AS scored_close, model_version"
SCORED_SQL = f"SELECT {SCORED_COLUMNS} FROM scores.deal_scores WHERE as_of_date = ?"


def _backtest_tables(wh, as_of: dt.date, horizon_weeks: int, n_origins: int, every_weeks: int = 1,
                     refit_weeks: int = history.REFIT_TIMING_WEEKS):
    """What the backtest reads, and no more (not every column of every snapshot: 29M rows x 37
    columns at scale 100): the origins' dates, the timing columns over the window the timing fits
    (each origin's at history.timing_cutoff, up to refit_weeks before it) and timing_validation
    look at, and the labelled rows as counts. The origins' own snapshot rows (every column: the
    win model reads them) are read as they are needed (_origin_rows)."""
    sizes = wh.query("SELECT as_of_date, count(*) AS n FROM features.deal_snapshot WHERE as_of_date <= ? GROUP BY 1",
                     [as_of])
    chosen = backtest.origins(sizes["as_of_date"].to_list(), as_of, horizon_weeks, n_origins, every_weeks)
    if not chosen:
        return chosen, None, None, None, None, None
    n_rows = dict(zip(sizes["as_of_date"].to_list(), sizes["n"].to_list()))
    since = min(history.timing_cutoff(chosen[0], refit_weeks),
                as_of - dt.timedelta(days=backtest.TIMING_VALIDATION_DAYS[1])) - dt.timedelta(days=TIMING_DAYS)
    timing_rows = _timing_rows(wh, "as_of_date <= ? AND as_of_date >= ?", [as_of, since], ", expected_close_date")
    counts = wh.query(LABEL_COUNTS_SQL, [as_of])
    opps = wh.query(OPPS_SQL)
    dim_rep = wh.query("SELECT rep_id, manager, region FROM star.dim_rep")
    return chosen, timing_rows, counts, opps, dim_rep, _origin_rows(wh, chosen, n_rows, scores=True)


ROWS_PER_QUERY = 300_000  # origins' snapshot rows are read a few origins at a time (one origin at scale 100)


def _origin_rows(wh, chosen: list[dt.date], n_rows: dict, scores: bool = False):
    """Yields each origin's snapshot rows (every column but the outcome), reading a batch of
    origins per query while they hold at most ROWS_PER_QUERY rows (fewer round trips when small,
    one origin's rows in memory at a time when large). scores=True: (rows, the deal scores of the
    date or None) pairs, the scores as the forecast of that date read them (SCORED_COLUMNS)."""
    has_scores = scores and wh.table_exists("scores.deal_scores")
    for batch in date_batches(chosen, n_rows, ROWS_PER_QUERY):
        days = ", ".join("?" * len(batch))
        # in any order: model.prepare sorts each date's deals before the engine draws for them
        frame = wh.query(f"SELECT * EXCLUDE (outcome_date, is_won) FROM features.deal_snapshot WHERE as_of_date IN ({days})",
                         batch)
        parts = frame.partition_by("as_of_date", as_dict=True, maintain_order=True)
        del frame
        scored = (wh.query(f"SELECT as_of_date, {SCORED_COLUMNS} FROM scores.deal_scores WHERE as_of_date IN ({days})",
                           batch).partition_by("as_of_date", as_dict=True, include_key=False) if has_scores else {})
        for o in batch:
            rows = parts.pop((o,))  # every origin is a snapshot date: it has rows
            yield (rows, scored.pop((o,), None)) if scores else rows


def _metric_rows(frame: pl.DataFrame, as_of: dt.date, version: str) -> pl.DataFrame:
    """validation.model_metrics rows (CONTRACT.md names) + model_family / period_type / segment_type."""
    return frame.with_columns(
        pl.when(pl.col("model_name") == "revenue_forecast").then(pl.lit(version))
        .otherwise(pl.col("model_name") + "@" + str(as_of)).alias("model_version"),
        pl.lit(as_of).alias("cutoff_date"), pl.lit("all").alias("division"),
        pl.lit(FAMILY).alias("model_family"), pl.col("value").cast(pl.Float64))


BACKTEST_DEPS = [deal_snapshot.key, dg.AssetKey(["models", "win_probability"]), *STAR]
SPEC = dict(group_name=COMMON["group_name"], owners=COMMON["owners"])
BACKTEST = dg.AssetKey(["forecast", "forecast_backtest"])


@dg.multi_asset(specs=[
    dg.AssetSpec(BACKTEST, deps=BACKTEST_DEPS, kinds={"numpy", "duckdb", "mlflow"}, **SPEC,
                 metadata={"table": "forecast.forecast_backtest", "partition_expr": "backtest_as_of"},
                 description="Rolling-origin backtests of the revenue forecast: one origin a week (the latest n "
                             "whose whole horizon is observed), each from what was known then (snapshot, promoted "
                             "win model or stage baseline, timing fitted before it), against revenue booked."),
    dg.AssetSpec(["forecast", "shock_tuning"], deps=BACKTEST_DEPS, kinds={"duckdb"}, **SPEC,
                 metadata={"table": "forecast.shock_tuning", "partition_expr": "as_of_date"},
                 description="The shared shock grid scored on the backtest origins, and the sizes chosen; "
                             "the forecast of a date uses the latest choice on or before it."),
    dg.AssetSpec(["validation", "revenue_forecast"], deps=BACKTEST_DEPS, kinds={"duckdb"}, **SPEC,
                 metadata={"tables": "validation.model_metrics", "model_family": FAMILY},
                 description="Coverage / pinball / CRPS / WAPE / bias of the forecast and the weighted-pipeline "
                             "baseline over the backtest origins (rows with model_family = 'forecast').")],
    partitions_def=as_of_dates, pool="warehouse")
@warehouse_step
def forecast_backtest(context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: WarehouseResource,
                      mlflow_tracking: MLflowResource, compute: ComputeResource):
    wh = warehouse.get()
    as_of = dt.date.fromisoformat(context.partition_key)
    chosen, snaps, counts, opps, dim_rep, origin_rows = _backtest_tables(wh, as_of, config.horizon_weeks,
                                                                         config.n_origins, config.origin_every_weeks,
                                                                         config.refit_timing_weeks)
    if not chosen:
        context.log.warning("forecast backtest skipped: no weekly origin has its whole horizon observed yet")
        for key in (BACKTEST, ["forecast", "shock_tuning"], ["validation", "revenue_forecast"]):
            yield dg.MaterializeResult(asset_key=key, metadata={"status": "skipped: no origin with an observed horizon",
                                                                "n_origins": dg.MetadataValue.int(0)})
        return
    start = time.perf_counter()
    prob_fn = probabilities.registry(mlflow_tracking, counts, counts=True)
    # every timing model first, and the timing validation: then the largest input (every snapshot's
    # timing columns, 29M rows at scale 100) goes before the origins' inputs and sims pile up.
    # Fitting inside the origin loop put each fit's temporaries (~1.5 GB) on top of both: 9.9 GiB
    # at scale 100. Each origin gets the model the forecast of that date uses (fitted on the first
    # Monday of its block: history.timing_cutoff, known before the origin), so the backtest judges
    # the production forecast's timing, and through timing_fit the forecast_job after it (same
    # process in `revintel run`) takes these fits instead of fitting them again (at scale 100: 22 of
    # 76 fits, ~0.4 s each; the gain is the consistency, not the seconds)
    fit_set, version = timing.FitRows.of(snaps), snapshot_version(wh)  # coded once for every fit below
    cutoffs = {o: history.timing_cutoff(o, config.refit_timing_weeks) for o in chosen}
    models = {c: timing_fit(wh, c, lambda: fit_set, version) for c in sorted(set(cutoffs.values()))}
    fitted = {o: models[c] for o, c in cutoffs.items()}
    timing_rows = backtest.timing_validation(snaps, as_of, fit_set=fit_set)
    del snaps, fit_set
    # pass 1, per origin: prepare, simulate TUNING_SIMS sims, count the shock grid's tuning hits;
    # the origin keeps its engine inputs. Pass 2 scores it on sims of its own (another seed):
    # tuning and evaluation never share a simulation, and the origin is simulated once per pass with
    # as many sims as that pass uses (2,000 then re-simulating 2,000 to score the last 1,000 was the
    # backtest's largest cost at scale 100, and caching the 2,000 in between its largest memory)
    n_eval = config.backtest_sims - backtest.TUNING_SIMS
    if n_eval < 200:
        raise ValueError(f"backtest_sims = {config.backtest_sims}: the evaluation uses the sims the tuning did not "
                         f"see, so it must exceed {backtest.TUNING_SIMS} by at least 200")
    prepared: list[backtest.Origin] = []

    def tuning_task(i: int) -> tuple:
        """Origin i's tuning task. Origins are prepared in date order (their rows are read in that
        order; map_tasks asks for tasks in order, and an earlier one is prepared first if it ever
        did not); each keeps its engine inputs for pass 2."""
        while len(prepared) <= i:
            o = chosen[len(prepared)]
            rows, scored = next(origin_rows)  # the forecast of o read these deal scores (else prob_fn, as it did)
            origin = backtest.prepare_origin(o, None, opps, dim_rep, prob_fn, fitted[o], config.horizon_weeks,
                                             rows=rows, label_counts=counts, scored=scored)
            origin.prep.deals = origin.prep.deals.clear()  # scored (baseline) already; keep only the engine inputs
            prepared.append(origin)
        return prepared[i], config.seed

    # the origins are tasks (parallel.map_tasks: this machine's cores or the Dask cluster), each
    # simulated in one process. In pass 1 the pool processes simulate (here=False) while this one
    # prepares the next origins (rows, win probabilities, timing); pass 2's tasks are ready, so this
    # process runs its share. Split by chunks of reps instead, an origin's multinomial draws, group
    # sums and period statistics ran here while the pool waited (the scale-100 job's pool process
    # was busy 81 s of its 300 s)
    hits = list(map_tasks(backtest_tuning, LazyTasks(range(len(chosen)), tuning_task), here=False))
    # the forecast of as_of uses the shock tuned on every origin (all of them lie before it); the
    # figures reported as holdout use, for each origin, only origins observed before it (walk forward)
    window = backtest.tuning_window(config.origin_every_weeks)
    sigma_h, sigma_w, grid = backtest.choose_shock(sum(hits[-window:]))
    in_sample = backtest.choose_shock(sum(hits))[:2]  # tuned on every origin it is then scored on
    walk = backtest.walk_forward_shocks(chosen, hits, config.horizon_weeks, window)
    # pass 2: score each origin on its evaluation sims with its walk-forward shock, the in-sample
    # one, and none; origins with a walk-forward shock are also scored without any, to show what
    # the swing adds
    judged = {"walk_forward": [], "in_sample": [], "no_swing": []}
    eval_seed = config.seed + backtest.EVAL_SEED_OFFSET
    shocks = [{"in_sample": in_sample, **({"walk_forward": wf, "no_swing": (0.0, 0.0)} if wf else {})}
              for wf in walk]
    tasks = [(o, n_eval, eval_seed, list(sh.values())) for o, sh in zip(prepared, shocks)]
    for o, sh, scored in zip(prepared, shocks, map_tasks(backtest_evaluation, tasks)):
        for (kind, (s_h, s_w)), rows_o in zip(sh.items(), scored):
            judged[kind].append(rows_o.with_columns(pl.lit(o.model_version).alias("win_model_version"),
                                                    pl.lit(s_h).alias("sigma_horizon"), pl.lit(s_w).alias("sigma_week")))
    del tasks, prepared[:]
    if not judged["walk_forward"]:
        context.log.warning(f"forecast backtest: fewer than {backtest.MIN_PRIOR_ORIGINS} origins observed before "
                            "any other: no walk-forward figures; the in-sample ones are reported as validation")
    rows = pl.concat(judged["walk_forward"] or judged["in_sample"]).with_columns(pl.lit(as_of).alias("backtest_as_of"))
    metrics = backtest.metrics(rows).with_columns(
        pl.lit("holdout" if judged["walk_forward"] else "validation").alias("split"))
    in_sample = backtest.metrics(pl.concat(judged["in_sample"])).with_columns(pl.lit("validation").alias("split"))
    no_swing = (backtest.metrics(pl.concat(judged["no_swing"]))
                .filter((pl.col("metric") == "coverage_p10_p90") & (pl.col("model_name") == "revenue_forecast"))
                .with_columns(pl.lit("coverage_p10_p90_no_swing").alias("metric"), pl.lit("holdout").alias("split"))
                if judged["no_swing"] else pl.DataFrame())
    version = f"revenue_forecast@{as_of}"
    all_metrics = _metric_rows(pl.concat([metrics, in_sample, no_swing,
                                          timing_rows.with_columns(pl.lit(None, dtype=pl.Utf8).alias("segment_type"),
                                                                   pl.lit("holdout").alias("split"))],
                                         how="diagonal_relaxed"), as_of, version)

    owned = [PartitionFilter("backtest_as_of", values=[as_of])]
    wh.write("forecast.forecast_backtest", rows, partition=owned, run_id=context.run_id,
             comment=docs.BACKTEST[0], column_comments=docs.BACKTEST[1])
    # the in-sample choice (tuned_for = as_of) and the walk-forward ones, for the forecasts of past dates
    grids = backtest.walk_forward_grids(chosen, hits, config.horizon_weeks, as_of, window)
    wh.write("forecast.shock_tuning", grids.with_columns(
        pl.lit(as_of).alias("as_of_date"), pl.lit(config.horizon_weeks).alias("horizon_weeks")),
        partition_column="as_of_date", partition_values=[as_of], run_id=context.run_id,
        comment=docs.TUNING[0], column_comments=docs.TUNING[1])
    wh.write("validation.model_metrics", defined(all_metrics), run_id=context.run_id,
             partition=[PartitionFilter("model_family", values=[FAMILY]), PartitionFilter("cutoff_date", values=[as_of])])

    def m(name, metric, ptype="week", stype="total"):
        hit = metrics.filter((pl.col("model_name") == name) & (pl.col("metric") == metric)
                             & (pl.col("period_type") == ptype) & (pl.col("segment_type") == stype))
        return float(hit["value"][0]) if len(hit) else float("nan")

    numeric = {f"{p}_{k}": m("revenue_forecast", k, p) for p in ("week", "month")
               for k in ("coverage_p10_p90", "pinball_p50", "crps", "wape_p50", "bias")}
    numeric |= {f"{p}_baseline_pinball_p50": m("baseline_weighted_pipeline", "pinball_p50", p) for p in ("week", "month")}
    numeric |= {"coverage_all_segments": float(rows["covered"].mean()), "sigma_horizon": sigma_h, "sigma_week": sigma_w,
                "seconds": time.perf_counter() - start}
    where = "backtest_as_of = ?"
    yield dg.MaterializeResult(asset_key=["forecast", "shock_tuning"],
                               metadata=table_metadata(wh, "forecast.shock_tuning", "as_of_date = ? AND tuned_for = ?",
                                                       [as_of, as_of]))
    yield dg.MaterializeResult(asset_key=["validation", "revenue_forecast"], metadata={
        "validation.model_metrics_rows": dg.MetadataValue.int(family_rows(wh, "validation.model_metrics", FAMILY))})
    yield dg.MaterializeResult(asset_key=BACKTEST, metadata={
        **table_metadata(wh, "forecast.forecast_backtest", where, [as_of]),
        **{k: dg.MetadataValue.float(float(v)) for k, v in numeric.items() if v == v},
        "n_origins": dg.MetadataValue.int(len(chosen)), "first_origin": str(chosen[0]), "last_origin": str(chosen[-1]),
        "backtest_sims": dg.MetadataValue.int(config.backtest_sims),
        "win_model_versions": ", ".join(sorted(set(rows["win_model_version"].unique().to_list())))})


def _drop_old_contributions(context: dg.AssetExecutionContext, wh) -> None:
    """Before 2026-12 the table held one row per deal and horizon (ten per deal); now one per deal
    with `p_within_weeks`. Its rows are derived, so the old layout is dropped, not mixed in."""
    if (wh.table_exists("forecast.deal_contributions")
            and "p_within_weeks" not in wh.query("SELECT * FROM forecast.deal_contributions LIMIT 0").columns):
        context.log.warning("forecast.deal_contributions had the old layout (one row per deal and horizon): dropped; "
                            "as-of dates outside this run have no contributions until they are forecast again")
        wh.execute("DROP TABLE forecast.deal_contributions")


@dg.multi_asset(
    specs=[dg.AssetSpec(["forecast", "revenue_forecast"],
                        deps=[SCORES, deal_snapshot.key, BACKTEST, dg.AssetKey(["forecast", "shock_tuning"]), *STAR],
                        kinds={"numpy", "duckdb"}, metadata={"partition_expr": "as_of_date"},
                        description=docs.FORECAST[0], group_name="forecast", owners=["team:revenue-data-science"]),
           dg.AssetSpec(["forecast", "deal_contributions"], deps=[SCORES],
                        kinds={"duckdb"}, metadata={"partition_expr": "as_of_date"},
                        description=docs.CONTRIBUTIONS[0], group_name="forecast",
                        owners=["team:revenue-data-science"])],
    partitions_def=as_of_dates, backfill_policy=dg.BackfillPolicy.single_run(), pool="warehouse")
@warehouse_step
def revenue_forecast(context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: WarehouseResource,
                     mlflow_tracking: MLflowResource, compute: ComputeResource):
    """The forecast of every as-of date of the run (a range is one pass: the tables are read once,
    a timing fit serves its block of dates), each from what was known on it (history.py)."""
    wh = warehouse.get()
    keys = sorted(dt.date.fromisoformat(k) for k in context.partition_keys)
    opps = wh.query(OPPS_SQL)
    dim_rep = wh.query("SELECT rep_id, manager, region FROM star.dim_rep")
    counts = wh.query(LABEL_COUNTS_SQL, [keys[-1]])  # each date reads only the counts known by it
    prob_fn = probabilities.registry(mlflow_tracking, counts, counts=True)
    cutoffs = {d: history.timing_cutoff(d, config.refit_timing_weeks) for d in keys}
    # Not every snapshot ever taken (29M rows x 37 columns at scale 100): for the timing fits only
    # their window and the columns they read, and each date's own rows as it comes (_origin_rows)
    snaps = fit_rows(wh, min(cutoffs.values()), max(cutoffs.values()))
    sizes = wh.query("SELECT as_of_date, count(*) AS n FROM features.deal_snapshot GROUP BY 1")
    n_rows = dict(zip(sizes["as_of_date"].to_list(), sizes["n"].to_list()))
    dates = [d for d in keys if n_rows.get(d)]
    # A date whose timing fit saw no deal won before its cutoff cannot say when any deal closes: its
    # forecast was every open deal's 0 % within the horizon, a P10-P90 of what was already booked
    # (an audit: $50k - $50k on a MavenTech date with a $2.4M expected pipeline, 17 of 59 dates, and
    # 3 demo dates). Such dates get no forecast, and the run says which.
    first_won = wh.query("SELECT min(outcome_date) AS d FROM features.deal_snapshot WHERE is_won")["d"][0]
    blind = [d for d in dates if first_won is None or cutoffs[d] <= first_won]
    if blind:
        context.log.warning(f"no forecast for {len(blind)} as-of date(s) {blind[0]} .. {blind[-1]}: no deal had been "
                            f"won before their timing model's cutoff{f' (the first won deal closed {first_won})' if first_won else ''}, "
                            "so nothing says when an open deal closes")
        dates = [d for d in dates if d not in set(blind)]
    seconds, frames, fitted, last, sources = 0.0, [], {}, {}, {}
    choices = _shock_choices(wh)
    has_scores = wh.table_exists("scores.deal_scores")
    _drop_old_contributions(context, wh)
    version = snapshot_version(wh)  # this step does not write the snapshot: read once for its fits
    segments_of = model.segments_for(dim_rep, opps)
    has_commit = bool(wh.query(rules.HAS_COMMIT_SQL)["has_commit"][0])  # else no commit call: NULL (rules.py)
    if len(dates) > 2:
        warm_up(forecast_past_date, here=False)  # the pool imports the forecast code while the first rows are read
    # every date but the latest is a task (history_sims: its engine is small, one process is
    # enough) for the pool processes (parallel.map_tasks, here=False: this machine's cores, or
    # the Dask cluster), prepared when it is taken (LazyTasks): this process reads and prepares
    # the next dates (rows, win probabilities, timing, new pipeline) while the pool forecasts
    # the ones before, and only the dates in flight are held. One stream over the whole range:
    # while this process writes a batch, the pool goes on with the next batch's dates (a stream
    # per batch left the pool idle through every write and every batch's first and last task).
    # The latest date (n_sims) runs here at the end, its engine split over chunks on the same cores.
    batches = date_batches(dates, n_rows, ROWS_PER_PASS)
    batch_of = {d: i for i, b in enumerate(batches) for d in b}
    rows_of = _origin_rows(wh, dates, n_rows)  # each date's rows, read in date order
    tags_of: dict[dt.date, tuple] = {}
    scores: dict[int, dict] = {}  # one batch's deal scores at a time: {batch: {(date,): frame}}
    coded: dict = {}  # the opportunities coded for fit_new_pipeline, per segments

    def prepare(d: dt.date) -> tuple:
        """What the forecast of d needs, known on d: its deals with their win probabilities,
        the timing fit of its block, its calendar and swing; the date's column tags go to
        tags_of. Called in date order (rows_of is read in order, one fit and one batch's deal
        scores kept at a time)."""
        nonlocal fitted
        if has_scores and batch_of[d] not in scores:
            b = batches[batch_of[d]]
            scores.clear()
            scores[batch_of[d]] = wh.query(f"SELECT as_of_date, {SCORED_COLUMNS} FROM scores.deal_scores WHERE "
                                           f"as_of_date IN ({', '.join('?' * len(b))})", b).partition_by(
                "as_of_date", as_dict=True, include_key=False)
        rows = next(rows_of)
        if rows["as_of_date"][0] != d:  # LazyTasks builds in order; a change there must not mix dates up
            raise RuntimeError(f"forecast of {d} was given the snapshot rows of {rows['as_of_date'][0]}")
        scored = scores.get(batch_of[d], {}).get((d,))
        deals, source = probabilities.known_deals(d, rows, scored, prob_fn, counts)
        del rows
        sources[source.split("@")[0]] = sources.get(source.split("@")[0], 0) + 1
        if cutoffs[d] not in fitted:  # dates come in order: only the current block's fit is kept
            fitted = {cutoffs[d]: timing_fit(wh, cutoffs[d], snaps, version)}
        sigma_h, sigma_w, tuned_on = _pick_shock(choices, d, config.horizon_weeks)
        cal = calendar(d, config.horizon_weeks, settings().fiscal_year_start_month)
        n_sims = config.n_sims if d == dates[-1] else config.history_sims
        tags_of[d] = (pl.lit(n_sims).alias("n_sims"), pl.lit(sigma_h).alias("sigma_horizon"),
                      pl.lit(sigma_w).alias("sigma_week"), pl.lit(source).alias("win_model_version"),
                      pl.lit(tuned_on, dtype=pl.Date).alias("shock_tuned_for"),
                      pl.lit(cutoffs[d]).alias("timing_cutoff"))
        return cal, deals, fitted[cutoffs[d]], n_sims, (sigma_h, sigma_w), tuned_on, source

    def past_task(d: dt.date) -> tuple:
        """A past date's forecast_past_date arguments (its segments and new pipeline too)."""
        cal, deals, fit, n_sims, sigma, _, _ = prepare(d)
        deals = deals.select(model.DEAL_COLUMNS)
        segments = segments_of(deals)
        if coded.get("segments") is not segments:  # the same segments for every date, as a rule
            coded.update(segments=segments, opps=code_opps(opps, segments.reps, segments.divisions))
        new = fit_new_pipeline(opps, cal, segments.reps, segments.divisions, coded=coded["opps"])
        return cal, deals, fit, segments, new, n_sims, config.seed, sigma

    past = dates[:-1]
    results = map_tasks(forecast_past_date, LazyTasks(past, past_task), here=False)
    start = time.perf_counter()
    for batch in batches:  # written a batch at a time: memory follows ROWS_PER_PASS, not the range
        done = {d: (frame.with_columns(*tags_of.pop(d)), contributions)
                for d, (frame, contributions) in zip([d for d in batch if d != dates[-1]], results)}
        if dates[-1] in batch:  # the last batch: every past date is done, the pool is free
            cal, deals, fit, n_sims, sigma, tuned_on, source = prepare(dates[-1])
            crm = crm_categories(wh, dates[-1])
            frame, prep, bookings = history.forecast_date(
                cal, deals, fit, dim_rep, opps, n_sims, config.seed, sigma,
                crm=None if crm is None else dict(crm.drop_nulls("forecast_category").iter_rows()))
            done[dates[-1]] = (frame.with_columns(*tags_of.pop(dates[-1])), model.deal_contributions(prep))
            last = dict(date=dates[-1], cal=cal, prep=prep, bookings=bookings, deals=len(deals), sigma=sigma,
                        tuned_on=tuned_on, source=source, timing_rows=fit.n_rows)
        frames = [done[d][0] if has_commit else done[d][0].with_columns(pl.lit(None, pl.Float64).alias("commit"))
                  for d in batch]
        contributions = [done[d][1] for d in batch]
        del done
        seconds += time.perf_counter() - start
        owned = dict(partition_column="as_of_date", partition_values=batch, run_id=context.run_id)
        wh.write("forecast.revenue_forecast", pl.concat(frames), comment=docs.FORECAST[0],
                 column_comments=docs.FORECAST[1], **owned)
        wh.write("forecast.deal_contributions", pl.concat(contributions), comment=docs.CONTRIBUTIONS[0],
                 column_comments=docs.CONTRIBUTIONS[1], **owned)
        del contributions
        start = time.perf_counter()
    snaps.cache_clear()
    context.log.info(f"{len(dates)} as-of dates; win probabilities from: "
                     + ", ".join(f"{k} ({n} dates)" for k, n in sorted(sources.items())))
    if not frames:  # a source with dated partitions but no open deal on any of them: nothing to forecast from
        if not blind:
            context.log.warning(f"no snapshot rows for the as-of dates {keys[0]} .. {keys[-1]}: no forecast written")
        for key in (["forecast", "revenue_forecast"], ["forecast", "deal_contributions"]):
            yield dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": dg.MetadataValue.int(0),
                                                                "status": "skipped: " + ("no deal won before the timing "
                                                                                         "cutoff" if blind else "no snapshot rows")})
        return
    if tuple(last["sigma"]) == (0.0, 0.0) and last["tuned_on"] is None:
        context.log.warning("no backtest tuning of the shared shock yet: forecasting without it (ranges too narrow)")
    frame = pl.concat(frames)  # the last batch's: it holds the latest date

    # the latest date's figures (the one the pages open on)
    cal, prep = last["cal"], last["prep"]
    total = frame.filter((pl.col("as_of_date") == last["date"]) & (pl.col("segment_type") == "total"))
    first_month = total.filter(pl.col("period_type") == "month").sort("period_start").row(0, named=True)
    horizon = prep.engine.q[:, cal.atom_week >= 0].sum(axis=1)
    where = f"as_of_date IN ({', '.join('?' * len(dates))})"
    yield dg.MaterializeResult(asset_key=["forecast", "revenue_forecast"], metadata={
        **range_metadata(wh, "forecast.revenue_forecast", where, dates),
        "as_of_dates": dg.MetadataValue.int(len(dates)), "latest_as_of": str(last["date"]),
        "open_deals": dg.MetadataValue.int(last["deals"]), "n_sims": dg.MetadataValue.int(config.n_sims),
        "bookings_simulated": dg.MetadataValue.int(int(last["bookings"])),
        "engine_seconds": dg.MetadataValue.float(seconds),
        "first_month_p10": dg.MetadataValue.float(first_month["p10"]),
        "first_month_p50": dg.MetadataValue.float(first_month["p50"]),
        "first_month_p90": dg.MetadataValue.float(first_month["p90"]),
        "expected_from_open_deals": dg.MetadataValue.float(float((horizon * prep.engine.amount).sum())),
        "sigma_horizon": dg.MetadataValue.float(last["sigma"][0]), "sigma_week": dg.MetadataValue.float(last["sigma"][1]),
        "shock_tuned_on": str(last["tuned_on"]), "win_model_version": last["source"],
        "timing_rows": dg.MetadataValue.int(last["timing_rows"])})
    yield dg.MaterializeResult(asset_key=["forecast", "deal_contributions"],
                               metadata=range_metadata(wh, "forecast.deal_contributions", where, dates))


ACCURACY_DOC = ("Each stored forecast (one per as-of date) against the revenue booked in its period, once the "
                "period is over, for revintel, the weighted pipeline and the commit category: error and pinball "
                "loss of P50, P10-P90 coverage, by week of the quarter and segment.", {
    "model_name": "revenue_forecast (P10/P50/P90), weighted_pipeline or commit (point calls: p50 only)",
    "actual": "Won amount (list price where missing) closed from first_day to last_day in the segment",
    "booked_before": "Won in the period before first_day (known on the as-of date): actual + booked_before = "
                     "the period's whole bookings",
    "error": "p50 - actual (> 0: over-called); NULL where the caller made no call (no commit category)",
    "covered": "p10 <= actual <= p90 (revenue_forecast only)",
    "week_of_quarter": "Week of the quarter the forecast is about (the quarter of as_of_date + 1 day), 1..14",
    "lead_days": "Days from the as-of date to the period's first day",
    "weeks_before_period_end": "Whole weeks from the as-of date to the period's last day (0: the forecast was "
                               "made in the period's last seven days)",
    "evaluated_as_of": "The run's latest as-of date: only periods over by then are scored"})


@dg.asset(key=["forecast", "forecast_accuracy"], deps=[dg.AssetKey(["forecast", "revenue_forecast"]), *STAR],
          partitions_def=as_of_dates, backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "sql"},
          metadata={"partition_expr": "as_of_date"}, description=ACCURACY_DOC[0], **COMMON)
@warehouse_step
def forecast_accuracy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    keys = sorted(dt.date.fromisoformat(k) for k in context.partition_keys)
    if not wh.table_exists("forecast.revenue_forecast"):
        return dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(0),
                                              "status": "skipped: no stored forecast"})
    # dates in batches of ROWS_PER_PASS stored forecast rows, each written as done: at scale 100 the
    # 154 dates' join with the bookings ran DuckDB out of memory in one statement
    where = f"as_of_date IN ({', '.join('?' * len(keys))})"
    quarters, scored = [], 0
    for batch in date_batches(keys, rows_by_date(wh.query, keys, "forecast.revenue_forecast"), ROWS_PER_PASS):
        # joined and scored inside DuckDB (accuracy.scored_sql): the rows never come out to Python
        wh.write("forecast.forecast_accuracy", sql=accuracy.scored_sql(len(batch), settings().fiscal_year_start_month), params=[*batch, keys[-1], keys[-1]],
                 partition_column="as_of_date", partition_values=batch, run_id=context.run_id,
                 comment=ACCURACY_DOC[0], column_comments=ACCURACY_DOC[1])
        days = ", ".join("?" * len(batch))
        quarters.append(wh.query(f"SELECT * FROM forecast.forecast_accuracy WHERE as_of_date IN ({days}) AND "
                                 "period_type = 'quarter' AND segment_type = 'total'", batch))
        scored += wh.query(f"SELECT count(DISTINCT as_of_date) AS n FROM forecast.forecast_accuracy "
                           f"WHERE as_of_date IN ({days})", batch)["n"][0]
    quarters = pl.concat(quarters)
    table = accuracy.summary(quarters, ["week_of_quarter"]) if len(quarters) else pl.DataFrame()
    return dg.MaterializeResult(metadata={
        **range_metadata(wh, "forecast.forecast_accuracy", where, keys),
        "forecasts_scored": dg.MetadataValue.int(scored),
        "quarter_call_by_week": dg.MetadataValue.md(table.to_pandas().to_markdown(index=False, floatfmt=".3f")
                                                    if len(table) else "(no quarter over yet)")})


def _shock(wh, as_of: dt.date, horizon_weeks: int) -> tuple:
    """The shock sizes chosen by the latest backtest run on or before as_of (0, 0 without one)."""
    return _pick_shock(_shock_choices(wh), as_of, horizon_weeks)


def _shock_choices(wh) -> pl.DataFrame | None:
    """Every chosen shock pair of forecast.shock_tuning, read once for a range of dates."""
    if not wh.table_exists("forecast.shock_tuning"):
        return None
    # tuned_for: the first date a choice may serve (walk-forward rows; older tables: as_of_date)
    return wh.query("SELECT sigma_horizon, sigma_week, coalesce(tuned_for, as_of_date) AS tuned_for, as_of_date, "
                    "horizon_weeks FROM forecast.shock_tuning WHERE chosen")


def _pick_shock(choices: pl.DataFrame | None, as_of: dt.date, horizon_weeks: int) -> tuple:
    """The choice a forecast of as_of may use: tuned for a date on or before it, for its horizon if any,
    the latest (0, 0, None without one)."""
    if choices is None:
        return 0.0, 0.0, None
    best = choices.filter(pl.col("tuned_for") <= as_of).sort(
        [pl.col("horizon_weeks") == horizon_weeks, "tuned_for", "as_of_date"], descending=True)
    if not len(best):
        return 0.0, 0.0, None
    return float(best["sigma_horizon"][0]), float(best["sigma_week"][0]), best["tuned_for"][0]


OUTLOOK_DOC = ("Per open deal and period (this / next quarter of the as-of date): the chance it is won in the "
               "period, won later or earlier (slips), or lost; the three sum to 1.", {
    "p_win_in_period": "Win probability x P(close in the period | won) from the forecast's timing model of the date "
                       "(fitted on the first Monday of its 4-week block)",
    "p_slip": "Won, but not in the period",
    "p_lose": "1 - win probability"})
OUTLOOK_ORIGINS = 8  # past as-of dates the outlook is judged on: every 4th Monday whose quarters are over


@dg.asset(key=["scores", "deal_outlook"], deps=[SCORES, deal_snapshot.key], kinds={"numpy", "duckdb"}, **SPEC,
          metadata={"partition_expr": "as_of_date"}, description=OUTLOOK_DOC[0], partitions_def=as_of_dates,
          pool="warehouse")
@warehouse_step
def deal_outlook(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    as_of = dt.date.fromisoformat(context.partition_key)
    rows = wh.query("SELECT s.* EXCLUDE (outcome_date, is_won), d.win_probability FROM features.deal_snapshot s "
                    "JOIN scores.deal_scores d USING (as_of_date, opportunity_id) WHERE s.as_of_date = ?", [as_of]) \
        if wh.table_exists("scores.deal_scores") else pl.DataFrame()
    if len(rows):
        fitted = timing_fit(wh, history.timing_cutoff(as_of, history.REFIT_TIMING_WEEKS))  # the forecast's model
        frame = outlook.outlook(rows, rows["win_probability"].to_numpy(), fitted, as_of,
                                settings().fiscal_year_start_month)
        wh.write("scores.deal_outlook", frame, partition_column="as_of_date", partition_values=[as_of],
                 run_id=context.run_id, comment=OUTLOOK_DOC[0], column_comments=OUTLOOK_DOC[1])
    else:
        context.log.warning(f"no deal scores on {as_of}: no outlook")
    return dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(2 * len(rows))})


# A judge, not a score: it refits the timing model on each of 8 past origins (111 s of a 300 s nightly at
# scale 100), so it runs with the forecast's other judges (forecast_backtest_job, weekly), not every night.
@dg.asset(key=["validation", "deal_outlook"], deps=[deal_snapshot.key, dg.AssetKey(["models", "win_probability"])],
          kinds={"duckdb"}, **SPEC, metadata={"tables": "validation.model_metrics", "model_family": "outlook"},
          description="The outlook judged on past as-of dates whose quarters are over (each with the win "
                      "probability and timing known then): AUC / Brier / ECE of p_win_in_period and p_slip, "
                      "beside the CRM's close date as the baseline (baseline_expected_close).",
          partitions_def=as_of_dates, pool="warehouse")
@warehouse_step
def deal_outlook_judged(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        mlflow_tracking: MLflowResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    as_of = dt.date.fromisoformat(context.partition_key)
    since = as_of - dt.timedelta(days=TIMING_DAYS + 7 * 4 * OUTLOOK_ORIGINS + 200 + 7 * history.REFIT_TIMING_WEEKS)
    snaps = _timing_rows(wh, "as_of_date < ? AND as_of_date >= ?", [as_of, since])
    metrics = _judge_outlook(wh, mlflow_tracking, snaps, as_of)
    owned = [PartitionFilter("model_family", values=["outlook"]), PartitionFilter("cutoff_date", values=[as_of])]
    if len(metrics):
        wh.write("validation.model_metrics", defined(metrics), partition=owned, run_id=context.run_id)
    return dg.MaterializeResult(metadata={
        **{f"{r['model_name']} {r['period_type']} {r['metric']}": dg.MetadataValue.float(float(r["value"]))
           for r in (metrics.filter(pl.col("metric").is_in(["auc", "brier", "ece"])).iter_rows(named=True)
                     if len(metrics) else [])  # too little history: no metrics frame at all (issue 13)
           if r["value"] == r["value"]},
        "origins": dg.MetadataValue.int(int(metrics["origins"][0]) if len(metrics) else 0)})


def _judge_outlook(wh, tracking, snaps: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Metrics of the outlook on past Mondays whose next quarter ended by as_of, from what was known
    on each (the probability source of that date, timing fitted before it); outcomes as of as_of."""
    fy = settings().fiscal_year_start_month
    dates = sorted(d for d in snaps["as_of_date"].unique().to_list()
                   if d.weekday() == 0 and outlook.quarter_bounds(d, fy)["next_quarter"][1] <= as_of)
    chosen = dates[::-4][:OUTLOOK_ORIGINS]
    if not chosen:
        return pl.DataFrame()
    prob = probabilities.registry(tracking, wh.query(LABEL_COUNTS_SQL, [as_of]), counts=True)
    # coded once for the origins' fits, and only if one is missing: in `revintel run` the backtest
    # has fitted every origin's block already (timing_fit)
    fit_set, version = functools.cache(lambda: timing.FitRows.of(snaps)), snapshot_version(wh)
    frames = []
    for o in chosen:
        rows = wh.query("SELECT * FROM features.deal_snapshot WHERE as_of_date = ?", [o])
        p, _ = prob(o, rows.drop("outcome_date", "is_won"))
        # as production, and the forecast's own fit of that date when this process has it
        fitted = timing_fit(wh, history.timing_cutoff(o, history.REFIT_TIMING_WEEKS), fit_set, version)
        f = outlook.outlook(rows, np.asarray(p), fitted, o, fy)
        base = f.join(rows.select("opportunity_id", "expected_close_date"), on="opportunity_id")
        f = outlook.labels(f.with_columns(pl.Series("p_win", np.tile(p, 2))), rows.select(
            "opportunity_id", "outcome_date", "is_won"), as_of, fy)
        # the baseline: the CRM's close date decides the period, the same win probability the size
        in_p = (pl.col("expected_close_date") >= pl.col("p_start")) & (pl.col("expected_close_date") < pl.col("p_end"))
        frames.append(f.join(base.select("opportunity_id", "period", "expected_close_date"), on=["opportunity_id", "period"])
                      .with_columns(pl.when(in_p).then(pl.col("p_win")).otherwise(0.0).alias("baseline_in_period"))
                      .sort("opportunity_id", "period"))  # metrics sum in row order: one order, whatever the query's
    rows = pl.concat(frames)
    out = []
    for period in outlook.PERIODS:
        r = rows.filter(pl.col("period") == period)
        known = r.filter(pl.col("slipped").is_not_null())
        for name, y, p in (("deal_outlook_win_in_period", r["won_in_period"], r["p_win_in_period"]),
                           ("baseline_expected_close_win_in_period", r["won_in_period"], r["baseline_in_period"]),
                           ("deal_outlook_slip", known["slipped"], known["p_slip"]),
                           ("baseline_expected_close_slip", known["slipped"],
                            known["p_win"] - known["baseline_in_period"])):
            for metric, value in classification_metrics(y.cast(pl.Float64).to_numpy(), p.to_numpy()).items():
                out.append({"model_name": name, "period_type": period, "metric": metric, "value": float(value)})
    return pl.DataFrame(out).with_columns(
        pl.col("model_name").alias("model_version"), pl.lit(as_of).alias("cutoff_date"), pl.lit("all").alias("division"),
        pl.lit("holdout").alias("split"), pl.lit("outlook").alias("model_family"), pl.lit(len(chosen)).alias("origins"))


defs = dg.Definitions(assets=[forecast_backtest, revenue_forecast, forecast_accuracy, deal_outlook,
                              deal_outlook_judged])
