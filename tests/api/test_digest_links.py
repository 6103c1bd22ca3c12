"""A digest's signed links: one-click unsubscribe (RFC 8058) and « pas pertinent », each
working without signing in and only for its own subscription (and call)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.digest.links import dismiss_url, unsubscribe_url
from api.kit.settings import Settings
from models import Call
from models.digest import CallDismissal, DigestSubscription
from models.enums import DigestFrequency
from tests.factories import make_organisation


def _subscription(session: Session, name: str, email: str) -> DigestSubscription:
    org = make_organisation(session, name=name)
    sub = DigestSubscription(organisation_id=org.id, email=email, confirmed_at=datetime.now(UTC))
    session.add(sub)
    session.flush()
    return sub


@pytest.fixture
def subs(session: Session) -> tuple[DigestSubscription, DigestSubscription]:
    return (
        _subscription(session, "Habitat du Garlaban", "garlaban@exemple.fr"),
        _subscription(session, "Habitat de l'Étoile", "etoile@exemple.fr"),
    )


@pytest.fixture
def call(session: Session) -> Call:
    call = Call(title="Jardins partagés en QPV", funders=["ANCT"])
    session.add(call)
    session.flush()
    return call


def path(url: str) -> str:
    """The link's path and query, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


class TestOneClickUnsubscribe:
    def test_the_mail_clients_post_unsubscribes_that_subscription_only(
        self, anonymous_client: TestClient, session: Session, settings: Settings, subs: tuple
    ) -> None:
        mine, other = subs
        url = path(unsubscribe_url(settings, mine))
        response = anonymous_client.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert "Désabonnement effectué" in response.text
        session.refresh(mine)
        session.refresh(other)
        assert mine.frequency == DigestFrequency.off
        assert mine.unsubscribed_at is not None
        assert other.frequency == DigestFrequency.weekly
        assert other.unsubscribed_at is None
        # Again: still unsubscribed, still 200.
        assert anonymous_client.post(url).status_code == 200

    def test_opening_the_link_changes_nothing_until_the_button(
        self, anonymous_client: TestClient, session: Session, settings: Settings, subs: tuple
    ) -> None:
        mine, _ = subs
        url = path(unsubscribe_url(settings, mine))
        response = anonymous_client.get(url)
        assert response.status_code == 200
        assert "<form" in response.text
        assert "garlaban@exemple.fr" in response.text
        session.refresh(mine)
        assert mine.frequency == DigestFrequency.weekly

    def test_a_token_for_another_purpose_or_a_replaced_address_does_nothing(
        self,
        anonymous_client: TestClient,
        session: Session,
        settings: Settings,
        subs: tuple,
        call: Call,
    ) -> None:
        mine, _ = subs
        dismiss_token = dismiss_url(settings, mine, call.id).split("token=")[1]
        response = anonymous_client.post(f"/subscriptions/unsubscribe?token={dismiss_token}")
        assert response.status_code == 400
        assert "pas valide" in response.text
        url = path(unsubscribe_url(settings, mine))
        mine.email = "nouvelle@exemple.fr"
        session.flush()
        response = anonymous_client.post(url)
        assert response.status_code == 400
        assert "existe plus" in response.text
        session.refresh(mine)
        assert mine.frequency == DigestFrequency.weekly

    @pytest.mark.parametrize("token", ["", "abc", "x" * 600, "é", "a.b.c", "%00"])
    def test_garbage_gets_a_french_page(self, anonymous_client: TestClient, token: str) -> None:
        for method in ("GET", "POST"):
            response = anonymous_client.request(
                method, "/subscriptions/unsubscribe", params={"token": token}
            )
            assert response.status_code == 400
            assert 'lang="fr"' in response.text
            assert "Lien non valide" in response.text


class TestNotRelevant:
    def test_a_call_is_dismissed_once_for_the_subscriptions_organisation(
        self,
        anonymous_client: TestClient,
        session: Session,
        settings: Settings,
        subs: tuple,
        call: Call,
    ) -> None:
        mine, _ = subs
        url = path(dismiss_url(settings, mine, call.id))
        page = anonymous_client.get(url)
        assert page.status_code == 200
        assert "Jardins partagés en QPV" in page.text
        assert session.scalars(select(CallDismissal)).all() == []
        for _ in range(2):
            response = anonymous_client.post(url)
            assert response.status_code == 200
            assert "noté" in response.text
        (dismissal,) = session.scalars(select(CallDismissal)).all()
        assert (dismissal.organisation_id, dismissal.call_id) == (mine.organisation_id, call.id)
        assert dismissal.subscription_id == mine.id

    def test_a_deleted_call_is_said_so(
        self,
        anonymous_client: TestClient,
        session: Session,
        settings: Settings,
        subs: tuple,
        call: Call,
    ) -> None:
        url = path(dismiss_url(settings, subs[0], call.id))
        session.delete(call)
        session.flush()
        response = anonymous_client.post(url)
        assert response.status_code == 400
        assert "n'existe plus" in response.text.replace("&#39;", "'")
