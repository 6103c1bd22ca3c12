"""Suggested partners of an organisation, in three views, and dismissing one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.abuse import RateLimits
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep
from api.kit.errors import Forbidden, InvalidInput
from api.kit.routing import Route
from api.matching import service
from api.matching.engine import MatchingEngine
from api.matching.schemas import DismissalIn, PartnerMode, PartnerSuggestionOut, Within
from api.organisations import service as organisations
from api.web.forms import Text
from api.web.render import field_errors, redirect, render
from api.web.session import Member

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)  # the page checks the session (`Member`) and the organisation
OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
SHOWN = 10

# The three views: who answers my needs, whose needs I answer (both from the complementary
# mode, each with its side of the reasons), and peers who share my needs and competencies.
VIEWS = {
    "besoins": "Ils répondent à nos besoins",
    "offre": "Nous répondons à leurs besoins",
    "pairs": "Ils ont les mêmes besoins ou compétences",
}
WITHIN_LABELS = {
    "any": "Partout",
    "region": "Même région",
    "departement": "Même département",
    "epci": "Même intercommunalité",
    "commune": "Même commune",
}


def _require_acts_for(viewer: Principal, organisation_id: int) -> None:
    if not viewer.acts_for(organisation_id):
        raise Forbidden(
            "Seuls les membres de cette organisation et la coordination voient ses "
            "partenaires suggérés."
        )


def _suggestions(
    session: Session, matching: MatchingEngine, organisation_id: int, view: str, within: Within
) -> list[PartnerSuggestionOut]:
    if view == "pairs":
        return service.partners(
            session, matching, organisation_id, PartnerMode.peer, within, SHOWN
        ).items
    if view == "offre":
        # Ranked by what we answer of their needs: a wider page of the complementary mode.
        page = service.partners(
            session, matching, organisation_id, PartnerMode.complementary, within, SHOWN * 3
        )
        answered = [s for s in page.items if s.needs_i_answer]
        answered.sort(key=lambda s: -s.scores.get("i_cover_them", 0.0))
        return answered[:SHOWN]
    return service.partners(
        session, matching, organisation_id, PartnerMode.complementary, within, SHOWN
    ).items


@router.get("/espace/organisations/{organisation_id}/partenaires", openapi_extra=PAGE)
def partners_page(
    request: Request,
    viewer: Member,
    session: SessionDep,
    matching: MatchingDep,
    organisation_id: OrganisationId,
    vue: Annotated[str, Query(max_length=40)] = "besoins",
    perimetre: Annotated[str, Query(max_length=40)] = "any",
) -> Response:
    """Suggested partners with their reasons (statement pairs) and shared territory."""
    _require_acts_for(viewer, organisation_id)
    view = vue if vue in VIEWS else "besoins"
    within = Within(perimetre) if perimetre in WITHIN_LABELS else Within.any
    org = organisations.get_organisation(session, organisation_id)
    limits: RateLimits = request.app.state.rate_limits
    limits.costly(request.client.host if request.client else "inconnue", str(viewer.account_id))
    context = {
        "org": org,
        "view": view,
        "views": VIEWS,
        "within": within.value,
        "within_labels": WITHIN_LABELS,
        "suggestions": _suggestions(session, matching, organisation_id, view, within),
        "dismissed": service.list_dismissals(session, organisation_id),
        "has_needs": any(s.kind.value == "need" for s in org.statements),
        "has_competencies": any(s.kind.value == "competency" for s in org.statements),
    }
    return render(request, "partners.html", context)


def _back(organisation_id: int, view: str, notice: str) -> str:
    view = view if view in VIEWS else "besoins"
    return f"/espace/organisations/{organisation_id}/partenaires?vue={view}&fait={notice}"


@router.post("/espace/organisations/{organisation_id}/partenaires/ecarter", openapi_extra=PAGE)
def dismiss_partner(
    viewer: Member,
    session: SessionDep,
    organisation_id: OrganisationId,
    partenaire: Text = "",
    raison: Text = "",
    vue: Text = "besoins",
) -> Response:
    """Dismiss a suggested partner, with a reason kept for the coordinator."""
    _require_acts_for(viewer, organisation_id)
    if not partenaire.isdigit() or len(partenaire) > 10:
        raise InvalidInput("Partenaire non reconnu : rechargez la page des suggestions.")
    try:
        data = DismissalIn.model_validate(
            {"organisation_id": int(partenaire), "reason": raison.strip() or None}
        )
    except ValidationError as exc:
        errors = field_errors(exc)
        raise InvalidInput(
            errors.get("reason", "Partenaire non reconnu : rechargez la page des suggestions."),
        ) from exc
    service.dismiss(session, organisation_id, data.organisation_id, data.reason)
    return redirect(_back(organisation_id, vue, "ecarte"))


@router.post(
    "/espace/organisations/{organisation_id}/partenaires/{dismissed_id}/retablir",
    openapi_extra=PAGE,
)
def undo_dismissal(
    viewer: Member,
    session: SessionDep,
    organisation_id: OrganisationId,
    dismissed_id: OrganisationId,
    vue: Text = "besoins",
) -> Response:
    """Let a dismissed partner be suggested again."""
    _require_acts_for(viewer, organisation_id)
    service.undo_dismissal(session, organisation_id, dismissed_id)
    return redirect(_back(organisation_id, vue, "retabli"))
