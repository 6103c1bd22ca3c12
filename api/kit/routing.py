"""The route class of every API router: no request waits for a second worker thread while
it holds a database connection or a lock.

FastAPI runs a sync route in a worker thread, then validates its answer in *another*
thread turn, while the request's transaction is still open (it commits once the answer is
built): under load that turn waits behind requests that themselves wait for a connection
or for SQLite's write lock, which the waiting request holds. Here a sync route runs in
one thread turn as before, and its answer is validated on the event loop (pure CPU, a few
milliseconds at most); the transaction then commits in a thread that waits for no turn
(FastAPI's own rule for dependency exits).

The answer of a request sent with an `Idempotency-Key` is stored here too, in the
request's transaction, once it is built (`api.kit.idempotency`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.kit.auth import api_routes
from api.kit.idempotency import store_answer


def _in_thread(endpoint: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """An async route calling the sync `endpoint` in a worker thread (same signature: FastAPI
    reads it, and the annotations, through `__wrapped__`)."""

    @functools.wraps(endpoint)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return call


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response = await handler(request)
            await store_answer(request, response)
            return response

        return handle


def check_every_route_is_a_route(app: FastAPI) -> None:
    """Raise RuntimeError naming the API routes of another class (a router made without
    `route_class=Route`)."""
    others = [
        f"{sorted(route.methods or ())} {path}"
        for path, route in api_routes(app)
        if path.startswith("/api/") and not isinstance(route, Route)
    ]
    if others:
        raise RuntimeError("API routes without route_class=Route: " + ", ".join(others))
