"""Who may call what: every API route × every role × own/other organisation, generated from
the app's route table, so that a new endpoint without a rule (or with a rule this matrix
does not know how to exercise) fails here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.accounts.service import create_account, issue_token
from api.kit.auth import Access, api_routes, rule_of
from models import Call, Statement
from models.enums import AccountRole
from tests.conftest import bearer
from tests.factories import make_organisation


@dataclass(frozen=True)
class World:
    own: int  # the member's organisation
    other: int  # an organisation the member does not belong to
    own_statement: int
    other_statement: int
    token_id: int
    call_id: int


@pytest.fixture
def world(session: Session) -> World:
    own = make_organisation(session, name="Habitat du Pays d'Aix", needs=["Un jardin partagé"])
    other = make_organisation(session, name="Association Voisins Solidaires", needs=["Un local"])
    account = create_account(session, name="Machine", role=AccountRole.coordinator)
    token = issue_token(session, account, expires_at=None).token
    call = Call(title="Appel à projets de la matrice", source="test", nationwide=True)
    session.add(call)
    session.flush()

    def first_statement(org_id: int) -> int:
        return next(s.id for s in session.query(Statement).filter_by(organisation_id=org_id))

    return World(
        own.id, other.id, first_statement(own.id), first_statement(other.id), token.id, call.id
    )


ROLES = ("anonymous", "member", "coordinator", "admin")


def headers_for(session: Session, role: str, world: World) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "member":
        return {"Authorization": bearer(session, AccountRole.member, [world.own])}
    return {"Authorization": bearer(session, AccountRole(role))}


def path_of(path: str, world: World, whose: str) -> str:
    """The route's path with a value for each parameter, naming the member's own
    organisation (and its rows) or another one."""
    values = {
        "organisation_id": world.own if whose == "own" else world.other,
        "statement_id": world.own_statement if whose == "own" else world.other_statement,
        "dismissed_id": world.other if whose == "own" else world.own,
        "token_id": world.token_id,
        "subscription_id": 1,  # unknown or not: the rule is decided by organisation_id
        "kind": "atom",  # a feed
        "secret": "x" * 43,  # an unknown feed: 404 past the public rule
        "week": "2026-W49",
        "consortium_id": 1,  # unknown or not visible: 404 past the rule
        "call_id": world.call_id,
        "code": "13001",
    }
    for name in re.findall(r"{(\w+)(?::\w+)?}", path):
        assert name in values, f"{path}: give the matrix a value for {{{name}}}"
        path = re.sub("{" + name + r"(:\w+)?}", str(values[name]), path)
    return path


def expected_refusal(rule: Access, role: str, whose: str) -> int | None:
    """401, 403, or None (the rule lets the request through to the route)."""
    if role == "anonymous":
        return None if rule == Access.public else 401
    if rule == Access.admin and role != "admin":
        return 403
    if rule == Access.coordinator and role == "member":
        return 403
    if rule == Access.organisation and role == "member" and whose == "other":
        return 403
    return None


def test_every_route_declares_an_access_rule(app: FastAPI) -> None:
    routes = api_routes(app)
    assert len(routes) >= 10
    assert [path for path, route in routes if rule_of(route) is None] == []


def test_the_permission_matrix(app: FastAPI, session: Session, world: World) -> None:
    clients = {
        role: TestClient(
            app, raise_server_exceptions=False, headers=headers_for(session, role, world)
        )
        for role in ROLES
    }
    failures = []
    checked = 0
    for template, route in api_routes(app):
        rule = rule_of(route)
        assert rule is not None
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            for role in ROLES:
                for whose in ("own", "other"):
                    path = path_of(template, world, whose)
                    response = clients[role].request(
                        method, path, json={} if method in ("POST", "PATCH", "PUT") else None
                    )
                    checked += 1
                    if not route.include_in_schema and response.headers.get(
                        "content-type", ""
                    ).startswith("text/html"):
                        continue  # a public page decides past its rule (its own tests)
                    refused = expected_refusal(rule, role, whose)
                    got = response.status_code
                    ok = got == refused if refused else got not in (401, 403, 500)
                    if not ok:
                        failures.append(
                            f"{method} {path} as {role} ({whose}): {got}, want {refused or 'through'}"
                        )
                    if got in (401, 403):
                        assert response.headers["content-type"] == "application/problem+json"
                        assert response.json()["detail"]
    assert not failures, "\n".join(failures)
    assert checked >= 4 * 2 * 10


class TestTokens:
    def test_no_token_is_a_401_in_french_with_the_bearer_challenge(
        self, anonymous_client: TestClient
    ) -> None:
        response = anonymous_client.get("/api/v1/organisations")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
        assert "jeton" in response.json()["detail"]

    @pytest.mark.parametrize(
        "value",
        [
            "Bearer ",
            "Bearer mlg_",
            "Bearer mlg_abcdefgh_faux",
            "Basic dXNlcjpwYXNz",
            "mlg_x_y",
            "Bearer " + "x" * 5000,
            "Bearer mlg_abcdefgh_" + "é" * 10,
        ],
    )
    def test_a_bad_token_is_a_401_never_a_500(
        self, anonymous_client: TestClient, value: str
    ) -> None:
        response = anonymous_client.get(
            "/api/v1/organisations",
            headers={"Authorization": value.encode("utf-8")},
        )
        assert response.status_code == 401, response.text
        # Also on a public route: a token that is sent must authenticate.
        assert (
            anonymous_client.get(
                "/api/v1/territories/13001",
                headers={"Authorization": value.encode("utf-8")},
            ).status_code
            == 401
        )

    def test_revoked_and_expired_tokens_stop_working_at_once(
        self, client: TestClient, anonymous_client: TestClient, session: Session
    ) -> None:
        created = client.post(
            "/api/v1/tokens", json={"name": "Coordination", "role": "coordinator"}
        )
        assert created.status_code == 201, created.text
        secret = created.json()["token"]
        auth = {"Authorization": f"Bearer {secret}"}
        assert anonymous_client.get("/api/v1/me", headers=auth).json()["role"] == "coordinator"
        assert secret not in str(client.get("/api/v1/tokens").json())  # never shown again
        assert client.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204
        gone = anonymous_client.get("/api/v1/me", headers=auth)
        assert gone.status_code == 401
        assert "révoqué" in gone.json()["detail"]

        account = create_account(session, name="Ancien", role=AccountRole.coordinator)
        issued = issue_token(session, account, expires_at=datetime.now(UTC) + timedelta(days=1))
        issued.token.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.flush()
        expired = anonymous_client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {issued.secret}"}
        )
        assert expired.status_code == 401
        assert "expiré" in expired.json()["detail"]

    def test_only_a_hash_is_stored(self, client: TestClient, session: Session) -> None:
        created = client.post("/api/v1/tokens", json={"name": "Robot", "role": "admin"}).json()
        from models import ApiToken

        row = session.get(ApiToken, created["id"])
        assert row is not None
        assert created["token"] not in (row.token_hash, row.prefix)
        assert created["token"].split("_", 2)[2] not in row.token_hash

    def test_a_member_token_needs_an_existing_organisation(self, client: TestClient) -> None:
        missing = client.post(
            "/api/v1/tokens",
            json={"name": "Membre", "role": "member", "organisation_ids": [999999]},
        )
        assert missing.status_code == 404
        none = client.post("/api/v1/tokens", json={"name": "Membre", "role": "member"})
        assert none.status_code == 422
