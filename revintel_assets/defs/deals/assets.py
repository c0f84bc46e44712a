"""Deal intelligence assets: as-of snapshots → win-probability model → scores → explanations."""

import datetime as dt

import dagster as dg
import polars as pl

from revintel_assets.defs.deals.baselines import BASELINES, NB_FEATURES
from revintel_assets.defs.deals.evaluate import MODEL_NAME, Evaluation, evaluate
from revintel_assets.defs.deals.partitions import (ROWS_PER_PASS, SNAPSHOT_ROWS_PER_STATEMENT, as_of_dates, date_batches,
                                                    rows_by_date, training_cutoffs)
from revintel_assets.defs.deals.registry import decide_promotion, eligible_by_date, load, log_and_register, reliability_plot
from revintel_assets.defs.deals.scoring import outcome_stats_by_date, score_dates
from revintel_assets.defs.deals.snapshot import (ATTRIBUTE_MIN_SHARE, DEAL_ATTRIBUTES, FEATURES, LOGGED_SHARE_SQL,
                                                  MODEL_FEATURES, OUTCOME, STALE_OUTCOMES_SQL, TRAILING, TRAILING_DAYS,
                                                  dates_sql, fresh_outcomes_sql, model_features, open_deals_sql,
                                                  snapshot_sql)
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.tasks import fit_part, fit_win_model
from revintel_assets.defs.deals.win_model import ROW_KEY, split_by_time
from revintel_assets.metadata import family_rows, range_metadata
from revintel_assets.parallel import map_tasks, warm_up
from revintel_assets.defs.validation.oracle import deal_truth
from revintel_assets.defs.validation.metrics import defined
from revintel_resources.compute import ComputeResource
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.settings import settings
from revintel_resources.source import SourceResource
from revintel_resources.tracking import MLflowResource
from revintel_resources.warehouse import PartitionFilter

MIN_TRAIN_DEALS = 200  # below this a booster learns noise; the run says so and goes on
MIN_VALIDATION_ROWS = 100
MIN_PER_OUTCOME = 20  # won and lost deals to fit on, and validation rows of each outcome: an export with no
# lost deals crashed the run (ZeroDivisionError); one with no wins in its validation slice was calibrated
# on it and reported Brier 0.0000


def too_little_to_train(split) -> str | None:
    """Why a cutoff's split is too small to fit and calibrate a model on (only what falls short), or None."""
    n_val = len(split.validation)
    closed = split.train["opportunity_id"].n_unique() if len(split.train) else 0
    short = [f"{closed} closed deals before the validation slice (need at least {MIN_TRAIN_DEALS})"
             ] if closed < MIN_TRAIN_DEALS else []
    short += [f"{n_val} validation rows (need {MIN_VALIDATION_ROWS})"] if n_val < MIN_VALIDATION_ROWS else []
    if not short:
        won = split.train.filter(pl.col("is_won"))["opportunity_id"].n_unique()
        v_won = int(split.validation["is_won"].sum())
        outcomes = {"won deals to fit on": won, "lost deals to fit on": closed - won,
                    "won validation rows": v_won, "lost validation rows": n_val - v_won}
        short = [f"{v} {k} (need {MIN_PER_OUTCOME})" for k, v in outcomes.items() if v < MIN_PER_OUTCOME]
    return " and ".join(short) or None

STAR = [dg.AssetKey(["star", t]) for t in
        ("fact_opportunity", "fact_opportunity_history", "dim_account", "dim_product")]
COMMON = dict(group_name="deals", owners=["team:revenue-data-science"], pool="warehouse")

