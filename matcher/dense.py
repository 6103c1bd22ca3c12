"""Dense scorers: the protocol every dense similarity source follows, and the numpy one
(every vector in memory: the embedded SQLite backend, and the reference in tests). The
PostgreSQL scorer (pgvector, in SQL) follows the same protocol in
`api.matching.pgvector`: the matcher itself never sees a database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from matcher.encoders import FloatMatrix
from matcher.index import PROFILE, BoolArray, NetworkIndex, take_rows

if TYPE_CHECKING:
    from matcher.delta import Delta


class DenseScorer(Protocol):
    """Dense cosine similarities between query vectors and the network's embeddings.

    Entries a scorer did not compute (beyond a top-k) are NaN; the caller floors them.
    """

    def statements(
        self, queries: FloatMatrix, kind: str, org_mask: BoolArray | None
    ) -> FloatMatrix: ...

    def profiles(self, queries: FloatMatrix, org_mask: BoolArray | None) -> FloatMatrix:
        """Queries × organisations cosines to whole profiles; NaN for organisations outside
        `org_mask`, without a profile, or beyond a top-k taken inside the mask."""
        ...

    def statement_vectors(self, ids: Sequence[int]) -> FloatMatrix: ...

    def profile_vectors(self, org_ids: Sequence[int]) -> FloatMatrix: ...

    def pairs(
        self,
        mine: dict[str, Sequence[int]],
        kinds: Sequence[tuple[str, str]],
        org_mask: BoolArray | None,
        top_k: int | None,
    ) -> dict[tuple[str, str], FloatMatrix]:
        """For each (my_kind, their_kind): my statements of my_kind (ids, rows in that
        order) against every statement of their_kind, or against every organisation's
        profile when their_kind is PROFILE."""
        ...


class NumpyDenseScorer:
    """Similarities from in-memory matrices (the embedded SQLite backend).

    Exact below `exact_below` statements of a kind. Above, reading every vector for each
    query is memory-bound (100,000 × 512 floats is 200 MB), so a first pass ranks the
    statements on a 128-dimension PCA projection and only the `top_k` best per query are
    scored exactly, as PostgreSQL's HNSW top-k does; the others are NaN.
    """

    def __init__(
        self,
        index: NetworkIndex,
        statement_vectors: dict[int, FloatMatrix],
        profile_vectors: dict[int, FloatMatrix],
        dimension: int,
        *,
        exact_below: int = 20_000,
        top_k: int = 400,
        reduced_dimension: int = 128,
    ) -> None:
        self.dimension = dimension
        self.exact_below = exact_below
        self.top_k = top_k
        self.reduced_dimension = reduced_dimension
        self._profile_by_id = profile_vectors
        self._tables = index.tables
        self._matrices: dict[str, FloatMatrix] = {}
        self._has_vector: dict[str, BoolArray] = {}
        self._reduced: dict[str, tuple[FloatMatrix, FloatMatrix]] = {}
        for kind, table in index.tables.items():
            rows = [statement_vectors.get(int(i)) for i in table.ids]
            self._matrices[kind] = self._stack(rows)
            self._has_vector[kind] = np.array([r is not None for r in rows], dtype=bool)
            self._fit_reduction(kind)
        self._profiles = self._stack([profile_vectors.get(o.id) for o in index.organisations])
        self._has_profile = np.array(
            [o.id in profile_vectors for o in index.organisations], dtype=bool
        )

    def _fit_reduction(self, kind: str) -> None:
        """The PCA first pass of a large table (see the class), fitted on its vectors."""
        matrix = self._matrices[kind]
        self._reduced.pop(kind, None)
        if len(matrix) > self.exact_below and self.reduced_dimension < self.dimension:
            rng = np.random.default_rng(0)
            sample = matrix[rng.choice(len(matrix), size=min(5000, len(matrix)), replace=False)]
            # Principal axes of the vectors (uncentred: cosine geometry is about the origin),
            # from the eigenvectors of the Gram matrix: the same axes as an SVD of the
            # sample, in a fraction of its time (it is redone when a delta refits).
            sample64 = sample.astype(np.float64)
            _, vectors = np.linalg.eigh(sample64.T @ sample64)
            basis = np.ascontiguousarray(
                vectors[:, ::-1][:, : self.reduced_dimension], dtype=np.float32
            )
            self._reduced[kind] = (basis, np.ascontiguousarray(matrix @ basis))

    def with_changes(
        self,
        delta: Delta,
        statement_vectors: dict[int, FloatMatrix],
        profile_vectors: dict[int, FloatMatrix],
    ) -> NumpyDenseScorer:
        """The scorer of `delta.index`: this scorer's rows of unchanged statements and
        organisations, and the given vectors (by statement id, by organisation id) of the
        rows `delta` added. The PCA basis of the first pass is fitted again when the delta
        refitted the index's statistics, else the added rows are projected on it."""
        new = object.__new__(NumpyDenseScorer)
        new.dimension = self.dimension
        new.exact_below = self.exact_below
        new.top_k = self.top_k
        new.reduced_dimension = self.reduced_dimension
        new._tables = delta.index.tables
        new._matrices, new._has_vector, new._reduced = {}, {}, {}
        for kind, sources in delta.sources.items():
            rows = [statement_vectors.get(int(i)) for i in delta.added[kind]]
            added = new._stack(rows)
            new._matrices[kind] = take_rows(self._matrices[kind], added, sources)
            new._has_vector[kind] = take_rows(
                self._has_vector[kind], np.array([r is not None for r in rows], dtype=bool), sources
            )
            if delta.refitted or kind not in self._reduced:
                new._fit_reduction(kind)
            elif len(sources) <= new.exact_below:
                continue
            else:
                basis, reduced = self._reduced[kind]
                new._reduced[kind] = (basis, take_rows(reduced, added @ basis, sources))
        fresh = [
            o
            for source, o in zip(delta.org_sources.tolist(), delta.index.organisations, strict=True)
            if source >= len(self._profiles)
        ]
        new._profile_by_id = dict(self._profile_by_id)
        for org_id in delta.touched.tolist():
            new._profile_by_id.pop(org_id, None)
        new._profile_by_id.update(
            (o.id, profile_vectors[o.id]) for o in fresh if o.id in profile_vectors
        )
        new._profiles = take_rows(
            self._profiles,
            new._stack([profile_vectors.get(o.id) for o in fresh]),
            delta.org_sources,
        )
        new._has_profile = take_rows(
            self._has_profile,
            np.array([o.id in profile_vectors for o in fresh], dtype=bool),
            delta.org_sources,
        )
        return new

    def _stack(self, rows: Sequence[FloatMatrix | None]) -> FloatMatrix:
        out = np.zeros((len(rows), self.dimension), dtype=np.float32)
        for i, row in enumerate(rows):
            if row is not None:
                out[i] = row
        return out

    def statements(
        self,
        queries: FloatMatrix,
        kind: str,
        org_mask: BoolArray | None,
        top_k: int | None = None,
    ) -> FloatMatrix:
        matrix = self._matrices[kind]
        if kind not in self._reduced or len(queries) == 0:
            return np.asarray(queries @ matrix.T, dtype=np.float32)
        out = np.full((len(queries), len(matrix)), np.nan, dtype=np.float32)
        allowed = None if org_mask is None else org_mask[self._tables[kind].org_pos]
        if allowed is not None and np.count_nonzero(allowed) <= self.exact_below:
            # A territory small enough: every statement in it, exactly.
            cols = np.flatnonzero(allowed)
            out[:, cols] = queries @ matrix[cols].T
            return out
        basis, reduced = self._reduced[kind]
        rough = (queries @ basis) @ reduced.T
        k = min(top_k or self.top_k, rough.shape[1])
        if allowed is not None:
            rough[:, ~allowed] = -np.inf
            k = min(k, int(np.count_nonzero(allowed)))
        best = np.argpartition(-rough, k - 1, axis=1)[:, :k]
        candidates = np.unique(best)
        exact = queries @ matrix[candidates].T
        rows = np.arange(len(queries))[:, None]
        keep = np.zeros_like(exact, dtype=bool)
        keep[rows, np.searchsorted(candidates, best)] = True
        out[rows, candidates[None, :].repeat(len(queries), axis=0)] = np.where(keep, exact, np.nan)
        return out

    def pairs(
        self,
        mine: dict[str, Sequence[int]],
        kinds: Sequence[tuple[str, str]],
        org_mask: BoolArray | None,
        top_k: int | None,
    ) -> dict[tuple[str, str], FloatMatrix]:
        return {
            (my_kind, their_kind): (
                self.profiles(self.statement_vectors(mine[my_kind]), org_mask)
                if their_kind == PROFILE
                else self.statements(
                    self.statement_vectors(mine[my_kind]), their_kind, org_mask, top_k
                )
            )
            for my_kind, their_kind in kinds
        }

    def profiles(self, queries: FloatMatrix, org_mask: BoolArray | None) -> FloatMatrix:
        if org_mask is None:
            sims = np.asarray(queries @ self._profiles.T, dtype=np.float32)
            sims[:, ~self._has_profile] = np.nan
            return sims
        # Only the profiles asked for: partner suggestions ask for the hundred or so
        # organisations their statements reached, out of the whole network.
        cols = np.flatnonzero(org_mask & self._has_profile)
        sims = np.full((len(queries), len(self._profiles)), np.nan, dtype=np.float32)
        sims[:, cols] = queries @ self._profiles[cols].T
        return sims

    def statement_vectors(self, ids: Sequence[int]) -> FloatMatrix:
        wanted = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(wanted), self.dimension), dtype=np.float32)
        for kind, table in self._tables.items():
            rows = table.positions(wanted)
            found = np.flatnonzero(rows >= 0)
            found = found[self._has_vector[kind][rows[found]]]
            out[found] = self._matrices[kind][rows[found]]
        return out

    def matrix(self, kind: str) -> FloatMatrix:
        """Every vector of one statement kind: (statements × dimension) float32, rows in
        table order."""
        return self._matrices[kind]

    def vectors_by_text(self) -> dict[tuple[str, str], FloatMatrix]:
        """The vectors held, by (kind, content hash): what a rebuild can reuse."""
        out: dict[tuple[str, str], FloatMatrix] = {}
        for kind, table in self._tables.items():
            matrix = self._matrices[kind]
            has_vector = self._has_vector[kind]
            for row, h in enumerate(table.hashes):
                if h and has_vector[row]:
                    out[(kind, h)] = matrix[row]
        return out

    def profile_vectors(self, org_ids: Sequence[int]) -> FloatMatrix:
        return self._stack([self._profile_by_id.get(int(i)) for i in org_ids])
