"""Which way each text is read when embedded: needs and searches as queries, competencies,
profiles and call requirements as passages (a stand-in encoder records the calls)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching import engine as matching_service
from api.matching.engine import MatchingEngine
from api.matching.service import search
from api.matching.texts import reindex
from matcher.encoders import PASSAGE, QUERY
from matcher.index import PROFILE, REQUIREMENT
from matcher.text import content_hash, fold
from models import Embedding
from tests.factories import make_organisation
from tests.fakes import FakeEncoder

GARDENS = "Animation de jardins partagés avec les locataires"
PREMISES = "Trouver un local pour stocker du matériel de bricolage"


def engine_with(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *, role_aware: bool
) -> tuple[MatchingEngine, FakeEncoder]:
    fake = FakeEncoder(f"fake-{'aware' if role_aware else 'blind'}", 16, role_aware=role_aware)
    monkeypatch.setattr(matching_service, "dense_encoder", lambda model: fake)
    # Raw texts, so that the recorded calls show them as written.
    return MatchingEngine(settings.model_copy(update={"thesaurus": ""})), fake


def roles_of(fake: FakeEncoder, text: str) -> list[str]:
    """The roles `text` was encoded in (the encoder reads it normalised, maybe expanded)."""
    return [role for role, texts in fake.calls for t in texts if fold(t) == fold(text)]


def stored(session: Session, engine: MatchingEngine, role: str, text: str) -> np.ndarray:
    vector = session.scalar(
        select(Embedding.vector).where(
            Embedding.model == engine.space,
            Embedding.role == role,
            Embedding.content_hash == content_hash(text),
        )
    )
    assert vector is not None, (role, text)
    return np.asarray(vector)


class TestEmbeddingRoles:
    def test_needs_are_read_as_queries_competencies_and_profiles_as_passages(
        self, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine, fake = engine_with(monkeypatch, settings, role_aware=True)
        make_organisation(session, competencies=[GARDENS], needs=[PREMISES])
        reindex(session, engine)
        assert roles_of(fake, PREMISES) == [QUERY]
        assert roles_of(fake, GARDENS) == [PASSAGE]  # the profile reads GARDENS alone
        assert {role for role, _ in fake.calls} == {QUERY, PASSAGE}
        stored(session, engine, PROFILE, GARDENS)

    def test_call_requirements_are_read_as_passages(
        self, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine, fake = engine_with(monkeypatch, settings, role_aware=True)
        text = "Une structure capable d'animer des ateliers de jardinage"
        assert engine.ensure_embeddings(session, {(REQUIREMENT, content_hash(text)): text}) == 1
        assert roles_of(fake, text) == [PASSAGE]

    def test_a_text_both_needed_and_offered_is_encoded_in_each_role(
        self, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine, fake = engine_with(monkeypatch, settings, role_aware=True)
        make_organisation(session, competencies=[GARDENS, PREMISES], needs=[GARDENS])
        reindex(session, engine)
        assert sorted(roles_of(fake, GARDENS)) == [PASSAGE, QUERY]
        need = stored(session, engine, "need", GARDENS)
        competency = stored(session, engine, "competency", GARDENS)
        assert not np.allclose(need, competency)

    def test_a_role_blind_encoder_encodes_a_shared_text_once(
        self, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine, fake = engine_with(monkeypatch, settings, role_aware=False)
        make_organisation(session, competencies=[GARDENS, PREMISES], needs=[GARDENS])
        reindex(session, engine)
        assert len(roles_of(fake, GARDENS)) == 1
        assert np.allclose(
            stored(session, engine, "need", GARDENS),
            stored(session, engine, "competency", GARDENS),
        )

    def test_a_search_is_read_as_a_query(
        self, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine, fake = engine_with(monkeypatch, settings, role_aware=True)
        make_organisation(session, competencies=[GARDENS], needs=[PREMISES])
        reindex(session, engine)
        fake.calls.clear()
        search(session, engine, "jardins partagés", None, 10)
        assert fake.calls == [(QUERY, ["jardins partagés"])]


def test_the_default_model_is_one_space_under_one_name() -> None:
    """MAILLAGE_MODEL's default is the matcher's, spelled as the space is named."""
    from matcher.encoders import DEFAULT_MODEL, make_encoder

    assert Settings.model_fields["model"].default == DEFAULT_MODEL
    assert make_encoder(DEFAULT_MODEL).name == DEFAULT_MODEL
