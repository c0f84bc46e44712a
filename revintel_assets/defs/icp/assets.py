"""ICP and whitespace assets: calendar → feature matrices → division models (+ validation) →
ICP scores → whitespace. The computations live in plain modules; these functions read and
write the warehouse and report metadata."""


import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import polars as pl

from revintel_assets.defs.icp import docs
from revintel_assets.defs.icp.calendar import IcpPlan, default_window, history_caveats
from revintel_assets.defs.icp.evaluate import FAMILY, MODEL_NAME, evaluate, level_misses, metric
from revintel_assets.defs.icp.features import divisions_sql, feature_sql, ledger_tables
from revintel_assets.defs.icp.model import (BLEND, CANDIDATES, HOLDOUT, TRAIN, VALIDATION, NotEnoughData, account_fold,
                                            choose_champion, sampled_accounts)
from revintel_assets.defs.icp.partitions import (INVALID, MODEL_READS_FEATURES, by_cutoff, divisions, feature_cutoffs,
                                            feature_partitions, model_cutoffs, model_partitions)
from revintel_assets.defs.partitions import register
from revintel_assets.defs.icp.registry import log_and_register, registered_model
from revintel_assets.defs.icp.tasks import fit_division
from revintel_assets.defs.icp.whitespace import (REP_VIEW, ValueModel, first_purchases_sql, fit_value, rep_view_sql,
                                                 whitespace_holdout_metrics, whitespace_holdout_sql, whitespace_sql)
from revintel_assets.metadata import family_rows, table_metadata
from revintel_assets.parallel import LazyTasks, map_tasks, warm_up
from revintel_assets.defs.validation import oracle
from revintel_assets.defs.validation.metrics import deciles, defined
from revintel_resources.compute import ComputeResource
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.source import SourceResource
from revintel_resources.tracking import MLflowResource
from revintel_resources.warehouse import PartitionFilter

COMMON = dict(group_name="icp", owners=["team:revenue-data-science"], pool="warehouse")
STAR = [dg.AssetKey(["star", t]) for t in ("fact_transactions", "dim_product", "dim_account",
                                            "fact_opportunity", "dim_rep")]
BASELINES = ("baseline_rfm", "baseline_logistic")


class IcpConfig(dg.Config):
    window_months: int = 0  # 0: from the data span (6 with >= 2.5 years of history, else 3)
    n_train: int = 6
    n_eval: int = 3


def _as_of(wh, source: SourceResource) -> tuple[dt.date | None, dt.date | None]:
    """(first transaction date, as-of): the source's as-of date, else its last transaction. A source
    whose every transaction line was quarantined has no fact_transactions: no ICP (None, ...)."""
    if not wh.table_exists("star.fact_transactions"):
        return None, source.as_of_date(wh)
    first, last = wh.query("SELECT min(order_date) AS f, max(order_date) AS l FROM star.fact_transactions").row(0)
    return first, source.as_of_date(wh) or last


def load_plan(wh) -> tuple[IcpPlan, list[str]]:
    plan = IcpPlan.from_row(wh.query("SELECT * FROM features.icp_cutoffs LIMIT 1").row(0, named=True))
    divs = wh.query("SELECT division FROM features.icp_divisions ORDER BY 1")["division"].to_list()
    return plan, divs


SPEC = dict(group_name=COMMON["group_name"], owners=COMMON["owners"])


@dg.multi_asset(specs=[
    dg.AssetSpec(["features", "icp_cutoffs"], deps=STAR, kinds={"duckdb"}, metadata={"table": "features.icp_cutoffs"},
                 description="The ICP calendar from the data: as-of date, window length, training / evaluation / "
                             "holdout / scoring cutoffs; registers them as dynamic partitions.", **SPEC),
    dg.AssetSpec(["features", "icp_divisions"], deps=STAR, kinds={"duckdb"},
                 metadata={"table": "features.icp_divisions"}, **SPEC,
                 description="The divisions the ICP models cover (from star.dim_product); registered as the "
                             "icp_division partitions.")], pool="warehouse")
