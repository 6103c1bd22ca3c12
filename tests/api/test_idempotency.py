"""`Idempotency-Key` on creating routes: a retried POST gets the first answer and creates
nothing; the key is the account's, kept a day, and only with a request that succeeded.
(Two requests with one key at once: tests/api/test_races.py.)"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.kit.auth import api_routes
from api.matching import engine as matching_module
from models import ApiToken, IdempotencyKey, Organisation
from models.enums import AccountRole
from tests.api.servers import Server
from tests.conftest import FIXTURES, bearer
from tests.factories import make_organisation
from tests.fakes import FakeEncoder

ORGS = "/api/v1/organisations"


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model to load: what is tested is the answer kept, not its vectors."""
    monkeypatch.setattr(
        matching_module, "dense_encoder", lambda model: FakeEncoder("fake-cle", 16, role_aware=True)
    )


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "association",
        "territories": ["commune:13001"],
        "statements": [{"kind": "need", "text": f"Un besoin de {name}"}],
        **extra,
    }


def named(session: Session, name: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.name == name)
        )
        or 0
    )


class TestRetries:
    def test_a_retried_post_gets_the_first_answer_and_creates_nothing(
        self, client: TestClient, session: Session
    ) -> None:
        key = new_key()
        first = client.post(ORGS, json=body("Atelier du vélo"), headers=key)
        assert first.status_code == 201, first.text
        again = client.post(ORGS, json=body("Atelier du vélo"), headers=key)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert named(session, "Atelier du vélo") == 1

    def test_the_key_quoted_as_the_draft_writes_it_is_the_same_key(
        self, client: TestClient
    ) -> None:
        key = str(uuid.uuid4())
        first = client.post(ORGS, json=body("Repair café"), headers={"Idempotency-Key": key})
        again = client.post(ORGS, json=body("Repair café"), headers={"Idempotency-Key": f'"{key}"'})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["location"] == first.headers["location"]

    def test_without_a_key_a_second_post_is_a_new_request(self, client: TestClient) -> None:
        assert client.post(ORGS, json=body("Sans clé")).status_code == 201
        assert client.post(ORGS, json=body("Sans clé")).status_code == 409  # the namesake rule

    def test_the_same_key_with_another_body_is_422(
        self, client: TestClient, session: Session
    ) -> None:
        key = new_key()
        assert client.post(ORGS, json=body("Première"), headers=key).status_code == 201
        other = client.post(ORGS, json=body("Seconde"), headers=key)
        assert other.status_code == 422, other.text
        problem = other.json()
        assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert "a déjà servi pour une autre requête" in problem["detail"]
        assert named(session, "Seconde") == 0

    def test_the_same_key_on_another_route_is_422(self, client: TestClient) -> None:
        key = new_key()
        created = client.post(ORGS, json=body("Maison des projets"), headers=key)
        statement = client.post(
            f"{created.headers['location']}/statements",
            json={"kind": "need", "text": "Un local"},
            headers=key,
        )
        assert statement.status_code == 422, statement.text

    def test_a_failed_request_keeps_no_key(self, client: TestClient, session: Session) -> None:
        """Its writes were rolled back, and so was its key: corrected, it runs."""
        key = new_key()
        wrong = client.post(
            ORGS, json=body("Erreur corrigée", territories=["commune:00000"]), headers=key
        )
        assert wrong.status_code == 404  # an unknown territory
        right = client.post(ORGS, json=body("Erreur corrigée"), headers=key)
        assert right.status_code == 201, right.text
        assert "idempotent-replayed" not in right.headers

    def test_a_key_is_the_accounts_own(self, client: TestClient, session: Session) -> None:
        """Another account sending the same key sends a request of its own."""
        owner = make_organisation(session, name="Bailleur à écarter")
        other = make_organisation(session, name="Partenaire écarté")
        key = new_key()
        path = f"{ORGS}/{owner.id}/dismissals"
        dismissal = {"organisation_id": other.id}
        assert client.post(path, json=dismissal, headers=key).status_code == 201
        coordinator = {"Authorization": bearer(session, AccountRole.coordinator)}
        theirs = client.post(path, json=dismissal, headers={**key, **coordinator})
        assert theirs.status_code == 200  # found, not replayed
        assert "idempotent-replayed" not in theirs.headers

    def test_an_expired_key_runs_the_request_again(
        self, client: TestClient, session: Session
    ) -> None:
        owner = make_organisation(session, name="Bailleur pressé")
        other = make_organisation(session, name="Partenaire oublié")
        key = new_key()
        path = f"{ORGS}/{owner.id}/dismissals"
        assert client.post(path, json={"organisation_id": other.id}, headers=key).status_code == 201
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key["Idempotency-Key"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        again = client.post(path, json={"organisation_id": other.id}, headers=key)
        assert again.status_code == 200
        assert "idempotent-replayed" not in again.headers

    def test_the_answer_is_kept_a_day(self, client: TestClient, session: Session) -> None:
        key = new_key()
        assert client.post(ORGS, json=body("Gardée un jour"), headers=key).status_code == 201
        row = session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.key == key["Idempotency-Key"])
        )
        assert row is not None
        assert row.status_code == 201
        expires = row.expires_at.replace(tzinfo=row.expires_at.tzinfo or UTC)
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

    @pytest.mark.parametrize(
        "value", ["", "deux mots", "clé-accentuée", "x" * 256, '"', 'a"b', "a\\b", "a\tb"]
    )
    def test_a_malformed_key_is_422(self, client: TestClient, value: str) -> None:
        headers = {"Idempotency-Key": value.encode()}  # bytes: httpx sends them as they are
        answer = client.post(ORGS, json=body("Clé mal formée"), headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"


class TestOtherRoutes:
    def test_a_token_is_never_shown_twice(self, client: TestClient, session: Session) -> None:
        """Its secret is not kept: a retry is a 409 naming the token created."""
        key = new_key()
        request = {"name": "Robot d'import", "role": "coordinator"}
        first = client.post("/api/v1/tokens", json=request, headers=key)
        assert first.status_code == 201, first.text
        again = client.post("/api/v1/tokens", json=request, headers=key)
        assert again.status_code == 409, again.text
        assert f"jeton n° {first.json()['id']}" in again.json()["detail"]
        kept = session.scalar(
            select(IdempotencyKey.response_body).where(IdempotencyKey.key == key["Idempotency-Key"])
        )
        assert kept is not None
        assert first.json()["token"] not in kept
        tokens = select(func.count()).select_from(ApiToken).where(ApiToken.label == request["name"])
        assert session.scalar(tokens) == 1

    def test_an_import_sent_again_is_answered_again(
        self, client: TestClient, session: Session
    ) -> None:
        data = (FIXTURES / "examples" / "organisations.csv").read_bytes()
        key = new_key()
        headers = {**key, "Content-Type": "text/csv"}
        first = client.post("/api/v1/imports/organisations", content=data, headers=headers)
        assert first.status_code == 200, first.text
        again = client.post("/api/v1/imports/organisations", content=data, headers=headers)
        assert again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"

    def test_a_dry_run_sent_again_is_answered_again(self, client: TestClient) -> None:
        """A request that ran no statement of its own keeps its key all the same."""
        data = (FIXTURES / "examples" / "organisations.csv").read_bytes()
        headers = {**new_key(), "Content-Type": "text/csv"}
        path = "/api/v1/imports/organisations?dry_run=true"
        first = client.post(path, content=data, headers=headers)
        assert first.status_code == 200, first.text
        again = client.post(path, content=data, headers=headers)
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.slow
class TestOnTheServer:
    """As a request's session connects: at its first statement, after encoding."""

    @pytest.mark.parametrize("dry_run", [True, False])
    def test_an_import_sent_again_is_answered_again(
        self, fake_server: Server, dry_run: bool
    ) -> None:
        data = (FIXTURES / "examples" / "organisations.csv").read_bytes()
        headers = {**fake_server.headers, **new_key(), "Content-Type": "text/csv"}
        url = f"{fake_server.url}/api/v1/imports/organisations"
        params = {"dry_run": "true" if dry_run else "false"}
        first = httpx.post(url, content=data, headers=headers, params=params, timeout=120)
        assert first.status_code == 200, first.text
        again = httpx.post(url, content=data, headers=headers, params=params, timeout=120)
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()


class TestContract:
    CREATING = {
        ("POST", "/api/v1/organisations"),
        ("POST", "/api/v1/organisations/{organisation_id}/statements"),
        ("POST", "/api/v1/organisations/{organisation_id}/dismissals"),
        ("POST", "/api/v1/tokens"),
        ("POST", "/api/v1/imports/organisations"),
        ("POST", "/api/v1/organisations/{organisation_id}/subscriptions"),
        ("POST", "/api/v1/consortia/{consortium_id}/reviews"),
        ("POST", "/api/v1/calls"),
        ("POST", "/api/v1/calls/{call_id}/interests"),
        ("POST", "/api/v1/calls/{call_id}/consortia"),
        ("POST", "/api/v1/imports/calls"),
    }

    def test_creating_routes_declare_the_header(self, app: FastAPI) -> None:
        paths = app.openapi()["paths"]
        declared = {
            ("POST", path)
            for path, operations in paths.items()
            if any(
                p["name"] == "Idempotency-Key" and p["in"] == "header"
                for p in operations.get("post", {}).get("parameters", [])
            )
        }
        assert declared == self.CREATING

    def test_every_api_route_declares_503(self, app: FastAPI) -> None:
        paths = app.openapi()["paths"]
        missing = [
            (method, path)
            for path, route in api_routes(app)
            if path.startswith("/api/") and route.include_in_schema
            for method in route.methods or ()
            # The document names a path parameter without its convertor ({id:int} → {id}).
            if "503"
            not in paths[re.sub(r"\{(\w+):\w+\}", r"{\1}", path)][method.lower()]["responses"]
        ]
        assert missing == []
