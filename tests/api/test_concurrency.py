"""Concurrent requests: writes that all succeed."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.services.matching import _insert_ignoring_duplicates
from matcher.text import content_hash
from models import Embedding


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
