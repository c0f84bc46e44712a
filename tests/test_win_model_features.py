"""The win model's derived features (snapshot.DERIVED) come from the row's own known columns, line
up with the explanations, and a model pickled before they existed still reads its own features."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import polars as pl
import pytest

from revintel_assets.defs.deals.explain import top_contributions
from revintel_assets.defs.deals.snapshot import (DEAL_ATTRIBUTES, FEATURES, FEATURES_CATEGORICAL, FEATURES_NUMERIC,
                                                  MODEL_FEATURES)
from revintel_assets.defs.deals.win_model import Encoder, Windows, split_by_time, train
from synthetic import history


@pytest.fixture(scope="module")
def snaps() -> pl.DataFrame:
    """synthetic.history's snapshots with the feature columns it does not simulate: the as-of
    month as the snapshot computes it, the rest missing (LightGBM takes NULL)."""
    s = history(n_deals=1500, seed=5)[0].with_columns(pl.col("as_of_date").dt.month().alias("month_of_year"))
    return s.with_columns([pl.lit(None, dtype=pl.Utf8 if c in FEATURES_CATEGORICAL + DEAL_ATTRIBUTES else pl.Float64).alias(c)
                           for c in FEATURES if c not in s.columns])


def test_created_month_is_the_month_the_deal_was_opened(snaps):
    enc = Encoder().fit(snaps)  # the deal attributes have no value here: left out (test_deal_attributes.py)
    assert enc.features == [f for f in MODEL_FEATURES if f not in DEAL_ATTRIBUTES] and "created_month" in enc.features
    x = enc.matrix(snaps)
    got = x[:, enc.features.index("created_month")]
    assert np.array_equal(got, snaps["created_date"].dt.month().to_numpy().astype(float))
    # not the as-of month under another name
    assert (got != x[:, enc.features.index("month_of_year")]).mean() > 0.5


def test_explanations_name_the_model_features_in_column_order(snaps):
    split = split_by_time(snaps, dt.date(2024, 9, 1), Windows())
    model = train(split, max_rounds=30)
    rows = split.holdout.head(50)
    contrib = model.contributions(rows)
    assert contrib.shape[1] == len(model.encoder.features) + 1
    out = top_contributions(rows.select("as_of_date", "opportunity_id"), rows, contrib, k=len(model.encoder.features),
                           names=model.encoder.features)
    month = out.filter(pl.col("feature") == "created_month").join(
        rows.select("as_of_date", "opportunity_id", pl.col("created_date").dt.month().cast(pl.Utf8).alias("want")),
        on=["as_of_date", "opportunity_id"])
    assert len(month) == len(rows) and (month["feature_value"] == month["want"]).all()


def test_a_model_pickled_before_derived_features_reads_the_snapshot_features_only(snaps):
    old = Encoder().fit(snaps)
    del old.__dict__["numeric"]  # what an Encoder pickled before `numeric` existed carries
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.features == FEATURES_NUMERIC + FEATURES_CATEGORICAL and loaded.numeric == FEATURES_NUMERIC
    assert loaded.matrix(snaps.drop("created_date")).shape[1] == len(FEATURES_NUMERIC + FEATURES_CATEGORICAL)


def test_the_model_does_not_depend_on_the_order_of_its_rows(snaps):
    """The warehouse returns a snapshot partition rewritten by a later run in another order, and
    LightGBM's bagging and histogram sums follow row order: shuffled rows must give the same model
    (the same holdout predictions, bit for bit)."""
    cutoff = dt.date(2024, 9, 1)
    a = split_by_time(snaps, cutoff, Windows())
    b = split_by_time(snaps.sample(fraction=1.0, shuffle=True, seed=3), cutoff, Windows())
    rows = a.holdout
    assert np.array_equal(train(a, max_rounds=30).predict(rows), train(b, max_rounds=30).predict(rows))
