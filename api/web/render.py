"""Rendering the web pages: the Jinja2 environment, French labels, notices after a redirect,
and field errors from the API's own schemas."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.consortia.states import LABELS as CONSORTIUM_LABELS
from api.kit.errors import french_errors
from api.web.forms import days_label, french_date
from models.enums import OrganisationKind, StatementKind, Visibility

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "web"
templates = Jinja2Templates(directory=TEMPLATES)

# Pages load nothing from elsewhere, run no inline script and are never framed.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

KIND_LABELS = {
    OrganisationKind.landlord: "Organisme Hlm",
    OrganisationKind.association: "Association",
    OrganisationKind.public_body: "Organisme public",
    OrganisationKind.company: "Entreprise",
    OrganisationKind.research: "Recherche",
    OrganisationKind.other: "Autre",
}
STATEMENT_LABELS = {StatementKind.competency: "Compétence", StatementKind.need: "Besoin"}
VISIBILITY_LABELS = {
    Visibility.network: "Visible par tout le réseau",
    Visibility.coordinator: "Visible par la coordination seulement",
}
LEVEL_LABELS = {
    "commune": "commune",
    "arrondissement": "arrondissement",
    "epci": "intercommunalité",
    "departement": "département",
    "region": "région",
}

# What a redirect after a form says on the next page (`?fait=…`): only these codes.
NOTICES = {
    "ajoute": "C'est enregistré : l'énoncé a été ajouté.",
    "modifie": "C'est enregistré : l'énoncé a été modifié.",
    "supprime": "L'énoncé a été supprimé.",
    "ecarte": "Ce partenaire ne vous sera plus suggéré.",
    "retabli": "Ce partenaire peut de nouveau vous être suggéré.",
    "deconnecte": "Vous êtes déconnecté·e.",
    "interesse": "C'est noté : votre organisation est intéressée par cet appel.",
    "desinteresse": "Votre intérêt pour cet appel est retiré.",
    "abonne": "Abonnement enregistré : un lien de confirmation part vers l'adresse.",
    "abonnement": "C'est enregistré : l'abonnement a été modifié.",
    "desabonne": "L'abonnement a été supprimé.",
    "renvoye": "Un nouveau lien de confirmation est parti.",
    "proposes": "Les consortiums proposés attendent votre revue ci-dessous.",
    "revu": "C'est enregistré : la décision a été prise en compte.",
    "membres": "C'est enregistré : les membres du consortium ont été modifiés.",
    "statut": "C'est enregistré : le statut du consortium a changé.",
    "resultat": "C'est enregistré : le résultat de la candidature a été noté.",
    "profil": "C'est enregistré : le profil a été modifié.",
    "cree": "L'organisation est créée. Complétez ses compétences et besoins ci-dessous.",
}

templates.env.globals.update(
    KIND_LABELS=KIND_LABELS,
    STATEMENT_LABELS=STATEMENT_LABELS,
    VISIBILITY_LABELS=VISIBILITY_LABELS,
    LEVEL_LABELS=LEVEL_LABELS,
    CONSORTIUM_LABELS=CONSORTIUM_LABELS,
    days_label=days_label,
    french_date=french_date,
)


def percent(value: float | None) -> str:
    """0.734 → « 73 % » (a narrow no-break space before the sign, as French writes it)."""
    return "—" if value is None else f"{round(100 * value)}\u202f%"


def euros(value: object) -> str:
    """1234567.5 → « 1 234 568 € »."""
    amount = round(float(str(value or 0)))
    return f"{amount:,}".replace(",", "\u202f") + "\u00a0€"


templates.env.filters.update(percent=percent, euros=euros)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page of the layout: the signed-in person, the CSRF token for forms and the notice
    a redirect asked for are given to every template."""
    notice = NOTICES.get(request.query_params.get("fait", ""))
    csrf = request.scope.get("csrftoken")
    full = {
        "viewer": getattr(request.state, "web_viewer", None),
        "csrf_token": csrf if callable(csrf) else (lambda: ""),
        "notice": notice,
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str) -> RedirectResponse:
    """After a form: 303 See Other, so that reloading the next page sends nothing again."""
    return RedirectResponse(url, status_code=303)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A schema's errors as French messages by field name (the first one of each)."""
    out: dict[str, str] = {}
    for err in french_errors(exc.errors()):
        loc = err["loc"]
        name = str(loc[0]) if loc else "formulaire"
        out.setdefault(name, err["msg"])
    return out
