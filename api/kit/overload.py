"""Overload: a bounded number of requests in flight, and every kind of "the database is
busy" answered 503 with `Retry-After` instead of a 500 or a long stall.

What bounds each wait (settings of `api.kit.settings.Settings`):
- a place among the requests in flight: `max_requests_in_flight`, `admission_timeout`;
- a worker thread: `worker_threads` (anyio's limiter; requests waiting for one hold no
  database connection, see `api.kit.deps.get_reader`);
- a database connection: `db_pool_size` (as many as threads), `db_pool_timeout`;
- a lock: `db_lock_timeout` (SQLite's busy timeout, PostgreSQL's lock_timeout).
A request that runs out of one of them gets 503 with `Retry-After`: nothing was written
(its transaction is rolled back) and the same request may be sent again.
"""

from __future__ import annotations

import logging
import sqlite3

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from api.kit.errors import problem
from api.kit.settings import Settings

log = logging.getLogger(__name__)

BUSY_DETAIL = (
    "Le service est momentanément surchargé : rien n'a été enregistré. Réessayez la même "
    "requête dans quelques secondes (en-tête Retry-After)."
)
# PostgreSQL SQLSTATEs of a transaction that may succeed if sent again: serialization
# failure, deadlock, lock not available (lock_timeout), query cancelled (statement_timeout),
# too many connections, server shutting down or starting up.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "53300", "57P01", "57P03"})


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means "busy, try again" rather than a fault: SQLite locked
    or busy past its timeout, a PostgreSQL lock or serialization failure, a connection that
    failed or was refused."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "database is locked" in message or "database is busy" in message
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in RETRYABLE_SQLSTATES or sqlstate.startswith("08")
    # psycopg's OperationalError without a state: the connection failed or was lost.
    return bool(exc.connection_invalidated) or type(orig).__name__ == "OperationalError"


def busy_response(request: Request | None, retry_after: int) -> JSONResponse:
    return problem(
        503,
        BUSY_DETAIL,
        type_slug="service-unavailable",
        instance=request.url.path if request is not None else None,
        headers={"Retry-After": str(retry_after)},
    )


def install_overload_protection(app: FastAPI, settings: Settings) -> None:
    """The admission limit (outermost middleware) and the 503 handlers of busy databases."""
    retry_after = settings.retry_after

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        if is_busy(exc):
            log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
            return busy_response(request, retry_after)
        raise exc  # the generic 500 handler's, logged with its traceback

    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_middleware(
        Admission,
        limit=settings.max_requests_in_flight,
        wait=settings.admission_timeout,
        retry_after=retry_after,
    )


class Admission:
    """Pure ASGI middleware: at most `limit` API requests served at once; one more waits up
    to `wait` seconds for a place, then gets 503 with `Retry-After`. Paths outside /api/
    (health, documentation) are never held back."""

    def __init__(self, app: ASGIApp, *, limit: int, wait: float, retry_after: int) -> None:
        self.app = app
        self.limit = limit
        self.wait = wait
        self.retry_after = retry_after
        self._places: anyio.CapacityLimiter | None = None  # made in the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if self._places is None:
            self._places = anyio.CapacityLimiter(self.limit)
        places = self._places
        token = object()
        if not await _acquire(places, token, self.wait):
            response = busy_response(None, self.retry_after)
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            places.release_on_behalf_of(token)


async def _acquire(places: anyio.CapacityLimiter, token: object, wait: float) -> bool:
    """Take a place for `token`, waiting up to `wait` seconds; whether it got one."""
    try:
        places.acquire_on_behalf_of_nowait(token)
        return True
    except anyio.WouldBlock:
        pass
    acquired = False
    with anyio.move_on_after(wait):
        await places.acquire_on_behalf_of(token)
        acquired = True  # no await after the acquisition: a timeout cannot fall between
    return acquired
