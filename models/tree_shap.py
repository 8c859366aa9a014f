"""LightGBM's TreeSHAP contributions (``pred_contrib``), computed with numpy over all rows at once.

LightGBM explains one row at a time, each tree walking its whole decision path per row
(about 6 µs per row and tree here: most of scoring's time). The same Shapley values can
be taken apart per leaf. A leaf adds ``E[f | x_S]`` the product, over the distinct features
``j`` on its path, of ``o_j`` (1 if the row satisfies every split on ``j`` along the path,
else 0) for ``j`` in ``S`` and of ``z_j`` (the training rows' share that went that way,
from the leaf and node counts) for the others. The Shapley value of such a product is

    phi_i = v * (o_i - z_i) * integral_0^1 prod_{j != i} (o_j t + (1 - t) z_j) dt

(the Shapley weight |S|! (p-|S|-1)! / p! is the Beta integral of t^|S| (1-t)^(p-|S|-1)). It
depends on the row only through the path's bits ``o``, so each leaf gets a table over its
2^p bit patterns (the integral is a polynomial of degree p - 1, exact with Gauss-Legendre
nodes), and a row's contribution is a table lookup. Rows are first reduced to the distinct
patterns of all of a tree's split decisions, so a table is looked up once per pattern.

Equal to LightGBM's pred_contrib up to the order of the floating-point sums (~1e-15);
:func:`tree_contributions` returns None for a model it does not read that way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# LightGBM treats |value| <= this float32 constant as zero (its kZeroThreshold).
LIGHTGBM_ZERO = float(np.float32(1e-35))
MISSING_ZERO, MISSING_NAN = 1, 2  # decision_type bits 2-3
# Trees whose paths hold more distinct features than this are left to LightGBM: the leaf
# tables have 2^p rows (LightGBM's default num_leaves of 31 gives paths of at most 30).
MAX_PATH_FEATURES = 16
# Category codes above this are in no split's set (a model with a million categories would need more).
_MAX_CODE = 2**20
# Rows are grouped by a tree's whole decision pattern only when it fits in a lookup table.
_MAX_PATTERN_BITS = 20


@dataclass
class Leaf:
    value: float
    nodes: np.ndarray  # the internal nodes on the path from the root
    goes_left: np.ndarray  # the side the path takes at each of them
    position: np.ndarray  # per path node, which of the path's distinct features it splits on
    features: np.ndarray  # the path's distinct features (model column numbers)
    z: np.ndarray  # per distinct feature, the training rows' share that followed the path on it
    table: np.ndarray | None = None  # (p, 2^p): phi of each feature per bit pattern, times the leaf value


@dataclass(frozen=True)
class Tree:
    split_feature: np.ndarray
    threshold: np.ndarray
    decision_type: np.ndarray
    cat_bitsets: tuple[np.ndarray, ...]  # per categorical split (threshold = its number): uint32 words
    leaves: tuple[Leaf, ...]

    @property
    def used(self) -> np.ndarray:
        return np.unique(self.split_feature)


def parse_trees(model_text: str) -> list[Tree] | None:
    """The trees of a LightGBM model text, or None when one has paths too long for the tables."""
    trees = []
    for fields in tree_fields(model_text):
        if "split_feature" not in fields:  # a single leaf explains nothing
            continue
        tree = _tree(fields)
        if tree is None:
            return None
        trees.append(tree)
    _fill_tables([leaf for tree in trees for leaf in tree.leaves])
    return trees


def tree_fields(model_text: str) -> list[dict[str, str]]:
    """Each tree's ``key=value`` lines of a LightGBM model text, in the model's order."""
    blocks = (block.split("\n\n")[0].split("\n")[1:] for block in model_text.split("\nTree=")[1:])  # ends at a blank line
    return [dict(line.split("=", 1) for line in lines if "=" in line) for lines in blocks]


def numbers(fields: dict[str, str], name: str, dtype: str) -> np.ndarray:
    """One of a tree's number lists (empty when the tree has none)."""
    return np.array(fields[name].split(), dtype=dtype) if fields.get(name, "").strip() else np.zeros(0, dtype)


def category_bitsets(fields: dict[str, str]) -> tuple[np.ndarray, ...]:
    """Per categorical split of a tree, the uint32 words of its category bitset."""
    boundaries = numbers(fields, "cat_boundaries", "int64")
    words = numbers(fields, "cat_threshold", "uint64").astype(np.uint32)
    return tuple(words[boundaries[k]:boundaries[k + 1]] for k in range(len(boundaries) - 1))


