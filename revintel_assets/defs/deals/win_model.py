"""Win probability: LightGBM on as-of snapshots, calibrated on a later slice, judged on a holdout.

Split by time AND by deal. For a training cutoff C (all of it known on C):
  train       as-of dates  < C - gap - validation        outcome known by C
  validation  as-of dates in [C - gap - validation, C - gap)   outcome known by C
  holdout     as-of dates in [C, C + holdout)            outcome known by the export (later)
The gap lets most validation deals close before C, so the slice that early-stops and
calibrates the model is not just the deals that closed fast. Deals still open at C are censored
(no label): left out of every metric and of the booster's training, but their validation rows
join the calibrator with an outcome imputed from data known at C (CENSORING, censoring.py), since
those deals mostly lose and a closed-only slice over-states the win rate. At the evaluation
cutoff they are holdout deals: the imputed label never reads their outcome.

No deal is in two of the three. The holdout's deals are open on or after C, so they closed
after C and are in neither of the others. A deal open across the start of the validation slice
("straddling") would have rows on both sides: each such deal is given to one side by a hash of
its id (half each), and its rows there count twice (inverse-probability weights), so neither
side loses the long-lived deals it would otherwise have had. (Before issue 14, 50 % of the
validation deals also had training rows: early stopping, calibration and the validation
evidence were partly in-sample.)

Each deal appears on many as-of dates; weights 1/sqrt(its snapshot count) stop long-lived deals
from dominating training.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.model_selection import GroupKFold

from revintel_assets.defs.deals import treeshap
from revintel_assets.defs.deals.censoring import closed_by, eventual_win_rate, imputed_rows
from revintel_assets.defs.deals.snapshot import (ATTRIBUTE_MIN_SHARE, DEAL_ATTRIBUTES, FEATURES_CATEGORICAL,
                                                  FEATURES_NUMERIC, MODEL_FEATURES_CATEGORICAL, MODEL_FEATURES_NUMERIC,
                                                  with_derived)
from revintel_assets.defs.validation.metrics import Calibrator, calibrate
from revintel_assets.parallel import map_rows

SEED = 7
P_FLOOR = 0.005


@dataclass(frozen=True)
class Windows:
    validation_days: int = 91
    gap_days: int = 91
    holdout_days: int = 91
    burn_in_days: int = 180  # the first months of a history hold only young deals: not representative


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    validation: pl.DataFrame
    holdout: pl.DataFrame
    # what the baselines scoring the holdout learn from: every row known by the cutoff before the
    # gap (train + validation as cut by time alone, straddling deals whole). The holdout shares
    # no deal with them; dropping half the straddlers' rows would bias the baselines' base rate.
    baseline_rows: pl.DataFrame | None = None
    # rows of deals still open at the cutoff, with an imputed outcome (censoring.py, CENSORING =
    # "impute"): each row twice, won and lost, `label_weight` q and 1 - q; `part` says which of
    # train / validation the deal belongs to. Used only to fit the model and its calibrator
    # (CENSORED_IN_TRAINING: which); every metric and the gate read the observed rows alone.
    censored: pl.DataFrame | None = None


ROW_KEY = ["as_of_date", "opportunity_id"]  # a snapshot row's identity: the order split_by_time gives each slice
STRADDLER_TO_VALIDATION = 0.5  # share of the deals open across the train/validation boundary
# Deals still open at the cutoff (censoring.py): the validation slice keeps only the deals
# closed by then, mostly the winners, so a calibrator fitted on it over-predicts. "impute" adds
# the open deals' validation rows to the calibrator, won with weight q and lost with 1 - q (q from
# the won / lost incidence by deal age up to the cutoff). Chosen on the design seeds 42 / 7
# (benchmarks/tune_censoring.py; README design log): drift-1 holdout ECE 0.030 / 0.021 -> 0.020 /
# 0.020, AUC unchanged. Weights on the closed rows moved it less (benchmarks/tune_censoring.py).
CENSORING: str | None = "impute"  # None | "impute"; None: closed deals only
# The booster stays on the closed deals: imputed rows (and censoring weights) in its training
# cost holdout AUC on design seed 42 at drift 1 (0.823 -> 0.818).
CENSORED_IN_TRAINING = False


def split_by_time(snap: pl.DataFrame, cutoff: dt.date, w: Windows = Windows(),
                  censoring: str | None = CENSORING) -> Split:
    val_end = cutoff - dt.timedelta(days=w.gap_days)
    val_start = val_end - dt.timedelta(days=w.validation_days)
    # the slices in one order whatever order the rows came in: LightGBM's bagging picks rows by position
    # and its histograms sum in row order, and the warehouse returns a snapshot partition rewritten by a
    # later run in another order (the same rows gave another model and other scores). The filters below
    # keep the order. Rows already in order (training_rows sorts them) are not copied: a sort here,
    # next to the caller's frame, raised win_model_job's peak memory at scale 10 from 6.0 to 6.8 GB
    snap = snap if in_row_order(snap) else snap.sort(ROW_KEY)
    labelled = snap.filter(pl.col("is_won").is_not_null())
    burn_in = snap["created_date"].min() + dt.timedelta(days=w.burn_in_days) if len(snap) else val_start
    slices = {"train": snap.filter(pl.col("as_of_date").is_between(burn_in, val_start, closed="left")),
              "validation": snap.filter(pl.col("as_of_date").is_between(val_start, val_end, closed="left"))}
    known = {k: v.filter(closed_by(cutoff)) for k, v in slices.items()}
    baseline_rows = pl.concat([known["train"], known["validation"]], how="diagonal_relaxed")
    train, validation = _deal_disjoint(known["train"], known["validation"])
    censored = None
    if censoring == "impute":
        q = eventual_win_rate(snap, cutoff)
        c_train, c_val = _deal_disjoint(*(imputed_rows(slices[k], cutoff, q) for k in ("train", "validation")))
        censored = pl.concat([c_train.with_columns(pl.lit("train").alias("part")),
                              c_val.with_columns(pl.lit("validation").alias("part"))])
    split = Split(train=train, validation=validation,
                  holdout=labelled.filter(pl.col("as_of_date").is_between(
                      cutoff, cutoff + dt.timedelta(days=w.holdout_days), closed="left")),
                  baseline_rows=baseline_rows, censored=censored)
    assert not shared_deals(split), "a deal in two of train / validation / holdout"
    return split


def in_row_order(rows: pl.DataFrame) -> bool:
    """Are the rows sorted by ROW_KEY (as_of_date, then opportunity_id)? Vectorised, no copy of the rows."""
    if len(rows) < 2:
        return True
    d, o = rows["as_of_date"], rows["opportunity_id"]
    later, same = d > d.shift(1), d == d.shift(1)
    return bool((later | (same & (o >= o.shift(1)))).slice(1).all())


def _deal_disjoint(train: pl.DataFrame, validation: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each deal with rows on both sides goes to one side by the hash of its id (its rows there
    weighted 1 / the probability of that side); `weight` as in `_weighted`."""
    straddling = set(train["opportunity_id"].to_list()) & set(validation["opportunity_id"].to_list())
    to_validation = {d for d in straddling if deal_hash(d) < STRADDLER_TO_VALIDATION}
    return (_weighted(train.filter(~pl.col("opportunity_id").is_in(list(to_validation))),
                      straddling - to_validation, 1 / (1 - STRADDLER_TO_VALIDATION)),
            _weighted(validation.filter(~pl.col("opportunity_id").is_in(list(straddling - to_validation))),
                      to_validation, 1 / STRADDLER_TO_VALIDATION))


