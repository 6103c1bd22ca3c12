"""Who may call each endpoint: one rule per route, checked before the route runs.

Every API route declares its rule with `openapi_extra=access(Access.…)` (it also shows
in the OpenAPI document as `x-access`); `create_app` refuses to start when a route has
none, and the permission-matrix test walks the same route table. Finer rules that need a
row (a statement's organisation, the visibility of what is shown) are the services' job:
they are given the principal (`ViewerDep`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.principal import ANONYMOUS
from api.accounts.service import authenticate, token_prefix
from api.kit.abuse import RateLimits
from api.kit.deps import ReaderDep
from api.kit.errors import Forbidden, Unauthorized
from models import Statement

ACCESS_KEY = "x-access"


class Access(StrEnum):
    """Who may call a route.

    public : anyone, without a token (health, territories; later unsubscribe and feeds).
    signed_in : any valid token (members see the network, not others' private data).
    organisation : the organisation the path names (`organisation_id`, or a row of it such
        as `statement_id`, see `OWNERS`): its members, the coordinator and admins (editing
        it, its statements, its suggestions, its dismissals).
    coordinator : the regional association's staff and admins.
    admin : admins only (accounts and tokens).
    """

    public = "public"
    signed_in = "signed_in"
    organisation = "organisation"
    coordinator = "coordinator"
    admin = "admin"


COSTLY_KEY = "x-costly"


def access(rule: Access, *, costly: bool = False) -> dict[str, Any]:
    """`openapi_extra` of a route: its access rule, and whether it is costly (searches and
    suggestions: rate-limited per token and per address)."""
    return {ACCESS_KEY: rule.value, **({COSTLY_KEY: True} if costly else {})}


def rule_of(route: APIRoute) -> Access | None:
    value = (route.openapi_extra or {}).get(ACCESS_KEY)
    return Access(value) if value else None


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Every API route of the app with its full path, included routers walked."""
    return [
        (context.path or "", context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def check_every_route_has_a_rule(app: FastAPI) -> None:
    """Raise RuntimeError naming the API routes without an access rule."""
    missing = [
        f"{sorted(route.methods or ())} {path}"
        for path, route in api_routes(app)
        if rule_of(route) is None
    ]
    if missing:
        raise RuntimeError("routes without an access rule: " + ", ".join(missing))


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="jeton",
    description="Jeton d'accès : `Authorization: Bearer mlg_…` "
    "(`maillage tokens create`, ou affiché par `maillage demo`).",
)


def authorise(
    request: Request,
    reader: ReaderDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Authenticate the bearer token and apply the route's rule; the principal is left on
    `request.state.principal` for `ViewerDep`. Raises Unauthorized (401: no token, or one
    that does not authenticate; a token sent to a public route must authenticate too) or
    Forbidden (403), TooManyRequests (429: too many failed tokens from this address or
    with this token prefix, or too many costly requests)."""
    route = request.scope.get("route")
    rule = rule_of(route) if isinstance(route, APIRoute) else Access.public
    if rule is None:  # create_app refuses such an app; never grant by omission
        raise Forbidden("Cette adresse n'a pas de règle d'accès.")
    if credentials is None:
        if request.headers.get("authorization"):
            raise Unauthorized("En-tête Authorization mal formé : « Bearer <jeton> » attendu.")
        if rule != Access.public:
            raise Unauthorized(
                "Cette adresse demande un jeton d'accès (en-tête « Authorization: Bearer … »)."
            )
        request.state.principal = ANONYMOUS
        return
    limits: RateLimits = request.app.state.rate_limits
    address = request.client.host if request.client else "inconnue"
    prefix = token_prefix(credentials.credentials)
    limits.check_authentication(address, prefix)
    # A short transaction of its own, ended before the route runs: the request's own (which
    # on SQLite takes the write lock at its first statement) must not begin before the
    # route has encoded its texts, and no connection is held while the request waits for
    # its next thread.
    with reader() as session:
        try:
            principal = authenticate(session, credentials.credentials)
        except Unauthorized:
            limits.authentication_failed(address, prefix)
            raise
        request.state.principal = principal
        if isinstance(route, APIRoute) and (route.openapi_extra or {}).get(COSTLY_KEY):
            limits.costly(address, str(principal.account_id))
        if rule == Access.admin and not principal.is_admin:
            raise Forbidden("Réservé aux administrateurs.")
        if rule == Access.coordinator and not principal.sees_everything:
            raise Forbidden("Réservé à la coordination de l'association régionale.")
        if rule == Access.organisation and not principal.sees_everything:
            organisation_id = _organisation_of(session, request.path_params)
            if organisation_id is not None and not principal.acts_for(organisation_id):
                raise Forbidden(f"Vous n'agissez pas pour l'organisation n° {organisation_id}.")


def _statement_owner(session: Session, statement_id: int) -> int | None:
    return session.scalar(select(Statement.organisation_id).where(Statement.id == statement_id))


# How a route of rule `organisation` names its organisation: directly, or through a row
# of that organisation (looked up here; an unknown row is the route's 404).
OWNERS: dict[str, Callable[[Session, int], int | None]] = {
    "organisation_id": lambda _session, organisation_id: organisation_id,
    "statement_id": _statement_owner,
}


def _organisation_of(session: Session, path_params: dict[str, Any]) -> int | None:
    """The organisation a route of rule `organisation` acts on, None when the path does
    not name an existing one (the route answers 404, or 422 for a malformed id). Raises
    Forbidden for a route whose path names no organisation (never grant by omission)."""
    for name, owner in OWNERS.items():
        if name in path_params:
            try:
                value = int(path_params[name])
            except ValueError:
                return None
            if not 1 <= value <= 2**31 - 1:
                return None
            return owner(session, value)
    raise Forbidden("Cette adresse n'a pas de règle d'accès.")
