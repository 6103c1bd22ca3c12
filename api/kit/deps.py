"""Typed dependencies: one database transaction per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.accounts.principal import ANONYMOUS, Principal
from api.matching.engine import MatchingEngine

# Requests of these methods only read; any other may write.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    with factory() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_auth_session(request: Request) -> Iterator[Session]:
    """A short read-only transaction of its own, to look the bearer token up: a writing
    request's transaction (which on SQLite takes the write lock at its first statement)
    must not begin before the request's service has encoded its texts."""
    with request.app.state.session_factory() as session, session.begin():
        yield session


AuthSessionDep = Annotated[Session, Depends(get_auth_session, scope="function")]


def get_matching(request: Request) -> MatchingEngine:
    matching: MatchingEngine = request.app.state.matching
    return matching


MatchingDep = Annotated[MatchingEngine, Depends(get_matching)]


def get_viewer(request: Request) -> Principal:
    """The account the request acts for (left on the request by `api.kit.auth.authorise`,
    which every API route runs first)."""
    viewer: Principal = getattr(request.state, "principal", ANONYMOUS)
    return viewer


ViewerDep = Annotated[Principal, Depends(get_viewer)]
