"""One test database per run, migrated with Alembic; each test in a rolled-back transaction.

The database is SQLite (a file in a temporary folder) unless MAILLAGE_TEST_DATABASE_URL
names another one, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/maillage_test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.orm import Session

from api.accounts.service import create_account, issue_token
from api.app import create_app
from api.kit.deps import Reader, Writer, get_reader, get_session, get_writer
from api.kit.settings import REPO_ROOT, Settings
from api.matching.engine import MatchingEngine
from api.tools.demo import ensure_territories
from models import migrate
from models.db import is_sqlite, make_engine
from models.enums import AccountRole
from tests.browser import browser  # noqa: F401 (the `browser` fixture, for every test)

FIXTURES = REPO_ROOT / "fixtures"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("MAILLAGE_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


def reset_database(engine: Engine) -> None:
    """Empty the database whatever state an earlier run left it in."""
    if is_sqlite(str(engine.url)):
        path = engine.url.database
        if path and Path(path).exists():
            engine.dispose()
            Path(path).unlink()
        return
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@contextmanager
def scratch_database(
    database_url: str, suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of an empty database of its own beside the test database (a new SQLite file,
    or `<test database>_<suffix>` on PostgreSQL), dropped afterwards."""
    if is_sqlite(database_url):
        yield f"sqlite:///{tmp_path_factory.mktemp(suffix) / 'scratch.sqlite3'}"
        return
    parsed = make_url(database_url)
    name = f"{parsed.database}_{suffix}"
    admin = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    drop = text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with admin.connect() as conn:
        conn.execute(drop)
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    reset_database(engine)
    migrate.upgrade(engine)
    # As `maillage db upgrade` does: each test app's start-up finds the vector indexes.
    MatchingEngine(
        Settings(database_url=database_url, fixtures_dir=FIXTURES)
    ).create_vector_indexes(engine)
    factory_session = Session(bind=engine)
    with factory_session.begin():
        ensure_territories(factory_session, FIXTURES)
    factory_session.close()
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session whose commits only release savepoints: the test's outer transaction is
    rolled back at the end, so tests never see each other's rows."""
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as s:
        yield s


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Rate limits are tested on their own (tests/api/test_abuse.py), not counted in tests
    # that send hundreds of searches.
    return Settings(
        database_url=database_url, data_dir=tmp_path, fixtures_dir=FIXTURES, rate_limits=False
    )


@pytest.fixture
def app(settings: Settings, session: Session) -> FastAPI:
    app = create_app(settings)

    def _test_session(request: Request) -> Iterator[Session]:
        # Same contract as production: the request's work is undone if it fails.
        session.info["principal"] = getattr(request.state, "principal", None)
        with session.begin_nested():
            yield session

    def _test_reader() -> Reader:
        # The test's rows live in its open transaction: a write's look-ahead (and the
        # token's look-up) reads them through the same session.
        def read() -> AbstractContextManager[Session]:
            return nullcontext(session)

        return read

    app.dependency_overrides[get_session] = _test_session
    app.dependency_overrides[get_reader] = _test_reader

    def _test_writer() -> Writer:
        # Work after the response (a confirmation e-mail, then its record) writes in the
        # test's transaction too.
        @contextmanager
        def write() -> Iterator[Session]:
            with session.begin_nested():
                yield session

        return write

    app.dependency_overrides[get_writer] = _test_writer
    return app


def bearer(session: Session, role: AccountRole, organisation_ids: list[int] | None = None) -> str:
    """The Authorization header value of a new account's token, in the test's transaction."""
    account = create_account(
        session, name=f"Compte de test ({role.value})", role=role, organisation_ids=organisation_ids
    )
    return "Bearer " + issue_token(session, account, expires_at=None).secret


@pytest.fixture
def client(app: FastAPI, session: Session) -> Iterator[TestClient]:
    """A client acting as an admin (sees and may do everything): tests of what a role may
    not do make their own clients (`anonymous_client`, `bearer`)."""
    headers = {"Authorization": bearer(session, AccountRole.admin)}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        yield c


@pytest.fixture
def anonymous_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def on_postgres(database_url: str) -> bool:
    return not is_sqlite(database_url)