def _tree(fields: dict[str, str]) -> Tree | None:
    split_feature = numbers(fields, "split_feature", "int64")
    left, right = numbers(fields, "left_child", "int64"), numbers(fields, "right_child", "int64")
    leaf_value, leaf_count = numbers(fields, "leaf_value", "float64"), numbers(fields, "leaf_count", "float64")
    internal_count = numbers(fields, "internal_count", "float64")
    bitsets = category_bitsets(fields)

    def count(child: int) -> float:
        return internal_count[child] if child >= 0 else leaf_count[~child]

    leaves = []
    stack: list[tuple[int, list[int], list[bool]]] = [(0, [], [])]
    while stack:  # a walk over the tree's ~30 nodes, once per model load
        node, nodes, sides = stack.pop()
        if node < 0:
            leaf = _leaf(float(leaf_value[~node]), nodes, sides, split_feature, left, right, count)
            if leaf is None:
                return None
            leaves.append(leaf)
            continue
        stack.append((int(left[node]), [*nodes, node], [*sides, True]))
        stack.append((int(right[node]), [*nodes, node], [*sides, False]))
    return Tree(split_feature, numbers(fields, "threshold", "float64"), numbers(fields, "decision_type", "int64"),
                bitsets, tuple(leaves))


def _leaf(value, nodes, goes_left, split_feature, left, right, count) -> Leaf | None:
    # Plain Python: a path has a few nodes, where numpy's per-call cost would dominate.
    path_features = [int(split_feature[n]) for n in nodes]
    features = sorted(set(path_features))
    if len(features) > MAX_PATH_FEATURES:
        return None
    index = {f: i for i, f in enumerate(features)}
    position = [index[f] for f in path_features]
    # z_j: the share of the training rows at each split on j that went the path's way, multiplied.
    z = [1.0] * len(features)
    for j, n, side in zip(position, nodes, goes_left):
        z[j] *= count(int(left[n] if side else right[n])) / count(int(n))
    return Leaf(value, np.asarray(nodes, dtype=np.int64), np.asarray(goes_left, dtype=bool),
                np.asarray(position, dtype=np.int64), np.asarray(features, dtype=np.int64), np.asarray(z))


