"""Public pages of a digest's links: one-click unsubscribe and « pas pertinent »."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.digest import actions
from api.digest.links import DISMISS, UNSUBSCRIBE, LinkError
from api.kit.auth import Access, access
from api.kit.deps import SessionDep, SettingsDep
from api.kit.pages import page
from api.kit.routing import Route

router = APIRouter(route_class=Route, tags=["digest"])

# Pages check their token themselves: a mangled link gets a French page, not a problem.
Token = Annotated[str, Query(description="The signed token of the link.")]
PUBLIC = access(Access.public)


def _invalid(request: Request, exc: LinkError) -> HTMLResponse:
    return page(request, "Lien non valide", error=exc.message, status_code=400)


@router.get(
    "/subscriptions/unsubscribe",
    response_class=HTMLResponse,
    include_in_schema=False,
    openapi_extra=PUBLIC,
)
def unsubscribe_page(
    request: Request, session: SessionDep, settings: SettingsDep, token: Token = ""
) -> HTMLResponse:
    """The unsubscribe link opened in a browser: a page with the button (a GET changes
    nothing, so that link scanners cannot unsubscribe anyone)."""
    try:
        done = actions.peek(session, settings, UNSUBSCRIBE, token)
    except LinkError as exc:
        return _invalid(request, exc)
    return page(
        request,
        "Se désabonner",
        f"L'adresse {done.email} ne recevra plus le digest de Maillage pour {done.organisation}.",
        action=f"/subscriptions/unsubscribe?token={token}",
        button="Me désabonner",
    )


@router.post(
    "/subscriptions/unsubscribe",
    response_class=HTMLResponse,
    include_in_schema=False,
    openapi_extra=PUBLIC,
)
def unsubscribe(
    request: Request, session: SessionDep, settings: SettingsDep, token: Token = ""
) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058): mail clients POST `List-Unsubscribe=One-Click` to
    the `List-Unsubscribe` URL, whose query carries the token; the page's button does the
    same. Idempotent."""
    try:
        done = actions.unsubscribe(session, settings, token)
    except LinkError as exc:
        return _invalid(request, exc)
    return page(
        request,
        "Désabonnement effectué",
        f"L'adresse {done.email} ne recevra plus le digest de Maillage pour {done.organisation}.",
        "Un membre de votre organisation peut vous réabonner depuis les réglages du digest.",
    )


@router.get(
    "/digests/dismiss", response_class=HTMLResponse, include_in_schema=False, openapi_extra=PUBLIC
)
def dismiss_page(
    request: Request, session: SessionDep, settings: SettingsDep, token: Token = ""
) -> HTMLResponse:
    try:
        done = actions.peek(session, settings, DISMISS, token)
    except LinkError as exc:
        return _invalid(request, exc)
    return page(
        request,
        "Appel pas pertinent",
        f"« {done.call_title} » ne figurera plus dans les digests de {done.organisation}.",
        action=f"/digests/dismiss?token={token}",
        button="Confirmer : pas pertinent",
    )


@router.post(
    "/digests/dismiss", response_class=HTMLResponse, include_in_schema=False, openapi_extra=PUBLIC
)
def dismiss(
    request: Request, session: SessionDep, settings: SettingsDep, token: Token = ""
) -> HTMLResponse:
    try:
        done = actions.dismiss_call(session, settings, token)
    except LinkError as exc:
        return _invalid(request, exc)
    return page(
        request,
        "C'est noté",
        f"« {done.call_title} » ne figurera plus dans les digests de {done.organisation}.",
    )
