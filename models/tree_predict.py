"""LightGBM's predictions (raw scores, multiclass probabilities) computed with numpy over all rows at once.

LightGBM walks every tree once per row (about 60 ns per row and tree here, with categorical
splits on its slow path): on 100k tickets the two scoring models took ~2.4 s of CPU. Here each
numeric feature is first turned into its rank among the model's thresholds on it (one
``searchsorted`` per feature), so every split is one small-integer comparison over all rows;
a tree's decisions make one pattern number per row, each distinct pattern is walked down the
tree once, and the leaf values are summed tree after tree in LightGBM's order. Decisions
follow LightGBM's C++ ``Decision`` (values within its zero band read as 0, NaN as its missing
type says, categorical sets by code), so the scores are LightGBM's bit for bit; a model this
does not read that way (linear trees, averaged forests, trees of more than
:data:`MAX_PATTERN_NODES` splits) gives None, and the caller asks LightGBM.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from models.tree_shap import LIGHTGBM_ZERO, MISSING_NAN, MISSING_ZERO, Column, category_bitsets, numbers, tree_fields

# A tree's decisions make one uint16 pattern number per row: trees of up to 16 splits (17 leaves).
MAX_PATTERN_NODES = 16


@dataclass(frozen=True)
class _Tree:
    split_feature: np.ndarray
    threshold: np.ndarray
    decision_type: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    cat_bitsets: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Forest:
    """The trees of a LightGBM model, in its order, and how their sums become predictions."""

    trees: tuple[_Tree, ...]
    per_iteration: int  # trees per boosting round: 1, or the number of classes
    multiclass: bool  # softmax over the classes (else the raw score is returned)


def read_forest(booster: lgb.Booster) -> Forest | None:
    """The forest ``booster.predict`` uses (every tree, or those of its best iteration), or None
    for a model read otherwise (see the module docstring)."""
    text = booster.model_to_string()
    header = dict(line.split("=", 1) for line in text.split("\n\n", 1)[0].split("\n") if "=" in line)
    objective = header.get("objective", "").split(" ")[0]
    per_iteration = int(header.get("num_tree_per_iteration", "1"))
    if "average_output" in header or objective not in ("binary", "regression", "multiclass", "lambdarank"):
        return None
    if (objective == "multiclass") != (per_iteration > 1):
        return None
    trees = []
    for fields in tree_fields(text):
        if fields.get("is_linear", "0") != "0":
            return None
        tree = _tree(fields)
        if tree is None:
            return None
        trees.append(tree)
    rounds = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    trees = trees[:rounds * per_iteration]
    if len(trees) != rounds * per_iteration:
        return None
    return Forest(tuple(trees), per_iteration, objective == "multiclass")


def _tree(fields: dict[str, str]) -> _Tree | None:
    split_feature = numbers(fields, "split_feature", "int64")
    if len(split_feature) > MAX_PATTERN_NODES:
        return None
    return _Tree(
        split_feature=split_feature, threshold=numbers(fields, "threshold", "float64"),
        decision_type=numbers(fields, "decision_type", "int64"),
        left=numbers(fields, "left_child", "int64"), right=numbers(fields, "right_child", "int64"),
        leaf_value=numbers(fields, "leaf_value", "float64"),
        cat_bitsets=category_bitsets(fields),
    )


def predict(forest: Forest, values: np.ndarray) -> np.ndarray:
    """``booster.predict(values)`` of the booster ``forest`` was read from: the raw score (n_rows,)
    of a one-tree-per-round model, the class probabilities (n_rows, n_classes) of a multiclass one.

    ``values``: (n_rows, n_features) float64 as LightGBM reads them (category codes as numbers).
    """
    n_rows = values.shape[0]
    raw = np.zeros((forest.per_iteration, n_rows))
    splits = _Splits(forest, values)
    for k, tree in enumerate(forest.trees):  # a loop over the model's trees; each is vectorised over rows
        raw[k % forest.per_iteration] += _leaf_values(tree, splits, n_rows)
    if not forest.multiclass:
        return raw[0]
    # LightGBM's Softmax: the largest score taken off, exp, then the sum in class order.
    shifted = np.exp(raw - raw.max(axis=0))
    total = np.zeros(n_rows)
    for row in shifted:  # a loop over the few classes, in LightGBM's order
        total += row
    return (shifted / total).T


class _Splits:
    """Per feature, each row's rank among the model's numeric thresholds on it (value <= the
    k-th threshold exactly when the rank is <= k) and its missing and zero flags, made once."""

    def __init__(self, forest: Forest, values: np.ndarray) -> None:
        numeric: dict[int, list[float]] = {}
        categorical: set[int] = set()
        for tree in forest.trees:  # a loop over the trees' few splits, once per prediction
            for f, cut, decision in zip(tree.split_feature, tree.threshold, tree.decision_type):
                if decision & 1:
                    categorical.add(int(f))
                else:
                    numeric.setdefault(int(f), []).append(cut)
        self.cuts = {f: np.unique(np.asarray(cuts)) for f, cuts in numeric.items()}
        self.rank, self.is_nan, self.is_zero, self.not_nan, self.not_zero = {}, {}, {}, {}, {}
        for f, cuts in self.cuts.items():  # a loop over the model's ~60 features
            value = values[:, f]
            self.is_nan[f] = np.isnan(value)
            # What LightGBM's predictor compares: NaN read as 0 (unless the split says otherwise),
            # and any value within its zero band stored as 0.
            seen = np.where(self.is_nan[f] | (np.abs(value) <= LIGHTGBM_ZERO), 0.0, value)
            self.is_zero[f] = seen == 0.0
            self.not_nan[f], self.not_zero[f] = ~self.is_nan[f], ~self.is_zero[f]
            rank = np.searchsorted(cuts, seen, side="left")
            self.rank[f] = rank.astype(np.int16 if len(cuts) < 2**15 else np.int64)
        self.code, self.max_code = {}, {}
        for f in categorical:
            column = Column(np.ascontiguousarray(values[:, f]))
            self.code[f], self.max_code[f] = column.code.astype(np.intp), column.max_code

    def goes_left(self, tree: _Tree, node: int) -> np.ndarray:
        """LightGBM's decision at ``node`` for every row (True: left)."""
        f, decision = int(tree.split_feature[node]), int(tree.decision_type[node])
        if decision & 1:  # categorical: left when the code is in the split's bitset
            words = tree.cat_bitsets[int(tree.threshold[node])]
            in_set = ((words[:, None] >> np.arange(32, dtype=np.uint32)) & 1).ravel() == 1
            by_code = np.zeros(max(self.max_code[f], len(in_set)) + 1, dtype=bool)  # code 0: missing, never in a set
            by_code[1:len(in_set) + 1] = in_set
            return by_code.take(self.code[f])
        rank = self.rank[f]
        below = rank <= rank.dtype.type(np.searchsorted(self.cuts[f], tree.threshold[node]))
        missing, default_left = (decision >> 2) & 3, bool(decision & 2)
        if missing == MISSING_ZERO:
            return np.logical_or(below, self.is_zero[f], out=below) if default_left else \
                np.logical_and(below, self.not_zero[f], out=below)
        if missing == MISSING_NAN:
            return np.logical_or(below, self.is_nan[f], out=below) if default_left else \
                np.logical_and(below, self.not_nan[f], out=below)
        return below