@warehouse_step
def icp_cutoffs(context: dg.AssetExecutionContext, config: IcpConfig, warehouse: WarehouseResource,
                source: SourceResource):
    wh = warehouse.get()
    first, as_of = _as_of(wh, source)
    divs = wh.query(divisions_sql())["division"].to_list() if first is not None else []
    bad = [d for d in divs if any(ch in d for ch in INVALID)]
    if bad:
        raise ValueError(f"division names {bad} contain one of {INVALID}, which partition keys cannot hold")
    if first is None:
        plan_rows, model_keys, feature_keys = [], [], []
        plan = None
    else:
        plan = IcpPlan(first, as_of, config.window_months or default_window(first, as_of),
                       n_train=config.n_train, n_eval=config.n_eval)
        plan_rows = [{"cutoff_date": c, "role": plan.role(c), "label_end": plan.label_end(c),
                      "labelled": plan.labelled(c), "train_cutoffs": plan.train_cutoffs(c)
                      if c in plan.model_cutoffs else [], "window_months": plan.window_months,
                      "first_date": first, "as_of": as_of, "n_train": plan.n_train, "n_eval": plan.n_eval}
                     for c in plan.feature_cutoffs]
        model_keys = [c.isoformat() for c in plan.model_cutoffs]
        feature_keys = [c.isoformat() for c in plan.feature_cutoffs]
    if first is None:
        context.log.warning("ICP: no transaction line in the star schema (the source has none, or every one "
                            "was quarantined: star.quarantine says why)")
    elif not plan_rows:
        context.log.warning("ICP: not enough history for any model (need a few months of transactions)")
    else:
        # a transaction log's months (won CRM deals standing in for one have months without a win)
        months = dict(wh.query("SELECT month_start, count(*) AS n FROM star.fact_transactions "
                               "WHERE month_start <= ? AND source <> 'crm_won' GROUP BY 1", [as_of]).iter_rows())
        for caveat in history_caveats(months, as_of, plan.window_months):
            context.log.warning(caveat)
    frame = pl.DataFrame(plan_rows, schema={
        "cutoff_date": pl.Date, "role": pl.Utf8, "label_end": pl.Date, "labelled": pl.Boolean,
        "train_cutoffs": pl.List(pl.Date), "window_months": pl.Int64, "first_date": pl.Date, "as_of": pl.Date,
        "n_train": pl.Int64, "n_eval": pl.Int64})
    wh.write("features.icp_cutoffs", frame, run_id=context.run_id, comment=docs.CUTOFFS[0],
             column_comments=docs.CUTOFFS[1])
    wh.write("features.icp_divisions", pl.DataFrame({"division": divs}, schema={"division": pl.Utf8}),
             run_id=context.run_id, comment="Divisions the ICP models cover (from star.dim_product).")
    # exactly the plan's keys: a recomputed plan must not inherit the previous one's cutoffs
    register(context.instance, divisions, divs if plan_rows else [], exact=True)
    register(context.instance, feature_cutoffs, feature_keys, exact=True)
    register(context.instance, model_cutoffs, model_keys, exact=True)
    yield dg.MaterializeResult(asset_key=["features", "icp_divisions"],
                               metadata=table_metadata(wh, "features.icp_divisions"))
    yield dg.MaterializeResult(asset_key=["features", "icp_cutoffs"], metadata={
        "dagster/row_count": dg.MetadataValue.int(len(plan_rows)),
        "as_of": str(as_of), "window_months": dg.MetadataValue.int(plan.window_months if plan else 0),
        "holdout_cutoff": str(plan.holdout_cutoff if plan else None),
        "divisions": dg.MetadataValue.json(divs), "feature_cutoffs": dg.MetadataValue.json(feature_keys),
        "model_cutoffs": dg.MetadataValue.json(model_keys)})


# A feature partition reads every month of transactions up to the end of its label window.
STAR_ALL = [dg.AssetDep(k, partition_mapping=dg.AllPartitionMapping()) if k.path[-1] == "fact_transactions" else k
            for k in STAR]


@dg.asset(key=["features", "customer_division"], deps=[*icp_cutoffs.keys, *STAR_ALL], partitions_def=feature_partitions,
          backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "sql"},
          metadata={"table": "features.customer_division", "partition_expr": {"cutoff": "cutoff_date",
                                                                              "division": "division"}},
          description="Account × division feature matrix per cutoff: RFM overall and in the division over "
                      "3/6/12/24 months, buying months, gaps, trend, division mix, cross-division affinity, "
                      "seasonality, firmographics and CRM signals, from rows dated on or before the cutoff; "
                      "label = purchase in the next window. One SQL pass per cutoff covers all divisions.",
          **COMMON)
