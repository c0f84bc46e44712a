"""The TreeSHAP grouping of sessions 10-38, replaced in session 39, kept verbatim (below its docstring)
as the yardstick of benchmarks/treeshap_grouping.py. Not product code.

It grouped the rows of a tree by their *interval* among the tree's thresholds on each feature
it splits on (NaN and zero as cells of their own) and by the value itself for a categorical
split, hashed with pandas.factorize: conservative, so it needed none of LightGBM's decision
rules, but a categorical feature split once made a group per value, and every tree hashed
every row. revintel_assets/defs/deals/treeshap.py now groups by the decisions themselves.
"""

from __future__ import annotations

import lightgbm as lgb
import numba
import numpy as np
import pandas as pd

ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| <= this counts as zero for missing_type=Zero
MAX_KEY = 1 << 60


def tree_splits(booster: lgb.Booster, num_iteration: int | None) -> list[dict[int, np.ndarray | None]]:
    """Per tree: feature -> its sorted numeric thresholds, or None when the tree splits on it by category."""
    out = []
    for tree in booster.dump_model(num_iteration=num_iteration or -1)["tree_info"]:
        splits: dict[int, set | None] = {}
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node:
                continue
            f = node["split_feature"]
            if node["decision_type"] == "<=" and splits.get(f, set()) is not None:
                splits.setdefault(f, set()).add(float(node["threshold"]))
            else:
                splits[f] = None
            stack += [node["left_child"], node["right_child"]]
        out.append({f: None if t is None else np.array(sorted(t)) for f, t in sorted(splits.items())})
    return out


def _cells(x: np.ndarray, trees: list[dict]) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
    """Per feature any tree splits on: (code of each row, sorted thresholds of every tree or None).
    Numeric code: 3 x (number of thresholds below the value) + (0, 1 zero, 2 NaN); categorical
    code: the rank of the value (NaN its own)."""
    numeric: dict[int, set] = {}
    categorical: set[int] = set()
    for splits in trees:
        for f, t in splits.items():
            if t is None:
                categorical.add(f)
            else:
                numeric.setdefault(f, set()).update(t.tolist())
    out = {}
    for f in categorical:
        v = x[:, f]
        out[f] = (np.unique(np.where(np.isnan(v), np.inf, v), return_inverse=True)[1].ravel(), None)
    for f, t in numeric.items():
        if f in categorical:
            continue
        v, all_t = x[:, f], np.array(sorted(t))
        state = np.where(np.isnan(v), 2, (np.abs(v) <= ZERO).astype(np.int64))
        out[f] = (np.searchsorted(all_t, v, side="left") * 3 + state, all_t)
    return out


@numba.njit(cache=True, nogil=True)
def _add_key(key: np.ndarray, below: np.ndarray, code: np.ndarray, radix: int) -> None:
    """key += (the row's interval among this tree's thresholds x 3 + its zero/NaN state) x radix,
    one pass without temporaries (`below`: how many of the tree's thresholds lie below each of
    every tree's)."""
    for i in range(key.shape[0]):
        key[i] += (below[code[i] // 3] * 3 + code[i] % 3) * radix


@numba.njit(cache=True, nogil=True)
def _add_tree(out: np.ndarray, c: np.ndarray, cols: np.ndarray, group: np.ndarray) -> None:
    """out[col, i] += c[group[i], col] for the tree's columns: its groups' values added to their
    rows, one addition per value as `out[cols] += c[:, cols].T[:, group]` (same floats), no temporaries."""
    for i in range(group.shape[0]):  # row by row: a group's values are read together
        g = group[i]
        for j in range(cols.shape[0]):
            out[cols[j], i] += c[g, cols[j]]


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row), groups numbered in order of first appearance:
    a hash table (pandas.factorize, O(n)) where np.unique sorted every tree's keys (a quarter of
    the scale-100 scoring). A row's TreeSHAP values do not depend on how the groups are numbered."""
    group = pd.factorize(key, sort=False)[0].astype(np.int64)
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64), group
    top = np.maximum.accumulate(group)  # a new group's number is one above every number before it
    return np.flatnonzero(np.r_[True, top[1:] > top[:-1]]), group


def _group(cells: dict, splits: dict[int, np.ndarray | None], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row) of the rows that decide alike in one tree."""
    key, radix = np.zeros(n, dtype=np.int64), 1
    for f, t in splits.items():
        code, all_t = cells[f]
        if t is None or all_t is None:  # categorical: the value's rank
            size = int(code.max()) + 1 if n else 1
        else:  # the interval among this tree's thresholds (a subset of every tree's): a lookup
            size = (len(t) + 1) * 3
        if radix * size >= MAX_KEY:  # renumber the groups so far before the key overflows
            key = _factorize(key)[1]
            radix = int(key.max()) + 1 if n else 1
        if t is None or all_t is None:
            key += code * radix
        else:
            _add_key(key, np.concatenate([[0], np.cumsum(np.isin(all_t, t))]).astype(np.int64), code, radix)
        radix *= size
    return _factorize(key)


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
        # a tree's TreeSHAP is 0.0 outside its split features (+ the bias)
        _add_tree(out, np.ascontiguousarray(c), np.array([*splits, n_cols - 1], dtype=np.int64), group)
    return np.ascontiguousarray(out.T)
