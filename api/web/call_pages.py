"""Calls for projects: the open calls that fit a member's organisation (countdown, why it
fits, « intéressé »), one call's page, and for the coordinator the organisations that fit a
call and the button that proposes consortia."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.calls import fit, interests, proposals
from api.calls import service as calls
from api.calls.fit_schemas import ConsortiumRequest, OrganisationCallOut
from api.calls.schemas import CallState
from api.consortia import service as consortia
from api.consortia.present import summary_out
from api.kit.abuse import RateLimits
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep, TodayDep
from api.kit.errors import Forbidden
from api.kit.routing import Route
from api.matching.engine import MatchingEngine
from api.organisations import service as organisations
from api.web.forms import RowId, Text, attempt, row_id
from api.web.render import field_errors, redirect, render
from api.web.session import Member

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)  # each page checks the session (`Member`) and who may see it
LISTED = 50  # calls on a page
RANKED = 20  # organisations shown for a call
REASONS = 3  # statement pairs shown for a call that fits


def require_acts_for(viewer: Principal, organisation_id: int) -> None:
    if not viewer.acts_for(organisation_id):
        raise Forbidden(
            "Seuls les membres de cette organisation et la coordination voient les appels "
            "qui lui correspondent."
        )


def require_coordinator(viewer: Principal, what: str) -> None:
    if not viewer.sees_everything:
        raise Forbidden(f"{what} est réservé à la coordination régionale.")


def _costly(request: Request, viewer: Principal) -> None:
    limits: RateLimits = request.app.state.rate_limits
    limits.costly(request.client.host if request.client else "inconnue", str(viewer.account_id))


def _reasons(session: Session, item: OrganisationCallOut) -> list[dict[str, Any]]:
    """Why a call fits: (requirement, our competency, similarity), the strongest first."""
    texts = {r.id: r.text for r in fit.get_call(session, item.call.id).requirements}
    pairs = [
        {
            "requirement": texts.get(c.requirement_id, ""),
            "statement": c.statement.text,
            "similarity": c.similarity,
            "covered": c.covered,
        }
        for c in item.coverage
        if c.statement is not None
    ]
    pairs.sort(key=lambda p: -float(str(p["similarity"])))
    return pairs[:REASONS]


@router.get("/espace/organisations/{organisation_id}/appels", openapi_extra=PAGE)
def organisation_calls_page(
    request: Request,
    viewer: Member,
    session: SessionDep,
    matching: MatchingDep,
    organisation_id: RowId,
) -> Response:
    """The open calls the organisation may answer, best fit first: countdown, the
    statement pairs that make the fit, « intéressé »."""
    require_acts_for(viewer, organisation_id)
    org = organisations.get_organisation(session, organisation_id)
    _costly(request, viewer)
    page = fit.organisation_calls(session, matching, organisation_id, LISTED)
    items = [
        {
            "item": item,
            "covered": sum(c.covered for c in item.coverage),
            "requirements": len(item.coverage),
            "reasons": _reasons(session, item),
        }
        for item in page.items
    ]
    has_competencies = any(s.kind.value == "competency" for s in org.statements)
    context = {
        "org": org,
        "items": items,
        "total": page.total,
        "has_competencies": has_competencies,
    }
    return render(request, "calls_fit.html", context)


@router.post("/espace/organisations/{organisation_id}/appels/{call_id}/interet", openapi_extra=PAGE)
def interest(
    viewer: Member,
    session: SessionDep,
    organisation_id: RowId,
    call_id: RowId,
    action: Text = "marquer",
    retour: Text = "liste",
) -> Response:
    """Mark or withdraw the organisation's interest in the call (the API's service)."""
    require_acts_for(viewer, organisation_id)
    if action == "retirer":
        interests.withdraw_interest(session, viewer, call_id, organisation_id)
        notice = "desinteresse"
    else:
        interests.mark_interest(session, viewer, call_id, organisation_id)
        notice = "interesse"
    if retour == "appel":
        return redirect(f"/espace/appels/{call_id}?organisation={organisation_id}&fait={notice}")
    return redirect(f"/espace/organisations/{organisation_id}/appels?fait={notice}#appel-{call_id}")


@router.get("/espace/appels", openapi_extra=PAGE)
def calls_page(request: Request, viewer: Member, session: SessionDep, today: TodayDep) -> Response:
    """Open calls, soonest deadline first (the API's listing); a member is pointed to the
    calls that fit its organisation."""
    page = calls.list_calls(session, viewer, today=today, status=CallState.open, limit=LISTED)
    mine = sorted(viewer.organisation_ids)
    context = {"calls": page.items, "total": page.total, "mine": mine}
    return render(request, "calls.html", context)


def _call_page(
    request: Request,
    session: Session,
    viewer: Principal,
    matching: MatchingEngine,
    today: date,
    call_id: int,
    *,
    organisation: str = "",
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    call = calls.detail(calls.get_call(session, viewer, call_id), today)
    context: dict[str, Any] = {
        "call": call,
        "form": form or {"min_size": "2", "max_size": "5", "alternatives": "3", "lead": ""},
        "errors": errors or {},
        "interests": [],
        "ranking": None,
        "consortia": [],
    }
    # The viewer's organisations: whether each marked the call, and who else did nearby.
    chosen = row_id(organisation)
    for organisation_id in sorted(viewer.organisation_ids):
        if chosen is not None and organisation_id != chosen:
            continue
        org = organisations.get_organisation(session, organisation_id)
        view = interests.list_interests(session, viewer, call_id, organisation_id)
        context["interests"].append({"org": org, "view": view})
    if viewer.sees_everything:
        _costly(request, viewer)
        context["ranking"] = fit.call_organisations(session, matching, call_id, RANKED, 0)
        listed = consortia.list_consortia(session, viewer, call_id=call_id, limit=20)
        context["consortia"] = [summary_out(session, c) for c in listed.items]
    return render(request, "call.html", context, status_code=status_code)


@router.get("/espace/appels/{call_id}", openapi_extra=PAGE)
def call_page(
    request: Request,
    viewer: Member,
    session: SessionDep,
    matching: MatchingDep,
    today: TodayDep,
    call_id: RowId,
    organisation: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """A call: description, requirements, perimeter, deadline; the viewer's interest; for
    the coordinator, the organisations that fit it and the consortia proposed."""
    return _call_page(request, session, viewer, matching, today, call_id, organisation=organisation)


SIZE_FIELDS = {"min_size": "min_size", "max_size": "max_size", "alternatives": "alternatives"}


def _proposal_request(form: dict[str, str]) -> tuple[ConsortiumRequest | None, dict[str, str]]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, bounds in (("min_size", (1, 50)), ("max_size", (1, 50)), ("alternatives", (1, 10))):
        raw = form[name].strip()
        if not raw.isdigit() or not bounds[0] <= int(raw) <= bounds[1]:
            errors[name] = f"Un nombre entier de {bounds[0]} à {bounds[1]}."
        else:
            values[name] = int(raw)
    if form["lead"].strip():
        lead = row_id(form["lead"])
        if lead is None:
            errors["lead"] = "Choisissez un chef de file dans la liste, ou aucun."
        else:
            values["lead"] = lead
    if errors:
        return None, errors
    try:
        return ConsortiumRequest.model_validate(values), {}
    except ValidationError as exc:
        return None, field_errors(exc)


@router.post("/espace/appels/{call_id}/consortiums", openapi_extra=PAGE)
def propose(
    request: Request,
    viewer: Member,
    session: SessionDep,
    matching: MatchingDep,
    today: TodayDep,
    call_id: RowId,
    min_size: Text = "2",
    max_size: Text = "5",
    alternatives: Text = "3",
    lead: Text = "",
) -> Response:
    """Compose and store consortia for the call (the API's composer); to the review."""
    require_coordinator(viewer, "Proposer des consortiums")
    form = {"min_size": min_size, "max_size": max_size, "alternatives": alternatives, "lead": lead}
    body, errors = _proposal_request(form)
    if body is None:
        return _call_page(
            request, session, viewer, matching, today, call_id,
            form=form, errors=errors, status_code=422,
        )  # fmt: skip
    _costly(request, viewer)
    proposed, refused = attempt(
        session, lambda: proposals.propose_consortia(session, matching, viewer, call_id, body)
    )
    if refused is not None or not proposed:
        message = refused.message if refused else "Aucun consortium n'a pu être composé."
        return _call_page(
            request, session, viewer, matching, today, call_id,
            form=form, errors={"formulaire": message},
            status_code=refused.status_code if refused else 409,
        )  # fmt: skip
    return redirect(f"/espace/consortiums?appel={call_id}&fait=proposes")
