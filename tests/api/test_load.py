"""Load: 50 writers and 50 readers at once on the real server, overload answered 503 with
Retry-After, and no request that waits for a connection held by a request waiting for it.

Bounded, loopback only. No assertion on durations: a request not answered within the
client's generous timeout (60 s) counts as a stall, whatever the machine's speed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from api.kit.overload import Admission, is_busy
from api.tools.load import run_load
from models import Organisation
from models.db import for_writes
from models.enums import AccountRole
from tests.api.servers import Server, at_once, running_server, seed

ORGANISATIONS = "/api/v1/organisations"


@pytest.mark.slow
class TestLoad:
    def test_fifty_writers_and_fifty_readers(self, fake_server: Server) -> None:
        """No 500, no stall, every acknowledged write read back, no retried POST creating
        twice; racing dismissals answer 201 and 200."""
        seed(fake_server)
        report = run_load(
            fake_server.url,
            fake_server.headers,
            backend="test",
            writers=50,
            readers=50,
            rounds=1,
            timeout=60,
        )
        summary = report.as_dict()
        assert report.server_errors == 0, summary
        assert report.no_answer == 0, summary
        assert report.lost_writes == [], summary
        assert report.duplicates == [], summary
        kinds = {k.kind: k for k in report.kinds}
        assert kinds["retry"].requests > 0
        assert sum(k.requests for k in report.kinds) >= 100
        # Two writers dismiss each organisation: one creates the dismissal, one finds it
        # (or, overloaded, is told to come back).
        assert set(kinds["dismissal"].statuses) <= {"200", "201", "503"}, summary

    def test_two_threads_and_two_connections_serve_many_requests(
        self, fake_server_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No request holds a connection while it waits for a thread: with as many
        connections as threads and none beyond, 30 requests at once are all served (a
        request holding one connection and waiting for a second, or for a thread, would
        starve the others until the pool's timeout: 503)."""
        with running_server(
            fake_server_database,
            tmp_path,
            monkeypatch,
            rate_limits=False,
            worker_threads=2,
            db_pool_size=2,
            db_max_overflow=0,
            db_pool_timeout=60,
        ) as server:
            owner = seed(server, 2)[0]

            def request(i: int) -> int:
                with httpx.Client(base_url=server.url, headers=server.headers, timeout=90) as c:
                    if i % 3 == 0:
                        body = {"kind": "need", "text": f"Un besoin écrit à deux fils n° {i}"}
                        return c.post(f"{ORGANISATIONS}/{owner}/statements", json=body).status_code
                    if i % 3 == 1:
                        return c.get(f"{ORGANISATIONS}/{owner}/partners").status_code
                    return c.get(ORGANISATIONS, params={"limit": 5}).status_code

            statuses = at_once(request, 30)
        assert sorted(set(statuses)) == [200, 201], statuses


@pytest.fixture
def impatient_server(
    fake_server_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    """A server that waits half a second for a lock."""
    with running_server(
        fake_server_database, tmp_path, monkeypatch, rate_limits=False, db_lock_timeout=0.5
    ) as server:
        yield server


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert problem["title"] == "Service momentanément indisponible"
    assert "Réessayez" in problem["detail"]


@pytest.mark.slow
class TestOverload:
    def test_a_write_kept_waiting_for_a_lock_answers_503(
        self, impatient_server: Server, on_postgres: bool
    ) -> None:
        """SQLite's write lock, or a PostgreSQL row lock, held by another transaction past
        the lock timeout: 503 with Retry-After, nothing written."""
        owner = seed(impatient_server, 1)[0]
        engine = impatient_server.app.state.engine
        with for_writes(engine).connect() as holder:  # SQLite: BEGIN IMMEDIATE
            locking = " FOR UPDATE" if on_postgres else ""
            holder.execute(
                text(f"SELECT id FROM organisations WHERE id = :id{locking}"), {"id": owner}
            )
            response = httpx.post(
                f"{impatient_server.url}{ORGANISATIONS}/{owner}/statements",
                json={"kind": "need", "text": "Un besoin qui attend son tour"},
                headers=impatient_server.headers,
                timeout=60,
            )
            holder.rollback()
        assert_busy(response)
        with Session(engine) as session:
            org = session.get(Organisation, owner)
            assert org is not None
            assert [s.text for s in org.statements if "son tour" in s.text] == []

    def test_a_full_server_answers_503_and_still_serves_health(self) -> None:
        """Past its places in flight (and the wait for one), a request gets 503 at once;
        paths outside /api/ are never held back."""
        release = anyio.Event()
        entered = anyio.Event()

        async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            entered.set()
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        admission = Admission(slow_app, limit=1, wait=0, retry_after=3)
        answers: list[dict[str, Any]] = []

        async def call(path: str) -> None:
            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b""}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    answers.append({"path": path, **message})

            await admission({"type": "http", "path": path}, receive, send)

        async def scenario() -> None:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call, "/api/v1/organisations")
                await entered.wait()
                await call("/api/v1/territories")  # refused at once
                tasks.start_soon(call, "/healthz")  # let through
                await anyio.sleep(0)
                release.set()

        anyio.run(scenario)
        statuses = {a["path"]: a["status"] for a in answers}
        assert statuses == {
            "/api/v1/territories": 503,
            "/api/v1/organisations": 200,
            "/healthz": 200,
        }
        refused = next(a for a in answers if a["status"] == 503)
        assert (b"retry-after", b"3") in refused["headers"]


class TestBusyErrors:
    """Which database errors mean "busy, send it again" (503) rather than a fault (500)."""

    @staticmethod
    def wrapped(orig: Exception) -> OperationalError:
        return OperationalError("SELECT 1", {}, orig)

    def test_sqlite_locked_is_busy(self) -> None:
        assert is_busy(self.wrapped(sqlite3.OperationalError("database is locked")))
        assert not is_busy(self.wrapped(sqlite3.OperationalError("no such table: x")))

    def test_pool_timeout_is_busy(self) -> None:
        assert is_busy(PoolTimeout("QueuePool limit reached"))

    @pytest.mark.parametrize(
        ("sqlstate", "busy"),
        [("40001", True), ("40P01", True), ("55P03", True), ("08006", True), ("23505", False)],
    )
    def test_postgres_states(self, sqlstate: str, busy: bool) -> None:
        class PgError(Exception):
            pass

        error = PgError("erreur")
        error.sqlstate = sqlstate  # type: ignore[attr-defined]
        assert is_busy(self.wrapped(error)) is busy


@pytest.mark.slow
def test_a_member_token_is_scoped_to_its_organisations(fake_server: Server) -> None:
    """The token look-up runs in a transaction of its own, ended before the route: a
    member still gets 403 on another organisation and 201 on its own."""
    mine, other = seed(fake_server, 2)
    member = {"Authorization": fake_server.token(AccountRole.member, [mine])}
    body = {"kind": "need", "text": "Un besoin de membre"}
    with httpx.Client(base_url=fake_server.url, headers=member, timeout=60) as client:
        assert client.post(f"{ORGANISATIONS}/{other}/statements", json=body).status_code == 403
        assert client.post(f"{ORGANISATIONS}/{mine}/statements", json=body).status_code == 201