@warehouse_step
def customer_division(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    with wh.session(writes=False) as con, wh.scratch() as ledger:  # one connection for the step (Warehouse.session)
        plan, _ = load_plan(wh)
        rows = 0
        groups = [(dt.date.fromisoformat(c), divs) for c, divs in by_cutoff(context.partition_keys).items()]
        for create in ledger_tables(ledger):  # the purchase ledger, once for every cutoff (features.LEDGER)
            con.execute(create)
        # the next cutoff's rows are computed while this one's are written (Warehouse.selects_ahead)
        with wh.selects_ahead([feature_sql(c, divs, plan.window_months, plan.as_of, ledger)
                               for c, divs in groups]) as sqls:
            for (c, divs), sql in zip(groups, sqls):
                rows += wh.write("features.customer_division", sql=sql, run_id=context.run_id,
                                 partition=[PartitionFilter("cutoff_date", values=[c]),
                                            PartitionFilter("division", values=divs)],
                                 comment=docs.FEATURES[0], column_comments=docs.FEATURES[1])
        cuts = sorted(by_cutoff(context.partition_keys))
        where = f"cutoff_date IN ({', '.join('?' * len(cuts))})"
        meta = table_metadata(wh, "features.customer_division", where, [dt.date.fromisoformat(c) for c in cuts])
        labelled = wh.query(f"SELECT count(label) AS n, avg(label::INT) AS rate FROM features.customer_division "
                            f"WHERE {where}", [dt.date.fromisoformat(c) for c in cuts]).row(0)
        return dg.MaterializeResult(metadata={**meta, "dagster/row_count": dg.MetadataValue.int(rows),
                                              "cutoffs": dg.MetadataValue.int(len(cuts)),
                                              "labelled_rows": dg.MetadataValue.int(int(labelled[0] or 0)),
                                              "label_rate": dg.MetadataValue.float(float(labelled[1] or 0))})


# Typed explicitly: a cutoff where every division trained has a None-only `message` (and one where
# none did, None-only model columns); inferred, that column became INTEGER and the next source's
# text did not fit (issue 13).
ICP_MODELS_SCHEMA = {
    "cutoff_date": pl.Date, "division": pl.Utf8, "status": pl.Utf8, "message": pl.Utf8, "model_version": pl.Utf8,
    "model_uri": pl.Utf8, "role": pl.Utf8, "train_cutoffs": pl.Utf8, "features": pl.Int64, "fit_rows": pl.Int64,
    "validation_rows": pl.Int64, "fit_positives": pl.Int64, "validation_positives": pl.Int64,
    "calibration": pl.Utf8, "best_iteration": pl.Int64, "champion": pl.Utf8, "champion_reason": pl.Utf8,
    "champion_validation_cutoffs": pl.Int64,
    **{f"validation_auc_{m}": pl.Float64 for m in CANDIDATES}}


def _too_little(division: str, cutoff: dt.date, reason: str) -> dict:
    return {"cutoff_date": cutoff, "division": division, "status": "skipped", "message": reason,
            "model_version": None, "model_uri": None}


def _validation_auc(wh, plan: IcpPlan, cutoff: dt.date, division: str) -> pl.DataFrame:
    """AUC of every candidate on the validation accounts of the evaluation cutoffs before `cutoff`
    (written by earlier cutoffs of this asset; cutoffs run oldest first). Never holdout rows."""
    earlier = [e for e in plan.eval_cutoffs if e < cutoff]
    if not earlier or not wh.table_exists("validation.model_metrics"):
        return pl.DataFrame(schema={"cutoff_date": pl.Date, "model_name": pl.Utf8, "value": pl.Float64,
                                    "diff_se": pl.Float64})
    # with the paired standard error of each candidate's AUC minus the blend's: how far apart they must be
    return wh.query("SELECT cutoff_date, model_name, max(value) FILTER (WHERE metric = 'auc') AS value, "
                    "max(value) FILTER (WHERE metric = 'auc_diff_se') AS diff_se "
                    "FROM validation.model_metrics WHERE model_family = ? AND division = ? "
                    "AND split = 'validation' AND segment = 'all' AND metric IN ('auc', 'auc_diff_se') "
                    "AND cutoff_date IN (SELECT unnest(?)) GROUP BY ALL HAVING value IS NOT NULL",
                    [FAMILY, division, earlier])


# Feature rows in a fixed order: LightGBM's bagging draws rows by position, so the order is part of
# the model. Without ORDER BY, DuckDB returns the rows of an `IN (SELECT unnest(?))` filter in the
# order its threads happen to produce them: the same features trained different trees run to run
# (best iteration 98 vs 74 for one division, same code and warehouse).
ROW_ORDER = "ORDER BY cutoff_date, division, account_id"


def _training_task(wh, plan: IcpPlan, cutoff: dt.date, division: str) -> tuple[pl.DataFrame, str, dt.date]:
    """(training rows, division, cutoff): one fit's task. At a labelled (evaluation) cutoff only the
    training accounts; the scoring cutoff's models train on every account.

    The accounts are chosen from their ids first (fold, then `sampled_accounts`) and only their rows
    are read: a division's labelled rows over every training cutoff are ~10 per account, and read
    whole for every division at once they took the ICP models past 23 GiB at scale 100."""
    # Only cutoffs by which the division had sold (an owner at the cutoff): before its launch every
    # label is 0 and every division feature empty, rows that teach the models the calendar, not the
    # accounts (an audit: a line launched nine months into a 27-month log got a LightGBM stopped at
    # 4 trees, AUC 0.56-0.59 on the future, and an RFM champion 0.07 below the oracle).
    where = "division = ? AND cutoff_date IN (SELECT unnest(?)) AND label IS NOT NULL AND division_penetration > 0"
    params = [division, plan.train_cutoffs(cutoff)]
    ids = wh.query(f"SELECT account_id FROM features.customer_division WHERE {where}", params)["account_id"]
    if plan.labelled(cutoff):  # no validation or holdout account is fitted on
        ids = ids.filter(pl.Series(account_fold(ids) == TRAIN))
    keep = sampled_accounts(ids)  # model and baselines alike
    if keep is None and plan.labelled(cutoff):
        keep = ids.unique()
    if keep is not None:
        where, params = f"{where} AND account_id IN (SELECT unnest(?))", [*params, keep.to_list()]
    rows = wh.query(f"SELECT * FROM features.customer_division WHERE {where} {ROW_ORDER}", params)
    return rows, division, cutoff


def _train_cutoff(context, wh, tracking: MLflowResource, plan: IcpPlan, cutoff: dt.date, divs: list[str],
                  truth: pl.DataFrame | None, fits: Iterator,
                  logger: ThreadPoolExecutor) -> tuple[list[dict], list[dict], list[pl.DataFrame]]:
    """Train, evaluate and register the models of one cutoff; returns (model rows, evaluations, importances).

    At a labelled (evaluation) cutoff the models train on the training accounts only; they are
    measured on the validation accounts (split 'validation': what chooses later champions) and on
    the holdout accounts (split 'holdout': reported, never chosen on). The scoring cutoff's models
    train on every account. The champion of every cutoff is chosen on the validation rows of the
    evaluation cutoffs before it. `fits` yields the fitted models (or NotEnoughData) of `divs`, in order.

    Each model is logged and registered in MLflow by `logger`'s one thread, in division order (the
    registry's versions are numbered as before), while this thread reads, evaluates and fits the next
    division: the logging is Python under the GIL, the fits and queries mostly not (the logging was
    ~30 % of the demo step's main-process samples). Its versions are filled in before returning."""
    models, evals, importances, pending = [], [], [], []
    role = plan.role(cutoff)
    labelled = plan.labelled(cutoff)
    for d in divs:  # one division's rows at a time (~200,000 accounts at scale 100)
        scored = wh.query("SELECT * FROM features.customer_division WHERE division = ? AND cutoff_date = ? "
                          f"{ROW_ORDER}", [d, cutoff])
        model = next(fits)
        if isinstance(model, NotEnoughData):
            context.log.warning(f"ICP model {d} @ {cutoff} not trained: {model}")
            models.append(_too_little(d, cutoff, str(model)))
            continue
        model.champion, why = choose_champion(_validation_auc(wh, plan, cutoff, d))
        model.info |= why | {"champion": model.champion}
        ev = None
        if labelled:
            folds = account_fold(scored["account_id"].to_list())
            # every account of the cutoff predicted at once, then split by fold: the `rank__`
            # features are percentiles among the cutoff's rows, so a fold predicted on its own
            # ranked its accounts among ~20 % of them and was judged on scores icp_scores never serves
            preds = model.predict_all(scored)
            parts = {}
            for split, fold in (("validation", VALIDATION), ("holdout", HOLDOUT)):
                mask = folds == fold
                part = scored.filter(pl.Series(mask))
                if part["label"].drop_nulls().n_unique() == 2:
                    parts[split] = evaluate(part, {name: p[mask] for name, p in preds.items()}, cutoff, d,
                                            versions={MODEL_NAME: "pending", BLEND: "pending", **{b: b for b in BASELINES}},
                                            split=split, truth=truth, versus=BLEND if split == "validation" else None)
            if parts:
                ev = {"metrics": pl.concat([p["metrics"] for p in parts.values()]),
                      "gains": parts["holdout"]["gains"] if "holdout" in parts else None,
                      "bins": parts["holdout"]["bins"] if "holdout" in parts else None}
        logged = logger.submit(log_and_register, tracking, model, cutoff, role, plan.window_months,
                               ev["metrics"] if ev else None, ev["gains"] if ev else None)
        pending.append((logged, len(models), ev, len(importances)))
        if ev:
            evals.append(ev)
        models.append({"cutoff_date": cutoff, "division": d, "status": "trained", "message": None,
                       "model_version": None, "model_uri": None,
                       "role": role, "train_cutoffs": json.dumps([str(t) for t in model.train_cutoffs]),
                       "features": len(model.features), **{k: model.info[k] for k in (
                           "fit_rows", "validation_rows", "fit_positives", "validation_positives", "calibration",
                           "best_iteration")},
                       "champion": model.champion, "champion_reason": model.info["champion_reason"],
                       "champion_validation_cutoffs": model.info["validation_cutoffs"],
                       **{f"validation_auc_{c}": model.info.get(f"validation_auc_{c}") for c in CANDIDATES}})
        importances.append(model.importance().head(25).with_row_index("rank", offset=1).with_columns(
            cutoff_date=pl.lit(cutoff, pl.Date), division=pl.lit(d)))
    for logged, m, ev, i in pending:
        name, version = logged.result()  # re-raises the logging's exception
        model_version = f"{name}/{version}"
        models[m] |= {"model_version": model_version, "model_uri": f"models:/{name}/{version}"}
        importances[i] = importances[i].with_columns(model_version=pl.lit(model_version))
        if ev:
            ev["metrics"] = ev["metrics"].with_columns(model_version=pl.when(pl.col("model_version") == "pending")
                                                       .then(pl.lit(model_version)).otherwise(pl.col("model_version")))
    return models, evals, importances


MODEL_DEPS = [dg.AssetDep(customer_division, partition_mapping=MODEL_READS_FEATURES), *icp_cutoffs.keys]
VALIDATION_TABLES = ("validation.model_metrics", "validation.holdout_gains", "validation.calibration_bins")


@dg.multi_asset(specs=[
    dg.AssetSpec(["models", "division_propensity"], deps=MODEL_DEPS, kinds={"lightgbm", "mlflow"}, **SPEC,
                 metadata={"tables": "validation.icp_models, validation.icp_feature_importance"},
                 description="Calibrated LightGBM per division for a cutoff, trained only on cutoffs whose windows "
                             "ended by it; MLflow run + registered model per division (`champion` = the scoring "
                             "cutoff's model), listed in validation.icp_models with its feature importance."),
    dg.AssetSpec(["validation", "division_propensity"], deps=MODEL_DEPS, kinds={"duckdb"}, **SPEC,
                 metadata={"tables": ", ".join(VALIDATION_TABLES), "model_family": FAMILY},
                 description="Holdout validation of the division models where the cutoff's window has passed: "
                             "metrics, gains and calibration beside baseline_rfm and baseline_logistic on the "
                             "same rows (and oracle_auc on the demo company); rows with model_family = 'icp'.")],
    partitions_def=model_partitions, backfill_policy=dg.BackfillPolicy.single_run(), pool="warehouse")
@warehouse_step
def division_propensity(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        mlflow_tracking: MLflowResource, source: SourceResource, compute: ComputeResource):
    wh = warehouse.get()
    with wh.session(writes=False):  # one connection for the step (Warehouse.session)
        plan, _ = load_plan(wh)
        groups = {dt.date.fromisoformat(c): ds for c, ds in by_cutoff(context.partition_keys).items()}
        truth = oracle.division_truth(source.truth_folder(), [c for c in groups if plan.labelled(c)], plan.window_months)
        meta: dict = {}
        # Every cutoff x division fit is independent of the others (only the champion, chosen after the
        # fit, reads earlier cutoffs' validation rows), so they all fan out at once (parallel.map_tasks:
        # this machine's cores or the Dask cluster) while this process evaluates, registers and writes
        # them in order. Each fit is seeded by its config, not by the worker: same models either way.
        warm_up(fit_division)  # the pool process starts and imports the model code meanwhile
        # each fit's rows are read when its task is taken, not all before the first fit: the pool
        # process starts on its first task while this one reads the next (and holds fewer frames)
        tasks = LazyTasks([(c, d) for c, divs in groups.items() for d in divs],
                          lambda key: _training_task(wh, plan, *key))
        fits = map_tasks(fit_division, tasks)
        with ThreadPoolExecutor(1, thread_name_prefix="revintel-mlflow") as logger:  # _train_cutoff
            for cutoff, divs in groups.items():
                models, evals, importances = _train_cutoff(context, wh, mlflow_tracking, plan, cutoff, divs, truth, fits,
                                                           logger)
                owned = [PartitionFilter("model_family", values=[FAMILY]), PartitionFilter("cutoff_date", values=[cutoff]),
                         PartitionFilter("division", values=divs)]
                for table, key in zip(VALIDATION_TABLES, ("metrics", "gains", "bins")):
                    parts = [e[key] for e in evals if e[key] is not None]
                    if parts:
                        frame = pl.concat(parts)
                        wh.write(table, defined(frame) if key == "metrics" else frame, partition=owned,
                                 run_id=context.run_id, comment=docs.VALIDATION[table])
                    elif wh.table_exists(table):  # the partition is replaced by nothing: no stale metrics
                        wh.write(table, sql=f"SELECT * FROM {table} WHERE false", partition=owned, run_id=context.run_id)
                mine = [PartitionFilter("cutoff_date", values=[cutoff]), PartitionFilter("division", values=divs)]
                wh.write("validation.icp_models", pl.DataFrame(models, schema=ICP_MODELS_SCHEMA), partition=mine,
                         run_id=context.run_id, comment=docs.MODELS[0], column_comments=docs.MODELS[1])
                if importances:
                    wh.write("validation.icp_feature_importance", pl.concat(importances), partition=mine,
                             run_id=context.run_id, comment=docs.IMPORTANCE[0], column_comments=docs.IMPORTANCE[1])
                meta |= _model_metadata(plan, cutoff, models, evals)
                if cutoff == plan.holdout_cutoff and (missed := level_misses(wh.query(HOLDOUT_LEVEL_SQL, [cutoff]))):
                    context.log.warning(missed)
        rows = {f"{t}_rows": dg.MetadataValue.int(family_rows(wh, t, FAMILY)) for t in VALIDATION_TABLES}
    yield dg.MaterializeResult(asset_key=["models", "division_propensity"], metadata=meta)
    yield dg.MaterializeResult(asset_key=["validation", "division_propensity"], metadata=rows)


# The champion's mean propensity against the observed rate on the holdout window, per division: the
# validation tables said a seasonal division was 54 % too high, the run said nothing (an audit).
HOLDOUT_LEVEL_SQL = """SELECT b.division, sum(b.n * b.mean_predicted) / sum(b.n) AS predicted,
        sum(b.n * b.observed_rate) / sum(b.n) AS observed, sum(b.n) AS n
    FROM validation.calibration_bins b JOIN validation.icp_models m
      ON m.cutoff_date = b.cutoff_date AND m.division = b.division AND m.champion = b.model_name
    WHERE b.model_family = 'icp' AND b.split = 'holdout' AND b.cutoff_date = ? GROUP BY 1 ORDER BY 1"""


def _model_metadata(plan: IcpPlan, cutoff: dt.date, models: list[dict], evals: list[dict]) -> dict:
    trained = sum(m["status"] == "trained" for m in models)
    out = {f"{cutoff} models trained": dg.MetadataValue.int(trained)}
    skipped = {m["division"]: m["message"] for m in models if m["status"] != "trained"}
    if skipped:
        out[f"{cutoff} skipped"] = dg.MetadataValue.json(skipped)
    champions = {m["division"]: m.get("champion") for m in models if m["status"] == "trained"}
    out[f"{cutoff} champions"] = dg.MetadataValue.json(champions)
    if not evals:
        return out
    table = [{"division": e["metrics"]["division"][0],
              **{f"{m}_{k}": metric(e["metrics"], m, k) for m in (MODEL_NAME, *BASELINES, BLEND)
                 for k in ("auc", "lift_top_decile")},
              "oracle_auc": metric(e["metrics"], MODEL_NAME, "oracle_auc"),
              "champion": champions.get(e["metrics"]["division"][0])} for e in evals]
    frame = pl.DataFrame(table)
    prefix = "holdout" if cutoff == plan.holdout_cutoff else f"eval {cutoff}"
    for col in [c for c in frame.columns[1:] if c != "champion"]:
        mean = frame[col].drop_nulls().mean()
        if mean is not None:
            out[f"{prefix} mean {col}"] = dg.MetadataValue.float(float(mean))
    out[f"{prefix} by division"] = dg.MetadataValue.md(frame.to_pandas().round(4).to_markdown(index=False))
    return out


@dg.asset(key=["scores", "icp_scores"], partitions_def=model_partitions, deps=[["models", "division_propensity"]],
          backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "mlflow"},
          metadata={"table": "scores.icp_scores", "partition_expr": {"cutoff": "cutoff_date", "division": "division"}},
          description="Every account × division at the cutoff with its calibrated propensity and decile, "
                      "scored by that cutoff's registered division model.", **COMMON)