SNAPSHOT_DOC = (
    "Every deal open on as_of_date with the features known on that date (history events up to "
    "it, other deals' outcomes up to it, static facts). outcome_date/is_won are the label, filled "
    "for deals that closed later; they are never features.", {
        "as_of_date": "Partition column: the date the features are as of",
        "days_in_stage": "Days since the deal entered its current stage (as of as_of_date)",
        "stage_time_ratio": "days_in_stage / the usual days in that stage, from spells ended by as_of_date",
        "n_pushes": "Times the expected close date moved later, up to as_of_date",
        "days_to_expected_close": "Expected close date known on as_of_date minus as_of_date (negative: overdue)",
        "rep_win_rate": "Rep's win rate on deals closed by as_of_date, shrunk toward the global rate",
        "account_win_rate": "Account's win rate on deals closed by as_of_date, shrunk toward the global rate",
        **{col: f"{who}'s win rate on deals closed in the {TRAILING_DAYS} days up to as_of_date (shrunk toward the "
               f"company's rate over those days) minus the company's rate; 0 when the {who.lower()} closed none "
               "then, NULL when the company closed none" for col, who in zip(TRAILING, ("Rep", "Product"))},
        "deal_type": "The CRM's deal type (New Business, Renewal, ...) as exported; NULL when the export has none",
        "lead_source": "The CRM's lead source as exported; NULL when the export has none",
        "is_won": "Label: the deal's eventual outcome (NULL while open); not a feature",
        "outcome_date": "Label: when the deal closed; not a feature",
    })


@dg.asset(
    key=["features", "deal_snapshot"], deps=STAR, partitions_def=as_of_dates,
    backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "sql"},
    metadata={"table": "features.deal_snapshot", "partition_expr": "as_of_date"},
    description="Leakage-free as-of deal features, one partition per as-of date. A range of dates "
                "materializes in one run (single-run backfill), a few vectorised statements of up to "
                "SNAPSHOT_ROWS_PER_STATEMENT rows each. Rows of earlier dates whose deal closed since they "
                "were written get its outcome (the labels only).", **COMMON)
@warehouse_step
def deal_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    keys = sorted(context.partition_keys)
    n_open = dict(wh.query(open_deals_sql(dates_sql(keys))).iter_rows())
    # each batch of dates one statement and one transaction (its partitions), written as it is done
    for batch in date_batches(sorted(dt.date.fromisoformat(k) for k in keys), n_open, SNAPSHOT_ROWS_PER_STATEMENT):
        sql = snapshot_sql(dates_sql(batch), fy_start_month=settings().fiscal_year_start_month)
        wh.write("features.deal_snapshot", sql=sql, partition_column="as_of_date",
                 partition_values=[d.isoformat() for d in batch], run_id=context.run_id, comment=SNAPSHOT_DOC[0],
                 column_comments=SNAPSHOT_DOC[1])
    refreshed = _refresh_outcomes(wh, set(keys), context.run_id)
    if refreshed:
        context.log.info(f"outcomes known since were given to {refreshed[1]:,} rows of {refreshed[0]} earlier as-of "
                         "date(s) (deals closed after those dates were written)")
    where = f"as_of_date IN ({', '.join('?' * len(keys))})"
    meta = range_metadata(wh, "features.deal_snapshot", where, keys)
    labelled = wh.query(f"SELECT count(is_won) AS n FROM features.deal_snapshot WHERE {where}", keys)["n"][0]
    return dg.MaterializeResult(metadata={**meta, "as_of_dates": dg.MetadataValue.int(len(keys)),
                                          "labelled_rows": dg.MetadataValue.int(int(labelled)),
                                          "features": dg.MetadataValue.json(FEATURES),
                                          "label_columns": dg.MetadataValue.json(OUTCOME)})


class WinModelConfig(dg.Config):
    # Above this many labelled (deal, as-of) rows, training reads a deterministic sample of whole
    # deals (all their snapshots, so the 1/sqrt(n) weights stay right). Scale 10 (~2.5 M rows) is
    # read whole; at scale 100 (~25 M rows, 16+ GiB in memory) the sample keeps ~3 M rows. Every
    # metric is still out of time, on the sampled deals' later rows.
    max_training_rows: int = 3_000_000


