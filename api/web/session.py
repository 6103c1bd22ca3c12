"""The web session: a signed cookie naming the account (and the token it was opened with).

The cookie holds `{"a": account id, "t": token id or null}` signed with the deployment's
key (`api.kit.signing`, purpose `web-session`), valid `MAX_AGE` seconds; it is HttpOnly,
SameSite=Lax, and Secure when the site is served over https. Each page request checks the
account is still active (and the token neither revoked nor expired) in a short read-only
transaction of its own, as the API's bearer check does (`api.kit.auth.authorise`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from api.accounts.principal import Principal
from api.accounts.sign_in import session_principal
from api.kit.deps import ReaderDep
from api.kit.settings import Settings
from api.kit.signing import InvalidToken, Signer
from api.web.paths import HOME

COOKIE = "maillage_session"
PURPOSE = "web-session"
MAX_AGE = 14 * 24 * 3600  # seconds a session lasts without signing in again


class SignInRequired(Exception):
    """A page that needs a signed-in person: the handler sends to the sign-in page, then
    back to `target`."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def is_secure(request: Request, settings: Settings) -> bool:
    """Served over https (the request's scheme, or the configured public address)."""
    return request.url.scheme == "https" or settings.base_url.startswith("https://")


def open_session(
    response: Response,
    request: Request,
    settings: Settings,
    principal: Principal,
    token_id: int | None = None,
) -> None:
    """Set the session cookie on `response` for the principal's account."""
    value = Signer(settings, PURPOSE).sign({"a": principal.account_id, "t": token_id})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request, settings),
    )


def close_session(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=is_secure(request, settings)
    )


def read_cookie(request: Request, settings: Settings) -> tuple[int, int | None] | None:
    """(account id, token id) of a valid session cookie, None without one."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 1000:
        return None
    try:
        payload = Signer(settings, PURPOSE).read(raw, max_age_seconds=MAX_AGE)
    except InvalidToken:
        return None
    account_id, token_id = payload.get("a"), payload.get("t")
    if not isinstance(account_id, int) or not (token_id is None or isinstance(token_id, int)):
        return None
    return account_id, token_id


def get_page_viewer(request: Request, reader: ReaderDep) -> Principal | None:
    """The signed-in person of a page request, None when nobody is. Left on
    `request.state.principal` for the audit trail (`api.kit.deps.get_session`) and on
    `request.state.web_viewer` for the layout."""
    settings: Settings = request.app.state.settings
    found = read_cookie(request, settings)
    principal = None
    if found is not None:
        with reader() as session:
            principal = session_principal(session, *found)
    request.state.web_viewer = principal
    if principal is not None:
        request.state.principal = principal
    return principal


PageViewer = Annotated[Principal | None, Depends(get_page_viewer)]


def require_viewer(request: Request, viewer: PageViewer) -> Principal:
    """The signed-in person. Raises SignInRequired (a redirect to the sign-in page)."""
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else HOME)
    return viewer


# Declare it before SessionDep in a route: the audit trail reads the principal when the
# request's session opens.
Member = Annotated[Principal, Depends(require_viewer)]
