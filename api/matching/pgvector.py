"""Dense similarities computed by PostgreSQL (pgvector): exact for small requests, top-k
through the HNSW index of one embedding space otherwise, in one round trip per request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from api.matching.repository import vectors_query
from matcher.dense import NumpyDenseScorer
from matcher.encoders import FloatMatrix
from matcher.index import PROFILE, BoolArray, IntArray, NetworkIndex, lookup_positions
from matcher.scoring import FloatArray
from models import Organisation, Statement


def _raw_literal(value: str) -> str:
    """A literal for SQL sent straight to psycopg, where % starts a placeholder."""
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def _cosines(queries: FloatMatrix, rows: FloatMatrix) -> FloatMatrix:
    """(queries × rows) cosine similarities, as pgvector's `<=>` computes them (float32
    products, divided by both norms; NaN for a zero vector)."""
    norms = np.outer(np.linalg.norm(queries, axis=1), np.linalg.norm(rows, axis=1))
    # einsum, not `@`: a product this small gains nothing from BLAS threads, and on a busy
    # machine waiting for them cost tens of milliseconds at p95.
    products = np.einsum("qd,rd->qr", queries, rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = products / np.where(norms > 0, norms, np.nan)
    return np.asarray(np.clip(out, -1.0, 1.0), dtype=np.float32)


def _from_send(raw: bytes) -> FloatMatrix:
    """A vector from pgvector's binary form (`vector_send`: dimension, unused, big-endian
    float4 values): no text to parse."""
    return np.frombuffer(raw, dtype=">f4", offset=4).astype(np.float32)


# Above this share of a role's stored vectors that no network statement of the index uses
# (texts since edited or deleted, coordinator-only statements), a top-k filters by joining
# statements inside the index scan instead of over-fetching.
MAX_STALE_SHARE = 0.5


@dataclass
class PgMemory:
    """What the PostgreSQL scorer keeps in memory beside one version of the index (`index`),
    so that a partner request costs one round trip.

    profiles : (organisations × dimension) float32, rows in index order (zeros where an
        organisation has no profile): my needs are read against the profiles of the
        organisations a top-k reached exactly, here, instead of one look-up each in SQL.
    stale : for each statement kind, the share of the space's vectors of that role that
        no network statement of the index uses. A top-k returns content hashes, mapped to
        statements here (no join inside each index scan) and over-fetched by this share.
    """

    index: NetworkIndex
    profiles: FloatMatrix
    has_profile: BoolArray
    profile_by_hash: dict[str, FloatMatrix]
    stale: dict[str, float]
    _by_hash: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def rows_by_hash(self, kind: str) -> dict[str, list[int]]:
        """Rows of the `kind` table by content hash (computed once per index version)."""
        if kind not in self._by_hash:
            rows: dict[str, list[int]] = {}
            for row, h in enumerate(self.index.tables[kind].hashes):
                rows.setdefault(h, []).append(row)
            self._by_hash[kind] = rows
        return self._by_hash[kind]


def load_memory(
    session: Session,
    space: str,
    index: NetworkIndex,
    dimension: int,
    previous: PgMemory | None = None,
    *,
    held: NumpyDenseScorer | None = None,
) -> PgMemory:
    """The `PgMemory` of an index version: profile vectors (taken from `held`, the
    snapshot's vectors in memory, when given; else read, those `previous` holds for the same
    text reused, so a rebuild after a write reads the changed ones only) and the share of
    stale vectors per statement kind."""
    driver = session.connection().connection.driver_connection
    by_hash: dict[str, FloatMatrix] = {}
    hash_of: dict[int, str] = {}
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        if held is None:
            cursor.execute(
                "SELECT id, profile_hash FROM organisations WHERE profile_hash IS NOT NULL"
            )
            hash_of = {int(i): h for i, h in cursor.fetchall()}
            known = previous.profile_by_hash if previous is not None else {}
            missing = sorted({h for h in hash_of.values() if h not in known})
            by_hash = {h: known[h] for h in hash_of.values() if h in known}
            if missing:
                cursor.execute(
                    "SELECT content_hash, vector_send(vector) FROM embeddings "
                    "WHERE model = %(space)s AND role = %(role)s AND content_hash = ANY(%(h)s)",
                    {"space": space, "role": PROFILE, "h": missing},
                )
                by_hash.update((h, _from_send(raw)) for h, raw in cursor.fetchall())
        cursor.execute(
            "SELECT role, count(*) FROM embeddings WHERE model = %(space)s "
            "AND role = ANY(%(roles)s) GROUP BY role",
            {"space": space, "roles": list(index.tables)},
        )
        stored = {role: int(n) for role, n in cursor.fetchall()}
    if held is not None:
        profiles, has_profile = held.profile_matrix()
    else:
        profiles = np.zeros((index.size, dimension), dtype=np.float32)
        has_profile = np.zeros(index.size, dtype=bool)
        for pos, org in enumerate(index.organisations):
            vector = by_hash.get(hash_of.get(org.id, ""))
            if vector is not None and vector.shape[0] == dimension:
                profiles[pos] = vector
                has_profile[pos] = True
    stale = {
        kind: max(0, stored.get(kind, 0) - len(set(table.hashes))) / max(1, stored.get(kind, 0))
        for kind, table in index.tables.items()
    }
    return PgMemory(index, profiles, has_profile, by_hash, stale)


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
        memory: PgMemory | None = None,
    ):
        """Scores against the embeddings of `space` (model + thesaurus + normalisation):
        `top_k` statements per query through HNSW, or every row when a request compares at
        most `exact_below` (query, statement) pairs. With `memory` (see `PgMemory`), a
        partner request reads profiles in memory and maps top-k rows by content hash."""
        self.session = session
        self.space = space
        self.index = index
        self.dimension = dimension
        self.top_k = top_k
        self.exact_below = exact_below
        self.memory = memory
        self._ef_search: int | None = None
        # Vectors of the request's own statements, read with its first `pairs` (one
        # scorer per request): its later reads of profiles need no round trip.
        self._mine: dict[int, FloatMatrix] = {}

    def _ef_for(self, k: int | None) -> int | None:
        """The hnsw.ef_search a top-k of k needs, None when this scorer has it set."""
        if k is None:
            return None
        ef_search = max(40, min(1000, k))
        return None if ef_search == self._ef_search else ef_search

    def _rows(self, sql: str, params: dict[str, Any], k: int | None) -> list[tuple[Any, ...]]:
        """Run SQL on the request's connection (psycopg placeholders). With `k` (the largest
        top-k it takes), the HNSW settings for this transaction are sent first, in the same
        round trip (a pipeline), once per scorer."""
        self.session.flush()  # the raw cursor does not autoflush
        driver = self.session.connection().connection.driver_connection
        ef_search = self._ef_for(k)
        # Never prepared: psycopg prepares a statement run 5 times, and PostgreSQL may then
        # plan it once for any parameters; such a generic plan of these top-k queries reads
        # about three times slower than one planned for the request's own ids and k.
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            if ef_search is None:
                cursor.execute(sql, params, prepare=False)
            else:
                with driver.pipeline():  # type: ignore[union-attr]
                    cursor.execute(
                        "SELECT set_config('hnsw.ef_search', %(ef)s, true), "
                        "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                        {"ef": str(ef_search)},
                    )
                    cursor.execute(sql, params, prepare=False)
                self._ef_search = ef_search
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows

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
        the caller gives `_rows` the largest k."""
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
        params["qs"] = "{" + ",".join(f'"{_vector_literal(v)}"' for v in queries) + "}"
        sql = f"""
            SELECT q.i, x.id, x.sim
            FROM unnest(CAST(%(qs)s AS vector({dim})[])) WITH ORDINALITY AS q(v, i)
            CROSS JOIN LATERAL ({lateral}) x
        """
        query_rows, ids, sims = self._fetch(sql, params, 3, k)
        return query_rows.astype(np.int64) - 1, ids.astype(np.int64), sims

    def _fetch(
        self, sql: str, params: dict[str, Any], width: int, k: int | None = None
    ) -> list[np.ndarray]:
        """`_rows` as one numpy array per column: thousands of rows come back without a Row
        object each."""
        rows = self._rows(sql, params, k)
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

    def _exact(self, n_rows: int, n_queries: int, top_k: int | None) -> bool:
        """Whether a request reads every row rather than a top-k (see `_lateral`)."""
        return n_rows * n_queries <= self.exact_below or (top_k is not None and top_k >= n_rows)

    def _by_hash(self, kind: str, org_mask: BoolArray | None) -> bool:
        """Whether a top-k of `kind` returns content hashes, mapped to statements in memory,
        instead of joining statements inside each index scan: without a territory filter,
        and while few stored vectors are stale."""
        return (
            self.memory is not None
            and org_mask is None
            and self.memory.stale.get(kind, 1.0) <= MAX_STALE_SHARE
        )

    def _hash_lateral(
        self,
        kind: str,
        n_rows: int,
        n_queries: int,
        top_k: int | None,
        params: dict[str, Any],
        key: str,
    ) -> tuple[str, int | None, int | None]:
        """The per-query part of a top-k returning content hashes (see `_by_hash`), the k
        it fetches (None: exact) and the k it keeps per query: stale vectors take places
        in an index scan, so it fetches that many more and keeps the best k statements."""
        assert self.memory is not None
        dim = int(self.dimension)
        where = (
            f"embeddings e WHERE e.model = {_raw_literal(self.space)} "
            f"AND e.role = {_raw_literal(kind)}"
        )
        select_ = f"SELECT e.content_hash AS h, 1 - (e.vector::vector({dim}) <=> q.v) AS sim"
        if self._exact(n_rows, n_queries, top_k):
            return f"{select_} FROM {where}", None, None
        keep = min(top_k or self.top_k, n_rows)
        fetch = math.ceil(keep / (1 - self.memory.stale.get(kind, 0.0)))
        params[key] = fetch
        return (
            f"{select_} FROM {where} "
            f"ORDER BY e.vector::halfvec({dim}) <=> q.v::halfvec({dim}) LIMIT %({key})s",
            fetch,
            keep,
        )

    def pairs(
        self,
        mine: dict[str, Sequence[int]],
        kinds: Sequence[tuple[str, str]],
        org_mask: BoolArray | None,
        top_k: int | None,
    ) -> dict[tuple[str, str], FloatMatrix]:
        """Every (my_kind, their_kind) in one round trip; my vectors never leave the server,
        except, with `memory`, to read profiles here. `their_kind` may be PROFILE: my
        statements against organisations' whole profiles (columns are organisation
        positions)."""
        out: dict[tuple[str, str], FloatMatrix] = {}
        parts: list[str] = []
        params: dict[str, Any] = {}
        ks: list[int] = []
        keep: dict[int, int] = {}  # parts by hash: statements kept per query
        in_memory: list[int] = []  # parts read against `memory.profiles`
        dim = int(self.dimension)
        space = _raw_literal(self.space)
        for p, (my_kind, their_kind) in enumerate(kinds):
            n_cols = (
                self.index.size if their_kind == PROFILE else len(self.index.tables[their_kind])
            )
            out[(my_kind, their_kind)] = np.full(
                (len(mine[my_kind]), n_cols), np.nan, dtype=np.float32
            )
            if not mine[my_kind] or n_cols == 0:
                continue
            n_queries = len(mine[my_kind])
            if their_kind == PROFILE and self.memory is not None:
                n_rows = self.index.size if org_mask is None else int(np.count_nonzero(org_mask))
                if self._exact(n_rows, n_queries, top_k):
                    in_memory.append(p)
                    continue
            params[f"mine{p}"] = [int(i) for i in mine[my_kind]]
            if their_kind != PROFILE and self._by_hash(their_kind, org_mask):
                n_rows = len(self.index.tables[their_kind])
                lateral, k, kept = self._hash_lateral(
                    their_kind, n_rows, n_queries, top_k, params, f"k{p}"
                )
                columns = "NULL::integer, x.h"
                if kept is not None:
                    keep[p] = kept
            else:
                if their_kind == PROFILE:
                    source = "o.id"
                    where, n_rows = self._profiles_where(org_mask, params)
                else:
                    source = "s.id"
                    where, n_rows = self._statements_where(their_kind, org_mask, params)
                if n_rows == 0:
                    continue
                lateral, k = self._lateral(source, where, n_rows, n_queries, top_k, params, f"k{p}")
                columns = "x.id, NULL::text"
            if k is not None:
                ks.append(k)
            parts.append(
                f"""SELECT {p} AS p, q.id AS mine, {columns}, x.sim, NULL::bytea
                FROM (
                    SELECT s.id, e.vector::vector({dim}) AS v
                    FROM statements s JOIN embeddings e ON e.content_hash = s.content_hash
                    AND e.model = {space} AND e.role = s.kind
                    WHERE s.id = ANY(%(mine{p})s)
                ) q
                CROSS JOIN LATERAL ({lateral}) x"""
            )
        if self.memory is not None:
            # My vectors come along (a few rows): profiles are read here, now or later.
            wanted = sorted({int(i) for ids in mine.values() for i in ids} - self._mine.keys())
            if wanted and (parts or in_memory):
                params["vectors"] = wanted
                parts.append(
                    f"""SELECT -1, s.id, NULL::integer, NULL::text, NULL::float8,
                        vector_send(e.vector)
                    FROM statements s JOIN embeddings e ON e.content_hash = s.content_hash
                    AND e.model = {space} AND e.role = s.kind
                    WHERE s.id = ANY(%(vectors)s)"""
                )
        rows = (
            self._rows(" UNION ALL ".join(parts), params, max(ks) if ks else None) if parts else []
        )
        by_part: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_part.setdefault(row[0], []).append(row)
        for _, my_id, _, _, _, raw in by_part.pop(-1, []):
            self._mine[int(my_id)] = _from_send(raw)
        for p, part_rows in by_part.items():
            my_kind, their_kind = kinds[p]
            my_ids = np.asarray(mine[my_kind], dtype=np.int64)
            mine_pos = lookup_positions(
                my_ids, np.argsort(my_ids), np.array([r[1] for r in part_rows], dtype=np.int64)
            )
            sims = np.array([r[4] for r in part_rows], dtype=np.float64)
            if part_rows[0][3] is not None:  # content hashes
                mine_pos, their_pos, sims = self._map_hashes(
                    their_kind, part_rows, mine_pos, sims, keep.get(p)
                )
            else:
                their_ids = np.array([r[2] for r in part_rows], dtype=np.int64)
                their_pos = (
                    self.index.org_positions(their_ids)
                    if their_kind == PROFILE
                    else self.index.tables[their_kind].positions(their_ids)
                )
            found = (mine_pos >= 0) & (their_pos >= 0)
            out[(my_kind, their_kind)][mine_pos[found], their_pos[found]] = sims[found]
        for p in in_memory:
            my_kind, their_kind = kinds[p]
            self._profiles_in_memory(mine[my_kind], org_mask, out[(my_kind, their_kind)])
        return out

    def _map_hashes(
        self,
        kind: str,
        rows: list[tuple[Any, ...]],
        mine_pos: IntArray,
        sims: FloatArray,
        keep: int | None,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Rows of a top-k by content hash as (my row, their row, similarity): one entry per
        network statement of the index with that text, the best `keep` per query."""
        assert self.memory is not None
        by_hash = self.memory.rows_by_hash(kind)
        at: list[int] = []
        theirs: list[int] = []
        for i, row in enumerate(rows):
            for their_row in by_hash.get(row[3], ()):
                at.append(i)
                theirs.append(their_row)
        take = np.array(at, dtype=np.int64)
        mine_pos, sims = mine_pos[take], sims[take]
        their_pos = np.array(theirs, dtype=np.int64)
        if keep is not None and len(take) and np.bincount(mine_pos + 1).max() > keep:
            order = np.lexsort((-sims, mine_pos))
            mine_pos, their_pos, sims = mine_pos[order], their_pos[order], sims[order]
            starts = np.r_[0, np.flatnonzero(np.diff(mine_pos)) + 1]
            rank = np.arange(len(mine_pos)) - np.repeat(
                starts, np.diff(np.r_[starts, len(mine_pos)])
            )
            best = rank < keep
            mine_pos, their_pos, sims = mine_pos[best], their_pos[best], sims[best]
        return mine_pos, their_pos, sims

    def _profiles_in_memory(
        self, my_ids: Sequence[int], org_mask: BoolArray | None, out: FloatMatrix
    ) -> None:
        """Fill `out` (my statements × organisations) with cosines to the profiles held in
        `memory`, inside `org_mask`; NaN stays where a vector or a profile is missing."""
        assert self.memory is not None
        missing = [int(i) for i in my_ids if int(i) not in self._mine]
        if missing:
            self._vectors_of_mine(missing)
        inside = self.memory.has_profile if org_mask is None else self.memory.has_profile & org_mask
        cols = np.flatnonzero(inside)
        rows = [row for row, i in enumerate(my_ids) if int(i) in self._mine]
        if rows and len(cols):
            vectors = np.stack([self._mine[int(my_ids[row])] for row in rows])
            out[np.ix_(np.array(rows, dtype=np.int64), cols)] = _cosines(
                vectors, self.memory.profiles[cols]
            )

    def _vectors_of_mine(self, ids: Sequence[int]) -> None:
        rows = self._rows(
            "SELECT s.id, vector_send(e.vector) FROM statements s JOIN embeddings e "
            "ON e.content_hash = s.content_hash AND e.model = %(space)s AND e.role = s.kind "
            "WHERE s.id = ANY(%(ids)s)",
            {"space": self.space, "ids": list(ids)},
            None,
        )
        for my_id, raw in rows:
            self._mine[int(my_id)] = _from_send(raw)

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