# what training, the baselines and the evaluation read: not the 37-column table
TRAINING_COLUMNS = list(dict.fromkeys(["opportunity_id", "as_of_date", "created_date", *FEATURES, *NB_FEATURES, *OUTCOME]))


def training_rows(wh, horizon: dt.date, max_rows: int, known_by: dt.date | None = None) -> tuple[pl.DataFrame, float]:
    """Snapshot rows before `horizon` (only TRAINING_COLUMNS); above `max_rows`, the rows of a
    hash-chosen share of deals. Returns the rows and the share of deals kept. The rows of deals
    still open at the export date (no label) are kept: at a cutoff they are censored deals like
    the ones that closed later (win_model.CENSORING), and leaving them out would both drop them
    from q's risk set and choose the imputed deals by whether they closed after the cutoff.

    known_by: the run's as-of date. An outcome after it is not known (the deal was open then):
    `--as-of` on an export that goes on past it judged and promoted the model that scores the
    as-of date on the later closes of the deals open on it. On a run as of the export date
    nothing is after it."""
    where = "as_of_date < ?"
    total = wh.query(f"SELECT count(*) AS n FROM features.deal_snapshot WHERE {where}", [horizon])["n"][0]
    share = min(1.0, max_rows / total) if total else 1.0
    sample = "" if share >= 1.0 else f" AND hash(opportunity_id) % 1000000 < {int(share * 1_000_000)}"
    known = "" if known_by is None else f"outcome_date <= DATE '{known_by.isoformat()}'"
    cols = ", ".join(f"CASE WHEN {known} THEN {c} END AS {c}" if known and c in OUTCOME else c for c in TRAINING_COLUMNS)
    # in win_model.ROW_KEY order, the order split_by_time wants: sorted by DuckDB, so that split_by_time
    # copies nothing more (a polars sort of the frame here or there raised win_model_job's peak memory)
    order = ", ".join(ROW_KEY)
    return wh.query(f"SELECT {cols} FROM features.deal_snapshot WHERE {where}{sample} ORDER BY {order}", [horizon]), share


def _too_little(cutoff: dt.date, reason: str) -> dict:
    # docs/CONTRACT.md §4: too little data is a warning and an explanation, not a crash
    return {"cutoff": str(cutoff), "model_version": "-", "promoted": False,
            "decision": f"not trained: {reason}", "status": f"skipped: {reason}"}


LEARNS_FROM = [dg.AssetDep(deal_snapshot, partition_mapping=dg.AllPartitionMapping())]  # every as-of date
VALIDATION_TABLES = ("validation.model_metrics", "validation.calibration_bins")
SPEC = dict(group_name=COMMON["group_name"], owners=COMMON["owners"])


def _refresh_outcomes(wh, written: set[str], run_id: str | None) -> tuple[int, int] | None:
    """The stored partitions of other dates whose rows kept an outcome the star has since changed
    (snapshot.STALE_OUTCOMES_SQL) are rewritten with the star's outcomes, a batch of dates per write
    (logged: the publish replays them). Returns (dates, rows changed), None when none was stale."""
    stale = {d: n for d, n in wh.query(STALE_OUTCOMES_SQL).iter_rows() if d.isoformat() not in written}
    if not stale:
        return None
    sizes = dict(wh.query("SELECT as_of_date, count(*) AS n FROM features.deal_snapshot GROUP BY 1").iter_rows())
    with wh.session(writes=False) as con, wh.scratch() as db:
        for batch in date_batches(sorted(stale), sizes, SNAPSHOT_ROWS_PER_STATEMENT):
            con.execute(f"CREATE OR REPLACE TABLE {db}.fresh AS {fresh_outcomes_sql(dates_sql(batch))}")
            wh.write("features.deal_snapshot", sql=f"SELECT * FROM {db}.fresh", partition_column="as_of_date",
                     partition_values=[d.isoformat() for d in batch], run_id=run_id, comment=SNAPSHOT_DOC[0],
                     column_comments=SNAPSHOT_DOC[1])
    return len(stale), sum(stale.values())


