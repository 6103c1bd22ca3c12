"""The network as the matcher sees it: organisations, statements, lexical vectors, and
a dense scorer that answers similarity questions (numpy here, SQL on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from matcher.encoders import FloatMatrix, LexicalEncoder
from matcher.scoring import group_starts
from matcher.territory import Place

KINDS = ("competency", "need")
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class OrganisationRecord:
    id: int
    name: str
    kind: str
    places: tuple[Place, ...]


@dataclass(frozen=True)
class StatementRecord:
    id: int
    organisation_id: int
    kind: str
    text: str


@dataclass
class StatementTable:
    """Statements of one kind, sorted by organisation position (groups are contiguous)."""

    ids: IntArray
    org_pos: IntArray
    texts: list[str]
    lexical: Any  # scipy CSR, rows aligned with ids
    groups: IntArray = field(init=False)
    starts: IntArray = field(init=False)
    id_pos: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.groups, self.starts = group_starts(self.org_pos)
        self.id_pos = {int(i): p for p, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


class DenseScorer(Protocol):
    """Dense cosine similarities between query vectors and the network's embeddings.

    Entries a scorer did not compute (beyond a top-k) are NaN; the caller floors them.
    """

    def statements(
        self, queries: FloatMatrix, kind: str, org_mask: BoolArray | None
    ) -> FloatMatrix: ...

    def profiles(self, queries: FloatMatrix, org_mask: BoolArray | None) -> FloatMatrix: ...

    def statement_vectors(self, ids: Sequence[int]) -> FloatMatrix: ...

    def profile_vectors(self, org_ids: Sequence[int]) -> FloatMatrix: ...


@dataclass
class NetworkIndex:
    """Everything matching needs that is not a dense vector, built from plain records."""

    space: str
    organisations: list[OrganisationRecord]
    tables: dict[str, StatementTable]
    lexical: LexicalEncoder
    org_pos: dict[int, int]

    @classmethod
    def build(
        cls,
        space: str,
        organisations: Sequence[OrganisationRecord],
        statements: Sequence[StatementRecord],
        *,
        lexical: LexicalEncoder | None = None,
        expand: Any = None,
    ) -> NetworkIndex:
        """`expand` (text -> text, e.g. a thesaurus) is applied before lexical encoding."""
        orgs = sorted(organisations, key=lambda o: o.id)
        org_pos = {o.id: p for p, o in enumerate(orgs)}
        expand = expand or (lambda t: t)
        kept = [s for s in statements if s.organisation_id in org_pos]
        if lexical is None:
            corpus = [expand(s.text) for s in kept] or ["vide"]
            lexical = LexicalEncoder().fit(corpus)
        tables = {}
        for kind in KINDS:
            rows = sorted(
                (s for s in kept if s.kind == kind),
                key=lambda s: (org_pos[s.organisation_id], s.id),
            )
            texts = [s.text for s in rows]
            tables[kind] = StatementTable(
                ids=np.array([s.id for s in rows], dtype=np.int64),
                org_pos=np.array([org_pos[s.organisation_id] for s in rows], dtype=np.int64),
                texts=texts,
                lexical=lexical.transform([expand(t) for t in texts]),
            )
        return cls(space=space, organisations=orgs, tables=tables, lexical=lexical, org_pos=org_pos)

    @property
    def size(self) -> int:
        return len(self.organisations)


class NumpyDenseScorer:
    """Exact similarities from in-memory matrices (the embedded SQLite backend)."""

    def __init__(
        self,
        index: NetworkIndex,
        statement_vectors: dict[int, FloatMatrix],
        profile_vectors: dict[int, FloatMatrix],
        dimension: int,
    ) -> None:
        self.dimension = dimension
        self._by_id = statement_vectors
        self._profile_by_id = profile_vectors
        self._matrices: dict[str, FloatMatrix] = {}
        for kind, table in index.tables.items():
            self._matrices[kind] = self._stack([statement_vectors.get(int(i)) for i in table.ids])
        self._profiles = self._stack([profile_vectors.get(o.id) for o in index.organisations])
        self._has_profile = np.array(
            [o.id in profile_vectors for o in index.organisations], dtype=bool
        )

    def _stack(self, rows: Sequence[FloatMatrix | None]) -> FloatMatrix:
        out = np.zeros((len(rows), self.dimension), dtype=np.float32)
        for i, row in enumerate(rows):
            if row is not None:
                out[i] = row
        return out

    def statements(
        self, queries: FloatMatrix, kind: str, org_mask: BoolArray | None
    ) -> FloatMatrix:
        return np.asarray(queries @ self._matrices[kind].T, dtype=np.float32)

    def profiles(self, queries: FloatMatrix, org_mask: BoolArray | None) -> FloatMatrix:
        sims = np.asarray(queries @ self._profiles.T, dtype=np.float32)
        sims[:, ~self._has_profile] = np.nan
        return sims

    def statement_vectors(self, ids: Sequence[int]) -> FloatMatrix:
        return self._stack([self._by_id.get(int(i)) for i in ids])

    def profile_vectors(self, org_ids: Sequence[int]) -> FloatMatrix:
        return self._stack([self._profile_by_id.get(int(i)) for i in org_ids])
