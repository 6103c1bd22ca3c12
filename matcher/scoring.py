"""Scoring arithmetic over similarity matrices: pure functions, no I/O.

Rows of a similarity matrix are one organisation's statements (its needs, say); columns
are the statements of every candidate organisation, grouped by organisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def fill_missing(sims: npt.ArrayLike, floor: float) -> FloatArray:
    """Similarities as float64 with the entries a scorer did not compute (NaN, beyond a
    top-k) set to `floor` (the network's mean similarity)."""
    out = np.asarray(sims, dtype=np.float64)
    return np.asarray(np.where(np.isnan(out), floor, out), dtype=np.float64)


def group_starts(group_of_column: Sequence[int] | IntArray) -> tuple[IntArray, IntArray]:
    """For columns sorted by group: (the distinct groups, the index where each starts)."""
    groups = np.asarray(group_of_column, dtype=np.int64)
    if groups.size == 0:
        return groups, groups
    if np.any(groups[1:] < groups[:-1]):
        raise ValueError("columns must be sorted by group")
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return groups[starts], starts.astype(np.int64)


def group_rows(group_of_column: IntArray, group: int) -> IntArray:
    """For columns sorted by group: the columns of one group (empty when it has none)."""
    lo, hi = np.searchsorted(group_of_column, [group, group + 1])
    return np.arange(lo, hi, dtype=np.int64)


def best_per_group(similarity: FloatArray, starts: IntArray) -> FloatArray:
    """For each row and each group of columns, the best similarity (rows × groups)."""
    if similarity.shape[1] == 0 or starts.size == 0:
        return np.zeros((similarity.shape[0], 0))
    return np.maximum.reduceat(similarity, starts, axis=1)


def power_mean(values: FloatArray, power: float, axis: int = 0) -> FloatArray:
    """Generalised mean of values in [0, 1]: power 1 is the mean; higher powers lean
    towards the maximum, so one need answered well counts more than three answered
    half-way."""
    values = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    return np.asarray(np.mean(values**power, axis=axis) ** (1.0 / power), dtype=np.float64)


def coverage(best: FloatArray, *, power: float = 1.0) -> FloatArray:
    """Directional coverage per group: the (power) mean over rows of the best match.

    `best` is rows × groups from `best_per_group`; with no rows, coverage is 0.
    """
    if best.shape[0] == 0:
        return np.zeros(best.shape[1])
    return power_mean(best, power, axis=0)


def harmonic_mean(a: FloatArray, b: FloatArray) -> FloatArray:
    """Elementwise harmonic mean, 0 where either side is 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(total > 0, 2.0 * a * b / np.where(total > 0, total, 1.0), 0.0)
    return np.asarray(out, dtype=np.float64)


def sparse_row_dot(a: sparse.csr_matrix, b: sparse.csr_matrix) -> FloatArray:
    """a @ b.T as a dense (rows of a) × (rows of b) array, for CSR rows over a large
    feature space (hashed n-grams) when `a` has few rows.

    scipy would convert one side to the other orientation, which costs the size of the
    feature space; here `b` is restricted to the features `a` uses, in one pass over b.
    """
    out_shape = (a.shape[0], b.shape[0])
    if a.nnz == 0 or b.nnz == 0:
        return np.zeros(out_shape)
    a = a.copy()
    a.sum_duplicates()  # one entry per (row, feature), so that assignment below is a sum
    features = np.unique(a.indices)
    local = np.full(a.shape[1], -1, dtype=np.int32)
    local[features] = np.arange(features.size)
    dense_a = np.zeros((features.size, a.shape[0]))
    a_rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    dense_a[local[a.indices], a_rows] = a.data
    where = local[b.indices]
    hit = where >= 0
    b_rows = np.repeat(np.arange(b.shape[0]), np.diff(b.indptr))
    indptr = np.r_[0, np.cumsum(np.bincount(b_rows[hit], minlength=b.shape[0]))]
    restricted = sparse.csr_matrix(
        (b.data[hit], where[hit], indptr), shape=(b.shape[0], features.size)
    )
    return np.asarray((restricted @ dense_a).T, dtype=np.float64)