@warehouse_step
def icp_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               mlflow_tracking: MLflowResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    with wh.session(writes=False):  # one connection for the step (Warehouse.session)
        written = 0
        for cutoff, divs in by_cutoff(context.partition_keys).items():
            c = dt.date.fromisoformat(cutoff)
            models = wh.query("SELECT division, model_version, model_uri, champion FROM validation.icp_models "
                              "WHERE cutoff_date = ? AND status = 'trained'", [c])
            parts = []
            for d, version, uri, _recorded in models.filter(pl.col("division").is_in(divs)).iter_rows():
                rows = wh.query("SELECT * FROM features.customer_division WHERE cutoff_date = ? AND division = ? "
                                f"{ROW_ORDER}", [c, d])
                model = registered_model(mlflow_tracking, uri)
                p = model.predict(rows)  # the champion chosen on validation
                parts.append(rows.select("cutoff_date", "division", "account_id", "account_name", "is_buyer")
                             .with_columns(propensity=pl.Series(p), decile=pl.Series(deciles(p)),
                                           model_version=pl.lit(version), champion=pl.lit(model.champion)))
            missing = sorted(set(divs) - set(models["division"]))
            if missing:
                context.log.warning(f"ICP scores @ {cutoff}: no trained model for {missing}; not scored")
            if parts:
                written += wh.write("scores.icp_scores", pl.concat(parts),
                                    partition=[PartitionFilter("cutoff_date", values=[c]),
                                               PartitionFilter("division", values=divs)],
                                    run_id=context.run_id, comment=docs.SCORES[0], column_comments=docs.SCORES[1])
        return dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(written)})


