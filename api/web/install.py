"""Plugging the web pages into the app: routers, CSRF middleware, HTML error pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from api.kit.errors import TITLES_FR
from api.kit.settings import Settings
from api.web import (
    call_pages,
    digest_pages,
    impact_pages,
    member_pages,
    onboarding_pages,
    partner_pages,
    profile_pages,
    review_pages,
    search_pages,
    sign_in_pages,
    team_pages,
)
from api.web.csrf import CsrfProtection
from api.web.paths import SIGN_IN, is_page
from api.web.render import render
from api.web.session import SignInRequired

ROUTERS = (
    sign_in_pages.router,
    onboarding_pages.router,
    member_pages.router,
    profile_pages.router,
    partner_pages.router,
    search_pages.router,
    call_pages.router,
    digest_pages.router,
    review_pages.router,
    team_pages.router,
    impact_pages.router,
)

# Pages whose forms send fields: a framework's field error names them in French.
FIELD_NAMES = {
    "q": "recherche",
    "territoire": "territoire",
    "email": "adresse électronique",
    "jeton": "jeton",
    "organisation_id": "numéro d'organisation dans l'adresse",
    "statement_id": "numéro d'énoncé dans l'adresse",
    "dismissed_id": "numéro de partenaire dans l'adresse",
    "call_id": "numéro d'appel dans l'adresse",
    "consortium_id": "numéro de consortium dans l'adresse",
    "subscription_id": "numéro d'abonnement dans l'adresse",
    "organisation": "organisation",
}


def _in_path(err: dict[str, Any]) -> bool:
    loc = err.get("loc") or []
    return bool(loc) and loc[0] == "path"


def error_page(
    request: Request,
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None,
    headers: dict[str, str] | None,
) -> Response | None:
    """An error on a page's path as a French page of the layout (never a stack trace, never
    problem+json); None for any other path."""
    if not is_page(request.url.path):
        return None
    if status == 401:  # a page's 401 is a sign-in to do, not a bearer token to send
        return RedirectResponse(SIGN_IN, status_code=303)
    if status == 422 and errors and all(_in_path(err) for err in errors):
        # A number in the address that no row can have (0, -1, 99999999999, « abc »):
        # the page does not exist, as for a number nobody has.
        status, errors = 404, None
        detail = "Cette adresse ne mène à aucune page : vérifiez le numéro qu'elle contient."
    messages = []
    for err in errors or []:
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "query", "path")]
        where = FIELD_NAMES.get(loc[0], loc[0]) if loc else ""
        messages.append(f"{where} : {err.get('msg', '')}" if where else str(err.get("msg", "")))
    response = render(
        request,
        "error.html",
        {"title": TITLES_FR.get(status, "Erreur"), "detail": detail, "messages": messages},
        status_code=status,
    )
    for name, value in (headers or {}).items():
        if name.lower() in ("retry-after", "allow"):
            response.headers[name] = value
    return response


def install_web(app: FastAPI, settings: Settings) -> None:
    """The pages' routers, their HTML errors and sign-in redirect, and CSRF protection
    (call before the body limit is added: it must stay outside, bounding what CSRF reads)."""
    app.state.error_page = error_page

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"{SIGN_IN}?{urlencode({'suite': exc.target})}", status_code=303)

    app.add_middleware(CsrfProtection, settings=settings)
    for router in ROUTERS:
        app.include_router(router)
