"""What the HTTP layer answers at its edges: bodies too large or unreadable, media types,
methods, CORS preflights, over-long headers; each answer a French problem the OpenAPI
document declares."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from api.kit.request_limits import server_limits
from api.kit.settings import Settings
from models import Organisation
from tests.api.problems import assert_problem
from tests.api.test_abuse import app_with
from tests.factories import make_organisation

ORGS = "/api/v1/organisations"
JSON = {"content-type": "application/json"}


def declared(app: FastAPI, method: str, path: str) -> set[str]:
    return set(app.openapi()["paths"][path][method]["responses"])


def organisations(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Organisation)) or 0


class TestBodySize:
    def test_a_body_over_the_limit_is_refused_before_it_is_read(
        self, client: TestClient, app: FastAPI, session: Session
    ) -> None:
        before = organisations(session)
        body = json.dumps({"name": "x" * (2 * 1024 * 1024), "kind": "landlord"})
        response = client.post(ORGS, content=body, headers=JSON)
        assert_problem(response, 413, "trop volumineux", "1024 Kio")
        assert organisations(session) == before
        assert "413" in declared(app, "post", ORGS)

    def test_a_chunked_body_is_counted_as_it_arrives(
        self, client: TestClient, app: FastAPI
    ) -> None:
        app.state.settings.max_body_bytes = 4096
        sent: list[int] = []

        def chunks() -> Iterator[bytes]:  # no Content-Length
            yield b'{"name": "'
            for i in range(1000):
                sent.append(i)
                yield b"x" * 1024
            yield b'", "kind": "landlord"}'

        response = client.post(ORGS, content=chunks(), headers=JSON)
        assert_problem(response, 413, "4 Kio")

    def test_imports_have_their_own_larger_limit(self, client: TestClient) -> None:
        rows = "nom;type\r\n" + "".join(f"Org {i};association\r\n" for i in range(60_000))
        assert 1024 * 1024 < len(rows) < 10 * 1024 * 1024
        response = client.post(
            "/api/v1/imports/organisations",
            params={"dry_run": "true"},
            content=rows.encode(),
            headers={"content-type": "text/csv"},
        )
        assert response.status_code != 413, response.text

    def test_a_statement_of_20000_characters_says_the_limit(self, client: TestClient) -> None:
        org = make_organisation_via_api(client)
        response = client.post(
            f"{ORGS}/{org}/statements", json={"kind": "need", "text": "Aide " * 4000}
        )
        body = assert_problem(response, 422, "Texte trop long", "2000 caractères")
        assert body["errors"][0]["loc"] == ["body", "text"]


def make_organisation_via_api(client: TestClient) -> int:
    response = client.post(
        ORGS,
        json={"name": "Habitat des Limites", "kind": "landlord"},
        params={"allow_duplicate_name": True},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


class TestUnreadableBodies:
    @pytest.mark.parametrize(
        "body",
        [
            b'{"name": "\xff\xfe\xbe"}',  # not UTF-8
            b"\xbeQ\x90!s",
            b"[" * 1000 + b"]" * 1000,  # nested 1,000 levels
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
        ],
    )
    def test_a_body_that_cannot_be_read_is_a_french_400(
        self, client: TestClient, app: FastAPI, body: bytes
    ) -> None:
        response = client.post(ORGS, content=body, headers=JSON)
        if response.status_code == 422:  # what the JSON parser names a syntax error
            assert response.json()["errors"][0]["type"] == "json_invalid"
        else:
            assert_problem(response, 400, "illisible")
        for method, path in (
            ("post", ORGS),
            ("patch", ORGS + "/{organisation_id}"),
            ("post", "/api/v1/tokens"),
        ):
            assert {"400", "413", "415", "422"} <= declared(app, method, path)

    def test_json_under_another_media_type_is_a_415(self, client: TestClient) -> None:
        for headers in ({"content-type": "text/plain"}, {"content-type": ""}):
            response = client.post(
                ORGS, content=b'{"name": "A", "kind": "landlord"}', headers=headers
            )
            assert_problem(response, 415, "application/json")


class TestDismissingTwice:
    def test_the_second_identical_dismissal_is_a_declared_200(
        self, client: TestClient, app: FastAPI, session: Session
    ) -> None:
        mine = make_organisation(session, name="Habitat Un")
        other = make_organisation(session, name="Habitat Deux")
        url = f"{ORGS}/{mine.id}/dismissals"
        first = client.post(url, json={"organisation_id": other.id, "reason": "hors sujet"})
        again = client.post(url, json={"organisation_id": other.id, "reason": "hors sujet"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert {"200", "201"} <= declared(app, "post", ORGS + "/{organisation_id}/dismissals")

    def test_an_organisation_dismissing_itself_is_a_conflict(
        self, client: TestClient, session: Session
    ) -> None:
        mine = make_organisation(session, name="Habitat Seul")
        response = client.post(f"{ORGS}/{mine.id}/dismissals", json={"organisation_id": mine.id})
        assert_problem(response, 409, "elle-même")


class TestMethods:
    def test_a_405_names_every_method_of_the_address(self, client: TestClient) -> None:
        response = client.put(f"{ORGS}/1")
        assert_problem(response, 405)
        assert response.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"

    def test_options_says_the_methods_of_an_address(self, anonymous_client: TestClient) -> None:
        response = anonymous_client.options(ORGS)
        assert response.status_code == 204
        assert response.headers["allow"] == "GET, OPTIONS, POST"
        assert anonymous_client.options("/api/v1/nulle-part").status_code == 404


class TestCorsPreflight:
    PREFLIGHT = {
        "Origin": "https://exemple.fr",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }

    def test_without_origins_a_preflight_gets_no_permission(
        self, anonymous_client: TestClient
    ) -> None:
        response = anonymous_client.options(ORGS, headers=self.PREFLIGHT)
        assert response.status_code == 204  # not a 405: OPTIONS is answered, CORS is not
        assert not any(h.startswith("access-control-") for h in response.headers)

    def test_with_origins_cors_answers(self, settings: Settings, session: Session) -> None:
        app = app_with(settings, session, cors_origins=["https://exemple.fr"])
        with TestClient(app, raise_server_exceptions=False) as client:
            allowed = client.options(ORGS, headers=self.PREFLIGHT)
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == "https://exemple.fr"
            refused = client.options(
                ORGS, headers={**self.PREFLIGHT, "Origin": "https://ailleurs.fr"}
            )
            assert_problem(refused, 400, "autre origine")
            assert "access-control-allow-origin" not in refused.headers


@pytest.mark.slow
class TestHeaderLimits:
    """The limit is the HTTP server's (h11), so a real uvicorn on 127.0.0.1 is asked."""

    @pytest.fixture
    def port(self, settings: Settings) -> Iterator[int]:
        app = create_app(settings)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **server_limits(settings)))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.start()
        try:
            for _ in range(400):  # bounded wait for start-up
                if server.started or not thread.is_alive():
                    break
                time.sleep(0.05)
            assert server.started
            yield sock.getsockname()[1]
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()

    @staticmethod
    def ask(port: int, request: bytes) -> bytes:
        """The server's answer, read while the request is still being sent: a refusing
        server answers, then resets a connection whose bytes it did not read."""
        answer = bytearray()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:

            def read() -> None:
                try:
                    while chunk := conn.recv(65536):
                        answer.extend(chunk)
                except OSError:  # reset once the server has answered
                    pass

            reader = threading.Thread(target=read)
            reader.start()
            try:
                conn.sendall(request)
            except OSError:  # the server stopped reading: refused
                pass
            reader.join(20)
        return bytes(answer)

    def test_a_1_mib_header_is_refused(self, port: int) -> None:
        big = b"X-Grand: " + b"a" * (1000 * 1024) + b"\r\n"  # under 1 MiB, over the limit
        answer = self.ask(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

    def test_a_long_query_still_reaches_the_api(self, port: int) -> None:
        query = "jardin%20" * 2500  # 22 KB: more than h11's default 16 KiB
        request = (
            f"GET /api/v1/territories?q={query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answer = self.ask(port, request.encode())
        assert answer.startswith(b"HTTP/1.1 422"), answer[:200]
        assert b"application/problem+json" in answer
