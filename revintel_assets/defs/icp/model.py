"""Division propensity models: per division four candidates, each calibrated on rows it never fitted.

Training rows are the feature rows of the training cutoffs (calendar.py), whose label windows
all ended by the evaluated cutoff. The candidates see exactly the same rows:

* `division_propensity` (LightGBM): three quarters of the accounts fit the trees, the other
  quarter early-stops them and fits its calibrator;
* `baseline_logistic`: a logistic regression on every feature (log-scaled, imputed,
  standardised), fitted on every row and calibrated on out-of-fold log-odds (4 account folds);
* `baseline_rfm`: the classic recency/frequency/monetary heuristic (a fixed rank rule, in the
  division for accounts that bought it, overall otherwise), mapped to a probability by a
  calibrator on every row (the rule learns nothing);
* `blend`: the mean of the calibrated LightGBM and logistic probabilities.

Every calibrator is `calibrate_bounded` (cannot reach 0 or 1; pseudo-rows at the pooled rate keep
the top block of a high-rate division below 0.99), so whichever candidate is champion never piles
up at a clip. Where the training cutoffs reach back a year, each candidate's level is shifted to
its observed rate in the same season last year, under its calibrated ceiling (same_season_shift).
Per division the *champion* is the blend unless another candidate beats it on validation by a
margin (`choose_champion`: the validation accounts at earlier evaluation cutoffs, never the
holdout), and `DivisionModel.predict` gives the champion's probabilities.
Evaluated cutoffs train on the training accounts only (`account_fold`): the validation and
holdout accounts are never fitted on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

import hashlib

from revintel_assets.defs.icp.calendar import add_months, season_anchor
from revintel_assets.defs.icp.features import base_name, model_features
from revintel_assets.defs.validation.metrics import P_FLOOR, BoundedCalibrator, calibrate_bounded

SEED = 20240501
MIN_POSITIVES = 20  # per fit and validation slice; fewer cannot rank anything reliably
MODEL_NAME = "division_propensity"  # the LightGBM model's name in validation tables
BLEND = "blend"  # mean of the calibrated LightGBM and logistic probabilities
CANDIDATES = (MODEL_NAME, "baseline_logistic", "baseline_rfm", BLEND)  # champion candidates, ties go left

# Account folds, fixed per account for every cutoff (a hash, not a draw over the accounts present
# at one cutoff): a model judged at an evaluation cutoff never trains on the validation or the
# holdout accounts, so no account is both fitted and evaluated.
TRAIN, VALIDATION, HOLDOUT = 0, 1, 2
FOLD_SALT = "revintel-icp-folds"

# Features that are one value per cutoff and division (the season, the division's level): a
# within-cutoff percentile would make them constant, so they enter the models raw.
CUTOFF_LEVEL = ("division_season_index", "division_momentum", "division_penetration", "cutoff_month_sin",
                "cutoff_month_cos", "division_rate_recent_window", "division_rate_last_year_window",
                "division_season_lift_last_year", "division_rate_same_season")


def account_fold(account_ids) -> np.ndarray:
    """TRAIN (60 %), VALIDATION (20 %) or HOLDOUT (20 %) per account, from a hash of its id.
    Hashed once per distinct account (an account repeats once per cutoff), then mapped to rows."""
    ids = pl.Series("account_id", account_ids, dtype=pl.Utf8, strict=False).fill_null("None")
    distinct = ids.unique()
    hashes = [int.from_bytes(hashlib.md5(f"{FOLD_SALT}:{a}".encode()).digest()[:4], "little") % 5
              for a in distinct.to_list()]
    folds = np.array([VALIDATION, HOLDOUT, TRAIN, TRAIN, TRAIN], dtype=np.int8)[np.array(hashes, dtype=np.int64)]
    return ids.replace_strict(distinct, pl.Series(folds), return_dtype=pl.Int8).to_numpy()


def in_fold(frame: pl.DataFrame, fold: int) -> pl.DataFrame:
    return frame.filter(pl.Series(account_fold(frame["account_id"].to_list()) == fold))


# The champion rule, chosen on design seeds 42 and 7 (drift 0 and 1; benchmarks/icp_design.py):
# there the blend's holdout AUC beat the best baseline at 11 of 12 evaluation cutoffs (mean
# +0.006), while picking the best validation AUC among all candidates chased the noise of ~200
# validation accounts per division (mean +0.003, and below the logistic baseline on seed 7 with
# drift). So the blend stays unless another candidate beats it on validation by a clear margin.
PREFERRED = BLEND
MARGIN = 0.01  # mean validation AUC by which another candidate must beat the preferred one


def choose_champion(validation: pl.DataFrame) -> tuple[str, dict]:
    """The champion from validation AUCs (columns cutoff_date, model_name, value = AUC on the
    validation accounts): the blend, unless another candidate's mean over the cutoffs beats the
    blend's by more than MARGIN (then the best one). Only a candidate measured at every one of those
    cutoffs competes; without validation rows the blend stays (reason recorded)."""
    val = validation.filter(pl.col("model_name").is_in(CANDIDATES) & pl.col("value").is_not_nan())
    if val.is_empty():
        return PREFERRED, {"champion_reason": "no validation rows: default", "validation_cutoffs": 0}
    n = val["cutoff_date"].n_unique()
    means = (val.group_by("model_name").agg(pl.col("value").mean().alias("auc"), pl.len().alias("n"))
             .filter(pl.col("n") == n))
    scores = {r["model_name"]: r["auc"] for r in means.iter_rows(named=True)}
    best = max((c for c in CANDIDATES if c in scores), key=lambda c: (scores[c], -CANDIDATES.index(c)))
    margin = max(MARGIN, 2 * _difference_se(val, best)) if PREFERRED in scores and best != PREFERRED else MARGIN
    if PREFERRED in scores and scores[best] <= scores[PREFERRED] + margin:
        best, reason = PREFERRED, f"no candidate beats the blend by more than {margin:.3f} mean validation AUC"
    else:
        reason = f"best mean validation AUC, more than {margin:.3f} above the blend"
    return best, {"champion_reason": f"{reason} over {n} cutoff(s)", "validation_cutoffs": n,
                  **{f"validation_auc_{c}": scores.get(c) for c in CANDIDATES}}


def _difference_se(val: pl.DataFrame, best: str) -> float:
    """Standard error of `best`'s mean validation AUC minus the blend's: the mean of the cutoffs'
    paired (DeLong) standard errors, `auc_diff_se` in validation.model_metrics (the validation
    accounts are the same at every cutoff, so their errors are not taken as independent: no shrinking
    with the number of cutoffs). 0 without them. A fixed 0.01 margin let a baseline win on noise: 0.742
    vs 0.716 on one cutoff of 151 accounts, 25 buyers."""
    if "diff_se" not in val.columns:
        return 0.0
    se = val.filter(pl.col("model_name") == best)["diff_se"].drop_nulls().drop_nans()
    return float(se.mean()) if len(se) else 0.0


# More activity in the division never lowers the propensity: monotone constraints keep the
# trees from learning noise in sparse corners (and make the explanations read sensibly).
MONOTONE_UP = ("div_frequency_", "div_monetary_", "div_active_month", "affinity_", "other_divisions_owned", "segment_penetration")


@dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 10.0
    max_rounds: int = 1500
    early_stopping: int = 60
    monotone: bool = True
    linear_tree: bool = True  # linear leaves: propensity is close to log-linear in buying rates
    metric: str = "auc"  # early stopping on ranking quality; the calibrator fixes the scale
    drop: tuple[str, ...] = ()  # feature columns to leave out
    # "rank": each feature as its percentile among the cutoff's accounts. History-length
    # dependent values (tenure, all-time counts) shift between an early training cutoff and a
    # later scored one; their ranks do not. "raw": as computed; "both": raw and ranks.
    scaling: str = "rank"
    seed: int = SEED

    def lgb_params(self, features: list[str]) -> dict:
        params = {
            "objective": "binary", "metric": self.metric, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf, "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction, "bagging_freq": 1, "lambda_l2": self.lambda_l2,
            "seed": self.seed, "deterministic": True, "force_row_wise": True, "num_threads": 1,  # OpenMP spin-waits badly on a busy 2-core box: 1 thread is ~20x faster there
           
            "verbosity": -1, "linear_tree": self.linear_tree, "linear_lambda": 1.0}
        if self.monotone:
            params["monotone_constraints"] = [int(f.removeprefix("rank__").startswith(MONOTONE_UP)) for f in features]
        return params


class NotEnoughData(ValueError):
    """Too few rows or positives to train; the message says what is missing."""


def matrix(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    """Model inputs; a feature named `rank__x` is x's percentile among the rows of its cutoff."""
    exprs = []
    for f in features:
        if f.startswith("rank__"):
            col = pl.col(f[6:]).cast(pl.Float64)
            exprs.append((col.rank("average").over("cutoff_date") / col.count().over("cutoff_date")).alias(f))
        else:
            exprs.append(pl.col(f).cast(pl.Float64))
    return frame.select(exprs).to_numpy()


