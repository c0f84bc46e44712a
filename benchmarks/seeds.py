"""Issue 14's evidence: every model figure as mean ± sd over seeds × drift settings of the demo.

    PYTHONPATH=$PWD python -m benchmarks.seeds --seeds 101 202 303 --drifts 0 1 --scale 0.5 \\
        --root /tmp/drift-bench --json docs/seeds.json --table docs/seeds.md

Per (seed, drift): generate the demo company (`revintel generate --drift`) into a fresh data
directory's demo/ folder, run the whole graph there (`revintel demo --no-serve`, so the oracle
columns are written), then collect from that warehouse:

* deals: on revintel's holdout rows of its evaluation cutoff, AUC / Brier / ECE of revintel's win
  model, its three baselines, the plain as-of LightGBM reference (benchmarks/win_reference.py)
  and the oracle (the generator's p), and AUC by deal-age band (0-14, 15-60, > 60 days), where
  the oracle is a ceiling only for young deals (demo/deals.py); and, as issue 14 judges held-out
  companies, on the deals open at the export date with their eventual outcomes (the generator's
  draws replayed by benchmarks/eventual_outcomes.py): AUC / Brier / ECE of the scores revintel
  serves for that date (scores.deal_scores; the warehouse's, i.e. the code that built it, also
  under --collect-only), of the reference trained on everything known then, and of the oracle;
* ICP: mean holdout AUC over divisions of the per-division champion and of each model
  (benchmarks/icp_report.py), the best baseline being the better of logistic and RFM;
* forecast: walk-forward P10-P90 coverage of the total, weekly and monthly
  (validation.model_metrics, split = 'holdout').

`--only icp` re-runs only the ICP jobs on each finished setting and collects the ICP figures,
keeping the deal and forecast figures of the same setting from the existing --json file: a change
to the ICP models is measured in a few minutes per setting instead of a whole run.

Design seeds: the models were designed on seeds 42 and 7. Report on other seeds (e.g. 101, 202,
303) and never tune on them. A finished setting is reused (--rerun to build it again); each
result line is appended to ROOT/results.jsonl as it lands, so a long run can be read while going.
After a change to one model family, `--collect-only --families deals` re-measures that family on
the built settings (the deal model is retrained from each warehouse's snapshot by the current
code) and keeps the other families' figures from the existing --json file.
--forecast-only runs only the forecast backtest again on finished settings, for a forecast change
judged on the same deal model; combine it with --families forecast. With --copy-from ROOT2, either
re-run works on copies of ROOT2's finished settings (ROOT2 left untouched); the jobs run on the
source folder each warehouse records (meta.source), which a copy keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from benchmarks.eventual_outcomes import eventual_outcomes
from benchmarks.icp_report import report as icp_report
from benchmarks.win_reference import holdout_predictions, load_snapshot, reference_predict
from revintel_assets.defs.validation.metrics import classification_metrics

REPO = Path(__file__).resolve().parents[1]
DESIGN_SEEDS = (42, 7)
AGE_BANDS = ((0, 14, "0-14 d"), (15, 60, "15-60 d"), (61, 10**6, "> 60 d"))
DEAL_MODELS = ("revintel", "reference", "baseline_stage", "baseline_naive_bayes", "baseline_base_rate", "oracle")
OPEN_MODELS = ("revintel", "reference", "oracle")  # judged on the deals open at the export date


def deal_metrics(rows: pl.DataFrame, preds: dict[str, np.ndarray]) -> dict:
    """AUC / Brier / ECE per model on all rows, and AUC per deal-age band."""
    y = rows["is_won"].cast(pl.Int8).to_numpy()
    age = rows["deal_age_days"].to_numpy()
    out: dict = {}
    for name, p in preds.items():
        m = classification_metrics(y, p)
        out[name] = {k: round(float(m[k]), 4) for k in ("auc", "brier", "ece")}
        for lo, hi, label in AGE_BANDS:
            band = (age >= lo) & (age <= hi)
            out[name][f"auc {label}"] = round(float(classification_metrics(y[band], p[band])["auc"]), 4)
    out["age_band_rows"] = {label: int(((age >= lo) & (age <= hi)).sum()) for lo, hi, label in AGE_BANDS}
    return out


def open_at_export(con, db: Path, seed: int, scale: float, drift: float) -> tuple[pl.DataFrame, dict, dict]:
    """The deals open on the latest scored date (the export date) with their eventual outcome
    (`is_won`), and on them revintel's served scores, the reference's and the oracle's."""
    served = pl.DataFrame(con.execute("""SELECT opportunity_id, win_probability, model_version FROM scores.deal_scores
                                         WHERE as_of_date = (SELECT max(as_of_date) FROM scores.deal_scores)""").fetchall(),
                          schema=["opportunity_id", "win_probability", "model_version"], orient="row")
    snap = load_snapshot(db)
    export = snap["as_of_date"].max()
    truth = eventual_outcomes(seed, scale, drift)
    rows = (snap.filter(pl.col("as_of_date") == export).drop("is_won")
            .join(served, on="opportunity_id", how="left", maintain_order="left")
            .join(truth, on="opportunity_id", how="left", maintain_order="left")
            .rename({"eventual_won": "is_won"}))
    assert len(rows) == len(served) and rows["win_probability"].null_count() == 0, "scores and snapshot disagree"
    assert rows["is_won"].null_count() == 0 and (rows["eventual_close_date"] > export).all(), \
        "snapshot and replayed generator disagree"
    preds = {"revintel": rows["win_probability"].to_numpy(), "reference": reference_predict(snap, export, rows)[0],
             "oracle": rows["true_win_probability"].to_numpy()}
    facts = {"export_date": str(export), "rows": len(rows), "won": int(rows["is_won"].sum()),
             "scoring_model": served["model_version"].unique().sort().to_list()}
    return rows, preds, facts


