"""Concurrent requests: writes that all succeed."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from api.services.matching import _insert_ignoring_duplicates
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
