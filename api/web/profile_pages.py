"""« Modifier le profil »: an organisation's name, kind, legal form, SIREN, website,
description, territories (typed by name, as on creation) and contacts, changed by its
members or the coordinator through the API's own service (`update_organisation`, the
PATCH /api/v1/organisations/{id} of the API). Every refused field is a French message next
to it.

A stale form (the profile changed since the form was shown, by someone else) is not
written over silently: the form carries a fingerprint of the profile it showed, and a
different one at sending time is a 409 page showing both. Sending the same form twice (a
double click, the back button) is no conflict: the second finds the profile it asks for."""

from __future__ import annotations

import hashlib
import json
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
from api.organisations.schemas import ContactIn, OrganisationPatch
from api.territories.typed import resolve_typed
from api.web.forms import RowId, Text, attempt
from api.web.member_pages import organisation_url
from api.web.onboarding_pages import FIELD_MESSAGES, LEGAL_FORMS, duplicate_message
from api.web.render import field_errors, redirect, render
from api.web.session import Member
from models import Organisation
from models.enums import OrganisationKind

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)
Many = Annotated[list[str], Form(max_length=200)]
PLACES = 5  # territory fields at least
SPARE = 2  # empty territory fields after the current ones
CONTACT_FIELDS = ("name", "role", "email", "phone")
CONTACT_MESSAGES = {
    "name": "Donnez le nom du contact (200 caractères au plus).",
    "role": "Fonction trop longue (200 caractères au plus).",
    "email": "Une adresse électronique comme prenom.nom@exemple.fr.",
    "phone": "Numéro trop long (40 caractères au plus).",
}


def edit_url(organisation_id: int) -> str:
    return f"{organisation_url(organisation_id)}/modifier"


def _editable(session: Session, viewer: Principal, organisation_id: int) -> Organisation:
    org = service.get_organisation(session, organisation_id)
    if not viewer.acts_for(org.id):
        raise Forbidden(
            "Seuls les membres de l'organisation et la coordination modifient son profil."
        )
    return org


def _typed_name(session: Session, ref: str, name: str) -> str:
    """What the form shows for a territory: its name when the name finds it back, else its
    reference (« commune:13001 »), which always does."""
    try:
        return name if resolve_typed(session, name).ref == ref else ref
    except (InvalidInput, NotFound):
        return ref


def _current(session: Session, org: Organisation) -> dict[str, Any]:
    """The form of the profile as it is."""
    return {
        "name": org.name,
        "kind": org.kind.value,
        "legal_form": org.legal_form or "",
        "siren": org.siren or "",
        "website": org.website or "",
        "description": org.description or "",
        "territoire": [_typed_name(session, t.ref, t.name) for t in org.territories],
        "contacts": [
            {
                "name": c.name,
                "role": c.role or "",
                "email": c.email or "",
                "phone": c.phone or "",
            }
            for c in org.contacts
        ],
    }


