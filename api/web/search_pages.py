"""Search: « qui sait faire … autour de … »."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.kit.abuse import RateLimits
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep
from api.kit.errors import InvalidInput, NotFound
from api.kit.routing import Route
from api.matching import service
from api.territories.typed import resolve_typed
from api.web.render import render
from api.web.session import Member

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)  # the page checks the session (`Member`)
MAX_QUERY = 2000
RESULTS = 20
# What `tel_quel` reads as "search the text as typed" (anything else: corrected).
AS_TYPED = frozenset({"1", "oui", "true", "on", "vrai"})
# The form's fields are read as text, whatever their length, and answered in French.
Field = Annotated[str, Query(max_length=100_000)]


@router.get("/espace/recherche", openapi_extra=PAGE)
def search_page(
    request: Request,
    viewer: Member,
    session: SessionDep,
    matching: MatchingDep,
    q: Field = "",
    territoire: Field = "",
    tel_quel: Field = "",
) -> Response:
    """Organisations whose competencies answer a French text, around a territory typed by
    name or code (the API's search service); `tel_quel=1` (or oui) searches the
    text without correcting its typing mistakes."""
    query = q.replace("\x00", " ").strip()
    place = territoire.replace("\x00", " ").strip()
    form = {"q": query, "territoire": place}
    errors: dict[str, str] = {}
    if not query and not place:
        return render(request, "search.html", {"form": form, "errors": errors, "page": None})
    if not query:
        errors["q"] = "Écrivez ce que vous cherchez, par exemple « jardins partagés »."
    elif len(query) > MAX_QUERY:
        errors["q"] = f"Recherche trop longue : {MAX_QUERY} caractères au plus."
    territory = None
    if place:
        try:
            territory = resolve_typed(session, place)
        except (InvalidInput, NotFound) as exc:
            errors["territoire"] = exc.message
    if errors:
        context = {"form": form, "errors": errors, "page": None}
        return render(request, "search.html", context, status_code=422)
    limits: RateLimits = request.app.state.rate_limits
    limits.costly(request.client.host if request.client else "inconnue", str(viewer.account_id))
    try:
        page = service.search(
            session,
            matching,
            query,
            territory.ref if territory else None,
            RESULTS,
            as_typed=tel_quel.strip().lower() in AS_TYPED,
        )
    except InvalidInput as exc:
        context = {"form": form, "errors": {"q": exc.message}, "page": None}
        return render(request, "search.html", context, status_code=422)
    as_typed_url = "/espace/recherche?" + urlencode({**form, "tel_quel": "1"})
    return render(
        request,
        "search.html",
        {"form": form, "errors": errors, "page": page, "as_typed_url": as_typed_url},
    )
