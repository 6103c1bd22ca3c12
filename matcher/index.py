"""The network as the matcher sees it: organisations, statements, lexical vectors, and
a dense scorer that answers similarity questions (numpy here, SQL on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy import sparse

from matcher.encoders import FloatMatrix, LexicalEncoder, WordEncoder, word_stems
from matcher.scoring import group_rows, group_starts
from matcher.territory import Place

if TYPE_CHECKING:
    from matcher.delta import Changes, Delta

KINDS = ("competency", "need")
# Embedding roles besides the statement kinds: an organisation's whole profile (also a
# `DenseScorer.pairs` target) and a call's requirement.
PROFILE = "profile"
REQUIREMENT = "requirement"
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class OrganisationRecord:
    id: int
    name: str
    kind: str
    places: tuple[Place, ...]
    description: str = ""


@dataclass(frozen=True)
class StatementRecord:
    id: int
    organisation_id: int
    kind: str
    text: str
    content_hash: str = ""


class StackedRows:
    """The rows of a sparse matrix kept as a base (with its transpose, for products) and
    the rows added since, in the order `sources` gives (row r is row `sources[r]` of the
    base stacked over the added rows). A delta moves, drops and adds rows by changing
    `sources` and the small added part, without copying or transposing the base.
    """

    def __init__(
        self,
        base: Any,
        added: Any = None,
        sources: IntArray | None = None,
        *,
        base_t: Any = None,
        transposed: bool = True,
    ) -> None:
        self.base = sparse.csr_matrix(base)
        width = self.base.shape[1]
        self.added = (
            sparse.csr_matrix((0, width), dtype=self.base.dtype)
            if added is None
            else sparse.csr_matrix(added)
        )
        n = self.base.shape[0] + self.added.shape[0]
        self.sources = np.arange(n, dtype=np.int64) if sources is None else sources
        # Transposed: a query multiplies postings only (`dot_t`).
        self.transposed = transposed
        self.base_t = base_t
        if transposed and base_t is None:
            self.base_t = self.base.T.tocsr()
        self.added_t = self.added.T.tocsr() if transposed else None
        self._identity = len(self.sources) == n and bool(np.array_equal(self.sources, np.arange(n)))

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.sources), self.base.shape[1])

    def with_rows(self, added: Any, sources: IntArray) -> StackedRows:
        """Rows `sources` of these rows stacked over `added` (same base, no copy of it)."""
        n, n_base = len(self.sources), self.base.shape[0]
        added = sparse.csr_matrix(added)
        composed = np.where(
            sources < n,
            self.sources[np.minimum(sources, max(n - 1, 0))] if n else sources,
            n_base + self.added.shape[0] + (sources - n),
        ).astype(np.int64)
        stacked_added = (
            sparse.vstack([self.added, added], format="csr") if added.shape[0] else self.added
        )
        return StackedRows(
            self.base, stacked_added, composed, base_t=self.base_t, transposed=self.transposed
        )

    def __getitem__(self, rows: Any) -> Any:
        """Rows as a CSR matrix (one row for an integer)."""
        src = np.atleast_1d(self.sources[rows])
        n_base = self.base.shape[0]
        in_base = src < n_base
        if in_base.all():
            return self.base[src]
        if not in_base.any():
            return self.added[src - n_base]
        parts = sparse.vstack(
            [self.base[src[in_base]], self.added[src[~in_base] - n_base]], format="csr"
        )
        order = np.empty(len(src), dtype=np.int64)
        n_in = int(np.count_nonzero(in_base))
        order[np.flatnonzero(in_base)] = np.arange(n_in)
        order[np.flatnonzero(~in_base)] = n_in + np.arange(len(src) - n_in)
        return parts[order]

    def dot_t(self, rows: Any) -> npt.NDArray[np.float64]:
        """rows @ self.T as a dense (len(rows) × len(self)) array."""
        if not self.transposed:
            raise ValueError("these rows were kept without their transpose")
        out = np.asarray((rows @ self.base_t).toarray(), dtype=np.float64)
        if self.added.shape[0]:
            out = np.hstack([out, np.asarray((rows @ self.added_t).toarray(), np.float64)])
        return out if self._identity else out[:, self.sources]

    def tocsr(self) -> Any:
        """The rows as one CSR matrix (a copy unless no delta moved them)."""
        if self._identity and not self.added.shape[0]:
            return self.base
        return sparse.vstack([self.base, self.added], format="csr")[self.sources]

    def toarray(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.tocsr().toarray(), dtype=np.float64)


@dataclass
class StatementTable:
    """Statements of one kind, sorted by organisation position (groups are contiguous)."""

    ids: IntArray
    org_pos: IntArray
    texts: list[str]
    hashes: list[str]
    # Raw n-gram counts and tf-idf rows, aligned with ids (given as CSR or StackedRows).
    counts: StackedRows
    lexical: StackedRows
    groups: IntArray = field(init=False)
    starts: IntArray = field(init=False)

    _id_order: IntArray = field(init=False)

    def __post_init__(self) -> None:
        self.groups, self.starts = group_starts(self.org_pos)
        if not isinstance(self.counts, StackedRows):
            self.counts = StackedRows(self.counts, transposed=False)
        if not isinstance(self.lexical, StackedRows):
            self.lexical = StackedRows(self.lexical)
        self._id_order = np.argsort(self.ids, kind="stable")

    def lexical_dot(self, rows: Any) -> npt.NDArray[np.float64]:
        """Lexical cosines of tf-idf rows (CSR) with every statement of the table."""
        return self.lexical.dot_t(rows)

    def positions(self, ids: npt.ArrayLike) -> IntArray:
        """Rows of the given statement ids, -1 for ids not in the table (vectorised)."""
        return lookup_positions(self.ids, self._id_order, ids)

    def rows_of(self, org_position: int) -> IntArray:
        """The rows of one organisation (contiguous: the table is sorted by organisation)."""
        return group_rows(self.org_pos, org_position)

    def __len__(self) -> int:
        return len(self.ids)


def lookup_positions(keys: IntArray, order: IntArray, wanted: npt.ArrayLike) -> IntArray:
    """Positions in `keys` (sorted by `order`) of each wanted key, -1 where absent."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if keys.size == 0:
        return np.full(wanted.shape, -1, dtype=np.int64)
    sorted_keys = keys[order]
    at = np.clip(np.searchsorted(sorted_keys, wanted), 0, keys.size - 1)
    found = sorted_keys[at] == wanted
    return np.where(found, order[at], -1).astype(np.int64)


