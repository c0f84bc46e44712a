"""Quality gates on the deal assets. Blocking checks stop bad scores from flowing downstream."""

import datetime as dt
import random

import dagster as dg
import numpy as np

from revintel_assets.defs.deals.assets import SCORES, deal_snapshot
from revintel_assets.defs.deals.snapshot import FEATURES, snapshot_sql, star_as_of_sql
from revintel_resources.resources import WarehouseResource, warehouse_step
from revintel_resources.settings import settings
from revintel_resources.warehouse import key_violations, rows_moved
from revintel_resources.tracking import MLflowResource



def run_dates(context: dg.AssetCheckExecutionContext) -> tuple[str, list, str]:
    """(condition on as_of_date, its parameters, what it covers): the dates the check's run wrote
    (its partition or partition range), or every date when the check runs by itself (the UI's
    "execute check", a direct call). A run's writes replace its own dates only, so the nightly
    need not re-read 154 dates (5-6 s per check at scale 100) to check the one it wrote."""
    try:
        tags = context.run.tags
    except dg.DagsterError:  # invoked directly: no run (DagsterInvalidPropertyError)
        tags = {}
    one, lo, hi = (tags.get(f"dagster/{k}") for k in
                   ("partition", "asset_partition_range_start", "asset_partition_range_end"))
    try:
        if one:
            return "as_of_date = ?", [dt.date.fromisoformat(one)], one
        if lo and hi:
            return "as_of_date BETWEEN ? AND ?", [dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)], f"{lo}..{hi}"
    except ValueError:  # not an as-of date (another partition set): check them all rather than none
        pass
    return "TRUE", [], "every date"


@dg.asset_check(asset=deal_snapshot, blocking=True, description="(as_of_date, opportunity_id) is unique and not "
                "null on the dates the run wrote (every date when the check runs by itself)")
