"""Search reads a query typed in a hurry as the one meant, through the HTTP API with the
real model on the demo network: typing mistakes are corrected towards the network's words,
the page says how the query was read, and a query without mistakes is searched as written."""

from __future__ import annotations

import json
import unicodedata

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from matcher.evaluation import hurried
from tests.api.test_search import SEARCH, OnDemoNetwork, demo_connection, search_slugs
from tests.conftest import FIXTURES

__all__ = ["demo_connection"]  # the class-scoped demo network, shared with test_search

NEEDS = [
    s["text"]
    for r in json.loads((FIXTURES / "demo" / "organisations.json").read_text("utf-8"))
    for s in r["statements"]
    if s["kind"] == "need"
]


def read_as(client: TestClient, q: str) -> str | None:
    """How search read `q` (null: as written)."""
    response = client.get(SEARCH, params={"q": q})
    assert response.status_code == 200, response.text
    value: str | None = response.json()["read_as"]
    return value


@pytest.mark.slow
class TestTypingMistakes(OnDemoNetwork):
    def test_a_misspelt_query_finds_what_the_right_one_finds_and_says_how_it_read_it(
        self, client: TestClient, session: Session
    ) -> None:
        right = "un lieu d'accueil pour les locataires dans nos résidences"
        typed = "un lieu d'acceuil pour les locatires dans nos residnces"
        response = client.get(SEARCH, params={"q": typed})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["query"] == typed
        assert page["read_as"] == "un lieu d'accueil pour les locataires dans nos résidences"
        assert search_slugs(client, session, q=typed) == search_slugs(
            client, session, q=page["read_as"]
        )
        assert (
            search_slugs(client, session, q=typed)[:3] == search_slugs(client, session, q=right)[:3]
        )

    def test_no_demo_need_is_read_otherwise_as_written_or_typed_without_accents(
        self, client: TestClient
    ) -> None:
        for need in NEEDS:
            for written in (need, hurried(need, typo_rate=0)):
                assert read_as(client, written) is None, written

    def test_as_typed_searches_the_mistakes_and_decomposed_accents_are_one_letter(
        self, client: TestClient, session: Session
    ) -> None:
        typed = "acceuil des locatires"
        response = client.get(SEARCH, params={"q": typed, "as_typed": "true"})
        assert response.status_code == 200, response.text
        assert response.json()["read_as"] is None
        assert read_as(client, typed) == "accueil des locataires"
        decomposed = unicodedata.normalize("NFD", "équipement des résidences")
        page = client.get(SEARCH, params={"q": decomposed}).json()
        assert page["query"] == "équipement des résidences"
        assert page["read_as"] is None

    def test_the_setting_off_searches_every_query_as_typed(
        self, app: FastAPI, session: Session, settings: Settings
    ) -> None:
        snapshot = app.state.matching.snapshot(session)
        assert app.state.matching.correct_spelling("acceuil", snapshot) == "accueil"
        off = MatchingEngine(settings.model_copy(update={"spelling": False}))
        assert off.correct_spelling("acceuil", snapshot) == "acceuil"

    def test_place_names_are_not_typos(self, client: TestClient) -> None:
        # Grans (13) and Bédoin (84) are communes one letter from "grands" and "besoin", two
        # demo words, and neither is a French word (a bare French speller corrects them).
        for written in ("jardins partagés à grans", "jardins partages a bedoin"):
            assert read_as(client, written) is None, written

    def test_demo_needs_with_typos_mostly_find_the_same_first_organisation(
        self, client: TestClient, session: Session
    ) -> None:
        same = 0
        for need in NEEDS[:12]:
            clean = search_slugs(client, session, q=hurried(need, typo_rate=0))
            typed = search_slugs(client, session, q=hurried(need, typo_rate=1))
            same += bool(clean) and typed[:1] == clean[:1]
        assert same >= 10, same