@dg.multi_asset(specs=[
    dg.AssetSpec(["models", "win_probability"], deps=LEARNS_FROM, kinds={"lightgbm", "mlflow"}, **SPEC,
                 metadata={"partition_expr": "cutoff_date"},
                 description="Calibrated LightGBM win probability for one training cutoff, logged and registered "
                             "in MLflow; promoted to `champion` only through the gate."),
    dg.AssetSpec(["validation", "win_probability"], deps=LEARNS_FROM, kinds={"duckdb"}, **SPEC,
                 metadata={"partition_expr": "cutoff_date", "tables": ", ".join(VALIDATION_TABLES),
                           "model_family": "deals"},
                 description="The win model judged against the base-rate, stage and naive-Bayes baselines on the "
                             "same validation and holdout rows (rows with model_family = 'deals').")],
    partitions_def=training_cutoffs, backfill_policy=dg.BackfillPolicy.single_run(), pool="warehouse")
@warehouse_step
def win_probability(context: dg.AssetExecutionContext, config: WinModelConfig, warehouse: WarehouseResource,
                    mlflow_tracking: MLflowResource, source: SourceResource, compute: ComputeResource):
    wh = warehouse.get()
    cutoffs = sorted(dt.date.fromisoformat(k) for k in context.partition_keys)
    if len(cutoffs) > 1:
        warm_up(fit_win_model)  # the pool process starts and imports the model code while rows are read
    bounds = wh.query("SELECT min(created_date) AS first, max(as_of_date) AS last FROM features.deal_snapshot")
    # the run's as-of date: nothing after it is read (an earlier --as-of leaves a previous run's later
    # snapshot dates in place, and the export's later closes are outcomes not known then)
    as_of = source.as_of_date(wh) or bounds["last"][0]
    # an empty snapshot (no deal open on any as-of date: a one-deal export closed on its export date)
    # has no time span to split: every cutoff is too little, as a thin one is (CONTRACT §4)
    empty = bounds["first"][0] is None
    windows = None if empty else DealPlan(bounds["first"][0], as_of).windows
    logged = float(wh.query(LOGGED_SHARE_SQL)["share"][0] or 0.0)
    numeric, categorical = model_features(logged)
    absent = [c for c in DEAL_ATTRIBUTES if c not in _attributes(wh)]
    categorical = [c for c in categorical if c not in absent]
    if len(numeric) + len(categorical) + len(absent) < len(MODEL_FEATURES):
        context.log.warning(f"{logged:.0%} of the closed deals have a logged stage history (the source has no change "
                            "log for the rest): the win model leaves out the features read from a deal's own history "
                            f"(stage, amount, expected close and their changes) and learns from {numeric + categorical}")
    ready, outcome = [], {}  # (cutoff, split, row counts, deal share) to fit; per cutoff what became of it
    for cutoff in cutoffs:
        if empty:
            reason = "no deal was open on any as-of date (features.deal_snapshot is empty)"
        else:
            horizon = min(cutoff + dt.timedelta(days=windows.holdout_days), as_of + dt.timedelta(days=1))
            snap, share = training_rows(wh, horizon, config.max_training_rows, known_by=as_of)
            split = split_by_time(snap, cutoff, windows)
            del snap  # the split holds what training needs; at scale the whole frame is gigabytes
            n = {"train": len(split.train), "validation": len(split.validation), "holdout": len(split.holdout)}
            reason = too_little_to_train(split)
        if reason:
            context.log.warning(f"win_probability not trained for cutoff {cutoff}: {reason}")
            outcome[cutoff] = _too_little(cutoff, reason)
            continue
        ready.append((cutoff, split, n, share))
    truth = deal_truth(source.truth_folder())
    # The cutoffs' fits are independent (LightGBM on one thread each), so they run at once
    # (parallel.map_tasks: this machine's cores or the Dask cluster); only what follows a fit, the
    # registration and the champion gate, must go in cutoff order: the gate of a later cutoff
    # meets the champion an earlier one may have just become. Same models whichever process fits.
    fits = map_tasks(fit_win_model, [(fit_part(split), numeric, categorical) for _, split, _, _ in ready])
    while ready:
        # each split is dropped once judged (its training rows stay with the fit tasks until the
        # last fit is back): the step holds every cutoff's rows at once, 5.9 GiB at scale 10
        cutoff, split, n, share = ready.pop(0)
        outcome[cutoff] = _judge(context, wh, mlflow_tracking, next(fits), split, cutoff, windows, n, share, truth)
        del split
    records = [outcome[c] for c in cutoffs]
    trained = [r for r in records if "status" not in r]
    yield dg.MaterializeResult(asset_key=["validation", "win_probability"], metadata={
        f"{t}_rows": dg.MetadataValue.int(family_rows(wh, t, "deals")) for t in VALIDATION_TABLES})
    # Dagster gives every partition of a run the same metadata, so a run of one cutoff (the monthly
    # retrain, a launch of one partition) shows that model's figures; a run of several, a table
    # with one row per cutoff.
    single = records[0] if len(records) == 1 else {}
    yield dg.MaterializeResult(asset_key=["models", "win_probability"], metadata={
        **{k: v for k, v in single.items() if k != "cutoff"},
        "models": dg.MetadataValue.md(_models_table(records)),
        "trained": dg.MetadataValue.int(len(trained)),
        "logged_history_share": dg.MetadataValue.float(logged),
        "features": dg.MetadataValue.json(numeric + categorical),
    })