def take_rows(previous: Any, added: Any, sources: IntArray) -> Any:
    """Rows `sources` of `previous` stacked over `added` (numpy arrays or CSR matrices of
    the same width); `previous` itself when the sources are all of its rows in order."""
    n = previous.shape[0]
    if len(sources) == n and np.array_equal(sources, np.arange(n)):
        return previous
    if sparse.issparse(previous):
        stacked = sparse.vstack([previous, added], format="csr") if added.shape[0] else previous
        if len(sources) == stacked.shape[0] and np.array_equal(sources, np.arange(len(sources))):
            return stacked
        return stacked[sources]
    # Sources run in long increasing stretches (a delta moves few rows): copied by slices.
    out = np.empty((len(sources), *previous.shape[1:]), dtype=previous.dtype)
    if len(sources) == 0:
        return out
    breaks = np.flatnonzero((np.diff(sources) != 1) | ((sources[1:] >= n) != (sources[:-1] >= n)))
    starts = np.r_[0, breaks + 1].astype(np.int64)
    ends = np.r_[breaks + 1, len(sources)].astype(np.int64)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        first = int(sources[start])
        if first < n:
            out[start:end] = previous[first : first + end - start]
        else:
            out[start:end] = added[first - n : first - n + end - start]
    return out


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


@dataclass
class NetworkIndex:
    """Everything matching needs that is not a dense vector, built from plain records."""

    space: str
    organisations: list[OrganisationRecord]
    tables: dict[str, StatementTable]
    lexical: LexicalEncoder
    org_pos: dict[int, int]
    words: WordEncoder | None = None  # word stems of whole profiles
    profile_words: Any = None  # scipy CSR, one row per organisation
    need_words: Any = None  # scipy CSR, word stems of each need (rows of the need table)
    statement_stems: dict[str, list[str]] = field(default_factory=dict)  # by content hash
    # Word stems of each organisation's whole profile (description, then competencies),
    # aligned with `organisations`: what `words` was fitted on, kept for deltas.
    profile_tokens: list[list[str]] = field(default_factory=list)
    # Statements and organisations added, removed or replaced since the lexical idf, the
    # word-stem weights (and the caller's calibration) were last fitted: see matcher.delta.
    changed_since_fit: int = 0
    profile_words_t: Any = field(init=False)  # transposed: a query walks postings only
    org_ids: IntArray = field(init=False)
    _org_order: IntArray = field(init=False)

    def __post_init__(self) -> None:
        self.org_ids = np.array([o.id for o in self.organisations], dtype=np.int64)
        self._org_order = np.argsort(self.org_ids, kind="stable")
        self.profile_words_t = None if self.profile_words is None else self.profile_words.T.tocsr()

    def org_positions(self, ids: npt.ArrayLike) -> IntArray:
        """Positions of the given organisation ids, -1 for ids not in the index."""
        return lookup_positions(self.org_ids, self._org_order, ids)

    @classmethod
    def build(
        cls,
        space: str,
        organisations: Sequence[OrganisationRecord],
        statements: Sequence[StatementRecord],
        *,
        expand: Any = None,
        previous: NetworkIndex | None = None,
    ) -> NetworkIndex:
        """`expand` (text -> text, e.g. a thesaurus) is applied before lexical encoding.

        With `previous`, the n-gram counts of statements it already had (same content
        hash) are reused: a rebuild after a few writes only reads the new texts.
        """
        orgs = sorted(organisations, key=lambda o: o.id)
        org_pos = {o.id: p for p, o in enumerate(orgs)}
        expand = expand or (lambda t: t)
        kept = [s for s in statements if s.organisation_id in org_pos]
        lexical = LexicalEncoder()
        rows_by_kind = {
            kind: sorted(
                (s for s in kept if s.kind == kind),
                key=lambda s: (org_pos[s.organisation_id], s.id),
            )
            for kind in KINDS
        }
        # Rows of counts come from one source matrix: the previous index's (reused by
        # content hash) stacked over the counts of the texts it did not have.
        sources: list[Any] = []
        known: dict[str, int] = {}
        offset = 0
        if previous is not None and previous.space == space:
            for table in previous.tables.values():
                for row, h in enumerate(table.hashes):
                    if h:
                        known.setdefault(h, offset + row)
                sources.append(table.counts.tocsr())
                offset += table.counts.shape[0]
        new_texts: dict[str, int] = {}
        fresh: list[str] = []
        expanded: dict[str, str] = {}  # this build's expanded texts, by key
        for rows in rows_by_kind.values():
            for s in rows:
                key = s.content_hash or f"id:{s.id}"
                if key not in known and key not in new_texts:
                    new_texts[key] = offset + len(fresh)
                    fresh.append(expand(s.text))
                    expanded[key] = fresh[-1]
        if fresh:
            sources.append(lexical.counts(fresh))
        source = (
            sparse.vstack(sources, format="csr")
            if sources
            else sparse.csr_matrix((0, lexical.n_features), dtype=np.float64)
        )
        counts_by_kind = {}
        for kind, rows in rows_by_kind.items():
            order = [
                known.get(s.content_hash)
                if s.content_hash in known
                else new_texts[s.content_hash or f"id:{s.id}"]
                for s in rows
            ]
            counts_by_kind[kind] = source[np.array(order, dtype=np.int64)] if order else source[:0]
        all_counts = sparse.vstack(list(counts_by_kind.values()), format="csr")
        if all_counts.shape[0] == 0:
            all_counts = lexical.counts(["vide"])
        lexical.fit_counts(all_counts)
        tables = {
            kind: StatementTable(
                ids=np.array([s.id for s in rows], dtype=np.int64),
                org_pos=np.array([org_pos[s.organisation_id] for s in rows], dtype=np.int64),
                texts=[s.text for s in rows],
                hashes=[s.content_hash for s in rows],
                counts=counts_by_kind[kind],
                lexical=lexical.weight(counts_by_kind[kind]),
            )
            for kind, rows in rows_by_kind.items()
        }
        # Whole profiles (description and competencies), for the word-stem signal: the
        # stems of each competency are kept by content hash, so a rebuild only reads the
        # texts it did not have (and the expansion done for the n-grams is not redone).
        known_stems = (
            previous.statement_stems if previous is not None and previous.space == space else {}
        )
        statement_stems: dict[str, list[str]] = {}

        def stems_of(s: StatementRecord) -> list[str]:
            key = s.content_hash or f"id:{s.id}"
            stems = statement_stems.get(key) or known_stems.get(key)
            if stems is None:
                stems = word_stems(expanded.get(key) or expand(s.text))
            statement_stems[key] = stems
            return stems

        by_org: dict[int, list[str]] = {}
        for s in rows_by_kind["competency"]:
            by_org.setdefault(s.organisation_id, []).extend(stems_of(s))
        # Needs are read against whole profiles too (partner suggestions), once per build
        # rather than on every request.
        need_stems = [stems_of(s) for s in rows_by_kind["need"]]
        documents = [
            (word_stems(expand(o.description)) if o.description else []) + by_org.get(o.id, [])
            for o in orgs
        ]
        words = WordEncoder().fit_tokens(documents)
        return cls(
            space=space,
            organisations=orgs,
            tables=tables,
            lexical=lexical,
            org_pos=org_pos,
            words=words,
            profile_words=words.transform_tokens(documents) if documents else None,
            need_words=words.transform_tokens(need_stems) if need_stems else None,
            statement_stems=statement_stems,
            profile_tokens=documents,
        )

    def with_changes(self, changes: Changes, **options: Any) -> Delta:
        """This index with the changed organisations' rows replaced (see
        `matcher.delta.apply_changes`)."""
        from matcher.delta import apply_changes

        return apply_changes(self, changes, **options)

    def profile_word_similarity(self, text: str) -> npt.NDArray[np.float64]:
        """Word-stem cosine of a (thesaurus-expanded) text with every organisation's profile."""
        if self.words is None or self.profile_words_t is None:
            return np.zeros(len(self.organisations), dtype=np.float64)
        row = self.words.transform([text])
        return np.asarray((row @ self.profile_words_t).toarray()[0], dtype=np.float64)

    def need_profile_words(self, rows: IntArray) -> npt.NDArray[np.float64]:
        """Word-stem cosines of the needs at `rows` (positions in the need table) with every
        organisation's profile: (len(rows) × n_organisations) float64, in [0, 1]. Equal to
        `profile_word_similarity` of each need's expanded text, computed at build time."""
        if self.need_words is None or self.profile_words_t is None or len(rows) == 0:
            return np.zeros((len(rows), len(self.organisations)), dtype=np.float64)
        return np.asarray(
            (self.need_words[rows] @ self.profile_words_t).toarray(), dtype=np.float64
        )

    @property
    def size(self) -> int:
        return len(self.organisations)

    @property
    def rows(self) -> int:
        """Statements in the index, every kind."""
        return sum(len(t) for t in self.tables.values())


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
        sims = np.asarray(queries @ self._profiles.T, dtype=np.float32)
        sims[:, ~self._has_profile] = np.nan
        if org_mask is not None:
            sims[:, ~org_mask] = np.nan
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
