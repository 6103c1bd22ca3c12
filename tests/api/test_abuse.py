"""Rate limits, security headers and CORS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.app import create_app
from api.kit.deps import Reader, get_reader, get_session
from api.kit.settings import Settings
from models.enums import AccountRole
from tests.conftest import bearer


def app_with(settings: Settings, session: Session, **changes: object) -> FastAPI:
    app = create_app(settings.model_copy(update=changes))

    def _test_session() -> Iterator[Session]:
        with session.begin_nested():
            yield session

    def _test_reader() -> Reader:
        def read() -> AbstractContextManager[Session]:
            return nullcontext(session)

        return read

    app.dependency_overrides[get_session] = _test_session
    app.dependency_overrides[get_reader] = _test_reader
    return app


@pytest.fixture
def limited(settings: Settings, session: Session) -> FastAPI:
    return app_with(
        settings,
        session,
        rate_limits=True,
        rate_auth_failures="3/hour",
        rate_costly_per_token="4/hour",
        rate_costly_per_address="100/hour",
    )


def test_failed_tokens_are_limited_per_address_with_retry_after(
    limited: FastAPI, session: Session
) -> None:
    good = bearer(session, AccountRole.coordinator)
    with TestClient(limited, raise_server_exceptions=False) as client:
        for attempt in range(3):
            wrong = client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer mlg_0000000{attempt}_faux"}
            )
            assert wrong.status_code == 401
        refused = client.get("/api/v1/me", headers={"Authorization": "Bearer mlg_00000009_faux"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"] == "application/problem+json"
        assert "réessayez" in refused.json()["detail"]
        # Even a good token waits, from that address: guessing must not go on beside it.
        assert client.get("/api/v1/me", headers={"Authorization": good}).status_code == 429


def test_costly_routes_are_limited_per_token(limited: FastAPI, session: Session) -> None:
    first, second = (
        bearer(session, AccountRole.coordinator),
        bearer(session, AccountRole.coordinator),
    )
    with TestClient(limited, raise_server_exceptions=False) as client:
        for _ in range(4):
            answered = client.get(
                "/api/v1/search/organisations",
                params={"q": "jardins"},
                headers={"Authorization": first},
            )
            assert answered.status_code == 200, answered.text
        limited_answer = client.get(
            "/api/v1/search/organisations",
            params={"q": "jardins"},
            headers={"Authorization": first},
        )
        assert limited_answer.status_code == 429
        assert "retry-after" in limited_answer.headers
        # Cheap routes and other tokens are not held back.
        assert client.get("/api/v1/me", headers={"Authorization": first}).status_code == 200
        assert (
            client.get(
                "/api/v1/search/organisations",
                params={"q": "jardins"},
                headers={"Authorization": second},
            ).status_code
            == 200
        )


def test_security_headers_on_every_response(
    client: TestClient, anonymous_client: TestClient
) -> None:
    for response in (
        client.get("/api/v1/organisations"),
        anonymous_client.get("/api/v1/organisations"),  # a 401 too
        anonymous_client.get("/api/v1/territories/99999"),  # a 404
        anonymous_client.get("/healthz"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert (
        "default-src 'none'"
        in client.get("/api/v1/organisations").headers["content-security-policy"]
    )


def test_cors_is_closed_by_default_and_opens_to_configured_origins(
    settings: Settings, session: Session
) -> None:
    preflight = {
        "Origin": "https://exemple.fr",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    with TestClient(app_with(settings, session), raise_server_exceptions=False) as closed:
        answer = closed.options("/api/v1/organisations", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    opened = app_with(settings, session, cors_origins=["https://exemple.fr"])
    with TestClient(opened, raise_server_exceptions=False) as client:
        answer = client.options("/api/v1/organisations", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://exemple.fr"
        other = client.options(
            "/api/v1/organisations", headers={**preflight, "Origin": "https://ailleurs.fr"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_the_documentation_is_served_from_the_package_not_a_cdn(
    anonymous_client: TestClient,
) -> None:
    page = anonymous_client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(s.startswith("/static/") for s in sources), sources
    for source in sources:
        assert anonymous_client.get(source).status_code == 200, source


def test_a_405_says_which_methods_are_allowed(client: TestClient) -> None:
    answer = client.put("/api/v1/organisations")
    assert answer.status_code == 405
    assert "GET" in answer.headers["allow"]
    assert answer.headers["content-type"] == "application/problem+json"
