"""The real app behind uvicorn on 127.0.0.1, for tests of concurrent requests: they need
committed transactions on several connections, which a rolled-back test transaction cannot
give. The fixtures are in tests/api/conftest.py."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.app import create_app
from api.kit.settings import Settings
from api.matching import engine as matching_module
from api.organisations.schemas import OrganisationIn
from api.organisations.service import create_organisation
from api.tools.load import organisation_body, serve_in_thread
from models.enums import AccountRole
from tests.conftest import FIXTURES, bearer
from tests.fakes import FakeEncoder

T = TypeVar("T")


def is_ddl(statement: str) -> bool:
    return re.match(r"\s*(CREATE|ALTER|DROP)\b", statement, re.I) is not None


@dataclass
class Server:
    url: str
    app: FastAPI
    headers: dict[str, str]  # an admin's Authorization header
    statements: list[str] = field(default_factory=list)  # SQL sent since start-up

    @property
    def ddl(self) -> list[str]:
        return [s for s in self.statements if is_ddl(s)]

    def token(self, role: AccountRole, organisation_ids: list[int] | None = None) -> str:
        """The Authorization header value of a new account's token (committed)."""
        with Session(self.app.state.engine) as session, session.begin():
            return bearer(session, role, organisation_ids)


@contextmanager
def running_server(
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch | None = None,
    **changes: Any,
) -> Iterator[Server]:
    """The app freshly started behind uvicorn, in a thread of this process, on
    `database_url` (migrated, territories loaded). With `monkeypatch`, its encoder is a
    fake one (no model loaded). `changes`: settings."""
    if monkeypatch is not None:
        monkeypatch.setattr(
            matching_module,
            "dense_encoder",
            lambda model: FakeEncoder("fake-charge", 32, role_aware=True),
        )
    settings = Settings(
        database_url=database_url, data_dir=data_dir, fixtures_dir=FIXTURES, **changes
    )
    app = create_app(settings)
    with serve_in_thread(app, start_timeout=60) as url:
        with Session(app.state.engine) as session, session.begin():
            authorization = bearer(session, AccountRole.admin)
        running = Server(url=url, app=app, headers={"Authorization": authorization})

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            running.statements.append(statement)

        event.listen(app.state.engine, "before_cursor_execute", record)
        try:
            yield running
        finally:
            event.remove(app.state.engine, "before_cursor_execute", record)


def at_once(work: Callable[[int], T], n: int) -> list[T]:
    """Run work(0..n-1) in n threads released together; results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait(30)
        try:
            results[i] = work(i)
        except Exception as exc:  # reported with the others, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads)
    return results


def seed(server: Server, n: int = 12) -> list[int]:
    """`n` organisations of the fake server, on Marseille communes, embedded."""
    ids = []
    with Session(server.app.state.engine) as session, session.begin():
        for i in range(n):
            body = organisation_body("graine", i, 0)
            body["name"] = f"Organisation de départ n° {i} ({server.url})"
            org = create_organisation(
                session,
                OrganisationIn.model_validate(body),
                matching=server.app.state.matching,
                allow_duplicate_name=True,
            )
            ids.append(org.id)
    return ids
