"""Engine and session factory for SQLite (embedded) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@dataclass(frozen=True)
class PoolLimits:
    """How many connections a process keeps and how long anything waits on the database.

    size, overflow : connections kept open, and opened beyond them under load.
    checkout_timeout : seconds a thread waits for a free connection (SQLAlchemy raises
        `sqlalchemy.exc.TimeoutError`; the API answers 503).
    lock_timeout : seconds a statement waits for a lock: SQLite's write lock (its busy
        timeout, then "database is locked"), a PostgreSQL row or table lock (its
        `lock_timeout`, then `LockNotAvailable`); the API answers 503.
    Commands keep the defaults: a long wait is better than a failed migration.
    """

    size: int = 5
    overflow: int = 10
    checkout_timeout: float = 30.0
    lock_timeout: float = 30.0


def make_engine(url: str, *, echo: bool = False, limits: PoolLimits | None = None) -> Engine:
    """Create an engine; an SQLite file's folder is created on the way."""
    limits = limits or PoolLimits()
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": limits.lock_timeout}
    else:
        kwargs["pool_pre_ping"] = True
        milliseconds = max(1, round(limits.lock_timeout * 1000))
        kwargs["connect_args"] = {"options": f"-c lock_timeout={milliseconds}"}
    if parsed.get_backend_name() != "sqlite" or parsed.database not in (None, "", ":memory:"):
        kwargs.update(
            pool_size=limits.size,
            max_overflow=limits.overflow,
            pool_timeout=limits.checkout_timeout,
        )
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