def forecast_coverage(con) -> dict:
    got = con.execute("""SELECT period_type, metric, value FROM validation.model_metrics
                         WHERE model_family = 'forecast' AND split = 'holdout' AND segment_type = 'total'
                           AND model_name = 'revenue_forecast'
                           AND metric IN ('coverage_p10_p90', 'coverage_p10_p90_no_swing')""").fetchall()
    return {f"{metric} {period}": round(float(v), 4) for period, metric, v in got}


def icp_summary(data_dir: Path) -> dict:
    r = icp_report(data_dir)
    by_model = r["holdout_auc_by_model"]
    baselines = {k: v for k, v in by_model.items() if k.startswith("baseline_")}
    best = max(baselines, key=baselines.get) if baselines else None
    return {"champion_auc": r.get("holdout_auc_champion_mean"), "oracle_auc": r.get("holdout_oracle_auc_mean"),
            "auc_by_model": by_model,
            "best_baseline": best, "best_baseline_auc": baselines.get(best),
            "share_ge_099_score": r["share_ge_099_score"], "champions": r.get("champion_holdout")}


FAMILIES = ("deals", "icp", "forecast")


def collect(data_dir: Path, families: tuple[str, ...] = FAMILIES, demo: tuple[int, float, float] | None = None) -> dict:
    """The figures of the requested model families from one built data directory; `demo` (seed,
    scale, drift) of its company adds the deal figures on the deals open at the export date."""
    db = data_dir / "warehouse" / "revintel.duckdb"
    out: dict = {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        if "forecast" in families:
            out["forecast"] = forecast_coverage(con)
        if "deals" in families:
            rows, preds, facts = holdout_predictions(db, data_dir / "demo" / "truth")
            stored = con.execute("""SELECT value FROM validation.model_metrics WHERE model_family = 'deals'
                                    AND split = 'holdout' AND model_name = 'win_probability' AND metric = 'auc'
                                    AND cutoff_date = ?""", [facts["cutoff"]]).fetchone()
            scoring = con.execute("SELECT any_value(model_version) FROM scores.deal_scores "
                                  "WHERE as_of_date = (SELECT max(as_of_date) FROM scores.deal_scores)").fetchone()
            # the model retrained here is the warehouse's when the code is the one that built it (a
            # check, not a figure; after a model change only, it is the old code's figure)
            facts["warehouse_holdout_auc"] = None if stored is None else round(float(stored[0]), 4)
            facts["scoring_model"] = scoring[0] if scoring else None
            out |= {"deals": deal_metrics(rows, preds), "deal_facts": facts}
            if demo is not None:
                rows, preds, facts = open_at_export(con, db, *demo)
                out |= {"deals_open_at_export": deal_metrics(rows, preds), "deals_open_at_export_facts": facts}
    finally:
        con.close()
    if "icp" in families:
        out["icp"] = icp_summary(data_dir)
    return out


def merge_previous(results: list[dict], previous: Path | None) -> list[dict]:
    """Each result completed with the families it lacks from the same (seed, drift) in a
    previous --json file: `--families deals` re-measures the deal model and keeps the rest."""
    if previous is None or not previous.exists():
        return results
    old = {(r["seed"], r["drift"]): r for r in json.loads(previous.read_text())["results"]}
    return [{**old.get((r["seed"], r["drift"]), {}), **{k: v for k, v in r.items() if v is not None}}
            for r in results]


def build(root: Path, seed: int, drift: float, scale: float, rerun: bool) -> tuple[Path, float | None]:
    """A fresh data directory with the drifted demo generated and the whole graph run."""
    data_dir = root / f"s{seed}-d{drift:g}"
    if (data_dir / "done").exists() and not rerun:
        return data_dir, None
    subprocess.run(["rm", "-rf", str(data_dir)], check=True)
    env = {**os.environ, "REVINTEL_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "revintel_assets.cli"]
    start = time.perf_counter()
    with open(root / f"s{seed}-d{drift:g}.log", "w") as log:
        for args in (["generate", "--out", str(data_dir / "demo"), "--scale", str(scale), "--seed", str(seed),
                      "--drift", str(drift)],
                     ["demo", "--no-serve", "--scale", str(scale), "--seed", str(seed)]):
            subprocess.run(cli + args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
    (data_dir / "done").write_text(f"scale {scale}\n")
    return data_dir, round(time.perf_counter() - start, 1)


FORECAST_JOBS = ("forecast_backtest_job",)  # the coverage figures are the backtest's (validation.model_metrics)


def copy_setting(root: Path, name: str, copy_from: Path) -> None:
    """A finished setting copied from another root (left untouched), to re-run jobs on the copy."""
    subprocess.run(["rm", "-rf", str(root / name)], check=True)
    subprocess.run(["cp", "-r", str(copy_from / name), str(root / name)], check=True)


def rerun_forecast(root: Path, seed: int, drift: float) -> tuple[Path, float]:
    """Only the forecast's backtest again on a finished setting (the deal model, scores and snapshots
    as they are): the forecast's figures before -> after a forecast change, paired on the same
    warehouse."""
    data_dir = root / f"s{seed}-d{drift:g}"
    if not (data_dir / "done").exists():
        raise SystemExit(f"{data_dir}: not a finished setting (run it without --forecast-only first)")
    env = {**os.environ, "REVINTEL_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    demo = recorded_source(data_dir)
    code = ("from revintel_assets.definitions import load; from revintel_assets.orchestrate import materialize_all; "
            f"materialize_all(load(), resources={{'source': {{'path': {str(demo)!r}, 'truth_dir': {str(demo / 'truth')!r}}}}}, "
            f"jobs={list(FORECAST_JOBS)!r})")
    start = time.perf_counter()
    with open(root / f"s{seed}-d{drift:g}.forecast.log", "w") as log:
        subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
    return data_dir, round(time.perf_counter() - start, 1)


def recorded_source(data_dir: Path) -> Path:
    """The source folder a finished setting's warehouse was built from: a copy (--copy-from) keeps
    its original's, and a run on another path would be refused at the publish (a source switch)."""
    import duckdb

    con = duckdb.connect(str(data_dir / "warehouse" / ".work" / "revintel.duckdb"), read_only=True)
    try:
        (path,), = con.execute("SELECT DISTINCT source_path FROM meta.source").fetchall()
    finally:
        con.close()
    return Path(path)


ICP_JOBS = ["icp_plan_job", "icp_features_job", "icp_models_job", "icp_whitespace_job"]
# what the ICP jobs write; dropped before they run again, so nothing of the previous run survives
ICP_TABLES = ("features.customer_division", "features.icp_cutoffs", "features.icp_divisions", "validation.icp_models",
              "validation.icp_feature_importance", "scores.icp_scores", "scores.whitespace")
ICP_ROWS = ("validation.model_metrics", "validation.holdout_gains", "validation.calibration_bins")


def _icp_jobs(demo: str) -> None:
    """In a subprocess with the setting's REVINTEL_DATA_DIR: drop the ICP outputs, run the ICP jobs."""
    from revintel_assets.definitions import load
    from revintel_assets.orchestrate import materialize_all
    from revintel_resources.warehouse import Warehouse

    with Warehouse.from_env().connect() as con:
        con.execute("DROP VIEW IF EXISTS scores.whitespace_by_rep")
        for t in ICP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {t}")
        for t in ICP_ROWS:
            con.execute(f"DELETE FROM {t} WHERE model_family = 'icp'")
    # the truth named: revintel finds it on its own only when the source is this data dir's demo
    materialize_all(load(), resources={"source": {"path": demo, "truth_dir": str(Path(demo) / "truth")}}, jobs=ICP_JOBS)


def rerun_icp(root: Path, seed: int, drift: float) -> float:
    data_dir = root / f"s{seed}-d{drift:g}"
    env = {**os.environ, "REVINTEL_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    with open(root / f"s{seed}-d{drift:g}.icp.log", "w") as log:
        subprocess.run([sys.executable, "-c", f"from benchmarks.seeds import _icp_jobs; _icp_jobs({str(recorded_source(data_dir))!r})"],
                       env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
    return round(time.perf_counter() - start, 1)


def flatten(result: dict) -> dict[str, float]:
    """The figures the table shows, one key each."""
    d, i, f = result.get("deals"), result.get("icp"), result.get("forecast", {})
    out = {}
    if d:
        out |= {f"deal {m} {k}": d[m][k] for m in DEAL_MODELS if m in d for k in ("auc", "brier", "ece")}
        out |= {f"deal {m} AUC {label}": d[m][f"auc {label}"] for m in ("revintel", "reference", "oracle") if m in d
                for _, _, label in AGE_BANDS}
        out["deal revintel AUC - reference"] = d["revintel"]["auc"] - d["reference"]["auc"]
        best_base = min(d[m]["brier"] for m in d if m.startswith("baseline_"))
        out["deal revintel Brier - best baseline"] = d["revintel"]["brier"] - best_base
    if o := result.get("deals_open_at_export"):
        out |= {f"deal open at export {m} {k}": o[m][k] for m in OPEN_MODELS if m in o for k in ("auc", "brier", "ece")}
    if i:
        out["icp champion AUC"] = i["champion_auc"]
        out["icp best baseline AUC"] = i["best_baseline_auc"]
        if i["champion_auc"] is not None and i["best_baseline_auc"] is not None:
            out["icp champion AUC - best baseline"] = i["champion_auc"] - i["best_baseline_auc"]
        if i.get("oracle_auc") is not None and i["champion_auc"] is not None:
            out["icp oracle AUC"] = i["oracle_auc"]
            out["icp champion AUC - oracle"] = i["champion_auc"] - i["oracle_auc"]
        out |= {f"icp {m} AUC": v for m, v in i["auc_by_model"].items()}
    out |= {f"forecast {k}": v for k, v in f.items()}
    return {k: v for k, v in out.items() if v is not None}


def summarise(results: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """drift -> figure -> {mean, sd, n} over the seeds."""
    out: dict = {}
    for drift in sorted({r["drift"] for r in results}):
        flat = [flatten(r) for r in results if r["drift"] == drift]
        keys = [k for k in flat[0] if all(k in f for f in flat)]
        out[f"{drift:g}"] = {k: {"mean": float(np.mean([f[k] for f in flat])),
                                 "sd": float(np.std([f[k] for f in flat], ddof=1)) if len(flat) > 1 else float("nan"),
                                 "n": len(flat)} for k in keys}
    return out


def table(summary: dict, seeds: list[int], scale: float) -> str:
    drifts = list(summary)
    keys = [k for k in summary[drifts[0]] if all(k in summary[d] for d in drifts)]
    head = "| figure | " + " | ".join(f"drift {d} (n={next(iter(summary[d].values()))['n']})" for d in drifts) + " |"
    lines = [f"Demo scale {scale:g}, report seeds {', '.join(map(str, seeds))} (design seeds "
             f"{', '.join(map(str, DESIGN_SEEDS))} never reported); mean ± sd over seeds.", "",
             head, "|" + " --- |" * (len(drifts) + 1)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{summary[d][k]['mean']:.4f} ± {summary[d][k]['sd']:.4f}"
                                               for d in drifts) + " |")
    return "\n".join(lines) + "\n"


def latest_results(path: Path, seeds: list[int], drifts: list[float]) -> list[dict]:
    """The last recorded result of each requested (seed, drift) in a results.jsonl."""
    latest = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        r = json.loads(line)
        if r["seed"] in seeds and r["drift"] in drifts:
            latest[(r["seed"], r["drift"])] = r
    return [latest[k] for k in sorted(latest, key=lambda k: (k[1], k[0]))]


def _ms(cell: dict | None, nd: int) -> str:
    return "–" if cell is None else f"{cell['mean']:.{nd}f} ± {cell['sd']:.{nd}f}"


def compact_table(summary: dict) -> str:
    """The README's table: one row per model or figure, one column per drift setting."""
    drifts = list(summary)
    lines = ["| figure | " + " | ".join(f"drift {d}" for d in drifts) + " |", "|" + " --- |" * (len(drifts) + 1)]
    names = {"revintel": "deal: revintel win model", "reference": "deal: plain as-of LightGBM reference",
             "baseline_stage": "deal: stage baseline", "baseline_naive_bayes": "deal: naive-Bayes baseline",
             "baseline_base_rate": "deal: base-rate baseline", "oracle": "deal: oracle (generator's p)"}
    for m, label in names.items():
        lines.append(f"| {label}, AUC / Brier / ECE | " + " | ".join(" / ".join(
            _ms(summary[d].get(f"deal {m} {k}"), nd) for k, nd in (("auc", 3), ("brier", 4), ("ece", 3)))
            for d in drifts) + " |")
    for m in OPEN_MODELS:
        lines.append(f"| deal, open at the export date (eventual outcomes): {m}, AUC / Brier / ECE | " + " | ".join(
            " / ".join(_ms(summary[d].get(f"deal open at export {m} {k}"), nd)
                       for k, nd in (("auc", 3), ("brier", 4), ("ece", 3))) for d in drifts) + " |")
    for key, label in (("deal revintel AUC - reference", "deal: revintel − reference AUC, paired per seed"),
                       ("deal revintel Brier - best baseline", "deal: revintel − best baseline Brier, paired per seed")):
        lines.append(f"| {label} | " + " | ".join(_ms(summary[d].get(key), 4) for d in drifts) + " |")
    for m in ("revintel", "reference", "oracle"):
        lines.append(f"| deal AUC by age {' / '.join(b[2] for b in AGE_BANDS)}: {m} | " + " | ".join(" / ".join(
            _ms(summary[d].get(f"deal {m} AUC {b[2]}"), 3) for b in AGE_BANDS) for d in drifts) + " |")
    for key, label in (("icp champion AUC", "ICP: per-division champion, mean AUC"),
                       ("icp champion AUC - best baseline", "ICP: champion − best baseline AUC, paired per seed"),
                       ("icp division_propensity AUC", "ICP: LightGBM, mean AUC"),
                       ("icp blend AUC", "ICP: blend (LightGBM + logistic), mean AUC"),
                       ("icp baseline_logistic AUC", "ICP: logistic baseline, mean AUC"),
                       ("icp baseline_rfm AUC", "ICP: RFM baseline, mean AUC"),
                       ("icp oracle AUC", "ICP: oracle (generator's true propensity), mean AUC"),
                       ("icp champion AUC - oracle", "ICP: champion − oracle AUC, paired per seed")):
        lines.append(f"| {label} | " + " | ".join(_ms(summary[d].get(key), 3) for d in drifts) + " |")
    for period in ("week", "month"):
        lines.append(f"| forecast P10–P90 coverage walk forward, {period}ly (no swing) | " + " | ".join(
            f"{_ms(summary[d].get(f'forecast coverage_p10_p90 {period}'), 3)} "
            f"({_ms(summary[d].get(f'forecast coverage_p10_p90_no_swing {period}'), 3)})" for d in drifts) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    ap.add_argument("--drifts", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--root", type=Path, default=Path("/tmp/revintel-seeds"))
    ap.add_argument("--json", type=Path, help="write every result and the summary here")
    ap.add_argument("--table", type=Path, help="write the Markdown table here")
    ap.add_argument("--rerun", action="store_true", help="rebuild settings that already finished")
    ap.add_argument("--collect-only", action="store_true", help="only read finished settings")
    ap.add_argument("--forecast-only", action="store_true",
                    help="finished settings: run only the forecast backtest again (a forecast change, paired on the "
                         "same deal model), then collect")
    ap.add_argument("--copy-from", type=Path, help="with --forecast-only or --only: first copy each finished setting from this "
                                                       "root (left untouched), then re-run on the copy")
    ap.add_argument("--only", choices=["icp"], help="re-run only these jobs on finished settings, then collect "
                                                   "--families (default: icp; the others kept from --json)")
    ap.add_argument("--from-results", action="store_true",
                    help="no runs: summarise the latest line per (seed, drift) of ROOT/results.jsonl")
    ap.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                    help="collect only these model families; the others' figures are kept from the "
                         "same (seed, drift) in the existing --json file (e.g. --families deals after a "
                         "deal-model change, with --collect-only on settings built before it)")
    args = ap.parse_args(argv)
    if args.copy_from is not None and not (args.forecast_only or args.only):
        ap.error("--copy-from goes with --forecast-only or --only")
    if args.only:  # jobs re-run on finished settings: the other families keep their figures
        args.collect_only = True
        args.families = [args.only] if args.families == list(FAMILIES) else args.families
    if set(args.seeds) & set(DESIGN_SEEDS):
        print(f"note: seeds {sorted(set(args.seeds) & set(DESIGN_SEEDS))} were used for design", file=sys.stderr)
    args.root.mkdir(parents=True, exist_ok=True)
    results = latest_results(args.root / "results.jsonl", args.seeds, args.drifts) if args.from_results else []
    for drift in [] if args.from_results else args.drifts:
        for seed in args.seeds:
            data_dir = args.root / f"s{seed}-d{drift:g}"
            if args.copy_from is not None:
                copy_setting(args.root, data_dir.name, args.copy_from)
            if args.collect_only and not (data_dir / "done").exists():
                continue
            if args.forecast_only:
                data_dir, seconds = rerun_forecast(args.root, seed, drift)
            else:
                data_dir, seconds = (data_dir, None) if args.collect_only else build(args.root, seed, drift, args.scale,
                                                                                     args.rerun)
            if args.only == "icp":
                rerun_icp(args.root, seed, drift)
            result = {"seed": seed, "drift": drift, "scale": args.scale, "build_seconds": seconds,
                      **({"forecast_only": True} if args.forecast_only else {}),
                      **collect(data_dir, tuple(args.families), (seed, args.scale, drift))}
            results.append(result)
            with open(args.root / "results.jsonl", "a") as f:
                f.write(json.dumps(result, default=str) + "\n")
            print(json.dumps({k: result[k] for k in ("seed", "drift")} | flatten(result), default=str), flush=True)
    if not results:
        return 1
    if set(args.families) != set(FAMILIES):
        results = merge_previous(results, args.json)
    summary = summarise(results)
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "scale": args.scale, "design_seeds": DESIGN_SEEDS,
                                         "results": results, "summary": summary}, indent=1, default=str) + "\n")
    rendered = table(summary, sorted({r["seed"] for r in results}), args.scale)
    print(rendered)
    print(compact_table(summary))
    if args.table:
        args.table.write_text(rendered + "\nCompact (README):\n\n" + compact_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
