"""The run plan, declared once: every job, what it selects, and how `revintel demo/run` runs it.

Everything else derives from this list: the definitions' jobs (`defs/jobs.py`), the order and
partitions of `revintel demo/run` (`orchestrate.py`), the jobs whose success publishes the
analyst file and the monthly ICP chain (`defs/ops/sensors.py`), the schedules' jobs
(`defs/ops/schedules.py`) and the benchmark stages (`benchmarks/stage.py`). Adding a stage is
one entry here (plus its assets).

Selections use Dagster's selection syntax (`dg.AssetSelection.from_string`), so this module
imports no asset and can be read on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    select: str  # Dagster asset selection syntax
    description: str
    # How `revintel demo/run` runs it: over the dynamic partitions named here ("*": the job's own
    # keys, e.g. cutoff x division; None: unpartitioned), as one range run ("range") or only the
    # latest key ("latest"). in_cli=False: not part of demo/run.
    partitions: str | None = None
    mode: str = "range"
    in_cli: bool = True
    icp_chain: bool = False  # a link of the monthly ICP refresh, run after the link before it


PIPELINE = 'group:pipeline and not key:"reports/weekly_digest"'  # changes, waterfall, alerts: cheap SQL
# the forecast's judges, run as of the latest date only (their origins are every past week already);
# they run before forecast_job, whose dates take their swing from the tuning they write
BACKTEST = ('key:"forecast/forecast_backtest" or key:"forecast/shock_tuning" or key:"validation/revenue_forecast" '
            'or key:"scores/deal_outlook" or key:"validation/deal_outlook"')

PLAN: tuple[Job, ...] = (
    Job("import_job", 'group:ingest or (group:star and not key:"star/fact_transactions")',
        "Read the source folder (quarantine and source metadata included) and rebuild the star "
        "schema's dimensions and opportunities."),
    Job("transactions_job", 'key:"star/fact_transactions"',
        "Rebuild star.fact_transactions for the selected months (one run per range).",
        partitions="transaction_month"),
    Job("deal_snapshot_job", 'key:"features/deal_snapshot"',
        "Build as-of deal snapshots; a range of dates runs as one run of a few vectorised statements.", partitions="as_of_date"),
    Job("win_model_job", 'key:"models/win_probability" or key:"validation/win_probability"',
        "Train, evaluate, register (and maybe promote) the win model of every selected training cutoff, and "
        "write its holdout validation; the cutoffs' fits run at once, the champion gate in cutoff order.",
        partitions="training_cutoff"),
    Job("deal_scoring_job", 'key:"scores/deal_scores" or key:"scores/deal_explanations"',
        "Score and explain the deals open on every as-of date, each with the champion of that date (the stage "
        "baseline before the first one); a range of dates runs as one pass per model.",
        partitions="as_of_date"),
    Job("pipeline_job", PIPELINE,
        "What changed since the previous as-of date: every deal's movement, the period waterfall and the "
        "deal warnings, for every as-of date in one pass.", partitions="as_of_date"),
    Job("digest_job", 'key:"reports/weekly_digest"',
        "The weekly digest per manager (files, and the webhook when set) for the latest as-of date.",
        partitions="as_of_date", mode="latest"),
    Job("forecast_backtest_job", BACKTEST,
        "Backtest the revenue forecast on past weekly origins (tuning its shared swing, walk forward) and judge "
        "the deal outlook, as of the date.", partitions="as_of_date", mode="latest"),
    Job("forecast_job", f"group:forecast and not ({BACKTEST})",
        "Forecast booked revenue per week / month / quarter / segment for every as-of date in one pass, each from "
        "what was known on it, and score the past forecasts against what was booked (forecast_accuracy).",
        partitions="as_of_date"),
    Job("plan_job", "group:plan",
        "Am I on plan: quota attainment, the reps' call and the chance of making each quota for the as-of date "
        "(the forecast engine, with the swing the backtest tuned), and p_hit_quota judged on past quarters.",
        partitions="as_of_date", mode="latest"),
    Job("icp_plan_job", 'key:"features/icp_cutoffs" or key:"features/icp_divisions"',
        "ICP calendar and divisions from the data; registers the ICP partitions.", icp_chain=True),
    Job("icp_features_job", 'key:"features/customer_division"',
        "Account x division feature matrices for the selected cutoffs x divisions (one SQL pass per cutoff).",
        partitions="*", icp_chain=True),
    Job("icp_models_job", 'key:"models/division_propensity" or key:"validation/division_propensity" '
                          'or key:"scores/icp_scores"',
        "Train, validate and register the division models, then score every account x division.",
        partitions="*", icp_chain=True),
    Job("icp_whitespace_job", 'key:"scores/whitespace"',
        "Rank never-bought divisions by propensity x expected value, per cutoff.",
        partitions="icp_model_cutoff", icp_chain=True),
    Job("nightly_rescore_job", 'key:"features/deal_snapshot" or key:"scores/deal_scores" '
                               f'or key:"scores/deal_explanations" or ({PIPELINE}) or key:"forecast/revenue_forecast" '
                               'or key:"forecast/deal_contributions" or key:"scores/deal_outlook" '
                               'or key:"forecast/quota_attainment" or key:"forecast/plan_deals"',
        "One as-of date end to end: snapshot -> scores + explanations, pipeline changes -> forecast (with the swing tuned "
        "by the latest backtest) -> quota attainment; a successful run publishes the analyst file. The judges "
        "(forecast_backtest_job) run weekly, not here.", in_cli=False),
)

NIGHTLY_JOB = "nightly_rescore_job"  # the nightly schedule's job
DIGEST_JOB = "digest_job"  # the weekly digest schedule's job
JUDGES_JOB = "forecast_backtest_job"  # the weekly judges' schedule's job (backtest, swing tuning, outlook judged)
RETRAIN_JOB = "win_model_job"  # the monthly schedule's job (with the first link of the ICP chain)


def job(name: str) -> Job:
    for j in PLAN:
        if j.name == name:
            return j
    raise KeyError(f"no job {name!r} in the run plan (revintel_assets/plan.py)")


def cli_steps() -> list[Job]:
    """What `revintel demo/run` runs, in order."""
    return [j for j in PLAN if j.in_cli]


def warehouse_jobs() -> list[str]:
    """Jobs whose success publishes the analyst file: every job of the plan writes the warehouse."""
    return [j.name for j in PLAN]


def icp_chain() -> dict[str, str]:
    """Monthly ICP refresh: each link -> the next one (plan order)."""
    links = [j.name for j in PLAN if j.icp_chain]
    return dict(zip(links, links[1:]))
