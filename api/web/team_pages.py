"""The coordinator changes a consortium's members and lead: each organisation's
eligibility is checked by the server on sending (the API's service), and a refusal is said
next to the field with its reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.consortia import service
from api.consortia.fit import CallFit, get_call_fit
from api.consortia.schemas import ConsortiumChange
from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.routing import Route
from api.organisations import service as organisations
from api.web.call_pages import require_coordinator
from api.web.forms import RowId, Text, attempt, row_id
from api.web.render import field_errors, redirect
from api.web.review_pages import STALE_FORM, consortium_url, detail_page
from api.web.session import Member

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)
CallFitDep = Annotated[CallFit, Depends(get_call_fit)]
Ids = Annotated[list[str], Form(max_length=40)]


def find_organisation(
    session: Session, viewer: Principal, raw: str
) -> tuple[int | None, str | None]:
    """The organisation a form names by number or by name: (its id, None), or (None, why
    not, in French)."""
    text = " ".join(raw.replace("\x00", " ").split())
    if not text:
        return None, None
    number = row_id(text.removeprefix("n°").strip())
    if number is not None:
        return number, None
    if len(text) > 200:
        return None, "Nom trop long : 200 caractères au plus."
    found = organisations.list_organisations(session, viewer, q=text, limit=6).items
    exact = [o for o in found if o.name.casefold() == text.casefold()]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0].id, None
    if not found:
        return None, f"Aucune organisation ne s'appelle « {text} » : vérifiez son nom."
    names = ", ".join(f"{o.name} (n° {o.id})" for o in found[:5])
    return None, f"Plusieurs organisations correspondent à « {text} » : {names}. Précisez."


@router.post("/espace/consortiums/{consortium_id}/membres", openapi_extra=PAGE)
def change_members(
    request: Request,
    viewer: Member,
    session: SessionDep,
    fit: CallFitDep,
    consortium_id: RowId,
    version: Text = "",
    membre: Ids = [],  # noqa: B006 — FastAPI copies a default list per request
    ajout: Text = "",
    chef: Text = "",
) -> Response:
    """Change the members and the lead; an ineligible organisation is refused with its
    reason next to the field that named it."""
    require_coordinator(viewer, "La composition des consortiums")
    form = {"ajout": ajout, "chef": chef, "membres": ",".join(membre)}
    errors: dict[str, str] = {}
    number = row_id(version)
    if number is None:
        errors["equipe"] = STALE_FORM
    kept = [i for i in (row_id(m) for m in membre) if i is not None]
    added, why = find_organisation(session, viewer, ajout)
    if why:
        errors["ajout"] = why
    lead = row_id(chef) if chef else None
    if chef and lead is None:
        errors["chef"] = "Choisissez le chef de file dans la liste."
    members = list(dict.fromkeys([*kept, *([added] if added else [])]))
    if lead is not None and lead not in members:
        errors["chef"] = "Le chef de file doit rester membre du consortium : cochez-le."
    change: ConsortiumChange | None = None
    if not errors:
        try:
            change = ConsortiumChange.model_validate(
                {"version": number, "member_ids": members, **({"lead_id": lead} if lead else {})}
            )
        except ValidationError as exc:
            found = field_errors(exc)
            message = found.get("member_ids") or next(iter(found.values()))
            if "member_ids" in found:
                message = "Un consortium réunit de 2 à 20 organisations : cochez-en au moins 2."
            errors["membres"] = message
    if change is None:
        return detail_page(
            request, session, viewer, consortium_id, form=form, errors=errors, status_code=422
        )
    checked = change
    _, refused = attempt(
        session,
        lambda: service.change_consortium(session, consortium_id, checked, viewer, fit=fit),
    )
    if refused is not None:
        errors = {}
        for err in refused.errors or []:
            loc = err.get("loc", [])
            position = loc[-1] if len(loc) == 3 and isinstance(loc[-1], int) else None
            who = members[position] if position is not None and position < len(members) else None
            key = "ajout" if who is not None and who == added else "membres"
            errors[key] = f"{errors[key]} {err['msg']}" if key in errors else str(err["msg"])
        if not errors:
            errors["chef" if "chef de file" in refused.message else "equipe"] = refused.message
        return detail_page(
            request, session, viewer, consortium_id,
            form=form, errors=errors, status_code=refused.status_code,
        )  # fmt: skip
    return redirect(f"{consortium_url(consortium_id)}?fait=membres")