def _fill_tables(leaves: list[Leaf]) -> None:
    """Each leaf's table, computed for all leaves with as many path features at once."""
    by_size: dict[int, list[Leaf]] = {}
    for leaf in leaves:
        by_size.setdefault(len(leaf.features), []).append(leaf)
    for p, group in by_size.items():  # a loop over the few path lengths
        bits = ((np.arange(2**p)[:, None] >> np.arange(p)) & 1).astype("float64")  # (patterns, p)
        t, w = np.polynomial.legendre.leggauss(p // 2 + 1)  # exact for the integrand's degree p - 1
        t, w = (t + 1) / 2, w / 2
        chunk = max(1, 2**22 // (len(t) * len(bits) * p))  # bounded memory for long paths
        for start in range(0, len(group), chunk):
            part = group[start:start + chunk]
            z = np.stack([leaf.z for leaf in part])[:, None, None, :]  # (leaves, 1, 1, p)
            factor = bits[None, None] * t[None, :, None, None] + (1 - t)[None, :, None, None] * z
            # The product over j != i: prefix times suffix products (no division by a zero factor).
            ones = np.ones_like(factor[..., :1])
            before = np.cumprod(np.concatenate([ones, factor[..., :-1]], axis=-1), axis=-1)
            after = np.cumprod(np.concatenate([ones, factor[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
            integral = np.einsum("q,lqkp->lkp", w, before * after)  # (leaves, patterns, p)
            values = np.array([leaf.value for leaf in part])[:, None, None]
            tables = values * (bits[None] - z[:, 0]) * integral
            for leaf, table in zip(part, tables):
                leaf.table = np.ascontiguousarray(table.T)


class Column:
    """One feature's values as the decisions read them, each form made once (when a split needs it)."""

    def __init__(self, values: np.ndarray) -> None:
        self.value = values  # as given (NaN kept): "missing is NaN" splits
        self.is_nan = np.isnan(values)

    @cached_property
    def zeroed(self) -> np.ndarray:  # NaN read as 0, as LightGBM reads it for the other splits
        return np.where(self.is_nan, 0.0, self.value)

    @cached_property
    def is_zero(self) -> np.ndarray:  # inside LightGBM's zero band: "missing is zero" splits
        return (self.zeroed >= -LIGHTGBM_ZERO) & (self.zeroed <= LIGHTGBM_ZERO)

    @cached_property
    def code(self) -> np.ndarray:
        """1 + the value as a category code; 0 for NaN or negative."""
        # static_cast<int> truncates toward zero, and is negative for NaN on x86: both go right.
        zeroed = self.zeroed
        return np.where(self.is_nan | (zeroed <= -1), -1, np.trunc(np.clip(zeroed, -1, _MAX_CODE))).astype(np.int64) + 1

    @cached_property
    def max_code(self) -> int:
        return int(self.code.max(initial=0))


def goes_left(tree: Tree, node: int, col: Column) -> np.ndarray:
    """LightGBM's decision at ``node`` for every row (True: left), as its C++ ``Decision`` takes it."""
    decision = int(tree.decision_type[node])
    missing, default_left = (decision >> 2) & 3, bool(decision & 2)
    if decision & 1:  # categorical: left when the code is in the split's bitset
        words = tree.cat_bitsets[int(tree.threshold[node])]
        in_set = ((words[:, None] >> np.arange(32, dtype=np.uint32)) & 1).ravel() == 1
        by_code = np.zeros(max(col.max_code, len(in_set)) + 1, dtype=bool)  # code 0: missing, never in a set
        by_code[1:len(in_set) + 1] = in_set
        return by_code[col.code]
    if missing == MISSING_NAN:
        below = col.value <= tree.threshold[node]  # False for NaN
        return below | col.is_nan if default_left else below
    below = col.zeroed <= tree.threshold[node]
    if missing == MISSING_ZERO:
        return below | col.is_zero if default_left else below & ~col.is_zero
    return below


def tree_contributions(trees: list[Tree], values: np.ndarray, threads: int = 1) -> np.ndarray:
    """(n_features, n_rows) summed TreeSHAP values of ``trees`` for ``values`` (n_rows, n_features),
    feature-major (a tree adds to a few features only).

    ``threads``: the trees are explained, then the features summed, on this many threads (numpy
    lets go of the GIL); each feature still adds its trees in model order, so the result is the
    same bit for bit whatever the number.
    """
    n_rows, n_features = values.shape
    total = np.zeros((n_features, n_rows))
    used = np.unique(np.concatenate([tree.split_feature for tree in trees])) if trees else []
    columns = {int(f): Column(np.ascontiguousarray(values[:, f])) for f in used}  # a loop over ~60 features
    for column in columns.values():  # every form made before the threads share the columns
        column.zeroed, column.is_zero, column.code, column.max_code  # noqa: B018
    explained = _in_parts(threads, trees, lambda part: [_explain_rows(tree, columns, n_rows) for tree in part])

    def add(features: list[int]) -> None:
        for tree_phi, row_pattern in explained:  # a loop over the model's trees, in order
            for f in features:
                if f in tree_phi:
                    total[f] += tree_phi[f] if row_pattern is None else tree_phi[f][row_pattern]

    # Features split so that each part adds about as many (tree, feature) terms.
    load = np.bincount([f for tree_phi, _ in explained for f in tree_phi], minlength=n_features)
    order = [int(f) for f in np.argsort(-load, kind="stable") if load[f]]
    _in_parts(threads, order, lambda part: add(part), interleave=True)
    return total


def _explain_rows(tree: Tree, columns: dict[int, Column], n_rows: int) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
    """A tree's TreeSHAP values per feature it splits on: (per feature the values of each
    decision pattern, each row's pattern number), or (per feature each row's value, None)."""
    n_nodes = len(tree.split_feature)
    decisions = np.empty((n_nodes, n_rows), dtype=bool)
    for node, f in enumerate(tree.split_feature):  # a loop over the tree's few splits
        decisions[node] = goes_left(tree, node, columns[int(f)])
    if n_nodes <= _MAX_PATTERN_BITS and 2**n_nodes < 4 * n_rows:
        # Explain each distinct decision pattern once, then take the values back to the rows.
        pattern = _patternnumbers(decisions)
        seen = np.flatnonzero(np.bincount(pattern, minlength=2**n_nodes))
        number = np.zeros(2**n_nodes, dtype=np.int32)
        number[seen] = np.arange(len(seen), dtype=np.int32)
        explained = _explain(tree, ((seen[None, :] >> np.arange(n_nodes)[:, None]) & 1).astype(bool))
        return explained, number[pattern]
    return _explain(tree, decisions), None


def _in_parts(threads: int, items: list, work, interleave: bool = False) -> list:
    """``work`` of ``items`` split into ``threads`` parts (consecutive, or every n-th with
    ``interleave``), run on that many threads; the parts' results concatenated in item order."""
    if threads <= 1 or len(items) < 2:
        return work(items) or []
    if interleave:
        parts = [items[k::threads] for k in range(threads)]
    else:
        bounds = np.linspace(0, len(items), threads + 1).astype(int)
        parts = [items[bounds[k]:bounds[k + 1]] for k in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(work, parts))
    return [] if interleave else [item for result in results for item in result]


def _patternnumbers(decisions: np.ndarray) -> np.ndarray:
    """Per row (column of ``decisions``), the number whose bit ``node`` is that node's decision."""
    pattern = np.zeros(decisions.shape[1], dtype=np.int32)
    for node in range(decisions.shape[0]):  # a loop over the tree's few splits (packbits on axis 0 is slower)
        pattern += decisions[node] * np.int32(1 << node)
    return pattern


def _explain(tree: Tree, decisions: np.ndarray) -> dict[int, np.ndarray]:
    """Per feature the tree splits on, its TreeSHAP value for each column of ``decisions``
    (n_nodes, n_cases): the sum over leaves of each leaf's table at the case's bit pattern."""
    out = {int(f): np.zeros(decisions.shape[1]) for f in tree.used}
    for leaf in tree.leaves:  # a loop over the tree's leaves
        satisfied = decisions[leaf.nodes] == leaf.goes_left[:, None]  # (path nodes, cases)
        bit = np.ones((len(leaf.features), decisions.shape[1]), dtype=bool)
        for k, j in enumerate(leaf.position):  # a loop over the path's few nodes
            bit[j] &= satisfied[k]
        code = (bit.astype(np.int64) << np.arange(len(leaf.features))[:, None]).sum(axis=0)
        for j, f in enumerate(leaf.features):
            out[int(f)] += leaf.table[j][code]
    return out
