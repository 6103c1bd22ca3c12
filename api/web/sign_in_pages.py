"""Signing in and out: a link by e-mail, or an API token pasted in a form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import Response

from api.accounts import sign_in
from api.accounts.service import token_prefix
from api.kit.abuse import RateLimits
from api.kit.auth import Access, access
from api.kit.deps import MailerDep, SessionDep, SettingsDep
from api.kit.errors import Unauthorized
from api.kit.routing import Route
from api.web.forms import Text
from api.web.paths import HOME, local_target
from api.web.render import redirect, render
from api.web.session import PageViewer, close_session, open_session

router = APIRouter(route_class=Route, include_in_schema=False)
PUBLIC = access(Access.public)

# Form fields arrive as text and are checked here: a missing or odd field is a French
# message next to it, never the API's 422.
MAX_EMAIL = 254


def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def _address(request: Request) -> str:
    return request.client.host if request.client else "inconnue"


def _email_error(email: str) -> str | None:
    if not email:
        return "Écrivez l'adresse électronique de votre compte."
    if len(email) > MAX_EMAIL or " " in email or email.count("@") != 1:
        return "Cette adresse électronique n'est pas valide (exemple : prenom.nom@organisme.fr)."
    local, _, domain = email.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return "Cette adresse électronique n'est pas valide (exemple : prenom.nom@organisme.fr)."
    return None


@router.get("/connexion", openapi_extra=PUBLIC)
def sign_in_form(
    request: Request,
    viewer: PageViewer,
    suite: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The sign-in page: an e-mail address to receive a link."""
    if viewer is not None:
        return redirect(local_target(suite))
    return render(request, "sign_in.html", {"email": "", "errors": {}, "suite": suite or ""})


@router.post("/connexion", openapi_extra=PUBLIC)
def send_sign_in_link(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    email: Text = "",
) -> Response:
    """Send a sign-in link to the address if it is an account's; the page says the same
    either way (it does not tell who has an account)."""
    email = email.strip()
    error = _email_error(email)
    if error is not None:
        context = {"email": email, "errors": {"email": error}, "suite": ""}
        return render(request, "sign_in.html", context, status_code=422)
    _limits(request).costly(_address(request), f"sign-in:{email.lower()}")
    account = sign_in.find_person(session, email)
    if account is not None:
        link = sign_in.issue_link(session, settings, account)
        background.add_task(sign_in.send_link, settings, mailer, link)
    return render(request, "link_sent.html", {"email": email, "minutes": sign_in.LINK_MINUTES})


@router.get("/connexion/lien", openapi_extra=PUBLIC)
def sign_in_link_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    jeton: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """The link of the e-mail: a page with the button that signs in (opening the link
    changes nothing, so that a mail scanner following it does not use it up)."""
    try:
        account = sign_in.peek_link(session, settings, jeton)
    except sign_in.LinkRefused as exc:
        context = {"email": "", "errors": {}, "suite": "", "link_error": exc.message}
        return render(request, "sign_in.html", context, status_code=400)
    return render(request, "link.html", {"account": account, "jeton": jeton})


@router.post("/connexion/lien", openapi_extra=PUBLIC)
def sign_in_with_link(
    request: Request, session: SessionDep, settings: SettingsDep, jeton: Text = ""
) -> Response:
    """Use the link: the session cookie is set and the person lands on their home page."""
    try:
        principal = sign_in.use_link(session, settings, jeton)
    except sign_in.LinkRefused as exc:
        context = {"email": "", "errors": {}, "suite": "", "link_error": exc.message}
        return render(request, "sign_in.html", context, status_code=400)
    response = redirect(HOME)
    open_session(response, request, settings, principal)
    return response


@router.get("/connexion/jeton", openapi_extra=PUBLIC)
def token_form(
    request: Request,
    viewer: PageViewer,
    suite: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Sign in with an API token (machines' accounts, administrators)."""
    if viewer is not None:
        return redirect(local_target(suite))
    return render(request, "sign_in_token.html", {"errors": {}, "suite": suite or ""})


@router.post("/connexion/jeton", openapi_extra=PUBLIC)
def sign_in_with_token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    jeton: Text = "",
    suite: Text = "",
) -> Response:
    raw = jeton.strip()
    if not raw:
        error = "Collez votre jeton d'accès (il commence par « mlg_ »)."
        context = {"errors": {"jeton": error}, "suite": suite}
        return render(request, "sign_in_token.html", context, status_code=422)
    limits, address = _limits(request), _address(request)
    prefix = token_prefix(raw)
    limits.check_authentication(address, prefix)
    try:
        principal, token_id = sign_in.sign_in_with_token(session, raw)
    except Unauthorized as exc:
        limits.authentication_failed(address, prefix)
        context = {"errors": {"jeton": exc.message}, "suite": suite}
        return render(request, "sign_in_token.html", context, status_code=401)
    response = redirect(local_target(suite))
    open_session(response, request, settings, principal, token_id)
    return response


@router.post("/deconnexion", openapi_extra=PUBLIC)
def sign_out(request: Request, settings: SettingsDep) -> Response:
    """End the session: the cookie is removed."""
    response = redirect("/connexion?fait=deconnecte")
    close_session(response, request, settings)
    return response
