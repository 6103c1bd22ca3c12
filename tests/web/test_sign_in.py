"""Signing in to the pages (link by e-mail, API token), sessions, sign-out and CSRF."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.service import issue_token
from api.accounts.sign_in import issue_link
from api.kit.settings import Settings
from api.kit.signing import Signer
from api.matching import engine as matching_engine
from api.tools.demo import demo_tokens, load_demo
from api.web.session import COOKIE
from models import SignInLink
from tests.conftest import FIXTURES
from tests.factories import make_organisation
from tests.fakes import FakeEncoder
from tests.web.pages import csrf_of, make_person, post_form, sign_in


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model: these tests are about sessions and forms."""
    monkeypatch.setattr(
        matching_engine, "dense_encoder", lambda model: FakeEncoder("fake-web", 16, role_aware=True)
    )


@pytest.fixture
def web(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def outbox_links(settings: Settings) -> list[str]:
    """The sign-in links of the messages in the outbox, oldest first."""
    links = []
    for path in sorted(Path(settings.outbox).glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes())
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                text = part.get_payload(decode=True).decode()
                links += re.findall(r"http\S+/connexion/lien\?jeton=\S+", text)
    return links


class TestMagicLink:
    def test_a_link_arrives_in_the_outbox_and_signs_in_once(
        self, web: TestClient, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session)
        make_person(session, "Marie.Durand@exemple.fr", organisation_ids=[org.id])
        answer = post_form(web, "/connexion", "/connexion", {"email": "marie.durand@EXEMPLE.fr"})
        assert answer.status_code == 200
        assert "Consultez votre messagerie" in unescape(answer.text)
        [link] = outbox_links(settings)
        path = link.removeprefix(settings.base_url)
        page = web.get(path)
        assert "Me connecter" in unescape(page.text)
        token = re.search(r'name="jeton" value="([^"]+)"', page.text).group(1)
        signed_in = web.post(
            "/connexion/lien",
            data={"csrftoken": csrf_of(page.text), "jeton": token},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        home = web.get("/espace")
        assert org.name in unescape(home.text)
        assert "Se déconnecter" in unescape(home.text)
        # The same link again: refused, in French, next to a new request form.
        again = web.post(
            "/connexion/lien",
            data={"csrftoken": csrf_of(page.text), "jeton": token},
            follow_redirects=False,
        )
        assert again.status_code == 400
        assert "déjà servi" in unescape(again.text)

    def test_an_unknown_address_gets_the_same_answer_and_no_mail(
        self, web: TestClient, settings: Settings
    ) -> None:
        answer = post_form(web, "/connexion", "/connexion", {"email": "personne@exemple.fr"})
        assert answer.status_code == 200
        assert "Consultez votre messagerie" in unescape(answer.text)
        assert outbox_links(settings) == []

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "Écrivez l'adresse"),
            ("pas-une-adresse", "n'est pas valide"),
            ("a@b", "n'est pas valide"),
            ("x" * 300 + "@exemple.fr", "n'est pas valide"),
        ],
    )
    def test_a_malformed_address_is_said_next_to_the_field(
        self, web: TestClient, value: str, message: str
    ) -> None:
        answer = post_form(web, "/connexion", "/connexion", {"email": value})
        assert answer.status_code == 422
        assert 'id="email-erreur"' in unescape(answer.text)
        assert message in unescape(answer.text)
        assert 'aria-invalid="true"' in unescape(answer.text)

    def test_an_expired_link_is_refused(
        self, web: TestClient, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "expire@exemple.fr", organisation_ids=[org.id])
        link = issue_link(session, settings, person)
        row = session.scalars(select(SignInLink).order_by(SignInLink.id.desc())).first()
        row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        session.flush()
        page = web.get(link.url.removeprefix(settings.base_url))
        assert page.status_code == 400
        assert "a expiré" in unescape(page.text)

    def test_a_link_past_its_signature_age_is_refused(
        self, web: TestClient, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "vieux@exemple.fr", organisation_ids=[org.id])
        link = issue_link(session, settings, person, minutes=1)
        real_read = Signer.read

        def later(self: Signer, token: str, max_age_seconds: int | None = None) -> dict:
            # As if the link were read 2 minutes later: itsdangerous compares with its age.
            if max_age_seconds is not None:
                max_age_seconds -= 120
            return real_read(self, token, max_age_seconds)

        monkeypatch.setattr(Signer, "read", later)
        page = web.get(link.url.removeprefix(settings.base_url))
        assert page.status_code == 400
        assert "a expiré" in unescape(page.text)

    @pytest.mark.parametrize(
        "token", ["", "abc", "x" * 3000, "eyJsIjoxfQ.bad.signature", "%00", "é" * 10]
    )
    def test_a_mangled_link_gets_a_french_page(self, web: TestClient, token: str) -> None:
        page = web.get("/connexion/lien", params={"jeton": token})
        assert page.status_code in (400, 422)
        assert "text/html" in page.headers["content-type"]
        assert "lien" in unescape(page.text).lower() or "invalide" in unescape(page.text).lower()


class TestTokenSignIn:
    def test_a_pasted_token_signs_in_until_it_is_revoked(
        self, web: TestClient, session: Session
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "machine@exemple.fr", organisation_ids=[org.id])
        issued = issue_token(session, person, expires_at=None)
        answer = post_form(web, "/connexion/jeton", "/connexion/jeton", {"jeton": issued.secret})
        assert answer.status_code == 303
        assert org.name in web.get(f"/espace/organisations/{org.id}").text
        issued.token.revoked_at = datetime.now(UTC)
        session.flush()
        after = web.get("/espace", follow_redirects=False)
        assert after.status_code == 303
        assert after.headers["location"].startswith("/connexion")

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "Collez votre jeton"),
            ("n'importe quoi", "mal formé"),
            ("mlg_abcdefgh_x", "inconnu"),
        ],
    )
    def test_a_wrong_token_is_said_next_to_the_field(
        self, web: TestClient, value: str, message: str
    ) -> None:
        answer = post_form(web, "/connexion/jeton", "/connexion/jeton", {"jeton": value})
        assert answer.status_code in (401, 422)
        assert 'id="jeton-erreur"' in unescape(answer.text)
        assert message in unescape(answer.text)


