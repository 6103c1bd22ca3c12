"""A member's pages: home, the organisation's profile, its competencies and needs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.accounts.principal import Principal
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, ReaderDep, SessionDep
from api.kit.errors import Forbidden
from api.kit.routing import Route
from api.organisations import service, views
from api.organisations.schemas import OrganisationOut, StatementIn, StatementPatch
from api.web.forms import Text
from api.web.render import field_errors, redirect, render
from api.web.session import Member
from models.enums import StatementKind

router = APIRouter(route_class=Route, include_in_schema=False)
# Who may open a page is checked by the page itself (the signed-in person's session), as
# the services check what that person may see and change.
PAGE = access(Access.public)

OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
StatementId = Annotated[int, Path(ge=1, le=2**31 - 1)]

# Examples shown beside the statement form: what a good statement says.
EXAMPLES = {
    StatementKind.competency: [
        "Nous animons des jardins partagés au pied des immeubles avec les locataires.",
        "Nous accompagnons les ménages en impayés de loyer avant le contentieux.",
    ],
    StatementKind.need: [
        "Nous cherchons un partenaire pour organiser des chantiers d'insertion dans nos "
        "résidences de Marseille.",
        "Nous voulons lutter contre l'isolement des locataires âgés de nos petites communes.",
    ],
}


def organisation_url(organisation_id: int) -> str:
    return f"/espace/organisations/{organisation_id}"


@router.get("/espace", openapi_extra=PAGE)
def home(
    request: Request,
    viewer: Member,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """A member of one organisation goes to it; others choose (the coordinator among all)."""
    if not viewer.sees_everything:
        ids = sorted(viewer.organisation_ids)
        if len(ids) == 1:
            return redirect(organisation_url(ids[0]))
        orgs = [views.summary(service.get_organisation(session, i)) for i in ids]
        return render(request, "home.html", {"organisations": orgs, "q": "", "total": len(orgs)})
    words = " ".join(q.replace("\x00", "").split())
    page = service.list_organisations(session, viewer, q=words or None, limit=50)
    context = {"organisations": page.items, "q": words, "total": page.total}
    return render(request, "home.html", context)


def _profile(
    request: Request,
    session: Any,
    viewer: Principal,
    organisation_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    org: OrganisationOut = views.detail(service.get_organisation(session, organisation_id), viewer)
    context = {
        "org": org,
        "competencies": [s for s in org.statements if s.kind == StatementKind.competency],
        "needs": [s for s in org.statements if s.kind == StatementKind.need],
        "editable": viewer.acts_for(org.id),
        "form": form or {"kind": "need", "text": "", "visibility": "network"},
        "errors": errors or {},
        "examples": EXAMPLES,
    }
    return render(request, "organisation.html", context, status_code=status_code)


@router.get("/espace/organisations/{organisation_id}", openapi_extra=PAGE)
def organisation_page(
    request: Request, viewer: Member, session: SessionDep, organisation_id: OrganisationId
) -> Response:
    """The organisation's profile: territories, competencies and needs (and, for its
    members, the forms that change them)."""
    return _profile(request, session, viewer, organisation_id)


def _statement_data(kind: str, text: str, visibility: str) -> dict[str, Any]:
    return {"kind": kind, "text": text, "visibility": visibility}


@router.post("/espace/organisations/{organisation_id}/enonces", openapi_extra=PAGE)
def add_statement(
    request: Request,
    viewer: Member,
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    organisation_id: OrganisationId,
    kind: Text = "",
    text: Text = "",
    visibility: Text = "network",
) -> Response:
    """Add a competency or a need (the API's service: embedded at once)."""
    form = {"kind": kind, "text": text, "visibility": visibility}
    try:
        data = StatementIn.model_validate(_statement_data(kind, text, visibility))
    except ValidationError as exc:
        errors = _french_fields(field_errors(exc))
        return _profile(
            request, session, viewer, organisation_id, form=form, errors=errors, status_code=422
        )
    statement = service.create_statement(session, reader, matching, viewer, organisation_id, data)
    return redirect(f"{organisation_url(organisation_id)}?fait=ajoute#enonce-{statement.id}")


def _french_fields(errors: dict[str, str]) -> dict[str, str]:
    """Messages for the fields a person sees: the kind and visibility are choices."""
    if "kind" in errors:
        errors["kind"] = "Choisissez « compétence » ou « besoin »."
    if "visibility" in errors:
        errors["visibility"] = "Choisissez qui peut voir cet énoncé."
    if "text" in errors and "caractère" not in errors["text"]:
        errors["text"] = (
            "Décrivez en quelques mots (3 caractères au moins, 2 000 au plus) "
            "ce que vous savez faire ou ce que vous cherchez."
        )
    return errors


def _edit_page(
    request: Request,
    session: Any,
    viewer: Principal,
    statement_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    statement = service.get_statement(session, viewer, statement_id)
    if not viewer.acts_for(statement.organisation_id):
        raise Forbidden("Seuls les membres de l'organisation peuvent modifier cet énoncé.")
    org = service.get_organisation(session, statement.organisation_id)
    current = {
        "kind": statement.kind.value,
        "text": statement.text,
        "visibility": statement.visibility.value,
    }
    context = {
        "statement": statement,
        "org": org,
        "form": form or current,
        "errors": errors or {},
        "examples": EXAMPLES,
    }
    return render(request, "statement_edit.html", context, status_code=status_code)


@router.get("/espace/enonces/{statement_id}", openapi_extra=PAGE)
def edit_statement_page(
    request: Request, viewer: Member, session: SessionDep, statement_id: StatementId
) -> Response:
    """The form that changes one statement, and the button that deletes it."""
    return _edit_page(request, session, viewer, statement_id)


@router.post("/espace/enonces/{statement_id}", openapi_extra=PAGE)
def edit_statement(
    request: Request,
    viewer: Member,
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    statement_id: StatementId,
    kind: Text = "",
    text: Text = "",
    visibility: Text = "",
) -> Response:
    form = {"kind": kind, "text": text, "visibility": visibility}
    try:
        data = StatementPatch.model_validate(_statement_data(kind, text, visibility))
    except ValidationError as exc:
        errors = _french_fields(field_errors(exc))
        return _edit_page(
            request, session, viewer, statement_id, form=form, errors=errors, status_code=422
        )
    statement = service.update_statement(session, reader, matching, viewer, statement_id, data)
    url = organisation_url(statement.organisation_id)
    return redirect(f"{url}?fait=modifie#enonce-{statement.id}")


@router.post("/espace/enonces/{statement_id}/suppression", openapi_extra=PAGE)
def delete_statement(
    viewer: Member,
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    statement_id: StatementId,
) -> Response:
    """Delete a statement; back to the profile."""
    # Read apart: the request's own transaction begins after the profile is re-encoded.
    with reader() as read:
        organisation_id = service.get_statement(read, viewer, statement_id).organisation_id
    service.delete_statement(session, reader, matching, viewer, statement_id)
    return redirect(f"{organisation_url(organisation_id)}?fait=supprime")
