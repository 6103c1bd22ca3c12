"""Fixtures of the tests that run the real server (tests/api/servers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.deps import get_viewer
from api.tools.demo import ensure_territories
from models import migrate
from models.db import make_engine
from tests.api.servers import Server, running_server
from tests.conftest import FIXTURES, scratch_database


@contextmanager
def _server_database(
    database_url: str, suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of its own, migrated, with the territory referential (never its vector
    indexes: the app's start-up makes those)."""
    with scratch_database(database_url, suffix, tmp_path_factory) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        with Session(engine) as session, session.begin():
            ensure_territories(session, FIXTURES)
        engine.dispose()
        yield url


# The servers of the real model and of the fake encoder each have their database: each
# embeds the texts of what it reads in its own space. Shared by the tests of a kind, each
# names what it creates so that it finds its own rows.


@pytest.fixture(scope="session")
def server_database(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _server_database(database_url, "concurrency", tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def fake_server_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with _server_database(database_url, "load", tmp_path_factory) as url:
        yield url


@pytest.fixture
def server(server_database: str, tmp_path: Path) -> Iterator[Server]:
    """The app with the real model, freshly started."""
    with running_server(server_database, tmp_path) as running:
        yield running


@pytest.fixture
def fake_server(
    fake_server_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    """The app with a fake encoder (no model to load) and no rate limits, freshly started."""
    with running_server(fake_server_database, tmp_path, monkeypatch, rate_limits=False) as running:
        yield running


@pytest.fixture
def as_viewer(app: FastAPI) -> Callable[[Principal], None]:
    """Make the app's next requests act for a principal."""

    def set_viewer(principal: Principal) -> None:
        app.dependency_overrides[get_viewer] = lambda: principal

    return set_viewer