@warehouse_step
def snapshot_keys_unique(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params, dates = run_dates(context)
    with warehouse.get().connect(writes=False) as con:
        v = key_violations(con, "features.deal_snapshot", ["as_of_date", "opportunity_id"], where, params)
    return dg.AssetCheckResult(passed=v["duplicates"] == v["null_keys"] == v["missing_table"] == 0,
                               metadata={"duplicates": v["duplicates"], "null_keys": v["null_keys"], "dates": dates})


@dg.asset_check(asset=deal_snapshot, description="Time travel on a sampled stored date: rebuilt from the star "
                "tables cut at that date, its features must not move (no leakage)")
@warehouse_step
def snapshot_time_travel(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    dates = [str(d) for d in wh.query("SELECT DISTINCT as_of_date FROM features.deal_snapshot ORDER BY 1")["as_of_date"]]
    if not dates:
        return dg.AssetCheckResult(passed=True, metadata={"checked": "no partitions yet"})
    t = random.Random(len(dates)).choice(dates[:-1] or dates)  # the export date has no future to remove
    cols = ", ".join(["opportunity_id", *FEATURES])
    # the star cut at t lives in an in-memory database attached for the block, never in the work file:
    # nothing a reader sees changes, and nothing is written (copying the history into the file cost
    # 2.5 s of the check's 7 s at scale 100)
    with wh.connect(writes=False) as con:
        con.execute("ATTACH ':memory:' AS time_travel")
        try:
            for stmt in star_as_of_sql(t, "time_travel.cut"):
                con.execute(stmt)
            # rebuilt once (the full snapshot query is the expensive part), then compared both ways
            rebuilt = snapshot_sql(f"SELECT DATE '{t}' AS as_of_date", star="time_travel.cut",
                                   fy_start_month=settings().fiscal_year_start_month)
            con.execute(f"CREATE TABLE time_travel.cut.rebuilt AS SELECT {cols} FROM ({rebuilt})")
            diff = rows_moved(con, f"SELECT {cols} FROM features.deal_snapshot WHERE as_of_date = DATE '{t}'",
                              f"SELECT {cols} FROM time_travel.cut.rebuilt")
        finally:
            con.execute("DETACH time_travel")
    return dg.AssetCheckResult(passed=diff == 0, metadata={"as_of_date": t, "rows_that_moved": diff})


@dg.asset_check(asset=SCORES, blocking=True, additional_deps=[deal_snapshot.key],
                description="On every as-of date the run scored (every scored date when the check runs by itself), "
                            "every deal open then is scored once, with p in [0, 1] and risk in [0, 100]")
@warehouse_step
def every_open_deal_scored(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    where, params, dates = run_dates(context)
    row = wh.query(f"""WITH d AS (
            SELECT as_of_date, count(*) AS scored, count(DISTINCT opportunity_id) AS distinct_scored,
                   count(*) FILTER (WHERE win_probability NOT BETWEEN 0 AND 1 OR win_probability IS NULL) AS bad_p,
                   count(*) FILTER (WHERE risk_score NOT BETWEEN 0 AND 100 OR risk_score IS NULL) AS bad_risk
            FROM scores.deal_scores WHERE {where} GROUP BY 1),
        s AS (SELECT as_of_date, count(*) AS open_deals FROM features.deal_snapshot
              WHERE as_of_date IN (SELECT as_of_date FROM d) GROUP BY 1)
        SELECT count(*) AS dates, max(as_of_date)::VARCHAR AS latest,
               count(*) FILTER (WHERE coalesce(open_deals, 0) <> scored OR scored <> distinct_scored) AS dates_off,
               min(as_of_date) FILTER (WHERE coalesce(open_deals, 0) <> scored
                                       OR scored <> distinct_scored)::VARCHAR AS first_date_off,
               coalesce(sum(open_deals), 0)::BIGINT AS open_deals, coalesce(sum(scored), 0)::BIGINT AS scored,
               coalesce(sum(bad_p), 0)::BIGINT AS bad_p, coalesce(sum(bad_risk), 0)::BIGINT AS bad_risk
        FROM d LEFT JOIN s USING (as_of_date)""", params).row(0, named=True)
    ok = row["dates_off"] == row["bad_p"] == row["bad_risk"] == 0
    return dg.AssetCheckResult(passed=ok, metadata={**{k: v if v is not None else "none" for k, v in row.items()},
                                                    "checked": dates})


@dg.asset_check(asset=SCORES, description="Population stability of win probabilities between the latest scored "
                "date and the latest earlier date scored by the same model (warning above 0.25); a change of "
                "champion is a new model, not drift")
@warehouse_step
def score_drift_psi(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    latest = wh.query("""SELECT as_of_date, any_value(model_version) AS v FROM scores.deal_scores
                         WHERE as_of_date = (SELECT max(as_of_date) FROM scores.deal_scores) GROUP BY 1""")
    if latest.is_empty():
        return dg.AssetCheckResult(passed=True, metadata={"psi": "no scores yet"})
    t, version = latest.row(0)
    # the stage baseline is named per date (baseline_stage@<date>): same model = same name before the '@'
    family = "split_part(model_version, '@', 1) = split_part(?, '@', 1)"
    before = wh.query(f"SELECT max(as_of_date) AS d FROM scores.deal_scores WHERE as_of_date < ? AND {family}",
                      [t, version])["d"][0]
    if before is None:
        return dg.AssetCheckResult(passed=True, metadata={"psi": f"no earlier date scored by {version}"})
    p = {d: wh.query("SELECT win_probability FROM scores.deal_scores WHERE as_of_date = ?", [d])["win_probability"]
         .to_numpy() for d in (before, t)}
    psi = population_stability(p[before], p[t])
    return dg.AssetCheckResult(passed=psi <= 0.25, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"psi": float(psi), "from": str(before), "to": str(t), "model": version})


def population_stability(before: np.ndarray, after: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    a = np.histogram(before, edges)[0] / max(len(before), 1) + 1e-4
    b = np.histogram(after, edges)[0] / max(len(after), 1) + 1e-4
    return float(np.sum((b - a) * np.log(b / a)))


@dg.asset_check(asset=dg.AssetKey(["models", "win_probability"]), description="The champion (if any) was promoted "
                "by the gate, and its evidence holds when recomputed from the metrics recorded in MLflow: the "
                "version that gave the holdout evidence beat the best baseline there by two standard errors of "
                "the per-deal paired Brier gain, and the champion was not worse than the champion before it on "
                "rows neither had seen; otherwise the stage baseline must be the one scoring")
def champion_beats_baseline(mlflow_tracking: MLflowResource) -> dg.AssetCheckResult:
    mv = mlflow_tracking.get_alias("win_probability", "champion")
    if mv is None:
        return dg.AssetCheckResult(passed=True, metadata={"champion": "none: the stage baseline scores deals"})
    problems, facts = recheck_champion_evidence(mlflow_tracking, mv)
    return dg.AssetCheckResult(passed=not problems, metadata={
        "champion": f"v{mv.version}", "cutoff": mv.tags.get("cutoff", ""), "decision": mv.tags.get("decision", ""),
        "problems": "; ".join(problems) or "none", **{k: dg.MetadataValue.float(v) for k, v in facts.items()}})


def recheck_champion_evidence(tracking: MLflowResource, mv) -> tuple[list[str], dict[str, float]]:
    """Recompute the gate's verdict from the recorded metrics (not from the tags' claims)."""
    problems, facts = [], {}
    if mv.tags.get("promoted") != "true":
        problems.append("the champion was not promoted by the gate")
    versions = {str(v.version): v for v in tracking.versions("win_probability")}
    ev_version = mv.tags.get("evidence_version", str(mv.version))
    source = versions.get(ev_version)
    if source is None:
        return problems + [f"evidence version {ev_version!r} is not registered"], facts
    if source.tags.get("cutoff", "") > mv.tags.get("cutoff", ""):
        problems.append(f"evidence v{ev_version} has a later cutoff than the champion")
    m = tracking.run_metrics(source.tags.get("run_id") or source.run_id)
    need = ["holdout.win_probability.brier", "holdout.gate.model_brier_per_deal",
            "holdout.gate.baseline_brier_per_deal", "holdout.gate.gain_se", "holdout.gate.deals"]
    baselines = {k: v for k, v in m.items() if k.startswith("holdout.baseline_") and k.endswith(".brier")}
    if any(k not in m for k in need) or not baselines:
        return problems + [f"v{ev_version} recorded no holdout comparison"], facts
    gain = m["holdout.gate.baseline_brier_per_deal"] - m["holdout.gate.model_brier_per_deal"]
    facts = {"evidence_model_brier": m["holdout.win_probability.brier"], "best_baseline_brier": min(baselines.values()),
             "per_deal_gain": gain, "per_deal_gain_se": m["holdout.gate.gain_se"]}
    if not m["holdout.win_probability.brier"] < min(baselines.values()):
        problems.append(f"v{ev_version}'s holdout Brier {m['holdout.win_probability.brier']:.4f} is not below the "
                        f"best baseline's {min(baselines.values()):.4f}")
    if not ("holdout.gate.auc" in m and m["holdout.gate.auc"] > 0.5 + 2 * m.get("holdout.gate.auc_se", float("inf"))):
        problems.append(f"v{ev_version}'s holdout AUC is not above chance by two standard errors")
    if not (m["holdout.gate.deals"] >= 2 and gain > 2 * m["holdout.gate.gain_se"]):
        problems.append(f"v{ev_version}'s per-deal gain {gain:.5f} is not above two standard errors "
                        f"({2 * m['holdout.gate.gain_se']:.5f})")
    # the head-to-head with the champion before it, where rows unseen by both existed
    h2h = tracking.run_metrics(mv.tags.get("run_id") or mv.run_id)
    if "gate.brier_challenger" not in h2h and ev_version != str(mv.version):
        h2h = m  # a retrain inherits its evidence version's head-to-head
    if "gate.brier_challenger" in h2h:
        facts |= {"h2h_brier_champion_then": h2h["gate.brier_champion"], "h2h_brier_challenger": h2h["gate.brier_challenger"]}
        if h2h["gate.brier_challenger"] > h2h["gate.brier_champion"]:
            problems.append("worse than the champion before it on rows neither had seen")
    elif mv.tags.get("gate_champion", "none") != "none" and ev_version == str(mv.version):
        problems.append(f"replaced champion v{mv.tags['gate_champion']} with no recorded head-to-head")
    return problems, facts


defs = dg.Definitions(asset_checks=[snapshot_keys_unique, snapshot_time_travel, every_open_deal_scored, score_drift_psi, champion_beats_baseline])
