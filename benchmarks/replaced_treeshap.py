"""The TreeSHAP grouping replaced in session 10 (np.unique per tree, numpy scatter), kept verbatim as the
yardstick of benchmarks/treeshap_grouping.py (the parts that did not change are imported). Not
product code."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from benchmarks.interval_treeshap import MAX_KEY, _cells, tree_splits  # unchanged in session 10


def _group(cells: dict, splits: dict[int, np.ndarray | None], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row) of the rows that decide alike in one tree."""
    key, radix = np.zeros(n, dtype=np.int64), 1
    for f, t in splits.items():
        code, all_t = cells[f]
        if t is None or all_t is None:  # categorical: the value's rank
            k, size = code, int(code.max()) + 1 if n else 1
        else:  # the interval among this tree's thresholds (a subset of every tree's): a lookup
            below = np.concatenate([[0], np.cumsum(np.isin(all_t, t))])
            k = below[code // 3] * 3 + code % 3
            size = (len(t) + 1) * 3
        if radix * size >= MAX_KEY:  # renumber the groups so far before the key overflows
            key = np.unique(key, return_inverse=True)[1].ravel().astype(np.int64)
            radix = int(key.max()) + 1 if n else 1
        key, radix = key + k * radix, radix * size
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    return first, group.ravel()


def contributions(booster: lgb.Booster, x: np.ndarray, num_iteration: int | None) -> np.ndarray:
    """booster.predict(x, num_iteration=..., pred_contrib=True) for a binary model: (n, n_features + 1)."""
    n, n_cols = len(x), x.shape[1] + 1
    out = np.zeros((n_cols, n))  # transposed: a tree adds to the few columns of its features
    if n == 0:
        return out.T.copy()
    # a private copy: predict(start_iteration=...) sets the booster's iteration range, which
    # threads calling this on blocks of rows of one booster would otherwise change under each other
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=num_iteration or -1))
    trees = tree_splits(booster, None)
    cells = _cells(x, trees)
    for t, splits in enumerate(trees):
        first, group = _group(cells, splits, n)
        c = booster.predict(x[first], start_iteration=t, num_iteration=1, pred_contrib=True, num_threads=1)
        cols = [*splits, n_cols - 1]  # a tree's TreeSHAP is 0.0 outside its split features (+ the bias)
        out[cols] += c[:, cols].T[:, group]
    return np.ascontiguousarray(out.T)
