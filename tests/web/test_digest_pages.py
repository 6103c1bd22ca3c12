"""An organisation's digest settings through TestClient: subscribe an address (its
confirmation link is mailed), change it, delete it; French errors, permissions."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from models import DigestSubscription, Organisation
from models.enums import DigestFrequency, MatchLevel
from tests.factories import make_organisation
from tests.web.pages import make_person, post_form, sign_in


@pytest.fixture
def landlord(session: Session) -> Organisation:
    return make_organisation(session, name="Habitat des Calanques")


@pytest.fixture
def member(
    app: FastAPI, session: Session, settings: Settings, landlord: Organisation
) -> Iterator[TestClient]:
    person = make_person(session, "membre@calanques.fr", organisation_ids=[landlord.id])
    with TestClient(app, raise_server_exceptions=False) as client:
        sign_in(client, session, settings, person)
        yield client


def text(response: object) -> str:
    return unescape(response.text)  # type: ignore[attr-defined]


def subscriptions(session: Session, organisation: Organisation) -> list[DigestSubscription]:
    return list(
        session.scalars(
            select(DigestSubscription).where(DigestSubscription.organisation_id == organisation.id)
        )
    )


class TestDigestSettings:
    def test_an_address_is_subscribed_and_receives_its_confirmation_link(
        self,
        member: TestClient,
        session: Session,
        settings: Settings,
        landlord: Organisation,
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/digest"
        assert "Aucune adresse ne reçoit le digest" in text(member.get(url))
        answer = post_form(
            member,
            url,
            url,
            {
                "email": "equipe@calanques.fr",
                "frequency": "weekly",
                "themes": "jardins partagés, insertion",
                "min_level": "strong",
            },
        )
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        (sub,) = subscriptions(session, landlord)
        assert sub.themes == ["jardins partagés", "insertion"]
        assert sub.min_level == MatchLevel.strong
        mails = list(settings.outbox.glob("*.eml"))
        assert mails, "no confirmation link in the outbox"
        page = text(member.get(url + "?fait=abonne"))
        assert "en attente de confirmation" in page
        assert "un lien de confirmation part" in page

    def test_the_settings_change_and_the_address_is_deleted(
        self, member: TestClient, session: Session, landlord: Organisation
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/digest"
        post_form(member, url, url, {"email": "equipe@calanques.fr"})
        (sub,) = subscriptions(session, landlord)
        answer = post_form(
            member,
            url,
            f"{url}/{sub.id}",
            {"frequency": "off", "themes": "", "min_level": "weak"},
        )
        assert answer.status_code == 303  # type: ignore[attr-defined]
        session.refresh(sub)
        assert sub.frequency == DigestFrequency.off
        assert sub.min_level == MatchLevel.weak
        assert post_form(member, url, f"{url}/{sub.id}/confirmation", {}).status_code == 303  # type: ignore[attr-defined]
        assert post_form(member, url, f"{url}/{sub.id}/suppression", {}).status_code == 303  # type: ignore[attr-defined]
        assert subscriptions(session, landlord) == []

    @pytest.mark.parametrize(
        ("email", "message"),
        [
            ("", "Écrivez l'adresse qui recevra le digest."),
            ("pas-une-adresse", "n'est pas une adresse e-mail valide"),
        ],
    )
    def test_a_wrong_address_is_said_next_to_the_field(
        self, member: TestClient, landlord: Organisation, email: str, message: str
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/digest"
        answer = post_form(member, url, url, {"email": email})
        assert answer.status_code == 422  # type: ignore[attr-defined]
        body = text(answer)
        assert 'id="email-erreur"' in body
        assert message in body

    def test_odd_choices_and_a_repeated_address_are_french_errors(
        self, member: TestClient, landlord: Organisation
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/digest"
        odd = post_form(
            member, url, url, {"email": "a@calanques.fr", "frequency": "daily", "min_level": "x"}
        )
        assert odd.status_code == 422  # type: ignore[attr-defined]
        assert "Choisissez « chaque semaine » ou « en pause »." in text(odd)
        assert post_form(member, url, url, {"email": "a@calanques.fr"}).status_code == 303  # type: ignore[attr-defined]
        again = post_form(member, url, url, {"email": "A@calanques.fr"})
        assert again.status_code == 409  # type: ignore[attr-defined]
        assert "déjà abonnée" in text(again)

    def test_another_organisations_digest_is_refused(
        self, member: TestClient, session: Session
    ) -> None:
        other = make_organisation(session, name="Autre bailleur")
        page = member.get(f"/espace/organisations/{other.id}/digest")
        assert page.status_code == 403
        assert "règlent son digest" in text(page)
        assert member.get("/espace/organisations/99999999/digest").status_code == 403