def _attributes(wh) -> list[str]:
    """The deal attributes (snapshot.DEAL_ATTRIBUTES) the source gives for at least
    ATTRIBUTE_MIN_SHARE of its closed deals; the model leaves out the others (a star schema built
    before they existed has none). Encoder.fit applies the same share to the training rows."""
    cols = set(wh.query("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'star' "
                        "AND table_name = 'fact_opportunity'")["column_name"].to_list())
    have = [c for c in DEAL_ATTRIBUTES if c in cols]
    if not have:
        return []
    n = wh.query("SELECT count(*) AS n, " + ", ".join(f"count({c}) AS {c}" for c in have)
                 + " FROM star.fact_opportunity WHERE is_closed")
    return [c for c in have if n[c][0] and n[c][0] >= ATTRIBUTE_MIN_SHARE * n["n"][0]]


def _judge(context, wh, tracking: MLflowResource, model, split, cutoff: dt.date, windows, n: dict, share: float,
           truth) -> dict:
    """Evaluate, log, register and gate one cutoff's fitted model, and write its validation rows;
    returns its metadata."""
    ev = evaluate(model, split, cutoff, version="pending", truth=truth)
    version = log_and_register(tracking, model, ev, cutoff, windows, n, reliability_plot(ev, cutoff))
    ev.metrics = ev.metrics.with_columns(
        pl.when(pl.col("model_version") == "pending").then(pl.lit(f"{MODEL_NAME}/{version}"))
        .otherwise(pl.col("model_version")).alias("model_version"))
    promoted, why = decide_promotion(tracking, model, ev, split, version, cutoff)
    context.log.info(f"model {MODEL_NAME}/{version} (cutoff {cutoff}): {why}")
    _write_validation(wh, ev, cutoff, context.run_id)
    numeric = {f"{s}_{m}": ev.value(MODEL_NAME, s, m) for s in ("validation", "holdout")
               for m in ("auc", "brier", "ece", "n")}
    numeric |= {f"holdout_{b}_brier": ev.value(b, "holdout", "brier") for b in BASELINES}
    numeric |= {f"holdout_{m}": ev.value(MODEL_NAME, "holdout", m) for m in ("oracle_auc", "oracle_brier")}
    return {
        "cutoff": str(cutoff),
        **{k: dg.MetadataValue.float(float(v)) for k, v in numeric.items() if v is not None and v == v},
        "model_version": f"{MODEL_NAME}/{version}", "promoted": promoted, "decision": why,
        "best_baseline": ev.best_baseline, "beats_baseline": ev.model_beats_baseline,
        "calibration": model.calibrator.method, "best_iteration": model.best_iteration,
        "deal_share_sampled": dg.MetadataValue.float(share),
        **{f"rows_{k}": dg.MetadataValue.int(v) for k, v in n.items()},
    }