def _leaf_values(tree: _Tree, splits: _Splits, n_rows: int) -> np.ndarray:
    """Each row's leaf value: its decisions as one pattern number, each distinct pattern walked once."""
    n_nodes = len(tree.split_feature)
    if n_nodes == 0:  # a single leaf
        return np.full(n_rows, tree.leaf_value[0])
    pattern = np.zeros(n_rows, dtype=np.uint16)
    bit = np.empty(n_rows, dtype=np.uint16)
    for node in range(n_nodes):  # a loop over the tree's few splits
        np.left_shift(splits.goes_left(tree, node), node, out=bit, dtype=np.uint16)
        pattern |= bit
    seen = np.flatnonzero(np.bincount(pattern, minlength=2**n_nodes))
    node = np.zeros(len(seen), dtype=np.int64)
    inner = np.ones(len(seen), dtype=bool)
    while inner.any():  # a walk down the tree's few levels, all seen patterns at once
        at = node[inner]
        left = ((seen[inner] >> at) & 1).astype(bool)
        node[inner] = np.where(left, tree.left[at], tree.right[at])
        inner = node >= 0
    value = np.zeros(2**n_nodes)
    value[seen] = tree.leaf_value[~node]
    return value[pattern]


def predict_in_parts(forest: Forest, values: np.ndarray, threads: int) -> np.ndarray:
    """:func:`predict` with the rows split into ``threads`` parts predicted at once (numpy lets go
    of the GIL); a row's prediction does not depend on the others, so the result is the same."""
    if threads <= 1 or len(values) < 2 * threads:
        return predict(forest, values)
    bounds = np.linspace(0, len(values), threads + 1).astype(int)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(lambda k: predict(forest, values[bounds[k]:bounds[k + 1]]), range(threads)))
    return np.concatenate(parts, axis=0)