class TestSessionCookie:
    def test_the_cookie_is_http_only_lax_and_signed(
        self, web: TestClient, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "cookie@exemple.fr", organisation_ids=[org.id])
        url = issue_link(session, settings, person).url.removeprefix(settings.base_url)
        page = web.get(url)
        token = re.search(r'name="jeton" value="([^"]+)"', page.text).group(1)
        answer = web.post(
            "/connexion/lien",
            data={"csrftoken": csrf_of(page.text), "jeton": token},
            follow_redirects=False,
        )
        cookie = next(
            v for k, v in answer.headers.multi_items() if k == "set-cookie" and COOKIE in v
        )
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # served over http here
        assert "Path=/" in cookie

    def test_the_cookie_is_secure_over_https(
        self, app: FastAPI, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "https@exemple.fr", organisation_ids=[org.id])
        with TestClient(app, base_url="https://testserver") as client:
            url = issue_link(session, settings, person).url.removeprefix(settings.base_url)
            page = client.get(url)
            token = re.search(r'name="jeton" value="([^"]+)"', page.text).group(1)
            answer = client.post(
                "/connexion/lien",
                data={"csrftoken": csrf_of(page.text), "jeton": token},
                follow_redirects=False,
            )
        cookie = next(
            v for k, v in answer.headers.multi_items() if k == "set-cookie" and COOKIE in v
        )
        assert "Secure" in cookie

    def test_a_forged_cookie_is_nobody(self, web: TestClient) -> None:
        web.cookies.set(COOKIE, "eyJhIjoxfQ.forged.signature")
        answer = web.get("/espace", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/connexion?suite=%2Fespace"

    def test_sign_out_ends_the_session(
        self, web: TestClient, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "sortie@exemple.fr", organisation_ids=[org.id])
        sign_in(web, session, settings, person)
        page = web.get(f"/espace/organisations/{org.id}")
        answer = web.post(
            "/deconnexion", data={"csrftoken": csrf_of(page.text)}, follow_redirects=False
        )
        assert answer.status_code == 303
        assert web.get("/espace", follow_redirects=False).status_code == 303
        assert "déconnecté" in unescape(web.get(answer.headers["location"]).text)


class TestCsrf:
    def test_a_form_without_its_token_is_refused_in_french(
        self, web: TestClient, session: Session, settings: Settings
    ) -> None:
        org = make_organisation(session)
        person = make_person(session, "csrf@exemple.fr", organisation_ids=[org.id])
        sign_in(web, session, settings, person)
        answer = web.post(
            f"/espace/organisations/{org.id}/enonces",
            data={"kind": "need", "text": "Un besoin venu d'ailleurs"},
            follow_redirects=False,
        )
        assert answer.status_code == 403
        assert "Formulaire refusé" in unescape(answer.text)
        wrong = web.post(
            f"/espace/organisations/{org.id}/enonces",
            data={"csrftoken": "faux", "kind": "need", "text": "Un besoin venu d'ailleurs"},
            follow_redirects=False,
        )
        assert wrong.status_code == 403

    def test_sign_in_and_out_are_protected_even_without_cookies(self, web: TestClient) -> None:
        for path in ("/connexion", "/connexion/jeton", "/connexion/lien", "/deconnexion"):
            answer = web.post(path, data={"email": "a@exemple.fr"}, follow_redirects=False)
            assert answer.status_code == 403, path

    def test_the_api_is_not_concerned(self, client: TestClient) -> None:
        # Bearer-token requests never carry the form token.
        assert client.get("/api/v1/me").status_code == 200

    @pytest.mark.parametrize(
        ("content_type", "body", "status"),
        [
            ("application/x-www-form-urlencoded", b"email=\xff\xfe", 400),
            ("multipart/form-data", b"--x--", 415),
            ("text/plain", b"bonjour", 403),
        ],
    )
    def test_odd_bodies_get_a_french_page(
        self, web: TestClient, content_type: str, body: bytes, status: int
    ) -> None:
        web.get("/connexion")  # the CSRF cookie
        answer = web.post("/connexion", content=body, headers={"content-type": content_type})
        assert answer.status_code == status
        assert "text/html" in answer.headers["content-type"]


class TestDemoLinks:
    def test_the_demo_gives_one_click_links_for_the_coordinator_and_the_landlord(
        self, app: FastAPI, session: Session, settings: Settings
    ) -> None:
        load_demo(session, FIXTURES)
        tokens = demo_tokens(session, settings)
        seen = {}
        for token in tokens:
            assert token.sign_in_url is not None
            assert token.sign_in_url.startswith(f"{settings.base_url}/connexion/lien?jeton=")
            with TestClient(app, raise_server_exceptions=False) as client:
                page = client.get(token.sign_in_url.removeprefix(settings.base_url))
                jeton = re.search(r'name="jeton" value="([^"]+)"', page.text).group(1)
                client.post(
                    "/connexion/lien", data={"csrftoken": csrf_of(page.text), "jeton": jeton}
                )
                seen[token.who] = unescape(client.get("/espace").text)
        assert "Organisations du réseau" in seen["coordination régionale"]
        assert "<h1>Arc-Touloubre Habitat</h1>" in seen["membre de Arc-Touloubre Habitat"]