def deal_hash(deal_id) -> float:
    """A stable number in [0, 1) per deal id (not Python's salted hash())."""
    return int(hashlib.blake2b(str(deal_id).encode(), digest_size=8).hexdigest(), 16) / 2 ** 64


def shared_deals(split: Split) -> dict[str, int]:
    """Deals found in two parts of the split (empty when the split is deal-disjoint).
    `split.censored` is not a part: its deals were open at the cutoff (at the evaluation cutoff
    they are holdout deals), and its labels are imputed from data known then, never their own."""
    parts = {k: set(getattr(split, k)["opportunity_id"].to_list()) for k in ("train", "validation", "holdout")}
    pairs = {f"{a}&{b}": len(parts[a] & parts[b]) for a, b in
             (("train", "validation"), ("train", "holdout"), ("validation", "holdout"))}
    return {k: v for k, v in pairs.items() if v}


def _weighted(df: pl.DataFrame, reweighted: set | None = None, factor: float = 1.0) -> pl.DataFrame:
    """1/sqrt(snapshots of the deal): long-lived deals count less, but not so little that the
    model stops learning what the cross-section of open deals (which it scores) looks like.
    Measured on the demo holdout: 1/n gives ECE 0.032, 1/sqrt(n) 0.027, no weights 0.021.
    `ipw` is the inverse-probability weight of the straddling deals kept on this side
    (`factor`, else 1)."""
    ipw = (pl.col("opportunity_id").is_in(list(reweighted or ())).cast(pl.Float64) * (factor - 1.0) + 1.0)
    if "label_weight" in df.columns:  # censoring.py: an imputed outcome's weight
        ipw = ipw * pl.col("label_weight")
    # snapshots counted once per as-of date: an imputed row is there twice (won and lost)
    return df.with_columns(ipw.alias("ipw")).with_columns(
        (pl.col("ipw") / pl.col("as_of_date").n_unique().over("opportunity_id").sqrt()).alias("weight"))


