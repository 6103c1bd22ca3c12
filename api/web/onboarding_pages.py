"""A new organisation's profile, in a guided form: name, kind, legal form, SIREN,
description, territories picked by name (resolved on the server; a small local script
suggests names from /api/v1/territories as one types), and first statements with examples.
Who may create an organisation follows the API: the coordinator (and admins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, ReaderDep, SessionDep
from api.kit.errors import Forbidden, InvalidInput, NotFound
from api.kit.routing import Route
from api.organisations import service
from api.organisations.schemas import OrganisationIn
from api.territories.typed import resolve_typed
from api.web.forms import Text, attempt
from api.web.member_pages import EXAMPLES, organisation_url
from api.web.render import field_errors, redirect, render
from api.web.session import Member
from models.enums import HlmLegalForm, OrganisationKind

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)
PLACES = 5  # territory fields of the form
STATEMENTS = 2  # competency and need fields of each kind
Many = Annotated[list[str], Form(max_length=10)]
LEGAL_FORMS = [f.value for f in HlmLegalForm] + ["Association loi 1901", "Collectivité", "SCIC"]


def require_creator(viewer: Principal) -> None:
    if not viewer.sees_everything:
        raise Forbidden(
            "Seule la coordination régionale inscrit une nouvelle organisation : "
            "écrivez-lui pour que la vôtre rejoigne le réseau."
        )


def _blank_form() -> dict[str, Any]:
    return {
        "name": "",
        "kind": "",
        "legal_form": "",
        "siren": "",
        "website": "",
        "description": "",
        "territoire": [""] * PLACES,
        "competence": [""] * STATEMENTS,
        "besoin": [""] * STATEMENTS,
    }


def _page(
    request: Request,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "form": form or _blank_form(),
        "errors": errors or {},
        "examples": EXAMPLES,
        "legal_forms": LEGAL_FORMS,
        "kinds": list(OrganisationKind),
    }
    return render(request, "organisation_new.html", context, status_code=status_code)


@router.get("/espace/organisations/nouvelle", openapi_extra=PAGE)
def new_organisation_page(request: Request, viewer: Member) -> Response:
    """The guided form of a new organisation's profile."""
    require_creator(viewer)
    return _page(request)


def _padded(values: list[str], n: int) -> list[str]:
    return (values + [""] * n)[:n]


def _places(session: Session, typed: Sequence[str], errors: dict[str, str]) -> list[str]:
    """The references of the territories typed by name; errors by field `territoire-<i>`."""
    refs: list[str] = []
    for i, raw in enumerate(typed):
        if not raw.strip():
            continue
        try:
            refs.append(resolve_typed(session, raw).ref)
        except (InvalidInput, NotFound) as exc:
            errors[f"territoire-{i}"] = exc.message
    return refs


DUPLICATE_HINT = "ou confirmez avec allow_duplicate_name=true."


def duplicate_message(message: str) -> str:
    """The API's refusal of a namesake, told the way of the page: a box to tick rather
    than a query parameter."""
    return message.replace(
        DUPLICATE_HINT,
        "ou cochez « Il s'agit bien d'une autre organisation du même nom » puis envoyez "
        "de nouveau le formulaire.",
    )


FIELD_MESSAGES = {
    "name": "Écrivez le nom de l'organisation (200 caractères au plus).",
    "kind": "Choisissez le type d'organisation.",
    "legal_form": "Forme juridique trop longue (80 caractères au plus).",
    "website": "Une adresse qui commence par http:// ou https://.",
    "description": "Description trop longue (5 000 caractères au plus).",
}


@router.post("/espace/organisations/nouvelle", openapi_extra=PAGE)
def create_organisation(
    request: Request,
    viewer: Member,
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    name: Text = "",
    kind: Text = "",
    legal_form: Text = "",
    siren: Text = "",
    website: Text = "",
    description: Text = "",
    territoire: Many = [],  # noqa: B006 — FastAPI copies a default list per request
    competence: Many = [],  # noqa: B006
    besoin: Many = [],  # noqa: B006
    confirme_homonyme: Text = "",
) -> Response:
    """Create the organisation (the API's service: statements embedded at once)."""
    require_creator(viewer)
    form = {
        "name": name,
        "kind": kind,
        "legal_form": legal_form,
        "siren": siren,
        "website": website,
        "description": description,
        "territoire": _padded(territoire, PLACES),
        "competence": _padded(competence, STATEMENTS),
        "besoin": _padded(besoin, STATEMENTS),
    }
    errors: dict[str, str] = {}
    # Names are resolved in a short read of their own: the request's transaction (a writer)
    # begins with the creation, after the statements are encoded.
    with reader() as read:
        refs = _places(read, form["territoire"], errors)
    statements = [
        {"kind": k, "text": " ".join(t.split()), "visibility": "network"}
        for k, texts in (("competency", form["competence"]), ("need", form["besoin"]))
        for t in texts
        if t.strip()
    ]
    for key, texts in (("competence", form["competence"]), ("besoin", form["besoin"])):
        for i, t in enumerate(texts):
            if t.strip() and not 3 <= len(" ".join(t.split())) <= 2000:
                errors[f"{key}-{i}"] = "Entre 3 et 2 000 caractères."
    body = {
        "name": name.strip(),
        "kind": kind,
        "legal_form": legal_form.strip() or None,
        "siren": siren.strip() or None,
        "website": website.strip() or None,
        "description": description.strip() or None,
        "territories": list(dict.fromkeys(refs)),
        "statements": statements,
    }
    data: OrganisationIn | None = None
    try:
        data = OrganisationIn.model_validate(body)
    except ValidationError as exc:
        for field, message in field_errors(exc).items():
            if field in ("territories", "statements"):
                continue  # checked above, field by field
            errors.setdefault(field, FIELD_MESSAGES.get(field, message))
    if errors or data is None:
        return _page(request, form, errors, status_code=422)
    checked = data
    org, refused = attempt(
        session,
        lambda: service.create_organisation(
            session,
            checked,
            matching=matching,
            viewer=viewer,
            allow_duplicate_name=confirme_homonyme == "oui",
        ),
    )
    if refused is not None or org is None:
        message = refused.message if refused else "L'organisation n'a pas été créée."
        field = "siren" if message.startswith("Le SIREN") else "name"
        return _page(request, form, {field: duplicate_message(message)}, status_code=409)
    return redirect(f"{organisation_url(org.id)}?fait=cree")