def _models_table(records: list[dict]) -> str:
    """One markdown row per cutoff of the run: version, holdout AUC, promoted, the gate's words."""
    rows = ["| cutoff | model | holdout AUC | promoted | decision |", "| --- | --- | --- | --- | --- |"]
    for r in records:
        auc = r.get("holdout_auc")
        rows.append(f"| {r['cutoff']} | {r['model_version']} | {f'{auc.value:.3f}' if auc else '-'} | "
                    f"{'yes' if r['promoted'] else 'no'} | {r['decision']} |")
    return "\n".join(rows)


def _write_validation(wh, ev: Evaluation, cutoff: dt.date, run_id: str) -> None:
    owned = [PartitionFilter("model_family", values=["deals"]), PartitionFilter("cutoff_date", values=[cutoff])]
    wh.write("validation.model_metrics", defined(ev.metrics), partition=owned, run_id=run_id)
    wh.write("validation.calibration_bins", ev.bins, partition=owned, run_id=run_id)


# a date is scored by whichever promoted model was trained by then, so scores depend on all of them
SCORES = dg.AssetKey(["scores", "deal_scores"])  # read by the forecast, the plan, the pipeline and the checks
ALL_MODELS = dg.AssetDep(dg.AssetKey(["models", "win_probability"]), partition_mapping=dg.AllPartitionMapping())
SCORES_DOC = ("Every deal open on as_of_date, scored by the model that was champion then "
              "(model_version), with a 0-100 risk score, its drivers and a recommended action.", {
    "value": "What the deal is worth where pipeline is summed: its amount, else its product's list price",
    "value_is_estimate": "True when value is the list price (the source gave the deal no amount)",
    "win_probability": "Calibrated probability the deal is won (isotonic or sigmoid on a later time slice)",
    "risk_score": "(1 - p) * 50 + stagnation vs usual time in stage (up to 30) + value percentile (up to 20)",
    "risk_category": "Low < 30 <= Medium < 50 <= High < 70 <= Critical",
    "expected_close_date": "CRM's expected close date known then; else as_of + median time to win from that stage",
    "expected_close_estimated": "True when the CRM gave no expected close date known then and expected_close_date "
                                "is that estimate (as_of + the stage's median time to win)",
    "model_version": "win_probability/<MLflow version>, or baseline_stage@<date> when no model beat the baseline",
})
EXPLAIN_DOC = ("Top features behind each open deal's score. contribution is TreeSHAP in the booster's raw "
               "log-odds; the probability shown is calibrated afterwards (a monotone map), so directions "
               "carry over but sizes are not probability points.", {
    "contribution": "TreeSHAP value in raw log-odds (not probability points)",
    "direction": "raises / lowers the win probability; none for a contribution of 0 (below 1e-9)",
})


@dg.multi_asset(
    specs=[dg.AssetSpec(SCORES, deps=[deal_snapshot.key, ALL_MODELS],
                        kinds={"duckdb"}, metadata={"partition_expr": "as_of_date"}, description=SCORES_DOC[0],
                        group_name="deals", owners=["team:revenue-data-science"]),
           dg.AssetSpec(["scores", "deal_explanations"], deps=[deal_snapshot.key, ALL_MODELS],
                        kinds={"duckdb", "shap"}, metadata={"partition_expr": "as_of_date"},
                        description=EXPLAIN_DOC[0], group_name="deals", owners=["team:revenue-data-science"])],
    partitions_def=as_of_dates, backfill_policy=dg.BackfillPolicy.single_run(), pool="warehouse")
