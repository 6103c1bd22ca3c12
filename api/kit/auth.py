"""Who may call each endpoint: one rule per route, checked before the route runs.

Every API route declares its rule with `openapi_extra=access(Access.…)` (it also shows
in the OpenAPI document as `x-access`); `create_app` refuses to start when a route has
none, and the permission-matrix test walks the same route table. Finer rules that need a
row (a statement's organisation, the visibility of what is shown) are the services' job:
they are given the principal (`ViewerDep`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.accounts.principal import ANONYMOUS
from api.accounts.service import authenticate
from api.kit.deps import AuthSessionDep
from api.kit.errors import Forbidden, Unauthorized

ACCESS_KEY = "x-access"


class Access(StrEnum):
    """Who may call a route.

    public : anyone, without a token (health, territories; later unsubscribe and feeds).
    signed_in : any valid token (members see the network, not others' private data).
    organisation : the organisation named by the path's `organisation_id`: its members,
        the coordinator and admins (editing it, its suggestions, its dismissals).
    coordinator : the regional association's staff and admins.
    admin : admins only (accounts and tokens).
    """

    public = "public"
    signed_in = "signed_in"
    organisation = "organisation"
    coordinator = "coordinator"
    admin = "admin"


def access(rule: Access) -> dict[str, Any]:
    """`openapi_extra` of a route: its access rule."""
    return {ACCESS_KEY: rule.value}


def rule_of(route: APIRoute) -> Access | None:
    value = (route.openapi_extra or {}).get(ACCESS_KEY)
    return Access(value) if value else None


def check_every_route_has_a_rule(app: FastAPI) -> None:
    """Raise RuntimeError naming the API routes without an access rule."""
    missing = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and rule_of(route) is None
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
    session: AuthSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Authenticate the bearer token and apply the route's rule; the principal is left on
    `request.state.principal` for `ViewerDep`. Raises Unauthorized (401: no token, or one
    that does not authenticate; a token sent to a public route must authenticate too) or
    Forbidden (403)."""
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
    principal = authenticate(session, credentials.credentials)
    request.state.principal = principal
    if rule == Access.admin and not principal.is_admin:
        raise Forbidden("Réservé aux administrateurs.")
    if rule == Access.coordinator and not principal.sees_everything:
        raise Forbidden("Réservé à la coordination de l'association régionale.")
    if rule == Access.organisation:
        raw = request.path_params.get("organisation_id")
        if raw is None:  # a misdeclared route: never grant by omission
            raise Forbidden("Cette adresse n'a pas de règle d'accès.")
        try:
            organisation_id = int(raw)
        except ValueError:  # not an id: the route's own validation answers 422
            return
        if not principal.acts_for(organisation_id):
            raise Forbidden(f"Vous n'agissez pas pour l'organisation n° {organisation_id}.")