@dataclass
class Encoder:
    """Category vocabularies learned on the training rows; unseen values become missing.
    `numeric`: the numeric columns, snapshot.DERIVED ones included (computed here from the row);
    `categorical`: the category columns (snapshot.model_features says which a history allows)."""

    vocab: dict[str, list[str]] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=lambda: list(MODEL_FEATURES_NUMERIC))
    categorical: list[str] = field(default_factory=lambda: list(MODEL_FEATURES_CATEGORICAL))

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def __setstate__(self, state: dict) -> None:
        # a model pickled before `numeric` / `categorical` existed (an earlier champion in MLflow)
        # was trained on the stored snapshot features only, every category among them
        self.__dict__.update({"numeric": list(FEATURES_NUMERIC), "categorical": list(FEATURES_CATEGORICAL), **state})

    def fit(self, df: pl.DataFrame) -> Encoder:
        """Vocabularies of the training rows. A deal attribute the source does not have, or has on
        fewer than ATTRIBUTE_MIN_SHARE of the rows (no such column either in a snapshot written
        before it existed), is left out: the model is then the one it would be without it."""
        self.categorical = [c for c in self.categorical if c not in DEAL_ATTRIBUTES or (
            c in df.columns and len(df) and df[c].drop_nulls().len() >= ATTRIBUTE_MIN_SHARE * len(df))]
        self.vocab = {c: sorted(v for v in df[c].unique().to_list() if v is not None)
                      for c in self.categorical}
        return self

    def matrix(self, df: pl.DataFrame) -> np.ndarray:
        df = with_derived(df, self.numeric)
        cols = [df[c].cast(pl.Float64).to_numpy() for c in self.numeric]
        for c in self.categorical:
            codes = {v: i for i, v in enumerate(self.vocab[c])}
            cols.append(df[c].replace_strict(codes, default=None, return_dtype=pl.Float64).to_numpy())
        return np.column_stack(cols).astype(np.float64)


