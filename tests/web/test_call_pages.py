"""Calls on the pages through TestClient: the calls that fit a member's organisation with
their countdown and reasons, « intéressé », a call's page, and the coordinator's ranking and
consortium proposals; French errors, permissions, CSRF, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from html import unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching import engine as matching_engine
from api.matching.texts import reindex
from models import Call, CallInterest, Consortium, Organisation
from models.enums import AccountRole
from tests.api.test_call_fit import make_call
from tests.factories import make_organisation
from tests.fakes import FakeEncoder
from tests.web.pages import csrf_of, make_person, post_form, sign_in


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        matching_engine, "dense_encoder", lambda model: FakeEncoder("fake-web", 16, role_aware=True)
    )


@pytest.fixture
def landlord(session: Session) -> Organisation:
    return make_organisation(
        session,
        name="Habitat des Calanques",
        territories=["commune:13001"],
        competencies=["Nous mettons à disposition du foncier pour des jardins partagés"],
        needs=["Trouver une association qui anime un jardin partagé"],
    )


@pytest.fixture
def gardeners(session: Session) -> Organisation:
    return make_organisation(
        session,
        name="Jardins du Midi",
        kind="association",
        territories=["departement:13"],
        competencies=["Nous animons des jardins partagés avec les habitants"],
    )


@pytest.fixture
def call(app: FastAPI, session: Session, landlord: Organisation, gardeners: Organisation) -> Call:
    call = make_call(
        session,
        title="Nature en pied d'immeuble",
        requirements=(
            "Un bailleur qui met le foncier à disposition",
            "Une structure qui anime le jardin avec les habitants",
        ),
        deadline=date.today() + timedelta(days=12),
    )
    reindex(session, app.state.matching)
    return call


def signed_in(
    app: FastAPI, session: Session, settings: Settings, email: str, **kwargs: object
) -> TestClient:
    person = make_person(session, email, **kwargs)  # type: ignore[arg-type]
    client = TestClient(app, raise_server_exceptions=False)
    sign_in(client, session, settings, person)
    return client


@pytest.fixture
def member(
    app: FastAPI, session: Session, settings: Settings, landlord: Organisation
) -> Iterator[TestClient]:
    with signed_in(
        app, session, settings, "membre@calanques.fr", organisation_ids=[landlord.id]
    ) as client:
        yield client


@pytest.fixture
def coordinator(app: FastAPI, session: Session, settings: Settings) -> Iterator[TestClient]:
    with signed_in(
        app, session, settings, "coordination@arhlm.fr", role=AccountRole.coordinator
    ) as client:
        yield client


def text(response: object) -> str:
    return unescape(response.text)  # type: ignore[attr-defined]


class TestCallsThatFit:
    def test_open_calls_show_their_countdown_and_why_they_fit(
        self, member: TestClient, landlord: Organisation, call: Call
    ) -> None:
        page = member.get(f"/espace/organisations/{landlord.id}/appels")
        assert page.status_code == 200, page.text
        body = text(page)
        assert "Nature en pied d'immeuble" in body
        assert "J-12" in body
        assert "Exigence de l'appel" in body
        assert "Nous mettons à disposition du foncier" in body

    def test_marking_interest_then_withdrawing_it(
        self, member: TestClient, session: Session, landlord: Organisation, call: Call
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/appels"
        marked = post_form(member, url, f"{url}/{call.id}/interet", {"action": "marquer"})
        assert marked.status_code == 303  # type: ignore[attr-defined]
        assert session.scalar(select(CallInterest).where(CallInterest.call_id == call.id))
        page = text(member.get(url + "?fait=interesse"))
        assert "votre organisation est intéressée" in page
        assert "Retirer mon intérêt" in page
        post_form(member, url, f"{url}/{call.id}/interet", {"action": "retirer"})
        assert not session.scalar(select(CallInterest).where(CallInterest.call_id == call.id))

    def test_the_call_page_shows_requirements_perimeter_and_interest(
        self, member: TestClient, call: Call
    ) -> None:
        page = member.get(f"/espace/appels/{call.id}")
        assert page.status_code == 200, page.text
        body = text(page)
        assert "Une structure qui anime le jardin avec les habitants" in body
        assert "Bouches-du-Rhône" in body
        assert "Votre intérêt" in body
        assert "Proposer des consortiums" not in body

    def test_another_organisations_calls_are_refused_in_french(
        self, member: TestClient, gardeners: Organisation, call: Call
    ) -> None:
        page = member.get(f"/espace/organisations/{gardeners.id}/appels")
        assert page.status_code == 403
        assert "Seuls les membres de cette organisation" in text(page)
        mine = member.get("/espace/appels")
        answer = member.post(
            f"/espace/organisations/{gardeners.id}/appels/{call.id}/interet",
            data={"csrftoken": csrf_of(mine.text), "action": "marquer"},
            follow_redirects=False,
        )
        assert answer.status_code == 403

    def test_a_form_without_its_csrf_token_is_refused(
        self, member: TestClient, landlord: Organisation, call: Call
    ) -> None:
        answer = member.post(
            f"/espace/organisations/{landlord.id}/appels/{call.id}/interet",
            data={"action": "marquer"},
            follow_redirects=False,
        )
        assert answer.status_code == 403
        assert "Ce formulaire a expiré" in text(answer)

    @pytest.mark.parametrize(
        "path",
        [
            "/espace/appels/0",
            "/espace/appels/99999999",
            "/espace/appels/abc",
            "/espace/appels/1?organisation=%00",
            "/espace/organisations/99999999/appels",
        ],
    )
    def test_odd_addresses_get_a_french_page_never_a_500(
        self, member: TestClient, path: str
    ) -> None:
        page = member.get(path)
        assert page.status_code in (403, 404, 422), page.text
        assert '<html lang="fr">' in page.text


class TestCoordinatorCalls:
    def test_the_coordinator_sees_who_fits_and_proposes_consortia(
        self, coordinator: TestClient, session: Session, call: Call
    ) -> None:
        url = f"/espace/appels/{call.id}"
        page = coordinator.get(url)
        assert page.status_code == 200, page.text
        body = text(page)
        assert "Organisations qui répondent à l'appel" in body
        assert "Jardins du Midi" in body
        assert "Habitat des Calanques" in body
        answer = post_form(
            coordinator,
            url,
            f"{url}/consortiums",
            {"min_size": "2", "max_size": "3", "alternatives": "2", "lead": ""},
        )
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        assert answer.headers["location"].startswith("/espace/consortiums?appel=")  # type: ignore[attr-defined]
        assert session.scalars(select(Consortium).where(Consortium.call_id == call.id)).all()

    def test_contradictory_sizes_are_said_in_french_next_to_the_form(
        self, coordinator: TestClient, call: Call
    ) -> None:
        url = f"/espace/appels/{call.id}"
        answer = post_form(
            coordinator,
            url,
            f"{url}/consortiums",
            {"min_size": "4", "max_size": "2", "alternatives": "1", "lead": ""},
        )
        assert answer.status_code == 409, answer.text  # type: ignore[attr-defined]
        assert 'id="formulaire-erreur"' in answer.text  # type: ignore[attr-defined]
        bad = post_form(
            coordinator,
            url,
            f"{url}/consortiums",
            {"min_size": "deux", "max_size": "", "alternatives": "99", "lead": "x"},
        )
        assert bad.status_code == 422  # type: ignore[attr-defined]
        body = text(bad)
        assert 'id="min_size-erreur"' in body
        assert 'id="lead-erreur"' in body

    def test_a_member_cannot_propose_consortia(self, member: TestClient, call: Call) -> None:
        url = f"/espace/appels/{call.id}"
        answer = post_form(member, url, f"{url}/consortiums", {"min_size": "2"})
        assert answer.status_code == 403  # type: ignore[attr-defined]
        assert "réservé à la coordination" in text(answer)
