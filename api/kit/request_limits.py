"""Request size limits: a body over its route's limit is refused with a 413 problem before
it is read whole; request lines and headers over MAILLAGE_MAX_HEADER_BYTES are refused by
the HTTP server (`server_limits`) before the application sees them.

Starlette's own `RequestBodyLimitMiddleware` answers in plain English text and replaces
any response, ours included, with it once the announced length is over the limit; this
one answers the application's problem+json in French, and keeps a larger limit for
imports (files) than for JSON bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.kit.errors import problem
from api.kit.settings import Settings

IMPORTS_PREFIX = "/api/v1/imports/"


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body passes its limit. An HTTP exception, so
    FastAPI's body reading lets it through to the 413 handler (any other exception there
    becomes a 400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


@dataclass(frozen=True)
class Limit:
    bytes: int
    message: str


def limit_for(settings: Settings, path: str) -> Limit:
    """The body limit of a path, read from the settings at each request (tests change them
    on a running app), with its French message."""
    if path.startswith(IMPORTS_PREFIX):
        size = settings.import_max_bytes
        return Limit(
            size,
            f"Fichier trop volumineux : {size // 1024} Kio au plus (réglage "
            "MAILLAGE_IMPORT_MAX_BYTES). Découpez-le en plusieurs fichiers.",
        )
    size = settings.max_body_bytes
    return Limit(
        size,
        f"Corps de requête trop volumineux : {size // 1024} Kio au plus (réglage "
        "MAILLAGE_MAX_BODY_BYTES).",
    )


def server_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn options bounding what a request may hold before the application: h11 (the
    parser whose limit is a setting) keeps at most MAILLAGE_MAX_HEADER_BYTES of request
    line and headers, and answers a larger request 400 and closes the connection. Above
    h11's default 16 KiB, an over-long query still reaches the API, which answers a French
    problem."""
    return {"http": "h11", "h11_max_incomplete_event_size": settings.max_header_bytes}


def _announced_length(scope: Scope) -> int | None:
    raw = Headers(scope=scope).get("content-length", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


class BodyLimit:
    """Pure ASGI middleware. A request whose Content-Length is over the limit is answered
    413 at once, its body never read; a body without one (chunked) is counted as its chunks
    arrive, and the request fails with 413 as soon as the count passes the limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = limit_for(self.settings, path)
        announced = _announced_length(scope)
        if announced is not None and announced > limit.bytes:
            response = problem(
                413,
                limit.message,
                type_slug="payload-too-large",
                instance=path,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return

        received = 0
        tripped = False
        replaced = False

        async def counting_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.bytes:
                    tripped = True
                    raise BodyTooLarge(limit.message)
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the application made of the exception (a dependency may have caught
            # it), the answer is the 413.
            nonlocal replaced
            if replaced:
                return
            if (
                tripped
                and message["type"] == "http.response.start"
                and message.get("status") != 413
            ):
                replaced = True
                response = problem(
                    413,
                    limit.message,
                    type_slug="payload-too-large",
                    instance=path,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
