"""Typed dependencies: one database transaction per request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.accounts.principal import ANONYMOUS, Principal
from api.kit.mail import Mailer
from api.kit.settings import Settings
from api.kit.turns import HeldTurns
from api.matching.engine import MatchingEngine
from models.db import transaction

# Requests of these methods only read; any other may write.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TURNS = "maillage_turns"  # Session.info: the request's HeldTurns


def take_turn(session: Session, organisation_id: int) -> None:
    """Wait for the organisation's turn to write its texts (`api.kit.turns`), held until
    the request's transaction ends; nothing outside a request (commands, tests' sessions).
    Raises ServiceUnavailable (503) past the lock timeout."""
    held: HeldTurns | None = session.info.get(TURNS)
    if held is not None:
        held.take(organisation_id)


def get_session(request: Request) -> Iterator[Session]:
    """Commit once when the route returns, roll back on any exception.

    Scope 'function' ends the dependency before the response is sent, so a failed
    commit becomes an error response instead of a success reply for lost data. A request
    that may write begins as a writer (`models.db.for_writes`): on SQLite its first
    statement waits for the write lock, so its service encodes before any statement.
    """
    state = request.app.state
    reads = request.method in READ_METHODS
    factory = state.session_factory if reads else state.write_session_factory
    turns = HeldTurns(state.turns)
    try:
        with factory() as session, session.begin():
            # Who acts, for the audit trail (`authorise`, an app-wide dependency, ran first).
            session.info["principal"] = getattr(request.state, "principal", None)
            # The organisations' turns its services take (`api.kit.turns`), given back
            # once the transaction has ended.
            session.info[TURNS] = turns
            yield session
    finally:
        turns.release_all()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# The dependencies below do no blocking work: async, they run on the event loop instead of
# taking a worker thread's turn (a request waits for one turn per sync dependency).


async def get_matching(request: Request) -> MatchingEngine:
    matching: MatchingEngine = request.app.state.matching
    return matching


MatchingDep = Annotated[MatchingEngine, Depends(get_matching)]

# Opens a short read-only transaction of its own, apart from the request's.
Reader = Callable[[], AbstractContextManager[Session]]


async def get_reader(request: Request) -> Reader:
    """Short read-only transactions beside the request's own: a write that must read what it
    changes before it can encode the new texts (a statement's organisation, its profile)
    reads them here, encodes, and only then runs its own transaction's first statement,
    which takes SQLite's write lock (`get_session`). The bearer token is looked up here too
    (`api.kit.auth.authorise`).

    Each transaction returns its connection when it ends: a thread never holds two
    connections at once (the request's own connects at its first statement, after them),
    and no connection waits across a change of thread (`Settings.worker_threads`)."""
    factory = request.app.state.session_factory

    def read() -> AbstractContextManager[Session]:
        return transaction(factory)

    return read


ReaderDep = Annotated[Reader, Depends(get_reader)]


async def get_viewer(request: Request) -> Principal:
    """The account the request acts for (left on the request by `api.kit.auth.authorise`,
    which every API route runs first)."""
    viewer: Principal = getattr(request.state, "principal", ANONYMOUS)
    return viewer


ViewerDep = Annotated[Principal, Depends(get_viewer)]


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]

# Opens a short write transaction of its own, for work done after the response (sending an
# e-mail, then recording that it went): the request's own transaction has committed.
Writer = Callable[[], AbstractContextManager[Session]]


async def get_writer(request: Request) -> Writer:
    factory = request.app.state.write_session_factory

    def write() -> AbstractContextManager[Session]:
        return transaction(factory)

    return write


WriterDep = Annotated[Writer, Depends(get_writer)]


# Calls' deadlines are French dates: a call is open through its deadline, Paris time.
FRENCH_TIME = ZoneInfo("Europe/Paris")


async def get_today() -> date:
    """Today's date in France: what a deadline is compared with. Tests override this
    dependency (`app.dependency_overrides[get_today]`) to fix the date."""
    return datetime.now(FRENCH_TIME).date()


TodayDep = Annotated[date, Depends(get_today)]
