"""`maillage bench`: a synthetic network at scale, timed through the API on each backend.

Statement texts are generated from French fragments of the field; their vectors are
mixtures of the real embeddings of those fragments (so that "precomputed embeddings"
have the structure of real ones without encoding 100,000 texts). Indexing throughput is
measured apart, by really encoding and storing a sample through `reindex`.

Latencies are of a running service: after the load (and, on PostgreSQL, a VACUUM ANALYZE)
the first WARM_UP searches and suggestions are not timed.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select, text

from api.accounts.service import create_account, issue_token
from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from api.matching.repository import bump_version
from api.tools.demo import ensure_territories
from matcher.encoders import PASSAGE, QUERY
from matcher.index import PROFILE
from matcher.text import content_hash, name_key
from models import Organisation, Statement, Territory, migrate, organisation_territories
from models.db import make_engine, make_session_factory
from models.enums import AccountRole

ACTIONS = [
    "Accompagnement",
    "Animation",
    "Organisation",
    "Mise en place",
    "Coordination",
    "Formation des équipes à",
    "Conseil et appui pour",
    "Diagnostic de",
    "Pilotage de",
    "Médiation autour de",
    "Évaluation de",
    "Co-construction avec les habitants de",
]
SUBJECTS = [
    "jardins partagés en pied d'immeuble",
    "chantiers d'auto-réhabilitation accompagnée",
    "médiation de voisinage et tranquillité résidentielle",
    "ateliers d'inclusion numérique",
    "lutte contre la précarité énergétique",
    "rénovation énergétique des logements",
    "maintien à domicile des locataires âgés",
    "habitat inclusif pour personnes handicapées",
    "gestion urbaine de proximité",
    "concertation locative",
    "clauses d'insertion dans les marchés",
    "colocations étudiantes solidaires",
    "prévention des impayés de loyer",
    "accompagnement social lié au logement",
    "relogement dans le cadre du NPNRU",
    "réemploi des matériaux de chantier",
    "mesure de l'impact social",
    "hébergement d'urgence et logement d'abord",
    "accueil des victimes de violences conjugales",
    "aires d'accueil des gens du voyage",
    "lutte contre l'isolement des seniors",
    "aide alimentaire et épiceries solidaires",
    "santé mentale des locataires",
    "tri des déchets et compostage collectif",
    "végétalisation des cours et îlots de fraîcheur",
    "mobilité résidentielle et échanges de logements",
    "accession sociale à la propriété",
    "logement des travailleurs saisonniers",
    "revitalisation des centres-bourgs",
    "lutte contre les punaises de lit",
    "sécurisation des halls d'immeuble",
    "recrutement de gardiens d'immeuble",
    "démarches d'accès aux droits",
    "activités sportives au pied des immeubles",
    "soutien à la parentalité",
    "apprentissage du français pour les primo-arrivants",
    "conciergerie de quartier",
    "économies d'eau dans les logements",
    "adaptation des logements au handicap",
    "diagnostics en marchant dans les quartiers prioritaires",
]
PUBLICS = [
    "avec les locataires",
    "pour les familles monoparentales",
    "avec les jeunes du quartier",
    "pour les personnes âgées isolées",
    "avec les associations de locataires",
    "pour les ménages en difficulté",
    "avec les étudiants",
    "pour les personnes handicapées",
    "avec les gardiens et les équipes de proximité",
    "pour les demandeurs d'emploi",
    "avec les enfants et leurs parents",
    "pour les nouveaux arrivants",
]
PLACES = [
    "en quartier prioritaire",
    "dans les résidences anciennes",
    "en centre-bourg",
    "sur le littoral",
    "en zone de montagne",
    "dans les grands ensembles",
    "en milieu rural",
    "dans les résidences neuves",
    "en copropriété dégradée",
    "dans le parc diffus",
]
NEED_PREFIXES = [
    "Nous cherchons un partenaire pour",
    "Besoin d'aide pour",
    "On recherche une structure pour",
    "Trouver une association capable de",
    "Recherche d'un prestataire pour",
]


@dataclass(frozen=True)
class BenchResult:
    backend: str
    organisations: int
    statements: int
    load_seconds: float
    index_build_seconds: float
    first_search_after_write_seconds: float
    search_p50_ms: float
    search_p95_ms: float
    partners_p50_ms: float
    partners_p95_ms: float
    indexing_statements_per_s: float
    peak_memory_mb: float
    # The floor: a bare top-10 of the same query vectors over the same competency vectors
    # (one numpy matrix-vector product, or one pgvector HNSW query), encoding left out.
    floor_p50_ms: float = float("nan")
    floor_p95_ms: float = float("nan")


WARM_UP = 20


def _unit(rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def run_bench(
    settings: Settings,
    *,
    backend: str,
    database_url: str | None,
    organisations: int,
    statements: int,
    queries: int,
    seed: int = 0,
    sample_for_indexing: int = 1000,
) -> BenchResult:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="maillage-bench-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = make_engine(url)
        _reset(engine)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        matching = MatchingEngine(settings)
        start = time.perf_counter()
        with factory() as session, session.begin():
            ensure_territories(session, settings.fixtures_dir)
        _generate(factory, matching, rng, organisations, statements)
        _after_bulk_load(engine)
        load_seconds = time.perf_counter() - start

        from fastapi.testclient import TestClient

        from api.app import create_app

        app = create_app(settings.model_copy(update={"database_url": url, "rate_limits": False}))
        app.state.matching = matching
        with factory() as session, session.begin():  # requests carry a token, as real ones do
            account = create_account(session, name="Banc d'essai", role=AccountRole.coordinator)
            secret = issue_token(session, account, expires_at=None).secret
        client = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
        start = time.perf_counter()
        with factory() as session:
            matching.snapshot(session)
        index_build = time.perf_counter() - start

        with factory() as session:
            org_ids = list(session.scalars(select(Organisation.id)))
            deps = list(
                session.scalars(
                    select(Territory.code).where(Territory.level == "departement").limit(96)
                )
            )
        search_ms, partner_ms = [], []
        for i in range(-WARM_UP, queries):  # the first WARM_UP calls of each are not timed
            subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
            params: dict[str, Any] = {"q": f"{NEED_PREFIXES[i % len(NEED_PREFIXES)]} {subject}"}
            if i % 2:
                params["territory"] = f"departement:{deps[int(rng.integers(len(deps)))]}"
            t0 = time.perf_counter()
            response = client.get("/api/v1/search/organisations", params=params)
            if i >= 0:
                search_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
            org = org_ids[int(rng.integers(len(org_ids)))]
            t0 = time.perf_counter()
            response = client.get(f"/api/v1/organisations/{org}/partners")
            if i >= 0:
                partner_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text

        floor_ms = _floor(factory, matching, queries)

        # A write makes the next query rebuild the index from the previous one.
        created = client.post(
            "/api/v1/organisations",
            json={
                "name": "Organisation ajoutée pendant le banc d'essai",
                "kind": "association",
                "territories": [f"departement:{deps[0]}"],
                "statements": [{"kind": "competency", "text": f"{ACTIONS[0]} {SUBJECTS[0]}"}],
            },
        )
        assert created.status_code == 201, created.text
        t0 = time.perf_counter()
        response = client.get("/api/v1/search/organisations", params={"q": SUBJECTS[0]})
        after_write = time.perf_counter() - t0
        assert response.status_code == 200, response.text

        # No more statements than the bench holds: a small run stays small.
        rate = _indexing_rate(factory, settings, rng, min(sample_for_indexing, statements))
        engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchResult(
        backend=backend,
        organisations=organisations,
        statements=statements,
        load_seconds=round(load_seconds, 1),
        index_build_seconds=round(index_build, 2),
        first_search_after_write_seconds=round(after_write, 2),
        search_p50_ms=round(_percentile(search_ms, 50), 1),
        search_p95_ms=round(_percentile(search_ms, 95), 1),
        partners_p50_ms=round(_percentile(partner_ms, 50), 1),
        partners_p95_ms=round(_percentile(partner_ms, 95), 1),
        indexing_statements_per_s=round(rate, 0),
        peak_memory_mb=round(peak, 0),
        floor_p50_ms=round(_percentile(floor_ms, 50), 2),
        floor_p95_ms=round(_percentile(floor_ms, 95), 2),
    )


def _floor(factory: Any, matching: MatchingEngine, queries: int) -> list[float]:
    """Milliseconds of a bare top-10 per query, what no search can beat on this machine and
    database: numpy's product of the query with every competency vector (SQLite), or one
    HNSW query of the same space on PostgreSQL. Queries are encoded beforehand, untimed."""
    texts = [
        f"{NEED_PREFIXES[i % len(NEED_PREFIXES)]} {SUBJECTS[i % len(SUBJECTS)]}"
        for i in range(queries)
    ]
    vectors = matching.encode(texts, role=QUERY)
    out: list[float] = []
    with factory() as session:
        snapshot = matching.snapshot(session)
        if snapshot.numpy_scorer is not None and session.get_bind().dialect.name == "sqlite":
            matrix = snapshot.numpy_scorer.matrix("competency")
            k = min(10, len(matrix)) - 1
            for vector in vectors:
                t0 = time.perf_counter()
                sims = matrix @ vector
                np.argpartition(-sims, k)[: k + 1]
                out.append((time.perf_counter() - t0) * 1000)
            return out
        dim = int(snapshot.dimension)
        space = matching.space.replace("'", "''")
        # Literals, as the scorer writes them: the planner must see the partial index applies.
        sql = text(
            f"SELECT e.content_hash FROM embeddings e WHERE e.model = '{space}' "
            f"AND e.role = 'competency' ORDER BY e.vector::halfvec({dim}) <=> "
            f"CAST(:q AS halfvec({dim})) LIMIT 10"
        )
        for vector in vectors:
            literal = "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"
            t0 = time.perf_counter()
            session.execute(sql, {"q": literal}).all()
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _after_bulk_load(engine: Engine) -> None:
    """What an operator does after a bulk load on PostgreSQL: VACUUM ANALYZE, so that the
    measures do not race autovacuum and the planner has statistics."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("embeddings", "statements", "organisations", "organisation_territories"):
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))