def _digest(fields: list[Any]) -> str:
    raw = json.dumps(fields, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def fingerprint(org: Organisation) -> str:
    """A short digest of the profile's editable fields: what the form was made from."""
    return _digest(
        [
            org.name,
            org.kind.value,
            org.legal_form,
            org.siren,
            org.website,
            org.description,
            sorted(t.ref for t in org.territories),
            [[c.name, c.role, c.email, c.phone] for c in org.contacts],
        ]
    )


def _padded(form: dict[str, Any]) -> dict[str, Any]:
    """The form with empty fields to add territories and a contact."""
    places = form["territoire"]
    n = max(PLACES, len([p for p in places if p.strip()]) + SPARE)
    contacts = [c for c in form["contacts"] if any(v.strip() for v in c.values())]
    return {
        **form,
        "territoire": (places + [""] * n)[: max(n, len(places))],
        "contacts": contacts + [dict.fromkeys(CONTACT_FIELDS, "")],
    }


def _page(
    request: Request,
    org: Organisation,
    form: dict[str, Any],
    *,
    version: str,
    errors: dict[str, str] | None = None,
    stale: bool = False,
    status_code: int = 200,
) -> Response:
    context = {
        "org": org,
        "form": _padded(form),
        "version": version,
        "errors": errors or {},
        "stale": stale,
        "legal_forms": LEGAL_FORMS,
        "kinds": list(OrganisationKind),
    }
    return render(request, "organisation_edit.html", context, status_code=status_code)


@router.get("/espace/organisations/{organisation_id}/modifier", openapi_extra=PAGE)
def edit_profile_page(
    request: Request, viewer: Member, session: SessionDep, organisation_id: RowId
) -> Response:
    """The form of the profile, filled with its current fields."""
    org = _editable(session, viewer, organisation_id)
    return _page(request, org, _current(session, org), version=fingerprint(org))


def _contacts(
    names: list[str], roles: list[str], emails: list[str], phones: list[str]
) -> list[dict[str, str]]:
    n = max(len(names), len(roles), len(emails), len(phones))

    def at(values: list[str], i: int) -> str:
        return values[i] if i < len(values) else ""

    return [
        {
            "name": at(names, i),
            "role": at(roles, i),
            "email": at(emails, i),
            "phone": at(phones, i),
        }
        for i in range(n)
    ]


def _checked_contacts(
    contacts: list[dict[str, str]], errors: dict[str, str]
) -> list[dict[str, Any]]:
    """The contacts to store (rows left empty are dropped); errors by `contact-<i>-<field>`,
    `i` counting the rows the form shows again (the empty ones left out)."""
    kept: list[dict[str, Any]] = []
    for contact in contacts:
        if not any(v.strip() for v in contact.values()):
            continue
        i = len(kept)
        body = {k: (" ".join(v.replace("\x00", " ").split()) or None) for k, v in contact.items()}
        try:
            ContactIn.model_validate(body)
        except ValidationError as exc:
            for field in field_errors(exc):
                errors.setdefault(f"contact-{i}-{field}", CONTACT_MESSAGES.get(field, ""))
        kept.append(body)
    if len(kept) > 50:
        errors["contacts"] = "Cinquante contacts au plus."
    return kept


@router.post("/espace/organisations/{organisation_id}/modifier", openapi_extra=PAGE)
def edit_profile(
    request: Request,
    viewer: Member,
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    organisation_id: RowId,
    version: Text = "",
    name: Text = "",
    kind: Text = "",
    legal_form: Text = "",
    siren: Text = "",
    website: Text = "",
    description: Text = "",
    confirme_homonyme: Text = "",
    territoire: Many = [],  # noqa: B006 — FastAPI copies a default list per request
    contact_nom: Many = [],  # noqa: B006
    contact_fonction: Many = [],  # noqa: B006
    contact_courriel: Many = [],  # noqa: B006
    contact_telephone: Many = [],  # noqa: B006
) -> Response:
    """Change the profile (the API's service); back to the profile page."""
    contacts = _contacts(contact_nom, contact_fonction, contact_courriel, contact_telephone)
    form: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "legal_form": legal_form,
        "siren": siren,
        "website": website,
        "description": description,
        "territoire": list(territoire),
        "contacts": contacts,
    }
    errors: dict[str, str] = {}
    # Read apart: the request's transaction (a writer) begins with the change.
    with reader() as read:
        org = _editable(read, viewer, organisation_id)
        current = fingerprint(org)
        refs: list[str] = []
        for i, raw in enumerate(territoire):
            if not raw.strip():
                continue
            try:
                refs.append(resolve_typed(read, raw).ref)
            except (InvalidInput, NotFound) as exc:
                errors[f"territoire-{i}"] = exc.message
    kept = _checked_contacts(contacts, errors)
    form["contacts"] = [{k: v or "" for k, v in c.items()} for c in kept]
    body = {
        "name": " ".join(name.replace("\x00", " ").split()),
        "kind": kind,
        "legal_form": legal_form.replace("\x00", "").strip() or None,
        "siren": siren.strip() or None,
        "website": website.strip() or None,
        "description": description.replace("\x00", "").strip() or None,
        "territories": list(dict.fromkeys(refs)),
        "contacts": kept,
    }
    data: OrganisationPatch | None = None
    try:
        data = OrganisationPatch.model_validate(body)
    except ValidationError as exc:
        for field, message in field_errors(exc).items():
            if field in ("territories", "contacts"):
                continue  # checked above, field by field
            errors.setdefault(field, FIELD_MESSAGES.get(field, message))
    if errors or data is None:
        return _page(request, org, form, version=version, errors=errors, status_code=422)
    if version != current:
        # Changed since the form was shown: unless it is already what this form asks for
        # (the same form sent twice), show both rather than overwrite the other change.
        with reader() as read:
            now = service.get_organisation(read, organisation_id)
            asked = _would_be(now, data)
        if asked != current:
            return _page(request, org, form, version=current, stale=True, status_code=409)
    checked = data
    allow = confirme_homonyme == "oui"
    updated, refused = attempt(
        session,
        lambda: service.update_organisation(
            session,
            reader,
            matching,
            viewer,
            organisation_id,
            checked,
            allow_duplicate_name=allow,
        ),
    )
    if refused is not None or updated is None:
        message = refused.message if refused else "Le profil n'a pas été modifié."
        field = "siren" if message.startswith("Le SIREN") else "name"
        refusal = {field: duplicate_message(message)}
        return _page(request, org, form, version=version, errors=refusal, status_code=409)
    return redirect(f"{organisation_url(organisation_id)}?fait=profil")


def _would_be(org: Organisation, data: OrganisationPatch) -> str:
    """The fingerprint the profile would have once `data` is written."""
    return _digest(
        [
            data.name,
            (data.kind or org.kind).value,
            data.legal_form,
            data.siren,
            data.website,
            data.description,
            sorted(data.territories or []),
            [[c.name, c.role, c.email, c.phone] for c in data.contacts or []],
        ]
    )
