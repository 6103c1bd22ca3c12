"""Concurrent requests: writes that all succeed."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from api.schemas.organisations import OrganisationIn
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
        matching = MatchingEngine(settings)
        events: list[str] = []
        encode = matching.encode

        def recording_encode(*args: Any, **kwargs: Any) -> Any:
            events.append("encode")
            return encode(*args, **kwargs)

        def record(*_: Any) -> None:
            events.append("sql")

        monkeypatch.setattr(matching, "encode", recording_encode)
        data = OrganisationIn.model_validate(
            organisation(
                "Atelier de réparation solidaire",
                ["Réparation d'électroménager avec les habitants"],
                ["Un local en pied d'immeuble"],
            )
        )
        event.listen(engine, "before_cursor_execute", record)
        try:
            create_organisation(session, data, matching=matching)
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
