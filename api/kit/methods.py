"""Which methods an address accepts: the `Allow` header of a 405, and the answer to an
OPTIONS request (RFC 9110 §9.3.7) when no CORS origin is configured.

Starlette's 405 names only the methods of the first route whose path matches, and it has
no OPTIONS answer at all (a CORS preflight got a 405); here every route of the address
counts.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

_TABLE_KEY = "method_table"


def _method_table(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every route, built once per app."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, _TABLE_KEY, None
    )
    if table is None:
        table = []
        for context in iter_route_contexts(app.routes):
            route: Any = context.original_route
            if isinstance(route, APIRoute | Route) and route.methods:
                regex, _, _ = compile_path(context.path or route.path)
                table.append((regex, frozenset(route.methods)))
        setattr(app.state, _TABLE_KEY, table)
    return table


def methods_at(app: FastAPI, path: str) -> list[str]:
    """The methods the routes at `path` answer, OPTIONS included, sorted; [] when no route
    has this path."""
    found: set[str] = set()
    for regex, methods in _method_table(app):
        if regex.match(path):
            found |= methods
    return sorted(found | {"OPTIONS"}) if found else []


def allowed_methods(connection: HTTPConnection) -> str:
    """The `Allow` header value for the request's address."""
    return ", ".join(methods_at(connection.app, connection.url.path))


class OptionsAnswer:
    """Pure ASGI middleware: OPTIONS on an address that has routes is answered 204 with
    `Allow`, before authentication (a preflight never carries credentials). A CORS
    preflight reaches it only when no origin is configured: the answer then has no
    `Access-Control-Allow-*` header, so the browser keeps the cross-origin call from
    happening. An address without routes gets the usual 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            methods = methods_at(scope["app"], scope.get("path", ""))
            if methods:
                response = Response(status_code=204, headers={"Allow": ", ".join(methods)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
