"""The only place that joins the database and the matcher: embedding at write time, the
in-memory network index, search and partner suggestions."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, Insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching.pgvector import PgDenseScorer, PgMemory, load_memory
from api.matching.repository import (
    bump_version,
    changes_since,
    current_version,
    read_network,
    vectors_query,
)
from api.matching.speller import query_speller
from api.matching.texts import ENCODING_ROLE, ROLES, organisation_texts
from matcher.calibration import Calibration, calibration_sample, fit_from_sample
from matcher.delta import Changes, refit_due
from matcher.dense import DenseScorer, NumpyDenseScorer
from matcher.encoders import PASSAGE, QUERY, Encoder, FloatMatrix, Role, shared_encoder
from matcher.index import PROFILE, NetworkIndex
from matcher.snapshot import NetworkSnapshot
from matcher.spelling import Speller
from matcher.text import NORMALISATION_VERSION, normalise_for_matching
from matcher.thesaurus import Thesaurus
from models import (
    Embedding,
    Organisation,
    Statement,
)
from models.matching import hnsw_index_ddl, hnsw_index_name

log = logging.getLogger(__name__)

# A delta reads every changed organisation by id: up to this many, or more on a large
# network (`Settings.index_delta_max_share`), before a build from the whole database pays.
DELTA_MIN_ORGANISATIONS = 50


def dense_encoder(model: str) -> Encoder:
    """One encoder per model (or blend) and process, its weights loaded on first use."""
    return shared_encoder(model)


@lru_cache(maxsize=4)
def _thesaurus(path: str) -> Thesaurus:
    return Thesaurus.from_file(Path(path))


class MatchingEngine:
    """Process-wide: the encoder, the thesaurus and the cached index of one space."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        path = settings.thesaurus_path
        self.thesaurus = _thesaurus(str(path)) if path and path.exists() else None
        self.encoder = dense_encoder(settings.model)
        # The encoder's own name: "e5" and "multilingual-e5-small" are one space.
        model = self.encoder.name
        if len(model) > 100:  # a long local path
            model = "model-" + hashlib.sha256(model.encode()).hexdigest()[:12]
        # The space names everything that changes a vector: the model, the thesaurus and
        # the text normalisation, so that `maillage reindex` re-embeds when one changes.
        self.space = (
            model
            + (f"+{self.thesaurus.name}.{self.thesaurus.fingerprint}" if self.thesaurus else "")
            + f"+norm{NORMALISATION_VERSION}"
        )
        self.calibration_base = Calibration(
            dense_weight=settings.dense_weight,
            profile_weight=settings.profile_weight,
            words_weight=settings.words_weight,
        )
        # Encodings at once: more than the cores only slow every request down, the ones
        # that hold SQLite's write lock (or a row lock) among them.
        self._encoding = threading.BoundedSemaphore(
            settings.encoding_threads or os.cpu_count() or 1
        )
        self._lock = threading.Lock()
        self._snapshot: NetworkSnapshot | None = None
        self._refitting: threading.Thread | None = None
        # PostgreSQL: what the scorer keeps in memory for the latest snapshot's index.
        self._pg_memory: PgMemory | None = None
        self._memory_lock = threading.Lock()
        self._indexed_spaces: set[str] = set()
        self._speller: Speller | None = None

    # --- writing -------------------------------------------------------------------

    def normalise(self, text_: str) -> str:
        """The text as every signal reads it: case, dots in acronyms and typography aside."""
        return self.thesaurus.normalise(text_) if self.thesaurus else normalise_for_matching(text_)

    def correct_spelling(self, query: str, snapshot: NetworkSnapshot) -> str:
        """`query` with its misspelt words corrected towards the snapshot's words
        (`matcher.spelling`; the thesaurus's acronyms and the referential's place names are
        never corrected), or as written when the `spelling` setting is off."""
        if not self.settings.spelling:
            return query
        if self._speller is None:  # read once (0.7 s); two threads may both read it
            self._speller = query_speller(self.settings.fixtures_dir, self.thesaurus)
        return self._speller.correct(query, snapshot.index.vocabulary)

    def expand(self, text_: str) -> str:
        """The text normalised, then read through the thesaurus: what the dense encoder,
        the character n-grams and the word stems all see, for statements and queries."""
        normalised = self.normalise(text_)
        return self.thesaurus.expand(normalised) if self.thesaurus else normalised

    def encode(
        self,
        texts: Sequence[str],
        *,
        role: Role,
        show_progress_bar: bool = False,
        expanded: bool = False,
    ) -> FloatMatrix:
        """Dense vectors of the texts read as queries or passages, through the thesaurus
        (`expanded`: the texts already are). At most `Settings.encoding_threads` encode at
        once; the others wait their turn."""
        prepared = list(texts) if expanded else [self.expand(t) for t in texts]
        with self._encoding:
            return self.encoder.encode(prepared, role=role, show_progress_bar=show_progress_bar)

    def embed(self, texts: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], FloatMatrix]:
        """Vectors of the texts, keyed by (role, content hash), each read as its role asks
        (`ENCODING_ROLE`); a text shared by several roles is encoded once per way of
        reading it, so once by a role-blind encoder. Reads no database: a write encodes
        its texts before its transaction takes any lock."""
        if not texts:  # asking whether the encoder is role-aware loads the model
            return {}
        role_aware = self.encoder.role_aware
        vectors: dict[tuple[str, str], FloatMatrix] = {}
        for reading in (QUERY, PASSAGE) if role_aware else (PASSAGE,):
            todo = [k for k in texts if not role_aware or ENCODING_ROLE[k[0]] == reading]
            if not todo:
                continue
            text_of = {h: texts[(role, h)] for role, h in todo}
            by_hash = dict(
                zip(text_of, self.encode(list(text_of.values()), role=reading), strict=True)
            )
            vectors.update((k, by_hash[k[1]]) for k in todo)
        return vectors

    def unembedded(
        self, session: Session, texts: Mapping[tuple[str, str], str]
    ) -> dict[tuple[str, str], str]:
        """The texts, keyed by (role, content hash), that this space has no vector of yet."""
        keys = list(texts)
        known: set[tuple[str, str]] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            known.update(
                (role, h)
                for role, h in session.execute(
                    select(Embedding.role, Embedding.content_hash).where(
                        Embedding.model == self.space,
                        Embedding.content_hash.in_([h for _, h in chunk]),
                    )
                )
            )
        return {k: v for k, v in texts.items() if k not in known}

    def ensure_embeddings(
        self,
        session: Session,
        texts: dict[tuple[str, str], str],
        *,
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
        encoded: Mapping[tuple[str, str], FloatMatrix] | None = None,
        on_missing: Callable[[int], None] | None = None,
    ) -> int:
        """Embed the texts, keyed by (role, content hash), that this space lacks; returns
        how many (`on_missing` hears it before the work, `progress` after each batch).
        `encoded` holds vectors `embed` computed beforehand, outside the transaction; the
        others are encoded here."""
        # In key order: concurrent writers of shared texts take the cache's row locks in the
        # same order, so they queue instead of deadlocking.
        missing = sorted(self.unembedded(session, texts))
        if on_missing:
            on_missing(len(missing))
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            vectors = {k: encoded[k] for k in batch if k in encoded} if encoded else {}
            if len(vectors) < len(batch):
                vectors.update(self.embed({k: texts[k] for k in batch if k not in vectors}))
            # Another transaction may have stored the same text since the look-up above.
            session.execute(
                _insert_ignoring_duplicates(session),
                [
                    {
                        "model": self.space,
                        "role": role,
                        "content_hash": h,
                        "dimension": int(vectors[(role, h)].shape[0]),
                        "vector": vectors[(role, h)],
                    }
                    for role, h in batch
                ],
            )
            if progress:
                progress(len(batch))
        return len(missing)

    def create_vector_indexes(self, db: Engine, *, lock_timeout: str = "5s") -> int:
        """On PostgreSQL, create the HNSW index of this space for each role that lacks it,
        each in a short transaction of its own; returns how many were created.

        Start-up and the commands that write vectors run this, never a request: DDL in
        request transactions deadlocks (each one's inserts hold a lock on the table that
        the other one's CREATE INDEX waits for). An index that cannot be created now (a long
        transaction holds the table past `lock_timeout`) is left to the next start; search
        is correct without it, only slower.
        """
        if db.dialect.name != "postgresql":
            return 0
        # Looked up first: CREATE INDEX IF NOT EXISTS locks the table even when the index
        # exists, and the dimension loads the model.
        with db.connect() as connection:
            missing = [
                role
                for role in ROLES
                if connection.scalar(
                    text("SELECT to_regclass(:n)"), {"n": hnsw_index_name(self.space, role)}
                )
                is None
            ]
        created = 0
        for role in missing:
            ddl = hnsw_index_ddl(self.space, role, int(self.encoder.dimension))
            try:
                with db.begin() as connection:
                    connection.execute(
                        text("SELECT set_config('lock_timeout', :t, true)"), {"t": lock_timeout}
                    )
                    connection.execute(text(ddl.replace(":", r"\:")))
                created += 1
            except DBAPIError as exc:  # e.g. a lock timeout
                log.warning("HNSW index of %s (%s) not created: %s", self.space, role, exc)
        return created

    def ensure_vector_index(self, session: Session, dimension: int, roles: Iterable[str]) -> None:
        """On PostgreSQL, one HNSW index per space and role (half-precision vectors), in the
        session's transaction: for bulk loads that index their rows once written. A
        request never calls it (see `create_vector_indexes`)."""
        if session.get_bind().dialect.name != "postgresql":
            return
        for role in sorted(roles):
            key = f"{self.space}|{role}"
            if key in self._indexed_spaces:
                continue
            ddl = hnsw_index_ddl(self.space, role, dimension)
            session.execute(text(ddl.replace(":", r"\:")))
            self._indexed_spaces.add(key)

    def organisation_written(
        self,
        session: Session,
        org: Organisation,
        *,
        encoded: Mapping[tuple[str, str], FloatMatrix] | None = None,
    ) -> None:
        """Embed a created or changed organisation's statements and profile, in the same
        transaction, and mark the index stale. `encoded`: the vectors of its
        `organisation_texts`, computed before the transaction took any lock."""
        texts = organisation_texts(org)
        org.profile_hash = next((h for role, h in texts if role == PROFILE), None)
        self.ensure_embeddings(session, texts, encoded=encoded)
        bump_version(session, [org.id])

    def organisation_archived(self, session: Session, organisation_id: int) -> None:
        """Mark the index stale, in the same transaction, after an organisation was archived:
        the next snapshot leaves it out (`read_network`; a delta drops its rows)."""
        bump_version(session, [organisation_id])

    # --- reading -------------------------------------------------------------------

    def snapshot(self, session: Session) -> NetworkSnapshot:
        """The network at the version this session reads, or a newer one."""
        version = current_version(session)
        return self._at_least(version, lambda: self._build(session, version))

    def _at_least(self, version: int, build: Callable[[], NetworkSnapshot]) -> NetworkSnapshot:
        """The cached index if it is at `version` or newer, else the one `build` makes.

        The one place where requests wait for the index. Never older than the version a
        request reads: its client's last write returned before the request began, and an
        older index would answer as if it had not happened (a new organisation without
        partners, a search missing it). Requests that the cached index answers do not
        wait; the others queue for one build at a time, and those that a build done
        meanwhile brought up to date do not build again.
        """
        current = self._snapshot
        if current is not None and current.version >= version:
            return current
        with self._lock:
            current = self._snapshot
            if current is None or current.version < version:
                current = self._snapshot = build()
            return current

    def _build(self, session: Session, version: int) -> NetworkSnapshot:
        """The snapshot at `version`: the previous one with the organisations that the
        change log names since its version replaced (a delta), or, when the log says the
        whole network changed (a reindex, a bulk load) or too many organisations changed, a
        build from the whole database."""
        previous = self._snapshot
        if previous is not None:
            changed = changes_since(session, previous.version, version)
            limit = max(
                DELTA_MIN_ORGANISATIONS, self.settings.index_delta_max_share * previous.index.size
            )
            if changed is not None and len(changed) <= limit:
                return self._apply_changes(session, previous, version, changed)
        return self._full_build(session, version)

    def _full_build(self, session: Session, version: int) -> NetworkSnapshot:
        """The snapshot at `version` from the whole database. The previous index lends what
        did not change: n-gram counts and (on SQLite) vectors of unchanged texts."""
        records, statements = read_network(session)
        previous = self._snapshot
        index = NetworkIndex.build(
            self.space,
            records,
            statements,
            expand=self.expand,
            previous=previous.index if previous else None,
        )
        dimension = int(self.encoder.dimension)
        numpy_scorer = None
        pg_memory = None
        if self._vectors_in_memory(session):
            numpy_scorer = self.numpy_scorer(
                session,
                index,
                dimension,
                previous=previous.numpy_scorer if previous else None,
            )
        elif session.get_bind().dialect.name != "sqlite":
            pg_memory = load_memory(session, self.space, index, dimension, self._pg_memory)
        calibration = self._calibrate(session, index, numpy_scorer, dimension)
        self._pg_memory = pg_memory
        return NetworkSnapshot(version, index, calibration, numpy_scorer, dimension)

    def _apply_changes(
        self, session: Session, previous: NetworkSnapshot, version: int, changed: set[int]
    ) -> NetworkSnapshot:
        """The previous index with the changed organisations' rows read again, by id: their
        record, territories, statements and (on SQLite) vectors. The statistics (idf,
        word weights, calibration, the SQLite first pass) are refitted in memory once the
        changes since the last fit pass `index_refit_share` of the network."""
        ids = sorted(changed)
        records, statements = read_network(session, ids)
        # A large network refits in the background: this request is answered at once.
        background = previous.index.rows >= self.settings.index_background_refit_rows
        delta = previous.index.with_changes(
            Changes(frozenset(ids), records, statements),
            expand=self.expand,
            refit_share=self.settings.index_refit_share,
            refit=False if background else None,
        )
        numpy_scorer = None
        if previous.numpy_scorer is not None:
            added = [int(i) for ids_ in delta.added.values() for i in ids_]
            query = vectors_query(self.space, Statement.id, Statement.content_hash, Statement.kind)
            profiles = vectors_query(
                self.space, Organisation.id, Organisation.profile_hash, PROFILE
            )
            statement_vectors: dict[int, FloatMatrix] = {}
            profile_vectors: dict[int, FloatMatrix] = {}
            for start in range(0, max(len(added), len(ids)), 1000):
                statement_vectors.update(
                    (int(i), v)
                    for i, v in session.execute(
                        query.where(Statement.id.in_(added[start : start + 1000]))
                    )
                )
                profile_vectors.update(
                    (int(i), v)
                    for i, v in session.execute(
                        profiles.where(Organisation.id.in_(ids[start : start + 1000]))
                    )
                )
            numpy_scorer = previous.numpy_scorer.with_changes(
                delta, statement_vectors, profile_vectors
            )
        calibration = (
            self._calibrate(session, delta.index, numpy_scorer, previous.dimension)
            if delta.refitted
            else previous.calibration
        )
        snapshot = previous.after(version, delta, calibration, numpy_scorer)
        if background and refit_due(delta.index, self.settings.index_refit_share):
            self._refit_later(session, snapshot)
        return snapshot

    def numpy_scorer(
        self,
        session: Session,
        index: NetworkIndex,
        dimension: int,
        *,
        previous: NumpyDenseScorer | None = None,
        **options: Any,
    ) -> NumpyDenseScorer:
        """Every vector of the index in memory, scored by numpy (the SQLite backend; on
        PostgreSQL, the reference the SQL top-k is compared with in tests). Vectors the
        `previous` scorer holds for the same (kind, text) are reused, not read again."""
        query = vectors_query(self.space, Statement.id, Statement.content_hash, Statement.kind)
        statement_vectors: dict[int, FloatMatrix] = {}
        missing: list[int] = []
        if previous is not None:
            known = previous.vectors_by_text()
            for kind, table in index.tables.items():
                for statement_id, h in zip(table.ids.tolist(), table.hashes, strict=True):
                    vector = known.get((kind, h))
                    if vector is None:
                        missing.append(statement_id)
                    else:
                        statement_vectors[statement_id] = vector
        if previous is None or len(missing) > 5000:
            statement_vectors = {int(i): v for i, v in session.execute(query)}
        else:
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                statement_vectors.update(
                    (int(i), v) for i, v in session.execute(query.where(Statement.id.in_(chunk)))
                )
        profile_vectors = {
            int(i): v
            for i, v in session.execute(
                vectors_query(self.space, Organisation.id, Organisation.profile_hash, PROFILE)
            )
        }
        return NumpyDenseScorer(index, statement_vectors, profile_vectors, dimension, **options)

    def _calibrate(
        self,
        session: Session,
        index: NetworkIndex,
        numpy_scorer: NumpyDenseScorer | None,
        dimension: int,
    ) -> Calibration:
        """Standardise similarities on random pairs of this network's statements."""
        vectors = self._calibration_vectors(session, index, numpy_scorer, dimension)
        return self._fit_calibration(index, vectors)

    def _calibration_vectors(
        self,
        session: Session,
        index: NetworkIndex,
        numpy_scorer: NumpyDenseScorer | None,
        dimension: int,
    ) -> tuple[FloatMatrix, FloatMatrix] | None:
        """The dense vectors calibration reads: a random sample of the statements (the
        same for every index with the same rows) and the first 300 profiles."""
        ids = np.concatenate([index.tables["competency"].ids, index.tables["need"].ids])
        if len(ids) < 20:
            return None
        scorer = numpy_scorer or PgDenseScorer(
            session,
            self.space,
            index,
            dimension,
            self.settings.pg_top_k,
            self.settings.pg_exact_below,
        )
        sample_ids = [int(ids[i]) for i in calibration_sample(len(ids))]
        return (
            scorer.statement_vectors(sample_ids),
            scorer.profile_vectors([o.id for o in index.organisations[:300]]),
        )

    def _fit_calibration(
        self, index: NetworkIndex, vectors: tuple[FloatMatrix, FloatMatrix] | None
    ) -> Calibration:
        """Calibration from the sampled vectors and the index's lexical and word rows;
        reads no database."""
        if vectors is None:
            return self.calibration_base
        statement_vectors, profiles = vectors
        table = index.tables["competency"]
        others = index.tables["need"]
        sample = calibration_sample(len(table) + len(others))
        from scipy.sparse import vstack

        lexical_rows = vstack(
            [table.lexical[i] if i < len(table) else others.lexical[i - len(table)] for i in sample]
        )
        kinds = ["competency" if i < len(table) else "need" for i in sample]
        words = None
        if index.words is not None and index.profile_words is not None:
            texts = [
                self.expand(table.texts[i] if i < len(table) else others.texts[i - len(table)])
                for i in sample
            ]
            words = (index.words.transform(texts) @ index.profile_words[:300].T).toarray()
        return fit_from_sample(
            statement_vectors, lexical_rows, kinds, profiles, words, base=self.calibration_base
        )

    def _refit_later(self, session: Session, snapshot: NetworkSnapshot) -> None:
        """Refit the statistics of a large delta-updated index in a background thread; the
        refitted index replaces `snapshot` if no newer index did meanwhile. The calibration's
        vectors are read now, in the request's transaction (the refit keeps every row)."""
        if self._refitting is not None and self._refitting.is_alive():
            return  # the next delta asks again (the drift only grows)
        vectors = self._calibration_vectors(
            session, snapshot.index, snapshot.numpy_scorer, snapshot.dimension
        )

        def refit() -> None:
            try:
                delta = snapshot.index.with_changes(Changes(frozenset(), (), ()), refit=True)
                scorer = (
                    snapshot.numpy_scorer.with_changes(delta, {}, {})
                    if snapshot.numpy_scorer is not None
                    else None
                )
                calibration = self._fit_calibration(delta.index, vectors)
                refitted = snapshot.after(snapshot.version, delta, calibration, scorer)
                with self._lock:
                    if self._snapshot is snapshot:
                        self._snapshot = refitted
            except Exception:  # a refit is an optimisation: the delta index stays correct
                log.exception("Background refit of the index failed")

        self._refitting = threading.Thread(target=refit, name="maillage-index-refit", daemon=True)
        self._refitting.start()

    def _vectors_in_memory(self, session: Session) -> bool:
        """Whether snapshots hold every vector in memory (a `NumpyDenseScorer`): always on
        SQLite; on PostgreSQL for partner suggestions (`Settings.pg_partners_in_memory`)."""
        return session.get_bind().dialect.name == "sqlite" or self.settings.pg_partners_in_memory

    def scorer(
        self, session: Session, snapshot: NetworkSnapshot, *, in_memory: bool = False
    ) -> DenseScorer:
        """What scores dense similarities on this snapshot: its vectors in memory (SQLite;
        on PostgreSQL when the snapshot holds them and the caller asks `in_memory`: partner
        suggestions, the digest's batch), else PostgreSQL through the session (pgvector),
        with what it keeps in memory for this snapshot."""
        if snapshot.numpy_scorer is not None and (
            in_memory or session.get_bind().dialect.name == "sqlite"
        ):
            return snapshot.numpy_scorer
        return PgDenseScorer(
            session,
            self.space,
            snapshot.index,
            snapshot.dimension,
            self.settings.pg_top_k,
            self.settings.pg_exact_below,
            self._memory_for(session, snapshot),
        )

    def _memory_for(self, session: Session, snapshot: NetworkSnapshot) -> PgMemory:
        """The PostgreSQL scorer's memory of this snapshot's index: its profile vectors
        from the vectors the snapshot holds, or after a delta or a refit loaded again from
        the previous memory, which lends those of unchanged texts."""
        memory = self._pg_memory
        if memory is not None and memory.index is snapshot.index:
            return memory
        with self._memory_lock:
            memory = self._pg_memory
            if memory is None or memory.index is not snapshot.index:
                held = snapshot.numpy_scorer
                index, dimension = snapshot.index, snapshot.dimension
                memory = load_memory(session, self.space, index, dimension, memory, held=held)
                if self._snapshot is snapshot:
                    self._pg_memory = memory
            return memory


def _insert_ignoring_duplicates(session: Session) -> Insert:
    """INSERT into the embedding cache that skips a text already stored (same space, role
    and content hash): two requests writing the same new text both succeed."""
    key = ["model", "role", "content_hash"]
    if session.get_bind().dialect.name == "sqlite":
        return sqlite.insert(Embedding).on_conflict_do_nothing(index_elements=key)
    return postgresql.insert(Embedding).on_conflict_do_nothing(index_elements=key)
