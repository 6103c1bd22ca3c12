"""Concurrent requests: writes that all succeed, and readers that see what was written.

The end-to-end tests run the real app behind a real uvicorn server on 127.0.0.1, on a
database of their own (tests/api/servers.py and conftest.py), because concurrency needs
committed transactions on several connections, which the rolled-back test transaction
cannot give.
"""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching import engine as matching_module
from api.matching.engine import MatchingEngine, _insert_ignoring_duplicates
from api.matching.texts import ROLES
from api.organisations.schemas import OrganisationIn
from api.organisations.service import create_organisation
from matcher.text import content_hash
from models import Embedding
from models.db import make_engine
from models.matching import hnsw_index_name
from tests.api.servers import Server, at_once, is_ddl

ORGANISATIONS = "/api/v1/organisations"
SEARCH = "/api/v1/search/organisations"
T = TypeVar("T")


def organisation(
    name: str, competencies: list[str], needs: list[str], kind: str = "association"
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "territories": ["commune:13001"],
        "statements": [{"kind": "competency", "text": t} for t in competencies]
        + [{"kind": "need", "text": t} for t in needs],
    }


WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|BEGIN IMMEDIATE)\b", re.I)


@pytest.mark.slow
class TestWriteOrder:
    def test_an_organisation_is_encoded_before_its_first_statement(
        self, session: Session, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A writing request's first statement takes SQLite's write lock: encoding, the slow
        part, must not hold it while the other writers wait."""
        matching_engine = MatchingEngine(settings)
        events: list[str] = []
        encode = matching_engine.encode

        def recording_encode(*args: Any, **kwargs: Any) -> Any:
            events.append("encode")
            return encode(*args, **kwargs)

        def record(*_: Any) -> None:
            events.append("sql")

        monkeypatch.setattr(matching_engine, "encode", recording_encode)
        data = OrganisationIn.model_validate(
            organisation(
                "Atelier de réparation solidaire",
                ["Réparation d'électroménager avec les habitants"],
                ["Un local en pied d'immeuble"],
            )
        )
        event.listen(engine, "before_cursor_execute", record)
        try:
            create_organisation(session, data, matching=matching_engine)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        # Every encoding (one call per role a role-aware model reads: needs as queries,
        # competencies and the profile as passages) comes before the first SQL statement.
        first_sql = events.index("sql")
        assert events[:first_sql] == ["encode"] * first_sql
        assert first_sql >= 1
        assert "encode" not in events[first_sql:]


@pytest.mark.slow
class TestNoDdlInRequests:
    def test_writing_new_texts_runs_no_ddl(self, client: TestClient, engine: Engine) -> None:
        """DDL in concurrent request transactions deadlocks: start-up creates the indexes."""
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            response = client.post(
                ORGANISATIONS,
                json=organisation(
                    "Compagnons du bâtiment solidaire",
                    ["Petits travaux d'adaptation du logement au vieillissement"],
                    ["Des logements vacants à rénover en chantier école"],
                ),
            )
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert response.status_code == 201, response.text
        assert any("INSERT INTO embeddings" in s for s in statements)
        assert [s for s in statements if is_ddl(s)] == []


class TestIndexVersion:
    """The cached index against the version each request reads (no database: the version
    a request reads is the fake session it passes)."""

    @pytest.fixture
    def matching_and_builds(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[MatchingEngine, list[int]]:
        """A matching engine whose builds are recorded, and held back at a request's `gate`."""
        matching = MatchingEngine(Settings())
        built: list[int] = []

        def read_version(session: Any) -> int:
            if session.reading is not None:
                session.reading.set()
            return int(session.version)

        def build(session: Any, version: int) -> Any:
            if session.gate is not None:
                session.gate.started.set()
                assert session.gate.release.wait(10)
            built.append(version)
            return SimpleNamespace(version=version)

        monkeypatch.setattr(matching_module, "current_version", read_version)
        monkeypatch.setattr(matching, "_build", build)
        return matching, built

    @staticmethod
    def request(version: int, *, reading: Any = None, gate: Any = None) -> Any:
        return SimpleNamespace(version=version, reading=reading, gate=gate)

    def test_a_request_during_a_rebuild_waits_for_the_version_it_reads(
        self, matching_and_builds: tuple[MatchingEngine, list[int]]
    ) -> None:
        """Its client's write returned before it began: the previous index would miss it."""
        matching, built = matching_and_builds
        assert matching.snapshot(self.request(1)).version == 1
        gate = SimpleNamespace(started=threading.Event(), release=threading.Event())
        answers: dict[str, int] = {}
        rebuilding = threading.Thread(
            target=lambda: answers.update(
                first=matching.snapshot(self.request(2, gate=gate)).version
            )
        )
        rebuilding.start()
        assert gate.started.wait(10)
        # A request that read the previous version is answered at once, by the index it reads.
        assert matching.snapshot(self.request(1)).version == 1
        reading = threading.Event()
        waiting = threading.Thread(
            target=lambda: answers.update(
                second=matching.snapshot(self.request(2, reading=reading)).version
            )
        )
        waiting.start()
        assert reading.wait(10)
        gate.release.set()
        rebuilding.join(10)
        waiting.join(10)
        assert answers == {"first": 2, "second": 2}
        assert built == [1, 2]  # the waiting request found the index built, and built nothing

    def test_a_newer_index_answers_a_request_that_read_an_older_version(
        self, matching_and_builds: tuple[MatchingEngine, list[int]]
    ) -> None:
        matching, built = matching_and_builds
        assert matching.snapshot(self.request(3)).version == 3
        assert matching.snapshot(self.request(2)).version == 3
        assert built == [3]


class TestEmbeddingCache:
    def test_storing_a_text_already_stored_is_not_an_error(self, session: Session) -> None:
        """What happens when a concurrent transaction stored the same text in between."""
        space = "espace:test"  # no HNSW index: its vectors may have any dimension
        row = {
            "model": space,
            "role": "need",
            "content_hash": content_hash("Un texte écrit par deux organisations à la fois"),
            "dimension": 4,
            "vector": np.full(4, 0.5, dtype=np.float32),
        }
        session.execute(_insert_ignoring_duplicates(session), [row])
        session.execute(_insert_ignoring_duplicates(session), [row])
        count = session.scalar(
            select(func.count())
            .select_from(Embedding)
            .where(Embedding.model == space, Embedding.content_hash == row["content_hash"])
        )
        assert count == 1


# --- a real server (tests/api/servers.py) -------------------------------------------


@pytest.mark.postgres_only
class TestRacingTransactions:
    def test_two_transactions_storing_the_same_new_text_both_commit(
        self, server_database: str, on_postgres: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Both look the text up before either stores it: the second INSERT waits for the
        first transaction, then finds the text stored, and skips it."""
        if not on_postgres:
            pytest.skip(reason="SQLite writers lock at their first statement: they never race")
        db = make_engine(server_database)
        matching_engine = MatchingEngine(Settings(database_url=server_database))
        matching_engine.space = "espace:course"  # no HNSW index: any dimension will do
        key = ("need", content_hash("Un texte nouveau écrit par deux organisations à la fois"))
        vectors = {key: np.full(4, 0.5, dtype=np.float32)}
        looked_up = threading.Barrier(2, timeout=30)
        insert = matching_module._insert_ignoring_duplicates

        def once_both_looked_up(session: Session) -> Any:
            looked_up.wait()
            return insert(session)

        monkeypatch.setattr(matching_module, "_insert_ignoring_duplicates", once_both_looked_up)

        def store(_: int) -> int:
            with Session(db) as session, session.begin():
                return matching_engine.ensure_embeddings(session, {key: "texte"}, encoded=vectors)

        try:
            assert at_once(store, 2) == [1, 1]  # each found it missing; both committed
            with db.connect() as conn:
                stored = conn.scalar(
                    select(func.count())
                    .select_from(Embedding)
                    .where(Embedding.model == "espace:course")
                )
            assert stored == 1
        finally:
            db.dispose()


@pytest.mark.slow
class TestConcurrentRequests:
    def test_first_concurrent_writes_after_a_start_all_succeed(
        self, server: Server, on_postgres: bool
    ) -> None:
        """Twelve organisations with many statements, one new text shared by all of them."""
        shared = "Diagnostic partagé des charges locatives avec les amicales de locataires"

        def post(i: int) -> int:
            own = [
                f"Atelier n° {j} de l'association {i} : réparer son logement avec ses voisins"
                for j in range(20)
            ]
            body = organisation(f"Association des ateliers n° {i}", [shared, *own], [shared])
            return httpx.post(
                server.url + ORGANISATIONS, json=body, timeout=300, headers=server.headers
            ).status_code

        assert at_once(post, 12) == [201] * 12
        assert server.ddl == []  # no request ran DDL...
        if on_postgres:  # ...start-up made the vector index of every role
            space = server.app.state.matching.space
            with server.app.state.engine.connect() as conn:
                names = set(conn.scalars(text("SELECT indexname FROM pg_indexes")))
            assert {hnsw_index_name(space, role) for role in ROLES} <= names

    def test_each_writer_reads_its_own_write_while_others_write(self, server: Server) -> None:
        """Right after its POST returns, the new organisation has its partner and is found,
        whatever the other writers and the index rebuilds they cause are doing."""
        landlord = organisation(
            "Bailleur des jardins",
            ["Accompagnement social des locataires en difficulté"],
            ["Trouver une association pour animer des jardins partagés"],
            kind="landlord",
        )
        created = httpx.post(
            server.url + ORGANISATIONS, json=landlord, timeout=300, headers=server.headers
        )
        assert created.status_code == 201, created.text
        landlord_id = created.json()["id"]

        def write_then_read(i: int) -> tuple[int, list[int], list[int]]:
            competency = f"Animation de jardins partagés avec les habitants, équipe n° {i}"
            body = organisation(
                f"Jardiniers n° {i}",
                [competency],
                ["Un bailleur pour accompagner socialement les locataires"],
            )
            with httpx.Client(base_url=server.url, timeout=300, headers=server.headers) as client:
                posted = client.post(ORGANISATIONS, json=body)
                assert posted.status_code == 201, posted.text
                me = posted.json()["id"]
                partners = client.get(f"{ORGANISATIONS}/{me}/partners", params={"limit": 50})
                assert partners.status_code == 200, partners.text
                found = client.get(SEARCH, params={"q": competency, "limit": 50})
                assert found.status_code == 200, found.text
            return (
                me,
                [p["organisation"]["id"] for p in partners.json()["items"]],
                [h["organisation"]["id"] for h in found.json()["items"]],
            )

        results = at_once(write_then_read, 8)
        assert not [r for r in results if isinstance(r, Exception)], results
        for me, partner_ids, found_ids in results:
            assert landlord_id in partner_ids, (me, partner_ids)
            assert me in found_ids, (me, found_ids)
        # And afterwards, the landlord sees every one of them.
        page = httpx.get(
            f"{server.url}{ORGANISATIONS}/{landlord_id}/partners",
            params={"limit": 50},
            headers=server.headers,
        ).json()
        assert {r[0] for r in results} <= {p["organisation"]["id"] for p in page["items"]}

    def test_a_write_encodes_then_takes_the_write_lock_and_a_read_takes_none(
        self, server: Server, on_postgres: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On SQLite that statement takes the write lock: the encoder never holds it."""
        engine: MatchingEngine = server.app.state.matching
        encoded_after: list[int] = []
        encode = engine.encode

        def recording_encode(*args: Any, **kwargs: Any) -> Any:
            encoded_after.append(len(server.statements))
            return encode(*args, **kwargs)

        monkeypatch.setattr(engine, "encode", recording_encode)
        before = len(server.statements)
        body = organisation(
            "Régie de quartier des Facultés",
            ["Entretien des espaces verts par des salariés en insertion"],
            ["Des chantiers confiés par les bailleurs du quartier"],
        )
        response = httpx.post(
            server.url + ORGANISATIONS, json=body, timeout=300, headers=server.headers
        )
        assert response.status_code == 201, response.text
        # Encoded (one call per role the model reads differently) before the request's
        # transaction, with no statement between the calls: only the token's look-up (a
        # read transaction of its own) comes before them.
        assert encoded_after
        assert len(set(encoded_after)) == 1, encoded_after
        earlier = server.statements[before : encoded_after[0]]
        assert not [s for s in earlier if WRITES.match(s)], earlier
        if not on_postgres:
            assert server.statements[encoded_after[0]].strip().upper() == "BEGIN IMMEDIATE"
            reads = len(server.statements)
            httpx.get(
                f"{server.url}{ORGANISATIONS}/{response.json()['id']}",
                timeout=60,
                headers=server.headers,
            )
            assert server.statements[reads].strip().upper() == "BEGIN DEFERRED"
