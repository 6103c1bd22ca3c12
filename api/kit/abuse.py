"""Abuse: rate limits (the `limits` package, moving windows in memory), security headers
on every response, CORS closed unless origins are configured."""

from __future__ import annotations

import math
import time

from fastapi import FastAPI
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.kit.errors import TooManyRequests, problem
from api.kit.settings import Settings


class RateLimits:
    """The limits of one server process. Raises TooManyRequests (429 with Retry-After)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.auth_failures = parse(settings.rate_auth_failures)
        self.costly_per_token = parse(settings.rate_costly_per_token)
        self.costly_per_address = parse(settings.rate_costly_per_address)

    def _refuse(self, item: RateLimitItem, *keys: str) -> TooManyRequests:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return TooManyRequests(
            f"Trop de requêtes : réessayez dans {wait} s.", headers={"Retry-After": str(wait)}
        )

    def check_authentication(self, address: str, prefix: str | None) -> None:
        """Before a token is checked: refuse an address (or a token prefix) that failed too
        often lately."""
        if not self.enabled:
            return
        for key in (f"address:{address}", f"prefix:{prefix}" if prefix else None):
            if key and not self._limiter.test(self.auth_failures, "auth-failure", key):
                raise self._refuse(self.auth_failures, "auth-failure", key)

    def authentication_failed(self, address: str, prefix: str | None) -> None:
        if not self.enabled:
            return
        self._limiter.hit(self.auth_failures, "auth-failure", f"address:{address}")
        if prefix:
            self._limiter.hit(self.auth_failures, "auth-failure", f"prefix:{prefix}")

    def costly(self, address: str, account: str) -> None:
        """A search or a suggestion: counted per token's account and per address."""
        if not self.enabled:
            return
        for item, key in (
            (self.costly_per_token, f"account:{account}"),
            (self.costly_per_address, f"address:{address}"),
        ):
            if not self._limiter.hit(item, "costly", key):
                raise self._refuse(item, "costly", key)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# The API answers data, never pages: nothing in it may load or frame anything. The
# interactive documentation (/docs, /redoc) is left without this policy.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Pure ASGI middleware: adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*SECURITY_HEADERS, API_CSP] if api else SECURITY_HEADERS
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Cors(CORSMiddleware):
    """Starlette's CORS, whose refused preflight is a French problem (not plain English)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = problem(
            400,
            "Appel d'une autre origine refusé : origine, méthode ou en-têtes non autorisés "
            "(réglage MAILLAGE_CORS_ORIGINS).",
            type_slug="cors-refused",
        )
        for name in ("vary",):
            if name in response.headers:
                refused.headers[name] = response.headers[name]
        return refused


def install_abuse_protection(app: FastAPI, settings: Settings) -> None:
    """Rate limits on `app.state.rate_limits`, security headers, and CORS when configured."""
    app.state.rate_limits = RateLimits(settings)
    if settings.cors_origins:
        app.add_middleware(
            Cors,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
