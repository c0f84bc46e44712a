"""TreeSHAP of many rows, computed once per distinct way a row goes through each tree.

LightGBM's `pred_contrib` (path-dependent TreeSHAP, in C) costs ~2 µs per row and tree: 60,000
deal-dates x 240 trees is ~30 s of CPU, most of the demo's scoring. But one tree's contributions
for a row depend only on which way the row goes at each of that tree's splits — on its path and
off it (TreeSHAP walks the whole tree, reading the row's decision at every node, never its
values). A 15-leaf tree has 14 splits, so at most 2^14 decision patterns, and real rows fall into
a few thousand. So, tree by tree: compute every row's decisions as a bit pattern (one compiled
pass, LightGBM's own decision rules, below), number the patterns in order of first appearance, run
LightGBM's TreeSHAP of that tree (`start_iteration=t, num_iteration=1`) on one row per pattern,
and add the pattern's values to each of its rows, trees in order as LightGBM does. Rows with the
same pattern get bit-identical values (the same arithmetic on the same tree), so the result does
not depend on which row represents its pattern, nor on the other rows of the call; it equals one
`pred_contrib` call up to the order of floating-point additions inside a tree (measured:
|difference| <= 1e-14 in log-odds), and bit for bit the values of the grouping it replaced
(benchmarks/interval_treeshap.py: rows grouped by their interval among each feature's thresholds,
a categorical split grouping by value, hashed), which made ~6,200 groups a tree where the
patterns are ~960 and hashed every row of every tree: 2.1x less CPU on 200,000 scale-100 open
deals and 316 trees (benchmarks/treeshap_grouping.py, 8.5 -> 4.1 s). A pattern also fixes the
leaf the row reaches, so `explain` returns each row's raw score too, bit for bit LightGBM's.

The decision rules are LightGBM's (include/LightGBM/tree.h, `NumericalDecision` and
`CategoricalDecision` of LightGBM 4): a numeric split sends NaN to 0 unless its missing type is
NaN, sends its missing values (zero for missing type Zero, NaN for NaN) the default way, and
otherwise goes left when value <= threshold; a categorical split goes right for NaN or a negative
value, left when the value (truncated to an integer) is in the split's category set. And before
any of that, LightGBM's predictor keeps only the values of a dense row farther than its zero
threshold (kZeroThreshold) from 0: the others read as 0 (a split at -kZeroThreshold sends -1e-35
right).
tests/test_explanations.py checks the values against `pred_contrib` on rows built to hit every
one of those rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numba
import numpy as np
import pandas as pd

ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal, widened to double)
# Trees of up to 20 splits (revintel's have 14) number their patterns through a table of every
# possible one; larger trees hash them (pandas.factorize), past 62 splits every row is its own group.
DENSE_BITS = 20
NUMERIC, CATEGORICAL = 0, 1
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2  # a split's missing type (LightGBM's dump names them)
MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}


@dataclass
class Splits:
    """One tree's splits, as arrays the compiled pass reads (one entry per split node)."""
    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64 (numeric splits)
    kind: np.ndarray  # int8: NUMERIC / CATEGORICAL
    missing: np.ndarray  # int8: MISSING's codes
    default_left: np.ndarray  # bool
    cat_start: np.ndarray  # int64, len + 1: the split's words of `cat_words`
    cat_words: np.ndarray  # uint32 bitset words of every categorical split's left-going categories
    left: np.ndarray  # int64: the split's left child, a split's index or ~leaf (negative)
    right: np.ndarray  # int64: likewise its right child
    leaf_value: np.ndarray  # float64 by leaf index: the tree's output

    @property
    def features(self) -> list[int]:
        """The features the tree splits on, in order: where its TreeSHAP values can be non-zero."""
        return sorted(set(self.feature.tolist()))