@dg.asset(key=["scores", "whitespace"], partitions_def=model_cutoffs, deps=[icp_scores.key],
          backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "sql"},
          # it also judges the ranking on the holdout (validation.model_metrics, division 'all'): declared, so
          # the table's producers are found from the graph (a review found this writer undeclared)
          metadata={"table": "scores.whitespace", "tables": "validation.model_metrics",
                    "partition_expr": "cutoff_date"},
          description="Every account × division it has never bought (and has no open opportunity in), "
                      "scored propensity × expected value (what a first purchase brought in the training windows, "
                      "by the account's spend) and ranked overall and within the account, with the "
                      "account's rep; view scores.whitespace_by_rep = each rep's top 10.", **COMMON)
@warehouse_step
def whitespace(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    with wh.session(writes=False):  # one connection for the step (Warehouse.session)
        plan, _ = load_plan(wh)
        written, cuts = 0, sorted(dt.date.fromisoformat(k) for k in context.partition_keys)
        if not wh.table_exists("scores.icp_scores"):  # docs/CONTRACT.md §4: too little data is a warning, not a crash
            context.log.warning("whitespace: no ICP scores (no division model could be trained); nothing ranked")
            return dg.MaterializeResult(metadata={"status": "skipped: no ICP scores",
                                                  "dagster/row_count": dg.MetadataValue.int(0)})
        values = {}
        divisions = wh.query("SELECT count(*) AS n FROM features.icp_divisions")["n"][0]
        if divisions < 2:  # the warning below (per cutoff) named the value rule, not why nothing is ranked
            context.log.warning("whitespace: the source has one division, which every scored account buys; a "
                                "whitespace needs a second division an account has not bought")
        for c in cuts:
            values[c] = value = _value_model(wh, plan, c)
            if value is None and divisions >= 2:
                context.log.warning(f"whitespace @ {c}: too few first purchases in the training windows to fit what one "
                                    "is worth; expected value by the share-of-wallet rule")
            sql, params = whitespace_sql(c, plan.window_months, value)
            written += wh.write("scores.whitespace", sql=sql, params=params, partition_column="cutoff_date",
                                partition_values=[c], run_id=context.run_id, comment=docs.WHITESPACE[0],
                                column_comments=docs.WHITESPACE[1])
        wh.ensure_view(REP_VIEW, rep_view_sql())
        judged = _judge_whitespace(context, wh, plan, [c for c in cuts if plan.labelled(c)])
        where = f"cutoff_date IN ({', '.join('?' * len(cuts))})"
        total = wh.query(f"SELECT coalesce(sum(expected_value * propensity), 0) AS v FROM scores.whitespace WHERE {where}",
                         cuts)["v"][0]
        return dg.MaterializeResult(metadata={**table_metadata(wh, "scores.whitespace", where, cuts),
                                              "dagster/row_count": dg.MetadataValue.int(written),
                                              "expected_whitespace_value": dg.MetadataValue.float(float(total)),
                                              **{f"value model @ {c}": (f"elasticity {v.elasticity:.3f}, {v.rows} first "
                                                                        "purchases" if v else "share-of-wallet rule")
                                                 for c, v in values.items()},
                                              **judged})


def _value_model(wh, plan: IcpPlan, cutoff: dt.date) -> ValueModel | None:
    """What a first purchase is worth (whitespace.fit_value), from the first purchases of the
    cutoff's training windows: at a labelled cutoff the training accounts' only, as its models."""
    rows = wh.query(first_purchases_sql(), [plan.train_cutoffs(cutoff)])
    if plan.labelled(cutoff) and rows.height:
        rows = rows.filter(pl.Series(account_fold(rows["account_id"].to_list()) == TRAIN))
    return fit_value(rows)


WHITESPACE_DIVISION = "all"  # validation.model_metrics rows of the whitespace ranking: every division at once


def _judge_whitespace(context, wh, plan: IcpPlan, cuts: list[dt.date]) -> dict:
    """Top-k whitespace rows of each labelled cutoff, on the holdout accounts only, against ranking
    the same rows by propensity alone and by the RFM rule: revenue and buyers realised in the
    recommended division in the next window, to validation.model_metrics (model_family 'icp',
    division 'all', segment 'top_<k>')."""
    out = {}
    for c in cuts:
        rows = wh.query(whitespace_holdout_sql(c))
        rows = rows.filter(pl.Series(account_fold(rows["account_id"].to_list()) == HOLDOUT)) if rows.height else rows
        res = whitespace_holdout_metrics(rows)
        # a version for each ranking (part of the table's key; it was NULL): what it ranks
        version = {"whitespace_score": f"scores.whitespace@{c}", "propensity_only": f"scores.icp_scores@{c}"}
        metrics = [{"model_family": FAMILY, "model_name": name, "model_version": version.get(name, name),
                    "cutoff_date": c,
                    "division": WHITESPACE_DIVISION, "split": "holdout", "segment": f"top_{k}", "metric": m,
                    "value": v} for name, k, revenue, buyers in res
                   for m, v in (("whitespace_revenue_top_k", revenue), ("whitespace_buyers_top_k", buyers))]
        owned = [PartitionFilter("model_family", values=[FAMILY]), PartitionFilter("cutoff_date", values=[c]),
                 PartitionFilter("division", values=[WHITESPACE_DIVISION])]
        if metrics:
            wh.write("validation.model_metrics", defined(pl.DataFrame(metrics, schema={
                "model_family": pl.Utf8, "model_name": pl.Utf8, "model_version": pl.Utf8, "cutoff_date": pl.Date,
                "division": pl.Utf8, "split": pl.Utf8, "segment": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64})),
                partition=owned, run_id=context.run_id, comment=docs.VALIDATION["validation.model_metrics"])
        if c == plan.holdout_cutoff:
            out |= {f"holdout {name} revenue top {k}": dg.MetadataValue.float(revenue) for name, k, revenue, _ in res}
    return out


defs = dg.Definitions(assets=[icp_cutoffs, customer_division, division_propensity, icp_scores, whitespace])