@dataclass
class WinModel:
    booster: lgb.Booster
    encoder: Encoder
    calibrator: Calibrator  # raw log-odds -> probability (isotonic, or sigmoid on small slices)
    best_iteration: int
    params: dict
    validation_oof: np.ndarray | None = None  # cross-fitted calibrated predictions on validation

    def raw_log_odds(self, df: pl.DataFrame) -> np.ndarray:
        return self.booster.predict(self.encoder.matrix(df), num_iteration=self.best_iteration, raw_score=True)

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        return self._probability(self.raw_log_odds(df))

    def _probability(self, raw: np.ndarray) -> np.ndarray:
        # Isotonic maps its emptiest block to exactly 0 or 1; no open deal is certain, so the
        # probability is floored at half a percent either side.
        return np.clip(self.calibrator(raw), P_FLOOR, 1 - P_FLOOR)

    def contributions(self, df: pl.DataFrame) -> np.ndarray:
        """TreeSHAP per feature (+ bias in the last column), in raw log-odds."""
        return self.explain(df)[1]

    def explain(self, df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(predict(df), contributions(df)) from one encoding of the rows and one TreeSHAP pass,
        whose raw scores are the booster's own, bit for bit (treeshap.explain): scoring runs no
        predict pass of its own (scale 100: 68 s of the scoring job, plus a second encoding)."""
        x = self.encoder.matrix(df)
        # Threads, not processes: LightGBM's predict runs in C with the GIL released (ctypes), so
        # a thread per block uses every core, with no worker start-up (a process imports
        # LightGBM -> scikit-learn -> SciPy first: 1.3 s on an idle box, 6 s at load 8) and no
        # rows or model pickled. Same numbers as one call (tests/test_parallel.py).
        out = map_rows(_tree_shap, x, self.booster, self.best_iteration, out_cols=x.shape[1] + 2, threads=True)
        return self._probability(out[:, -1]), out[:, :-1]


def _tree_shap(x: np.ndarray, booster: lgb.Booster, num_iteration: int) -> np.ndarray:
    """TreeSHAP of a block of rows, then their raw scores (treeshap.explain): LightGBM's
    pred_contrib once per pattern of decisions a tree's rows take. One OpenMP thread per call:
    pred_contrib uses one core whatever num_threads says, and the blocks are the parallelism."""
    return treeshap.explain(booster, x, num_iteration)


# Hyperparameters chosen on ONE design company's validation rows only (the demo at seed 42, its
# evaluation cutoff's deal-disjoint validation slice; benchmarks/tune_win_model.py, 12 candidates:
# learning rate 0.3 / 0.1 / 0.05 x 15 / 31 leaves x 50 / 200 rows per leaf). Cross-fitted
# validation Brier: 0.1951 for the old 0.3 / 15 / 100 (22 trees once validation shared no deal
# with training), 0.1932 for 0.05 / 15 / 50 (170 trees). Trees are early-stopped under MAX_ROUNDS
# rather than capped for SHAP speed: the models stop at 129-170 trees on the demo, and TreeSHAP for
# 100,000 deals took 74.8 s at 150 trees vs 75.6 s at 170 (benchmarks/deal_scoring.py --trees,
# same busy box); the benchmark, not a cap that costs accuracy, guards the budget.
PARAMS = dict(objective="binary", learning_rate=0.05, num_leaves=15, min_data_in_leaf=50,
              feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1, lambda_l2=5.0,
              cat_smooth=20, min_data_per_group=50, verbose=-1, seed=SEED, deterministic=True,
              force_row_wise=True,
              # Early stopping judges ranking (AUC) on the later validation slice, not log loss: when
              # win odds move between training and validation, log loss also counts the level shift,
              # which the calibrator fitted next corrects anyway. Design seeds 42 / 7 at drift 1:
              # holdout AUC 0.823 / 0.825 -> 0.823 / 0.828 (106 instead of 173 trees on seed 7); at
              # drift 0 the same within 0.0005 (benchmarks/tune_drift.py --stop-metrics).
              metric="auc",
              # One thread: with OpenMP's spinning workers, two threads on a 2-core box that is
              # also running anything else took 160 s instead of 17 s (measured).
              num_threads=1)
MAX_ROUNDS = 1000
# Training rows' weights halve per RECENCY_HALF_LIFE_DAYS before the latest training as-of date
# (recency_weight), adopted together with snapshot.TRAILING (the trailing-window lifts). Adoption
# rule, fixed before measuring (benchmarks/tune_drift.py): on the design settings (demo seeds 42
# and 7 x drift 0 and 1, scale 0.5; never the report seeds) a change must raise mean AUC on the
# eventual-outcome holdout at drift 1, lose at most 0.002 of it at drift 0, and raise ECE by at
# most 0.003 in both views (export labels, eventual outcomes). Means over the design seeds and 4
# LightGBM seeds, the candidate: drift-1 eventual AUC 0.8312 -> 0.8349, drift 0 0.7920 -> 0.7918
# (as built, the stored columns in another order: 0.8337 and 0.7915); ECE drift 1
# 0.018 / 0.026 -> 0.019 / 0.027, drift 0 0.031 / 0.017 -> 0.030 / 0.016. Either alone failed
# it: the lifts alone raised AUC (+0.004) but drift-1 ECE by 0.005-0.006; the half-life alone
# (365 or 180 days) lowered ECE but cost drift-1 AUC (-0.004). Generic value, not a grid.
RECENCY_HALF_LIFE_DAYS: float | None = 365.0
# Recency weights for the calibrator's rows (the validation slice, 91 days ending `gap` before
# the cutoff), so its later months would set the level more. Off: on design seeds 42 / 7 a 60-day
# half-life lowered holdout ECE (drift 1 0.021 / 0.030 -> 0.019 / 0.028, drift 0 0.017 / 0.021 ->
# 0.017 / 0.018), but on the report seeds drift-1 ECE stayed 0.037 (seed 101 0.043 -> 0.045).
# Calibrators per deal-age band did not remove the 15-60-day over-prediction either (README
# design log, benchmarks/tune_calibration.py).
CALIBRATION_HALF_LIFE_DAYS: float | None = None


def recency_weight(as_of: pl.Series, half_life_days: float | None) -> np.ndarray:
    """Halves a training row's weight per `half_life_days` before the latest training as-of date,
    so a world that moves is learnt mostly from its recent past (None: weight 1)."""
    if half_life_days is None or len(as_of) == 0:
        return np.ones(len(as_of))
    age = (as_of.max() - as_of).dt.total_days().to_numpy().astype(float)
    return 0.5 ** (age / half_life_days)


def calibration_weight(validation: pl.DataFrame, half_life_days: float | None) -> np.ndarray:
    """The calibrator's row weights: recency (halved per `half_life_days` before the slice's last
    as-of date) times the straddling deals' inverse-probability weight (`ipw`, when present)."""
    w = recency_weight(validation["as_of_date"], half_life_days)
    return w * validation["ipw"].to_numpy() if "ipw" in validation.columns else w