@dataclass
class DivisionModel:
    """A calibrated LightGBM model of one division; `predict` gives probabilities."""

    division: str
    features: list[str]
    booster: lgb.Booster
    calibrator: object
    best_iteration: int
    train_cutoffs: list
    info: dict = field(default_factory=dict)
    baselines: "Baselines | None" = None  # trained on the same rows; see choose_champion
    champion: str = MODEL_NAME
    season_shift: dict[str, tuple[float, float]] = field(default_factory=dict)  # (shift, ceiling); see same_season_shift

    def raw(self, frame: pl.DataFrame) -> np.ndarray:
        return self.booster.predict(matrix(frame, self.features), num_iteration=self.best_iteration,
                                    raw_score=True)

    def predict_lightgbm(self, frame: pl.DataFrame) -> np.ndarray:
        return self.calibrator(self.raw(frame))

    def predict_all(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """Every candidate's calibrated probabilities; the blend averages two calibrated
        probabilities, so it stays inside their bounds."""
        out = {MODEL_NAME: self.predict_lightgbm(frame)}
        if self.baselines is not None:
            out |= self.baselines.predict(frame)
        out = {name: shift_log_odds(p, *self.season_shift.get(name, (0.0,))) for name, p in out.items()}
        if self.baselines is not None:
            out[BLEND] = (out[MODEL_NAME] + out["baseline_logistic"]) / 2
        return out

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """The champion's probabilities (LightGBM unless another candidate won on validation)."""
        if self.champion == MODEL_NAME or self.baselines is None:
            return shift_log_odds(self.predict_lightgbm(frame), *self.season_shift.get(MODEL_NAME, (0.0,)))
        return self.predict_all(frame)[self.champion]

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """Per-row SHAP values (log-odds) of each feature, last column the bias."""
        return self.booster.predict(matrix(frame, self.features), num_iteration=self.best_iteration,
                                    pred_contrib=True)

    def importance(self) -> pl.DataFrame:
        gain = self.booster.feature_importance("gain", iteration=self.best_iteration)
        return (pl.DataFrame({"feature": self.features, "gain": gain.astype(float)})
                .with_columns(share=pl.col("gain") / max(gain.sum(), 1e-12)).sort("gain", descending=True))


def _labelled(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("label").is_not_null())


# Labelled training rows per division above which a seeded sample of whole accounts trains the
# model and both baselines. Scale 1 (~10,000 rows) is untouched; at scale 10 (~100,000 rows)
# LightGBM with linear leaves spent 67 of the 118 s of a cutoff; the rows hold one account many
# times (one per training cutoff), so a sample of accounts loses little. Measured at scale 10,
# holdout cutoff 2025-06-01, 5 divisions: mean AUC 0.8843 sampled vs 0.8861 on every row
# (logistic baseline 0.8848, RFM 0.8431 on the same holdout rows), 38 s of CPU instead of 73 s.
MAX_TRAINING_ROWS = 40_000


def sampled_accounts(account_ids: pl.Series, max_rows: int = MAX_TRAINING_ROWS, seed: int = SEED) -> pl.Series | None:
    """The accounts kept by `sample_accounts` for rows with these account ids (one per row):
    None when the rows are few enough to keep them all. Lets a caller choose the accounts from
    their ids alone and read only their rows (at scale 100 a cutoff's training rows of every
    division, read whole, took the ICP models past 23 GiB)."""
    if len(account_ids) <= max_rows:
        return None
    accounts = account_ids.unique().sort()
    keep = np.random.default_rng(seed + 1).random(len(accounts)) < max_rows / len(account_ids)
    return accounts.filter(pl.Series(keep))


def sample_accounts(frame: pl.DataFrame, max_rows: int = MAX_TRAINING_ROWS, seed: int = SEED) -> pl.DataFrame:
    """All rows of a seeded share of the accounts, about `max_rows` of them; the frame if smaller."""
    keep = sampled_accounts(frame["account_id"], max_rows, seed)
    return frame if keep is None else frame.filter(pl.col("account_id").is_in(keep.implode()))


def split_training(frame: pl.DataFrame, validation_share: float = 0.25,
                   seed: int = SEED) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(fit, validation) by account: a seeded quarter of the accounts validates, at every
    training cutoff. Not by cutoff: monthly training windows overlap, so a later cutoff's
    label repeats an earlier one's for the same account, and early stopping would reward
    memorising accounts (validation AUC rising while the holdout falls)."""
    frame = _labelled(frame)
    if frame["cutoff_date"].n_unique() < 2:
        # the training rows are the cutoffs by which the division had sold (icp assets._training_task): a
        # line launched after them has none, which "0 labelled training cutoff(s)" did not say (a re-check)
        raise NotEnoughData(f"{frame['cutoff_date'].n_unique()} training cutoff(s) by which the division had sold "
                            "and whose window had ended, need at least 2 (a division launched late has too few)")
    accounts = frame["account_id"].unique().sort()
    draw = np.random.default_rng(seed).random(len(accounts)) < validation_share
    val_accounts = accounts.filter(pl.Series(draw))
    is_val = pl.col("account_id").is_in(val_accounts.implode())
    fit, val = frame.filter(~is_val), frame.filter(is_val)
    for name, part in (("fit", fit), ("validation", val)):
        pos = int(part["label"].sum())
        if pos < MIN_POSITIVES or part.height - pos < MIN_POSITIVES:
            raise NotEnoughData(f"{pos} buyers among {part.height} {name} rows, need at least {MIN_POSITIVES} "
                                "of each outcome")
    return fit, val


def train_division(frame: pl.DataFrame, division: str, config: TrainConfig = TrainConfig(),
                   cutoff: dt.date | None = None) -> DivisionModel:
    """Train one division's candidates on its training rows (all cutoffs < the scored cutoff):
    each fits on the same three quarters of the accounts and is calibrated on the other quarter
    (which also early-stops LightGBM), so every candidate's probabilities are held-out calibrated.
    With the scored `cutoff`, the candidates' level is shifted to the same season last year's
    (same_season_shift)."""
    fit, val = split_training(frame)
    raw = [f for f in model_features(frame) if f not in config.drop and base_name(f) not in config.drop]
    ranked = [f if base_name(f) in CUTOFF_LEVEL else f"rank__{f}" for f in raw]  # one value per cutoff: raw
    features = {"raw": raw, "rank": ranked, "both": raw + [f for f in ranked if f not in raw]}[config.scaling]
    y_fit, y_val = fit["label"].cast(pl.Int8).to_numpy(), val["label"].cast(pl.Int8).to_numpy()
    dfit = lgb.Dataset(matrix(fit, features), y_fit, feature_name=features, free_raw_data=False)
    dval = lgb.Dataset(matrix(val, features), y_val, reference=dfit)
    booster = lgb.train(config.lgb_params(features), dfit, num_boost_round=config.max_rounds, valid_sets=[dval],
                        callbacks=[lgb.early_stopping(config.early_stopping, verbose=False)])
    best = booster.best_iteration or config.max_rounds
    raw_val = booster.predict(matrix(val, features), num_iteration=best, raw_score=True)
    calibrator = calibrate_bounded(raw_val, y_val)
    model = DivisionModel(division, features, booster, calibrator, best,
                         sorted(frame["cutoff_date"].unique().to_list()), baselines=train_baselines(frame),
                         info={"fit_rows": fit.height, "validation_rows": val.height,
                               "fit_positives": int(y_fit.sum()), "validation_positives": int(y_val.sum()),
                               "calibration": calibrator.method, "best_iteration": best,
                               **{k: v for k, v in dataclasses.asdict(config).items()}})
    if cutoff is not None and SEASON_SHIFT:
        model.season_shift, season = same_season_shift(model, _labelled(frame), cutoff)
        model.info |= {"season_cutoff": season, **{f"season_shift_{k}": round(v[0], 4) for k, v in model.season_shift.items()}}
    return model


# -- the season ------------------------------------------------------------------------------------
# The calibrators pool every training window, so a model learns the division's mean level over
# the windows it trained on; a window in a peak or trough season is then over- or under-predicted
# (issue 14: on Online Retail every model under-predicted the pre-Christmas window). Where the
# data reaches back a year, each candidate's level is shifted by its own miss on the training
# cutoff of the same season a year earlier: the shift that makes its mean prediction there equal
# that window's observed rate (training accounts and rows only, all known at the cutoff). The
# shift acts on the log-odds of p / ceiling, the ceiling being the candidate's calibrated top
# (BoundedCalibrator at +inf), so it moves the level and keeps the ranking, but never lifts a
# propensity above what the calibrator allows (a plain log-odds shift put 2.6 % of the accounts
# of demo seed 7 at >= 0.99). Without such a cutoff (less than a year of history) nothing moves.
SEASON_SHIFT = True
SEASON_TOLERANCE_DAYS = 31  # the same-season cutoff may be a month off 12 months back (W = 6 calendars)
MAX_SEASON_SHIFT = 2.0  # log-odds


def same_season_cutoff(train_cutoffs, cutoff: dt.date) -> dt.date | None:
    """The training cutoff nearest to 12 months before `cutoff`'s season (calendar.season_anchor),
    within SEASON_TOLERANCE_DAYS."""
    target = add_months(season_anchor(_day(cutoff)), -12)
    near = [t for t in map(_day, train_cutoffs) if abs((t - target).days) <= SEASON_TOLERANCE_DAYS]
    return min(near, key=lambda t: (abs((t - target).days), t)) if near else None


def _day(d) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


def shift_log_odds(p: np.ndarray, d: float, ceiling: float = 1.0) -> np.ndarray:
    """ceiling * sigmoid(logit(p / ceiling) + d): monotone in p, never above `ceiling`."""
    if d == 0.0:
        return p
    q = np.clip(p / ceiling, 1e-12, 1 - 1e-12)
    return np.clip(ceiling / (1 + np.exp(-(np.log(q / (1 - q)) + d))), P_FLOOR, 1 - P_FLOOR)


def level_shift(p: np.ndarray, y: np.ndarray, ceiling: float = 1.0) -> float:
    """The d with mean(shift_log_odds(p, d, ceiling)) = mean(y) (bisection: the mean increases
    with d), within +-MAX_SEASON_SHIFT."""
    target, lo, hi = float(np.mean(y)), -MAX_SEASON_SHIFT, MAX_SEASON_SHIFT
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if shift_log_odds(p, mid, ceiling).mean() < target else (lo, mid)
    return (lo + hi) / 2


def ceilings(model: DivisionModel) -> dict[str, float]:
    """Each candidate's calibrated top: its calibrator's value at a score above every row."""
    top = np.array([1e300])
    out = {MODEL_NAME: float(model.calibrator(top)[0])}
    if model.baselines is not None:
        out |= {name: float(cal(top)[0]) for name, cal in model.baselines.calibrators.items()}
    return out


def same_season_shift(model: DivisionModel, frame: pl.DataFrame,
                      cutoff: dt.date) -> tuple[dict[str, tuple[float, float]], str | None]:
    """Per candidate (not the blend: it averages the shifted ones), (level_shift, ceiling) on the
    labelled training rows of the same season last year; ({}, None) without such a cutoff."""
    season = same_season_cutoff(frame["cutoff_date"].unique().to_list(), cutoff)
    if season is None:
        return {}, None
    rows = frame.filter(pl.col("cutoff_date").cast(pl.Date) == season)
    y = rows["label"].cast(pl.Float64).to_numpy()
    if not 0 < y.sum() < len(y):
        return {}, None
    model.season_shift = {}
    tops = ceilings(model)
    return {name: (level_shift(p, y, tops[name]), tops[name]) for name, p in model.predict_all(rows).items()
            if name != BLEND}, str(season)


# -- baselines ------------------------------------------------------------------------------------


def rfm_score(frame: pl.DataFrame) -> np.ndarray:
    """The RFM rule: mean percentile of recency (newer is better), frequency and monetary value
    over the last 12 months within each cutoff, in the division for its buyers (ranked above
    everyone else), overall for the rest. A fixed rule: nothing is learned."""
    def pct(col: pl.Expr, descending: bool = False) -> pl.Expr:
        return (col.rank("average", descending=descending).over("cutoff_date")
                / pl.len().over("cutoff_date"))

    div = (pct(-pl.col("div_recency_days").fill_null(1e9)) + pct(pl.col("div_frequency_12m"))
           + pct(pl.col("div_monetary_12m"))) / 3
    overall = (pct(-pl.col("recency_days")) + pct(pl.col("frequency_12m")) + pct(pl.col("monetary_12m"))) / 3
    score = pl.when(pl.col("is_buyer")).then(1 + div).otherwise(overall)
    return frame.select(score.alias("s"))["s"].to_numpy().astype(float)


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class Baselines:
    """The logistic regression and the RFM rule, each mapped to a probability by its own bounded
    calibrator fitted on scores of rows the scoring fit never saw (see train_baselines)."""

    logistic: object
    features: list[str]
    calibrators: dict[str, BoundedCalibrator]

    def raw(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        x = matrix(frame, self.features)
        # One BLAS thread, so a registered model scores the same in any process (a notebook, a
        # Dask worker, a Dagster step): OpenBLAS splits X @ w between its threads, and the rows
        # next to a split or at the end go through its tail kernel, which rounds differently
        # (1-3 of ~180,000 accounts per division at scale 100 moved by ~1e-16 with 2 threads).
        with threadpool_limits(1, user_api="blas"):
            logistic = self.logistic.decision_function(x)
        return {"baseline_rfm": rfm_score(frame), "baseline_logistic": logistic}

    def predict(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        return {name: self.calibrators[name](r) for name, r in self.raw(frame).items()}


class _MedianImputer(SimpleImputer):
    """SimpleImputer(strategy="median") with the same medians, found per column by a partition
    (np.median) instead of sklearn's np.ma.median, which sorts the whole matrix on every fit
    (1.5 of the 5.2 s of three divisions' baselines at scale 1)."""

    def _dense_fit(self, X, strategy, missing_values, fill_value):
        if strategy != "median" or not (isinstance(missing_values, float) and math.isnan(missing_values)):
            return super()._dense_fit(X, strategy, missing_values, fill_value)
        missing = np.isnan(X)
        super(SimpleImputer, self)._fit_indicator(missing)  # as SimpleImputer._dense_fit does
        out = np.empty(X.shape[1])
        for j in range(X.shape[1]):  # a loop over the columns, not the rows
            col = X[~missing[:, j], j]
            out[j] = np.median(col) if col.size else (0 if self.keep_empty_features else np.nan)
        return out


class _ClipToFit(BaseEstimator, TransformerMixin):
    """Each column clipped to the range it had in the rows the model was fitted on, widened by that
    range on each side (`margin`). A linear model extrapolates: a column nearly constant in
    training (the rate a year back of a division launched during the training windows) has a tiny
    spread, and at a later cutoff its value sat 870 deviations out and put every account's
    log-odds at -50 to -80 (the held-out wholesaler, docs/icp_whitespace.md). The margin keeps the
    ordinary extrapolation of the cutoff-level columns (a new cutoff's season or rate a little past
    the training cutoffs'), which carries the level: clipped to the bare range, the logistic's
    predicted level on the held-out wholesaler's holdout window moved away from the observed one."""

    def __init__(self, margin: float = 1.0):
        self.margin = margin

    def fit(self, x, y=None):
        low, high = np.min(x, axis=0), np.max(x, axis=0)
        self.low_, self.high_ = low - self.margin * (high - low), high + self.margin * (high - low)
        return self

    def transform(self, x):
        return np.clip(x, self.low_, self.high_)


def _scaled_logistic():
    """The logistic baseline after the signed log (computed once per division, train_baselines).
    newton-cholesky (rows >> columns here): 4-5 iterations to the optimum, where lbfgs at its
    default tolerance stopped after ~85 short of it (0.04-0.14 log-odds off on the demo's divisions;
    lbfgs at tol 1e-8 agrees with newton-cholesky after ~330), and ~30 % less time."""
    return make_pipeline(_MedianImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), _ClipToFit(),
                         LogisticRegression(C=0.1, solver="newton-cholesky", max_iter=200))


def train_baselines(frame: pl.DataFrame, folds: int = 4, seed: int = SEED) -> Baselines:
    """Both baselines on all labelled training rows (the LightGBM model's fit + calibration rows).

    The logistic regression is fitted on every row; its calibrator on out-of-fold log-odds (each
    of `folds` account folds scored by a fit on the other folds), so, like LightGBM's, it is fitted
    on scores of rows the scoring fit had not seen and cannot learn that fit's overconfidence. The
    RFM rule learns nothing: its calibrator maps the rule's score on every row."""
    frame = _labelled(frame)
    y = frame["label"].cast(pl.Int8).to_numpy()
    features = model_features(frame)
    x = matrix(frame, features)
    accounts, index = np.unique(frame["account_id"].cast(pl.Utf8).to_numpy(), return_inverse=True)
    fold = np.random.default_rng(seed + 2).integers(0, folds, len(accounts))[index]
    out_of_fold = np.empty(len(y))
    # One BLAS/OpenMP thread, like LightGBM here: on a busy 2-core box the default 2 threads
    # spin-wait and the fit is ~3x slower (measured, docs/BENCHMARKS.md). Same result.
    # The signed log is elementwise, so it is taken once here, not in each of the five fits; the
    # imputer's medians and the scaler still come from each fit's own rows (no fold leaks).
    xs = _signed_log(x)
    with threadpool_limits(1):
        for k in range(folds):
            out_of_fold[fold == k] = _scaled_logistic().fit(xs[fold != k], y[fold != k]).decision_function(xs[fold == k])
        fitted = _scaled_logistic().fit(xs, y)
    logistic = make_pipeline(FunctionTransformer(_signed_log).fit(x[:1]), *fitted.named_steps.values())
    return Baselines(logistic, features, {"baseline_logistic": calibrate_bounded(out_of_fold, y),
                                          "baseline_rfm": calibrate_bounded(rfm_score(frame), y)})
