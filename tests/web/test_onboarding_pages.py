"""The guided form of a new organisation through TestClient: territories typed by name
resolved on the server, first statements, French errors next to each field; only the
coordinator creates an organisation, as in the API."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching import engine as matching_engine
from models import Organisation
from models.enums import AccountRole
from tests.factories import make_organisation
from tests.fakes import FakeEncoder
from tests.web.pages import make_person, post_form, sign_in

NEW = "/espace/organisations/nouvelle"


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        matching_engine, "dense_encoder", lambda model: FakeEncoder("fake-web", 16, role_aware=True)
    )


@pytest.fixture
def coordinator(app: FastAPI, session: Session, settings: Settings) -> Iterator[TestClient]:
    person = make_person(session, "coordination@arhlm.fr", role=AccountRole.coordinator)
    with TestClient(app, raise_server_exceptions=False) as client:
        sign_in(client, session, settings, person)
        yield client


def text(response: object) -> str:
    return unescape(response.text)  # type: ignore[attr-defined]


def form(**fields: object) -> dict[str, object]:
    return {
        "name": "Régie de quartier du Panier",
        "kind": "association",
        "legal_form": "Association loi 1901",
        "siren": "",
        "website": "",
        "description": "",
        "territoire": ["Marseille", "Bouches-du-Rhône", "", "", ""],
        "competence": ["Nous organisons des chantiers d'insertion dans les résidences", ""],
        "besoin": ["Trouver des bailleurs pour de nouveaux chantiers", ""],
        **fields,
    }


class TestOnboarding:
    def test_a_new_organisation_is_created_with_territories_by_name_and_statements(
        self, coordinator: TestClient, session: Session
    ) -> None:
        page = coordinator.get(NEW)
        assert page.status_code == 200
        assert '<script src="/static/web/territoires.js" defer>' in page.text
        answer = post_form(coordinator, NEW, NEW, form())  # type: ignore[arg-type]
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        org = session.scalar(
            select(Organisation).where(Organisation.name == "Régie de quartier du Panier")
        )
        assert org is not None
        assert sorted(t.name for t in org.territories) == ["Bouches-du-Rhône", "Marseille"]
        assert len(org.statements) == 2
        profile = text(coordinator.get(answer.headers["location"]))  # type: ignore[attr-defined]
        assert "L'organisation est créée" in profile

    def test_each_wrong_field_is_said_next_to_it(self, coordinator: TestClient) -> None:
        answer = post_form(
            coordinator,
            NEW,
            NEW,
            form(  # type: ignore[arg-type]
                name="",
                kind="licorne",
                siren="123",
                website="pas un site",
                territoire=["Nullepart-sur-Mer", "Saint-Denis", "", "", ""],
                competence=["ab", ""],
            ),
        )
        assert answer.status_code == 422  # type: ignore[attr-defined]
        body = text(answer)
        for field in (
            "name",
            "kind",
            "siren",
            "website",
            "territoire-0",
            "territoire-1",
            "competence-0",
        ):
            assert f'id="{field}-erreur"' in body, field
        assert "Nullepart-sur-Mer" in body
        assert "Nullepart-sur-Mer" in body.split('id="territoire-0"')[1]  # kept in the field

    def test_a_taken_siren_is_a_french_error_next_to_it(
        self, coordinator: TestClient, session: Session
    ) -> None:
        make_organisation(session, name="Déjà là", siren="732829320")
        answer = post_form(coordinator, NEW, NEW, form(siren="732 829 320"))  # type: ignore[arg-type]
        assert answer.status_code == 409  # type: ignore[attr-defined]
        assert 'id="siren-erreur"' in text(answer)

    def test_only_the_coordinator_creates_an_organisation(
        self, app: FastAPI, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session, name="Habitat des Calanques")
        person = make_person(session, "membre@calanques.fr", organisation_ids=[org.id])
        with TestClient(app, raise_server_exceptions=False) as member:
            sign_in(member, session, settings, person)
            page = member.get(NEW)
            assert page.status_code == 403
            assert "Seule la coordination régionale" in text(page)