def train(split: Split, params: dict | None = None, max_rounds: int = MAX_ROUNDS,
          half_life_days: float | None = RECENCY_HALF_LIFE_DAYS,
          numeric: list[str] | None = None, categorical: list[str] | None = None,
          calibration_half_life_days: float | None = CALIBRATION_HALF_LIFE_DAYS,
          censored_in_training: bool = CENSORED_IN_TRAINING) -> WinModel:
    """`numeric`, `categorical`: the features (default MODEL_FEATURES_NUMERIC and MODEL_FEATURES_CATEGORICAL;
    snapshot.model_features leaves out those a derived history cannot show; benchmarks compare others).
    `split.censored` (imputed rows of deals open at the cutoff) joins the calibration rows, and
    the training rows when `censored_in_training`; early stopping reads the observed rows only."""
    params = {**PARAMS, **(params or {})}
    fit_rows = with_censored(split.train, split, "train") if censored_in_training else split.train
    cal_rows = calibration_rows(split)
    enc = Encoder(numeric=list(numeric or MODEL_FEATURES_NUMERIC),
                  categorical=list(MODEL_FEATURES_CATEGORICAL if categorical is None else categorical)).fit(split.train)
    cat_idx = list(range(len(enc.numeric), len(enc.features)))
    weight = fit_rows["weight"].to_numpy() * recency_weight(fit_rows["as_of_date"], half_life_days)
    dtrain = lgb.Dataset(enc.matrix(fit_rows), fit_rows["is_won"].cast(pl.Int8).to_numpy(),
                         weight=weight, feature_name=enc.features,
                         categorical_feature=cat_idx, free_raw_data=False)
    dval = lgb.Dataset(enc.matrix(split.validation), split.validation["is_won"].cast(pl.Int8).to_numpy(),
                       weight=split.validation["weight"].to_numpy(), reference=dtrain)
    booster = lgb.train(params, dtrain, num_boost_round=max_rounds, valid_sets=[dval],
                        callbacks=[lgb.early_stopping(50, verbose=False)])
    best = booster.best_iteration or max_rounds
    raw_val = booster.predict(enc.matrix(cal_rows), num_iteration=best, raw_score=True)
    # Unweighted on purpose: scores are read cross-sectionally (every deal open on a date), and
    # long-lived deals are as over-represented there as they are in these rows.
    # (the straddling deals' inverse-probability weights, see split_by_time, times the recency
    # weight of CALIBRATION_HALF_LIFE_DAYS when set, times an imputed outcome's weight)
    y_val = cal_rows["is_won"].cast(pl.Int8).to_numpy()
    cal_weight = calibration_weight(cal_rows, calibration_half_life_days)
    calibrator = calibrate(raw_val, y_val, weight=cal_weight)
    oof = cross_fitted(raw_val, y_val, cal_rows["opportunity_id"].to_numpy(), weight=cal_weight)
    # the gate judges the observed validation rows (the first ones) only
    return WinModel(booster, enc, calibrator, best, params, validation_oof=oof[:len(split.validation)])


def with_censored(rows: pl.DataFrame, split: Split, part: str) -> pl.DataFrame:
    """`rows`, then the imputed rows of `split.censored` of that part (observed rows first)."""
    if split.censored is None:
        return rows
    extra = split.censored.filter(pl.col("part") == part).drop("part")
    return pl.concat([rows, extra], how="diagonal_relaxed")


def calibration_rows(split: Split) -> pl.DataFrame:
    """What the calibrator is fitted on: the validation slice plus its imputed censored rows."""
    return with_censored(split.validation, split, "validation")


def cross_fitted(raw: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5,
                 weight: np.ndarray | None = None) -> np.ndarray:
    """Calibrated validation predictions, each from a calibrator that did not see its deal.

    The calibrator is fitted on the validation slice, so its in-sample predictions there look
    perfect; the gate against the baselines uses these out-of-fold ones instead."""
    out = np.empty(len(raw))
    for fit_idx, pred_idx in GroupKFold(n_splits=min(folds, len(np.unique(groups)))).split(raw, y, groups):
        w = None if weight is None else weight[fit_idx]
        out[pred_idx] = calibrate(raw[fit_idx], y[fit_idx], weight=w)(raw[pred_idx])
    return out
