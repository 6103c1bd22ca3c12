"""The network as the matcher sees it: organisations, statements and their lexical and
word-stem vectors, built from plain records. Dense vectors live with the scorers
(`matcher.dense`; PostgreSQL's in `api.matching.pgvector`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from matcher.encoders import LexicalEncoder, WordEncoder, word_stems
from matcher.scoring import group_rows, group_starts
from matcher.spelling import word_counts
from matcher.territory import Place

if TYPE_CHECKING:
    from matcher.delta import Changes, Delta

KINDS = ("competency", "need")
# Embedding roles besides the statement kinds: an organisation's whole profile (also a
# `DenseScorer.pairs` target) and a call's requirement, read as a passage and, as the
# call fit reads it, as a query.
PROFILE = "profile"
REQUIREMENT = "requirement"
REQUIREMENT_QUERY = "requirement_query"
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
    # How often each folded word occurs in the statements and descriptions: what a
    # misspelt query word is corrected towards (`matcher.spelling`).
    vocabulary: Counter[str] = field(default_factory=Counter)
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
            vocabulary=word_counts(
                [s.text for s in kept] + [o.description for o in orgs if o.description]
            ),
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