@warehouse_step
def deal_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                mlflow_tracking: MLflowResource, compute: ComputeResource):
    wh = warehouse.get()
    keys = sorted(context.partition_keys)
    dates = [dt.date.fromisoformat(k) for k in keys]
    chosen = eligible_by_date(mlflow_tracking, dates)  # each date's champion: one registry read
    n_rows = rows_by_date(wh.query, dates)
    latest, by_model = None, {}
    # outcomes known on each date, reduced in DuckDB to per-stage counts (one statement for the range;
    # a range join of every date with the labelled history instead would hold dates x rows at scale)
    stats = outcome_stats_by_date(wh.query, dates)
    for version in sorted(set(chosen.values()), key=str):  # a handful: one pass per model, all its dates
        group = [d for d in dates if chosen[d] == version]
        model = load(mlflow_tracking, version) if version and any(n_rows.get(d) for d in group) else None
        name = f"{MODEL_NAME}/{version}" if version else None
        # a batch of dates at a time, each written as it is done (the partitions it owns): memory
        # follows ROWS_PER_PASS, not the range (scale 100: 28.7 M snapshot rows over 154 dates)
        for batch in date_batches(group, n_rows, ROWS_PER_PASS):
            rows = wh.query(f"SELECT * FROM features.deal_snapshot WHERE as_of_date IN ({', '.join('?' * len(batch))})",
                            batch)
            s, e = score_dates(rows, stats, model, name)
            owned = dict(partition_column="as_of_date", partition_values=[d.isoformat() for d in batch],
                         run_id=context.run_id)
            wh.write("scores.deal_scores", s, comment=SCORES_DOC[0], column_comments=SCORES_DOC[1], **owned)
            wh.write("scores.deal_explanations", e, comment=EXPLAIN_DOC[0], column_comments=EXPLAIN_DOC[1], **owned)
            if dates[-1] in batch:  # the figures a reader compares run to run
                latest = s.filter(pl.col("as_of_date") == dates[-1])
            family = (name or "baseline_stage").split("@")[0]
            scored = [d for d in batch if n_rows.get(d)]
            counts = by_model.setdefault(family, [0, 0])  # dates, rows
            counts[0], counts[1] = counts[0] + len(scored), counts[1] + len(s)
            del rows, s, e
        by = name or "the stage baseline of each date"
        context.log.info(f"{len(group)} as-of date(s) {group[0]}..{group[-1]}: "
                         f"{sum(n_rows.get(d, 0) for d in group)} deals scored by {by}")
    where = f"as_of_date IN ({', '.join('?' * len(keys))})"
    mix = latest["risk_category"].value_counts().rows()
    yield dg.MaterializeResult(asset_key=["scores", "deal_scores"], metadata={
        **range_metadata(wh, "scores.deal_scores", where, keys),
        "as_of_dates": dg.MetadataValue.int(len(keys)),
        "model_versions": "; ".join(f"{m}: {d} date(s), {n} rows" for m, (d, n) in sorted(by_model.items())),
        "latest_as_of_date": str(dates[-1]),
        "mean_win_probability": dg.MetadataValue.float(float(latest["win_probability"].mean() or 0)),
        "pipeline_value": dg.MetadataValue.float(float(latest["value"].sum() or 0)),
        **{f"deals_{cat.lower()}": dg.MetadataValue.int(n) for cat, n in mix}})
    yield dg.MaterializeResult(asset_key=["scores", "deal_explanations"],
                               metadata=range_metadata(wh, "scores.deal_explanations", where, keys))


defs = dg.Definitions(assets=[deal_snapshot, win_probability, deal_scores])
