"""Dense similarities computed by PostgreSQL (pgvector): exact for small requests, top-k
through the HNSW index of one embedding space otherwise, in one round trip per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.matching.repository import vectors_query
from matcher.encoders import FloatMatrix
from matcher.index import PROFILE, BoolArray, IntArray, NetworkIndex, lookup_positions
from matcher.scoring import FloatArray
from models import Organisation, Statement


def _raw_literal(value: str) -> str:
    """A literal for SQL sent straight to psycopg, where % starts a placeholder."""
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


class PgDenseScorer:
    """Dense similarities computed by PostgreSQL: top-k with the HNSW index, per query."""

    def __init__(
        self,
        session: Session,
        space: str,
        index: NetworkIndex,
        dimension: int,
        top_k: int,
        exact_below: int,
    ):
        """Scores against the embeddings of `space` (model + thesaurus + normalisation):
        `top_k` statements per query through HNSW, or every row when a request compares at
        most `exact_below` (query, statement) pairs."""
        self.session = session
        self.space = space
        self.index = index
        self.dimension = dimension
        self.top_k = top_k
        self.exact_below = exact_below
        self._ef_search: int | None = None

    def _prepare(self, k: int) -> None:
        """HNSW settings for this transaction, once per scorer (one round trip)."""
        ef_search = max(40, min(1000, k))
        if self._ef_search == ef_search:
            return
        self.session.execute(
            text(
                "SELECT set_config('hnsw.ef_search', :ef, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)"
            ),
            {"ef": str(ef_search)},
        )
        self._ef_search = ef_search

    def _lateral(
        self,
        source: str,
        where: str,
        n_rows: int,
        n_queries: int,
        top_k: int | None,
        params: dict[str, Any],
        key: str = "k",
    ) -> tuple[str, int | None]:
        """The per-query part and the k it takes (None: exact). Every row when the answer
        is small enough (at most `exact_below` query × row pairs travel back), else the top
        k through the HNSW index (one index scan per query). `q.v` is the query vector;
        the caller runs `_prepare` with the largest k before the statement."""
        dim = int(self.dimension)
        distance = f"e.vector::vector({dim}) <=> q.v"
        if n_rows * n_queries <= self.exact_below or (top_k is not None and top_k >= n_rows):
            return f"SELECT {source} AS id, 1 - ({distance}) AS sim FROM {where}", None
        k = min(top_k or self.top_k, n_rows)
        params[key] = k
        # The HNSW index holds half-precision vectors (half the pages to read); the
        # similarity returned is still computed in full precision.
        return (
            f"SELECT {source} AS id, 1 - ({distance}) AS sim FROM {where} "
            f"ORDER BY e.vector::halfvec({dim}) <=> q.v::halfvec({dim}) LIMIT %({key})s",
            k,
        )

    def _run(
        self,
        queries: FloatMatrix,
        source: str,
        where: str,
        params: dict[str, Any],
        n_rows: int,
        top_k: int | None = None,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """(query rows, ids, similarities) for every query vector in one round trip."""
        dim = int(self.dimension)
        params = dict(params)
        lateral, k = self._lateral(source, where, n_rows, len(queries), top_k, params)
        if k is not None:
            self._prepare(k)
        params["qs"] = "{" + ",".join(f'"{_vector_literal(v)}"' for v in queries) + "}"
        sql = f"""
            SELECT q.i, x.id, x.sim
            FROM unnest(CAST(%(qs)s AS vector({dim})[])) WITH ORDINALITY AS q(v, i)
            CROSS JOIN LATERAL ({lateral}) x
        """
        query_rows, ids, sims = self._fetch(sql, params, 3)
        return query_rows.astype(np.int64) - 1, ids.astype(np.int64), sims

    def _fetch(self, sql: str, params: dict[str, Any], width: int) -> list[np.ndarray]:
        """Run SQL on the request's connection (psycopg placeholders) and return one
        numpy array per column: thousands of rows come back without a Row object each."""
        self.session.flush()  # the raw cursor does not autoflush
        driver = self.session.connection().connection.driver_connection
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return [np.zeros(0) for _ in range(width)]
        table = np.array(rows, dtype=np.float64).reshape(-1, width)  # ids are exact in float64
        return [table[:, i] for i in range(width)]

    def _statements_where(
        self, kind: str, org_mask: BoolArray | None, params: dict[str, Any]
    ) -> tuple[str, int]:
        """FROM/WHERE for the network statements of one kind (inside `org_mask`), and
        how many rows that is."""
        table = self.index.tables[kind]
        # Literals, not parameters: the planner must see that the partial HNSW index of
        # this space and role applies (they are the engine's own strings, quoted).
        where = (
            "embeddings e JOIN statements s ON s.content_hash = e.content_hash "
            f"WHERE e.model = {_raw_literal(self.space)} AND e.role = {_raw_literal(kind)} "
            f"AND s.kind = {_raw_literal(kind)} AND s.visibility = 'network'"
        )
        if org_mask is None:
            return where, len(table)
        params["orgs"] = [
            o.id for o, keep in zip(self.index.organisations, org_mask, strict=True) if keep
        ]
        return where + " AND s.organisation_id = ANY(%(orgs)s)", int(
            np.count_nonzero(org_mask[table.org_pos])
        )

    def _profiles_where(
        self, org_mask: BoolArray | None, params: dict[str, Any]
    ) -> tuple[str, int]:
        """FROM/WHERE for the profiles of organisations inside `org_mask` (the top-k is taken
        inside it: a small territory is searched whole), and how many rows that is."""
        where = (
            "embeddings e JOIN organisations o ON o.profile_hash = e.content_hash "
            f"WHERE e.model = {_raw_literal(self.space)} AND e.role = '{PROFILE}'"
        )
        if org_mask is None:
            return where, self.index.size
        params["orgs"] = self.index.org_ids[org_mask].tolist()
        return where + " AND o.id = ANY(%(orgs)s)", int(np.count_nonzero(org_mask))

    def statements(
        self,
        queries: FloatMatrix,
        kind: str,
        org_mask: BoolArray | None,
        top_k: int | None = None,
    ) -> FloatMatrix:
        table = self.index.tables[kind]
        out = np.full((len(queries), len(table)), np.nan, dtype=np.float32)
        if len(table) == 0 or len(queries) == 0:
            return out
        params: dict[str, Any] = {}
        where, n_rows = self._statements_where(kind, org_mask, params)
        rows, ids, sims = self._run(queries, "s.id", where, params, n_rows, top_k)
        pos = table.positions(ids)
        found = pos >= 0
        out[rows[found], pos[found]] = sims[found]
        return out

    def pairs(
        self,
        mine: dict[str, Sequence[int]],
        kinds: Sequence[tuple[str, str]],
        org_mask: BoolArray | None,
        top_k: int | None,
    ) -> dict[tuple[str, str], FloatMatrix]:
        """Every (my_kind, their_kind) in one round trip; my vectors never leave the server.
        `their_kind` may be PROFILE: my statements against organisations' whole profiles
        (columns are organisation positions)."""
        out: dict[tuple[str, str], FloatMatrix] = {}
        parts: list[str] = []
        params: dict[str, Any] = {}
        ks: list[int] = []
        dim = int(self.dimension)
        for p, (my_kind, their_kind) in enumerate(kinds):
            n_cols = (
                self.index.size if their_kind == PROFILE else len(self.index.tables[their_kind])
            )
            out[(my_kind, their_kind)] = np.full(
                (len(mine[my_kind]), n_cols), np.nan, dtype=np.float32
            )
            if not mine[my_kind] or n_cols == 0:
                continue
            if their_kind == PROFILE:
                source = "o.id"
                where, n_rows = self._profiles_where(org_mask, params)
            else:
                source = "s.id"
                where, n_rows = self._statements_where(their_kind, org_mask, params)
            if n_rows == 0:
                continue
            params[f"mine{p}"] = [int(i) for i in mine[my_kind]]
            lateral, k = self._lateral(
                source, where, n_rows, len(mine[my_kind]), top_k, params, key=f"k{p}"
            )
            if k is not None:
                ks.append(k)
            parts.append(
                f"""SELECT {p} AS p, q.id AS mine, x.id, x.sim
                FROM (
                    SELECT s.id, e.vector::vector({dim}) AS v
                    FROM statements s JOIN embeddings e ON e.content_hash = s.content_hash
                    AND e.model = {_raw_literal(self.space)} AND e.role = s.kind
                    WHERE s.id = ANY(%(mine{p})s)
                ) q
                CROSS JOIN LATERAL ({lateral}) x"""
            )
        if not parts:
            return out
        if ks:
            self._prepare(max(ks))
        part_of, mine_ids, their_ids, sims = self._fetch(" UNION ALL ".join(parts), params, 4)
        for p, (my_kind, their_kind) in enumerate(kinds):
            here = part_of == p
            my_ids = np.asarray(mine[my_kind], dtype=np.int64)
            mine_pos = lookup_positions(my_ids, np.argsort(my_ids), mine_ids[here])
            their_pos = (
                self.index.org_positions(their_ids[here])
                if their_kind == PROFILE
                else self.index.tables[their_kind].positions(their_ids[here])
            )
            found = (mine_pos >= 0) & (their_pos >= 0)
            out[(my_kind, their_kind)][mine_pos[found], their_pos[found]] = sims[here][found]
        return out

    def profiles(self, queries: FloatMatrix, org_mask: BoolArray | None) -> FloatMatrix:
        out = np.full((len(queries), self.index.size), np.nan, dtype=np.float32)
        if self.index.size == 0 or len(queries) == 0:
            return out
        params: dict[str, Any] = {}
        where, n_rows = self._profiles_where(org_mask, params)
        if n_rows == 0:
            return out
        rows, ids, sims = self._run(queries, "o.id", where, params, n_rows)
        pos = self.index.org_positions(ids)
        found = pos >= 0
        out[rows[found], pos[found]] = sims[found]
        return out

    def _vectors(
        self, id_column: Any, hash_column: Any, role: Any, ids: Sequence[int]
    ) -> FloatMatrix:
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        if not ids:
            return out
        found: dict[int, FloatMatrix] = dict(
            self.session.execute(
                vectors_query(self.space, id_column, hash_column, role).where(
                    id_column.in_(list(ids))
                )
            ).all()
        )
        for i, key in enumerate(ids):
            if key in found:
                out[i] = found[key]
        return out

    def statement_vectors(self, ids: Sequence[int]) -> FloatMatrix:
        return self._vectors(Statement.id, Statement.content_hash, Statement.kind, ids)

    def profile_vectors(self, org_ids: Sequence[int]) -> FloatMatrix:
        return self._vectors(Organisation.id, Organisation.profile_hash, PROFILE, org_ids)