def tree_splits(booster: lgb.Booster) -> list[Splits]:
    """Per tree of the booster, its split nodes (from LightGBM's own model dump)."""
    out = []
    for tree in booster.dump_model()["tree_info"]:
        nodes, stack = [], [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                nodes.append(node)
                stack += [node["left_child"], node["right_child"]]
        nodes.sort(key=lambda n: n["split_index"])  # split j is bit j of a row's pattern
        leaves = _leaves(tree["tree_structure"])
        words, start = [], [0]
        for n in nodes:
            if n["decision_type"] == "==":
                cats = [int(c) for c in str(n["threshold"]).split("||")]
                bits = np.zeros(max(cats) // 32 + 1, dtype=np.uint32)
                for c in cats:
                    bits[c // 32] |= np.uint32(1 << (c % 32))
                words += bits.tolist()
            start.append(len(words))
        out.append(Splits(
            feature=np.array([n["split_feature"] for n in nodes], dtype=np.int64),
            threshold=np.array([n["threshold"] if n["decision_type"] == "<=" else 0.0 for n in nodes], dtype=np.float64),
            kind=np.array([NUMERIC if n["decision_type"] == "<=" else CATEGORICAL for n in nodes], dtype=np.int8),
            missing=np.array([MISSING[n["missing_type"]] for n in nodes], dtype=np.int8),
            default_left=np.array([n["default_left"] for n in nodes], dtype=np.bool_),
            cat_start=np.array(start, dtype=np.int64), cat_words=np.array(words, dtype=np.uint32),
            left=np.array([_child(n["left_child"]) for n in nodes], dtype=np.int64),
            right=np.array([_child(n["right_child"]) for n in nodes], dtype=np.int64),
            leaf_value=np.array([leaves[i] for i in range(len(leaves))], dtype=np.float64)))
    return out


def _child(node: dict) -> int:
    return node["split_index"] if "split_index" in node else ~node.get("leaf_index", 0)


def _leaves(node: dict) -> dict[int, float]:
    """leaf index -> value of a dumped tree (a tree without splits is one leaf, index 0)."""
    if "split_index" not in node:
        return {node.get("leaf_index", 0): node["leaf_value"]}
    return _leaves(node["left_child"]) | _leaves(node["right_child"])


@numba.njit(cache=True, nogil=True)
def _patterns(xt, feature, threshold, kind, missing, default_left, cat_start, cat_words, key):
    """key[i] = bit j set when row i goes left at split j, by LightGBM's decision rules. `xt` is
    the rows transposed (a feature's values contiguous): split by split, one branch-free pass
    over the rows each (200,000 scale-100 rows x 316 trees: 1.4 s; row by row, 3.5 s)."""
    key[:] = 0
    for j in range(feature.shape[0]):
        col, bit, t, dl = xt[feature[j]], np.int64(1) << j, threshold[j], default_left[j]
        if kind[j] == CATEGORICAL:  # NaN and negative values go right; else left when in the set
            lo, hi = cat_start[j], cat_start[j + 1]
            for i in range(col.shape[0]):
                v = col[i]
                if v == v and -1.0 < v < 2147483648.0:  # not NaN; int(v) (truncated) a non-negative C int
                    c = int(v)
                    word = lo + c // 32
                    if word < hi and (cat_words[word] >> (c % 32)) & 1:
                        key[i] |= bit
        elif missing[j] == MISSING_NAN:  # NaN goes the default way
            for i in range(col.shape[0]):
                v = col[i]
                key[i] |= bit * (dl if v != v else (0.0 if -ZERO <= v <= ZERO else v) <= t)
        elif missing[j] == MISSING_ZERO:  # NaN counts as 0; 0 (within ZERO) goes the default way
            for i in range(col.shape[0]):
                v = col[i]
                v = 0.0 if v != v else v
                key[i] |= bit * (dl if -ZERO <= v <= ZERO else v <= t)
        else:  # NaN counts as 0
            for i in range(col.shape[0]):
                v = col[i]
                key[i] |= bit * ((0.0 if v != v or -ZERO <= v <= ZERO else v) <= t)


@numba.njit(cache=True, nogil=True)
def _number(key, size):
    """(first row of each pattern, pattern number of each row), numbered in order of first
    appearance, through a table of every possible pattern (`size` = 2^splits)."""
    seen = np.full(size, -1, dtype=np.int64)
    group = np.empty(key.shape[0], dtype=np.int64)
    first = np.empty(key.shape[0], dtype=np.int64)
    n = 0
    for i in range(key.shape[0]):
        g = seen[key[i]]
        if g < 0:
            g = n
            seen[key[i]] = n
            first[n] = i
            n += 1
        group[i] = g
    return first[:n].copy(), group


@numba.njit(cache=True, nogil=True)
def _leaf_of(patterns, left, right, leaf_value):
    """The output of the leaf each pattern reaches: from the root (split 0), left where its bit is set."""
    out = np.empty(patterns.shape[0])
    for g in range(patterns.shape[0]):
        node = 0 if left.shape[0] else -1  # a tree without splits is its leaf 0
        while node >= 0:
            node = left[node] if (patterns[g] >> node) & 1 else right[node]
        out[g] = leaf_value[~node]
    return out


def _groups(xt: np.ndarray, s: Splits) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(first row of each group, group of each row, each group's pattern) of the rows that decide
    alike at every split of a tree; `xt`: the rows transposed."""
    bits, n = len(s.feature), xt.shape[1]
    if bits > 62:  # past an int64 pattern (a tree of more than 63 leaves): every row its own group
        return np.arange(n), np.arange(n), None
    key = np.empty(n, dtype=np.int64)
    _patterns(xt, s.feature, s.threshold, s.kind, s.missing, s.default_left, s.cat_start, s.cat_words, key)
    if bits <= DENSE_BITS:
        first, group = _number(key, 1 << bits)
    else:
        group = pd.factorize(key, sort=False)[0].astype(np.int64)  # a hash table, same numbering
        top = np.maximum.accumulate(group)  # a new group's number is one above every number before it
        first = np.flatnonzero(np.r_[True, top[1:] > top[:-1]])
    return first, group, key[first]


@numba.njit(cache=True, nogil=True)
def _add_tree(out: np.ndarray, c: np.ndarray, cols: np.ndarray, group: np.ndarray, raw: np.ndarray,
              leaf: np.ndarray) -> None:
    """out[col, i] += c[group[i], col] for the tree's columns: its groups' values added to their
    rows, one addition per value as `out[cols] += c[:, cols].T[:, group]` (same floats), no
    temporaries; and raw[i] += the output of the row's leaf."""
    for i in range(group.shape[0]):  # row by row: a group's values are read together
        g = group[i]
        for j in range(cols.shape[0]):
            out[cols[j], i] += c[g, cols[j]]
        raw[i] += leaf[g]


def explain(booster: lgb.Booster, x: np.ndarray, num_iteration: int | None) -> np.ndarray:
    """(n, n_features + 2): booster.predict(x, num_iteration=..., pred_contrib=True) for a binary
    model, then its raw score (booster.predict(..., raw_score=True)), bit for bit: the raw score
    is each tree's leaf output added in tree order from 0, as LightGBM's predict adds them, and
    the leaf is the one the row's pattern reaches, so scoring needs no predict pass of its own
    (scale 100: 68 s of the scoring job's main thread)."""
    n, n_cols = len(x), x.shape[1] + 1
    out = np.zeros((n_cols + 1, n))  # transposed: a tree adds to the few columns of its features
    raw = out[n_cols]  # the raw score, the last column
    if n == 0:
        return out.T.copy()
    # a private copy: predict(start_iteration=...) sets the booster's iteration range, which
    # threads calling this on blocks of rows of one booster would otherwise change under each other
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=num_iteration or -1))
    x = np.asarray(x, dtype=np.float64)
    xt = np.ascontiguousarray(x.T)
    for t, splits in enumerate(tree_splits(booster)):
        first, group, patterns = _groups(xt, splits)
        c = booster.predict(x[first], start_iteration=t, num_iteration=1, pred_contrib=True, num_threads=1)
        if patterns is None:  # too many splits for a pattern: LightGBM's own leaf of each row
            leaf = splits.leaf_value[booster.predict(x, start_iteration=t, num_iteration=1, pred_leaf=True,
                                                     num_threads=1).astype(np.int64).ravel()]
        else:
            leaf = _leaf_of(patterns, splits.left, splits.right, splits.leaf_value)
        # a tree's TreeSHAP is 0.0 outside its split features (+ the bias)
        _add_tree(out, np.ascontiguousarray(c), np.array([*splits.features, n_cols - 1], dtype=np.int64), group,
                  raw, leaf)
    return np.ascontiguousarray(out.T)


def contributions(booster: lgb.Booster, x: np.ndarray, num_iteration: int | None) -> np.ndarray:
    """booster.predict(x, num_iteration=..., pred_contrib=True) for a binary model: (n, n_features + 1)."""
    return np.ascontiguousarray(explain(booster, x, num_iteration)[:, :-1])
