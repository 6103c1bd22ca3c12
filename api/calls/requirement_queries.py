"""Call requirements read as queries: the vectors the call fit scores organisations with
(`matcher.call_fit`: a requirement is read as a need is).

A call's write (and `maillage reindex`) stores its requirements read both as passages (role
`requirement`) and as queries (role `requirement_query`), so a call's page and a weekly
digest run read them rather than encode them: encoding is by far the slowest part of
scoring a call (tens of milliseconds a text on a CPU, where the scoring itself of a
requirement against a thousand organisations takes a few). Calls written before that
(or by `upsert_fixture_call`, which embeds nothing) are caught up by
`store_requirement_queries`, which each digest run calls for the open calls; vectors read
are also kept in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from api.matching.engine import MatchingEngine
from matcher.encoders import QUERY, FloatMatrix
from matcher.index import REQUIREMENT_QUERY
from matcher.text import content_hash
from models import Call, CallRequirement, Embedding
from models.db import transaction
from models.enums import CallStatus

# Requirement vectors, read as queries, by (space, expanded text): calls are few and
# read often. Bounded; cleared whole when full.
_VECTORS: dict[tuple[str, str], FloatMatrix] = {}
_VECTORS_LOCK = threading.Lock()
_VECTORS_MAX = 4096
_READ_CHUNK = 500


def _stored(
    session: Session, matching: MatchingEngine, by_hash: dict[str, str]
) -> dict[str, FloatMatrix]:
    """Stored query vectors of requirement texts: expanded text → vector, for the content
    hashes of `by_hash` (hash → expanded text) the cache has."""
    hashes = list(by_hash)
    found: dict[str, FloatMatrix] = {}
    for start in range(0, len(hashes), _READ_CHUNK):
        rows = session.execute(
            select(Embedding.content_hash, Embedding.vector).where(
                Embedding.model == matching.space,
                Embedding.role == REQUIREMENT_QUERY,
                Embedding.content_hash.in_(hashes[start : start + _READ_CHUNK]),
            )
        )
        for h, vector in rows:
            found[by_hash[h]] = np.asarray(vector, dtype=np.float32)
    return found


def requirement_vectors(
    matching: MatchingEngine,
    expanded: Sequence[str],
    *,
    session: Session | None = None,
    texts: Sequence[str] | None = None,
) -> FloatMatrix:
    """(n × dimension) float32: the expanded requirement texts encoded as queries. With
    `session` and `texts` (the requirements as written, aligned with `expanded`), the
    vectors stored for them are read rather than encoded."""
    if not expanded:
        return np.zeros((0, 1), dtype=np.float32)
    space = matching.space
    unique = list(dict.fromkeys(expanded))
    found: dict[str, FloatMatrix] = {}
    for t in unique:
        vector = _VECTORS.get((space, t))
        if vector is not None:
            found[t] = vector
    new: dict[str, FloatMatrix] = {}
    if len(found) < len(unique) and session is not None and texts is not None:
        by_hash = {
            content_hash(raw): t for t, raw in zip(expanded, texts, strict=True) if t not in found
        }
        new.update(_stored(session, matching, by_hash))
    missing = [t for t in unique if t not in found and t not in new]
    if missing:
        encoded = matching.encode(missing, role=QUERY, expanded=True)
        new.update(zip(missing, encoded, strict=True))
    if new:
        with _VECTORS_LOCK:
            if len(_VECTORS) + len(new) > _VECTORS_MAX:
                _VECTORS.clear()
            _VECTORS.update(((space, t), v) for t, v in new.items())
        found.update(new)
    return np.vstack([found[t] for t in expanded]).astype(np.float32)


def store_requirement_queries(
    reads: sessionmaker[Session],
    writes: sessionmaker[Session],
    matching: MatchingEngine,
    today: date,
) -> int:
    """Store the query vectors of the open calls' requirements that the embedding cache
    lacks (role `requirement_query`), encoded before the write transaction begins (on
    SQLite its first statement takes the write lock). Returns how many were encoded."""
    with transaction(reads) as session:
        texts = {
            (REQUIREMENT_QUERY, h): text
            for h, text in session.execute(
                select(CallRequirement.content_hash, CallRequirement.text)
                .join(Call, Call.id == CallRequirement.call_id)
                .where(
                    Call.status == CallStatus.open,
                    or_(Call.deadline.is_(None), Call.deadline >= today),
                )
            )
        }
        missing = matching.unembedded(session, texts)
    if not missing:
        return 0
    encoded = matching.embed(missing)
    with transaction(writes) as session:
        matching.ensure_embeddings(session, missing, encoded=encoded)
    return len(missing)