def _reset(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


def _generate(
    factory: Any,
    matching: MatchingEngine,
    rng: np.random.Generator,
    n_orgs: int,
    n_statements: int,
) -> None:
    """Organisations on random communes, statements from fragments, mixed vectors."""
    fragments = ACTIONS + SUBJECTS + PUBLICS + PLACES + NEED_PREFIXES
    fragment_vectors = dict(zip(fragments, matching.encode(fragments, role=PASSAGE), strict=True))
    with factory() as session, session.begin():
        communes = list(
            session.execute(
                select(Territory.id, Territory.epci_code, Territory.departement_code).where(
                    Territory.level == "commune"
                )
            )
        )
        epci_ids: dict[str, int] = dict(
            session.execute(
                select(Territory.code, Territory.id).where(Territory.level == "epci")
            ).all()
        )
    now = datetime.now(UTC)
    kinds = ["landlord", "association", "public_body", "company", "research", "other"]
    org_rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    stmt_rows: list[dict[str, Any]] = []
    vectors: dict[tuple[str, str], np.ndarray] = {}
    per_org = max(2, n_statements // n_orgs)
    for org_id in range(1, n_orgs + 1):
        org_rows.append(
            {
                "id": org_id,
                "name": f"Organisation de test {org_id}",
                "name_key": name_key(f"Organisation de test {org_id}"),
                "kind": kinds[org_id % 6],
                "created_at": now,
                "updated_at": now,
            }
        )
        commune_id, epci, _ = communes[int(rng.integers(len(communes)))]
        links.append({"organisation_id": org_id, "territory_id": commune_id})
        if epci and epci in epci_ids and rng.random() < 0.5:
            links.append({"organisation_id": org_id, "territory_id": epci_ids[epci]})
        focus = rng.choice(len(SUBJECTS), size=3, replace=False)
        for j in range(per_org):
            need = j >= per_org * 0.6
            action = ACTIONS[int(rng.integers(len(ACTIONS)))]
            subject = SUBJECTS[
                int(focus[j % 3] if rng.random() < 0.7 else rng.integers(len(SUBJECTS)))
            ]
            public = PUBLICS[int(rng.integers(len(PUBLICS)))]
            place = PLACES[int(rng.integers(len(PLACES)))]
            head = NEED_PREFIXES[j % len(NEED_PREFIXES)] if need else action
            body = f"{head} {subject} {public} {place} (réf. {org_id}-{j})."
            vector = _unit(
                fragment_vectors[head] * 0.5
                + fragment_vectors[subject] * 1.0
                + fragment_vectors[public] * 0.4
                + fragment_vectors[place] * 0.3
                + rng.normal(0, 0.02, size=fragment_vectors[subject].shape)
            )
            h = content_hash(body)
            vectors[("need" if need else "competency", h)] = vector
            stmt_rows.append(
                {
                    "organisation_id": org_id,
                    "kind": "need" if need else "competency",
                    "text": body,
                    "themes": [],
                    "visibility": "network",
                    "content_hash": h,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    # Profiles: description-less organisations read as their competencies.
    by_org: dict[int, list[str]] = {}
    for row in stmt_rows:
        if row["kind"] == "competency":
            by_org.setdefault(row["organisation_id"], []).append(row["text"])
    profile_of: dict[int, str] = {}
    for org in org_rows:
        texts = by_org.get(org["id"], [])
        profile = "\n".join(texts)
        if profile:
            h = content_hash(profile)
            profile_of[org["id"]] = h
            members = [vectors[("competency", content_hash(t))] for t in texts]
            vectors[(PROFILE, h)] = _unit(np.mean(members, axis=0))
    for org in org_rows:
        org["profile_hash"] = profile_of.get(org["id"])
    with factory() as session, session.begin():
        session.execute(insert(Organisation), org_rows)
        if session.get_bind().dialect.name == "postgresql":
            # The ids were given: move the sequence past them for later inserts.
            session.execute(
                text("SELECT setval(pg_get_serial_sequence('organisations', 'id'), :n)"),
                {"n": n_orgs},
            )
        session.execute(insert(organisation_territories), links)
        for start in range(0, len(stmt_rows), 5000):
            session.execute(insert(Statement), stmt_rows[start : start + 5000])
        _store_vectors(session, matching, vectors)
        bump_version(session, None)  # the whole network changed


def _store_vectors(
    session: Any, matching: MatchingEngine, vectors: dict[tuple[str, str], np.ndarray]
) -> None:
    dim = int(next(iter(vectors.values())).shape[0])
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        raw = session.connection().connection.driver_connection
        from pgvector.psycopg import register_vector

        register_vector(raw)
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY embeddings (model, role, content_hash, dimension, vector, created_at) "
                "FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["varchar", "varchar", "varchar", "int4", "vector", "timestamptz"])
            for (role, h), v in vectors.items():
                copy.write_row([matching.space, role, h, dim, v, now])
        session.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        matching.ensure_vector_index(session, dim, {role for role, _ in vectors})
        return
    from models import Embedding

    rows = [
        {
            "model": matching.space,
            "role": role,
            "content_hash": h,
            "dimension": dim,
            "vector": v,
            "created_at": now,
        }
        for (role, h), v in vectors.items()
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Embedding), rows[start : start + 5000])


def _indexing_rate(factory: Any, settings: Settings, rng: np.random.Generator, n: int) -> float:
    """Statements per second through the real write path: encode, store, per batch."""
    matching = MatchingEngine(settings)
    texts: dict[tuple[str, str], str] = {}
    for i in range(n):
        body = (
            f"{ACTIONS[i % len(ACTIONS)]} {SUBJECTS[int(rng.integers(len(SUBJECTS)))]} "
            f"{PUBLICS[int(rng.integers(len(PUBLICS)))]} — indexation {i}."
        )
        texts[("competency", content_hash(body))] = body
    matching.encode(["échauffement du modèle"], role=PASSAGE)
    start = time.perf_counter()
    with factory() as session, session.begin():
        matching.ensure_embeddings(session, texts)
    return n / (time.perf_counter() - start)


def result_dict(result: BenchResult) -> dict[str, Any]:
    return asdict(result)
