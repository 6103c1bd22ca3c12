"""Concurrent requests: writes that all succeed, and readers that see what was written."""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from api.schemas.organisations import OrganisationIn
from api.services import matching
from api.services.matching import MatchingEngine, _insert_ignoring_duplicates
from api.services.organisations import create_organisation
from api.settings import Settings
from matcher.text import content_hash
from models import Embedding

ORGANISATIONS = "/api/v1/organisations"


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


def is_ddl(statement: str) -> bool:
    return re.match(r"\s*(CREATE|ALTER|DROP)\b", statement, re.I) is not None


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
        assert events[0] == "encode"
        assert events.count("encode") == 1
        assert "sql" in events


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
    def engine_and_builds(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[MatchingEngine, list[int]]:
        """An engine whose builds are recorded, and held back at a request's `gate`."""
        engine = MatchingEngine(Settings())
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

        monkeypatch.setattr(matching, "current_version", read_version)
        monkeypatch.setattr(engine, "_build", build)
        return engine, built

    @staticmethod
    def request(version: int, *, reading: Any = None, gate: Any = None) -> Any:
        return SimpleNamespace(version=version, reading=reading, gate=gate)

    def test_a_request_during_a_rebuild_waits_for_the_version_it_reads(
        self, engine_and_builds: tuple[MatchingEngine, list[int]]
    ) -> None:
        """Its client's write returned before it began: the previous index would miss it."""
        engine, built = engine_and_builds
        assert engine.loaded(self.request(1)).version == 1
        gate = SimpleNamespace(started=threading.Event(), release=threading.Event())
        answers: dict[str, int] = {}
        rebuilding = threading.Thread(
            target=lambda: answers.update(first=engine.loaded(self.request(2, gate=gate)).version)
        )
        rebuilding.start()
        assert gate.started.wait(10)
        # A request that read the previous version is answered at once, by the index it reads.
        assert engine.loaded(self.request(1)).version == 1
        reading = threading.Event()
        waiting = threading.Thread(
            target=lambda: answers.update(
                second=engine.loaded(self.request(2, reading=reading)).version
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
        self, engine_and_builds: tuple[MatchingEngine, list[int]]
    ) -> None:
        engine, built = engine_and_builds
        assert engine.loaded(self.request(3)).version == 3
        assert engine.loaded(self.request(2)).version == 3
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
