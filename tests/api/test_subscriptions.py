"""Digest subscriptions: managed by an organisation's members, each address confirmed by
a link received through a real SMTP server before anything is sent to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session

from api.kit.mail import OutboxMailer, SmtpMailer
from api.kit.settings import Settings
from api.kit.signing import secret_key
from api.subscriptions.service import CONFIRM_PURPOSE
from models.enums import AccountRole
from tests.conftest import bearer
from tests.factories import make_organisation
from tests.smtp import Inbox, free_port, smtp_server, text_of

LINK = re.compile(r"https?://\S+/subscriptions/confirm\?token=(\S+)")


@pytest.fixture
def inbox(app: FastAPI, settings: Settings) -> Iterator[Inbox]:
    with smtp_server() as (inbox, port):
        app.state.mailer = SmtpMailer(
            settings.model_copy(
                update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
            )
        )
        yield inbox


@pytest.fixture
def org_id(session: Session) -> int:
    return make_organisation(session, name="Habitat des Calanques", kind="landlord").id


def url(org_id: int, suffix: str = "") -> str:
    return f"/api/v1/organisations/{org_id}/subscriptions{suffix}"


def token_in(inbox: Inbox, address: str) -> str:
    (message,) = inbox.to(address)
    match = LINK.search(text_of(message))
    assert match, text_of(message)
    return match.group(1)


def subscribe(client: TestClient, org_id: int, **body: Any) -> dict[str, Any]:
    response = client.post(url(org_id), json={"email": "equipe@calanques-habitat.fr", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


class TestDoubleOptIn:
    def test_an_address_is_confirmed_by_the_link_it_receives(
        self, client: TestClient, inbox: Inbox, org_id: int
    ) -> None:
        sub = subscribe(client, org_id, themes=["jardins partagés"], min_level="strong")
        assert sub["state"] == "pending"
        assert sub["confirmed_at"] is None
        message = inbox.to("equipe@calanques-habitat.fr")[0]
        assert "Habitat des Calanques" in message["Subject"]
        assert message.get_body(preferencelist=("html",)) is not None
        token = token_in(inbox, "equipe@calanques-habitat.fr")
        assert client.get(url(org_id, f"/{sub['id']}")).json()["confirmation_sent_at"]

        page = client.get("/subscriptions/confirm", params={"token": token})
        assert page.status_code == 200
        assert 'lang="fr"' in page.text
        assert "equipe@calanques-habitat.fr" in page.text
        assert "<form" in page.text
        # Opening the link (a mail scanner does) confirms nothing: the button does.
        assert client.get(url(org_id, f"/{sub['id']}")).json()["state"] == "pending"
        done = client.post("/subscriptions/confirm", data={"token": token})
        assert done.status_code == 200
        assert "Abonnement confirmé" in done.text
        after = client.get(url(org_id, f"/{sub['id']}")).json()
        assert after["state"] == "active"
        assert after["confirmed_at"]
        assert after["themes"] == ["jardins partagés"]
        assert after["min_level"] == "strong"
        # The link works again without changing anything.
        again = client.post("/subscriptions/confirm", data={"token": token})
        assert again.status_code == 200
        assert (
            client.get(url(org_id, f"/{sub['id']}")).json()["confirmed_at"] == after["confirmed_at"]
        )

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda t: t[:-3],  # cut short when copied
            lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:],
            lambda t: "",
            lambda t: "x" * 5000,
            lambda t: "<script>alert(1)</script>",
        ],
    )
    def test_a_mangled_link_gets_a_french_page(
        self, client: TestClient, inbox: Inbox, org_id: int, mangle: Any
    ) -> None:
        subscribe(client, org_id)
        token = mangle(token_in(inbox, "equipe@calanques-habitat.fr"))
        for response in (
            client.get("/subscriptions/confirm", params={"token": token}),
            client.post("/subscriptions/confirm", data={"token": token}),
        ):
            assert response.status_code == 400
            assert "Lien non valide" in response.text
            assert "<script>" not in response.text

    def test_a_token_of_another_purpose_or_too_old_confirms_nothing(
        self, client: TestClient, inbox: Inbox, org_id: int, settings: Settings
    ) -> None:
        sub = subscribe(client, org_id)
        payload = {"s": sub["id"], "e": sub["email"]}
        other = URLSafeTimedSerializer(secret_key(settings), salt="unsubscribe").dumps(payload)
        response = client.post("/subscriptions/confirm", data={"token": other})
        assert response.status_code == 400
        assert "pas valide" in response.text

        old = URLSafeTimedSerializer(secret_key(settings), salt=CONFIRM_PURPOSE)
        old_signer = old.make_signer(CONFIRM_PURPOSE)
        old_signer.get_timestamp = lambda: 1_000_000_000  # type: ignore[method-assign]
        expired = old_signer.sign(old.dump_payload(payload)).decode()
        response = client.post("/subscriptions/confirm", data={"token": expired})
        assert response.status_code == 400
        assert "expiré" in response.text
        assert client.get(url(org_id, f"/{sub['id']}")).json()["state"] == "pending"

    def test_a_deleted_subscription_cannot_be_confirmed(
        self, client: TestClient, inbox: Inbox, org_id: int
    ) -> None:
        sub = subscribe(client, org_id)
        token = token_in(inbox, sub["email"])
        assert client.delete(url(org_id, f"/{sub['id']}")).status_code == 204
        response = client.post("/subscriptions/confirm", data={"token": token})
        assert response.status_code == 400
        assert "existe plus" in response.text

    def test_a_failed_sending_can_be_retried(
        self, app: FastAPI, client: TestClient, settings: Settings, org_id: int
    ) -> None:
        app.state.mailer = SmtpMailer(
            settings.model_copy(
                update={
                    "smtp_host": "127.0.0.1",
                    "smtp_port": free_port(),
                    "smtp_timeout": 5,
                    "smtp_security": "none",
                }
            )
        )
        sub = subscribe(client, org_id)  # nobody listens on that port
        assert sub["state"] == "pending"
        assert client.get(url(org_id, f"/{sub['id']}")).json()["confirmation_sent_at"] is None
        with smtp_server() as (inbox, port):
            app.state.mailer = SmtpMailer(
                settings.model_copy(
                    update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
                )
            )
            response = client.post(url(org_id, f"/{sub['id']}/confirmation"))
            assert response.status_code == 202, response.text
            token = token_in(inbox, sub["email"])
        assert client.get(url(org_id, f"/{sub['id']}")).json()["confirmation_sent_at"]
        assert client.post("/subscriptions/confirm", data={"token": token}).status_code == 200
        again = client.post(url(org_id, f"/{sub['id']}/confirmation"))
        assert again.status_code == 409
        assert "déjà confirmée" in again.json()["detail"]

    def test_without_smtp_the_message_goes_to_the_outbox(
        self,
        app: FastAPI,
        client: TestClient,
        tmp_path: Path,
        org_id: int,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        app.state.mailer = OutboxMailer(tmp_path / "outbox")
        with caplog.at_level("WARNING", logger="maillage.mail"):
            subscribe(client, org_id)
        (eml,) = (tmp_path / "outbox").glob("*.eml")
        assert b"equipe@calanques-habitat.fr" in eml.read_bytes()
        assert LINK.search(caplog.text)


class TestManagement:
    def test_one_address_once_per_organisation_whatever_its_case(
        self, client: TestClient, inbox: Inbox, org_id: int
    ) -> None:
        first = subscribe(client, org_id)
        response = client.post(url(org_id), json={"email": "Equipe@CALANQUES-habitat.fr"})
        assert response.status_code == 409
        assert f"n° {first['id']}" in response.json()["detail"]

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "pas-une-adresse"},
            {"email": "deux@@exemple.fr"},
            {"email": "a@b.fr", "frequency": "monthly"},
            {"email": "a@exemple.fr", "min_level": "max"},
            {"email": "a@exemple.fr", "unknown": 1},
            {"email": "a@exemple.fr", "themes": "jardins"},
            {"email": "a@exemple.fr", "themes": ["x"] * 21},
            {"email": 12},
        ],
    )
    def test_bad_input_is_a_french_422(
        self, client: TestClient, inbox: Inbox, org_id: int, body: dict[str, Any]
    ) -> None:
        response = client.post(url(org_id), json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert not inbox.messages

    def test_pause_resume_and_delete(self, client: TestClient, inbox: Inbox, org_id: int) -> None:
        sub = subscribe(client, org_id)
        client.post("/subscriptions/confirm", data={"token": token_in(inbox, sub["email"])})
        paused = client.patch(url(org_id, f"/{sub['id']}"), json={"frequency": "off"})
        assert paused.json()["state"] == "paused"
        resumed = client.patch(url(org_id, f"/{sub['id']}"), json={"frequency": "weekly"})
        assert resumed.json()["state"] == "active"
        assert (
            client.patch(url(org_id, f"/{sub['id']}"), json={"email": "x@y.fr"}).status_code == 422
        )
        assert [s["id"] for s in client.get(url(org_id)).json()["items"]] == [sub["id"]]
        assert client.delete(url(org_id, f"/{sub['id']}")).status_code == 204
        assert client.get(url(org_id, f"/{sub['id']}")).status_code == 404
        assert client.get(url(org_id)).json()["items"] == []

    def test_members_manage_their_own_organisation_only(
        self, app: FastAPI, session: Session, inbox: Inbox, org_id: int
    ) -> None:
        other = make_organisation(session, name="Association Voisine", kind="association")
        member = bearer(session, AccountRole.member, [org_id])
        coordinator = bearer(session, AccountRole.coordinator)
        with TestClient(app, raise_server_exceptions=False) as c:
            assert c.get(url(org_id)).status_code == 401
            mine = c.post(
                url(org_id), json={"email": "a@exemple.fr"}, headers={"Authorization": member}
            )
            assert mine.status_code == 201
            theirs = c.get(url(other.id), headers={"Authorization": member})
            assert theirs.status_code == 403
            assert c.get(url(other.id), headers={"Authorization": coordinator}).status_code == 200
        assert c.get(url(999_999), headers={"Authorization": coordinator}).status_code == 404
