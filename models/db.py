"""Engine and session factory for SQLite (embedded) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; an SQLite file's folder is created on the way."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite opens transactions lazily, on the first write, which breaks SAVEPOINT and
    # nested transactions: SQLAlchemy takes over and emits BEGIN itself (its documented
    # recipe for SQLite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Execution option naming how SQLite begins a transaction: DEFERRED (the default) or
# IMMEDIATE (see `for_writes`).
SQLITE_BEGIN = "maillage_sqlite_begin"


def _sqlite_on_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def for_writes(engine: Engine) -> Engine:
    """The engine for transactions that write: on SQLite they take the write lock at their
    first statement (BEGIN IMMEDIATE), so do slow work (encoding) before it.

    A deferred transaction that has read cannot take the write lock once another
    connection has committed since its first read: SQLite refuses at once ("database is
    locked", SQLITE_BUSY_SNAPSHOT in WAL mode) instead of waiting out the busy timeout, so
    concurrent writers that read first would fail. An immediate one waits its turn, up to
    the busy timeout. PostgreSQL ignores the option.
    """
    return engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit at the end, roll back on any exception."""
    with factory() as session, session.begin():
        yield session
