"""An organisation's digest settings: the addresses that receive the weekly digest
(double opt-in: a confirmation link is mailed, as the API does), their frequency, themes
and level, and deleting one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.auth import Access, access
from api.kit.deps import MailerDep, SessionDep, SettingsDep, WriterDep
from api.kit.errors import Forbidden
from api.kit.routing import Route
from api.organisations import service as organisations
from api.subscriptions import service
from api.subscriptions.schemas import SubscriptionIn, SubscriptionPatch
from api.web.forms import RowId, Text, attempt
from api.web.render import field_errors, redirect, render
from api.web.session import Member
from models.enums import DigestFrequency, MatchLevel

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)  # the page checks the session and the organisation

FREQUENCY_LABELS = {
    DigestFrequency.weekly: "Chaque semaine",
    DigestFrequency.off: "En pause",
}
LEVEL_LABELS = {
    MatchLevel.strong: "Seulement les appels qui nous correspondent fortement",
    MatchLevel.medium: "Les appels qui nous correspondent assez ou fortement",
    MatchLevel.weak: "Tous les appels auxquels nous pouvons répondre",
}
STATE_LABELS = {
    "pending": "en attente de confirmation",
    "active": "confirmé",
    "paused": "en pause",
    "unsubscribed": "désabonné par le lien d'un digest",
}
MAX_THEMES = 20


def _require_acts_for(viewer: Principal, organisation_id: int) -> None:
    if not viewer.acts_for(organisation_id):
        raise Forbidden(
            "Seuls les membres de cette organisation et la coordination règlent son digest."
        )


def digest_url(organisation_id: int) -> str:
    return f"/espace/organisations/{organisation_id}/digest"


def themes_of(raw: str) -> list[str]:
    """« jardins, insertion » or one per line → ["jardins", "insertion"]."""
    parts = raw.replace("\n", ",").replace(";", ",").split(",")
    return list(dict.fromkeys(" ".join(p.split()) for p in parts if p.strip()))


def _french(errors: dict[str, str]) -> dict[str, str]:
    if "email" in errors:
        errors["email"] = (
            errors["email"]
            if "n'est pas une adresse" in errors["email"]
            else "Écrivez une adresse électronique valide (exemple : equipe@organisme.fr)."
        )
    if "frequency" in errors:
        errors["frequency"] = "Choisissez « chaque semaine » ou « en pause »."
    if "min_level" in errors:
        errors["min_level"] = "Choisissez quels appels le digest montre."
    if "themes" in errors:
        errors["themes"] = (
            f"Au plus {MAX_THEMES} thèmes de 200 caractères chacun, séparés par des virgules."
        )
    return errors


def _page(
    request: Request,
    session: Session,
    organisation_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    edit_errors: dict[int, dict[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    org = organisations.get_organisation(session, organisation_id)
    context: dict[str, Any] = {
        "org": org,
        "subscriptions": service.list_subscriptions(session, organisation_id),
        "form": form or {"email": "", "frequency": "weekly", "themes": "", "min_level": "medium"},
        "errors": errors or {},
        "edit_errors": edit_errors or {},
        "frequency_labels": FREQUENCY_LABELS,
        "level_labels": LEVEL_LABELS,
        "state_labels": STATE_LABELS,
    }
    return render(request, "digest.html", context, status_code=status_code)


@router.get("/espace/organisations/{organisation_id}/digest", openapi_extra=PAGE)
def digest_page(
    request: Request, viewer: Member, session: SessionDep, organisation_id: RowId
) -> Response:
    """Who receives the organisation's weekly digest, and how."""
    _require_acts_for(viewer, organisation_id)
    return _page(request, session, organisation_id)


@router.post("/espace/organisations/{organisation_id}/digest", openapi_extra=PAGE)
def subscribe(
    request: Request,
    viewer: Member,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    writer: WriterDep,
    background: BackgroundTasks,
    organisation_id: RowId,
    email: Text = "",
    frequency: Text = "weekly",
    themes: Text = "",
    min_level: Text = "medium",
) -> Response:
    """Subscribe an address; it receives a confirmation link (the API's service)."""
    _require_acts_for(viewer, organisation_id)
    form = {"email": email, "frequency": frequency, "themes": themes, "min_level": min_level}
    if not email.strip():
        errors = {"email": "Écrivez l'adresse qui recevra le digest."}
        return _page(request, session, organisation_id, form=form, errors=errors, status_code=422)
    try:
        data = SubscriptionIn.model_validate(
            {
                "email": email.strip(),
                "frequency": frequency,
                "themes": themes_of(themes),
                "min_level": min_level,
            }
        )
    except ValidationError as exc:
        errors = _french(field_errors(exc))
        return _page(request, session, organisation_id, form=form, errors=errors, status_code=422)
    sub, refused = attempt(
        session, lambda: service.create_subscription(session, organisation_id, data)
    )
    if refused is not None or sub is None:
        message = refused.message if refused else "L'abonnement n'a pas été enregistré."
        return _page(
            request, session, organisation_id, form=form, errors={"email": message},
            status_code=refused.status_code if refused else 409,
        )  # fmt: skip
    background.add_task(service.send_confirmation, settings, mailer, writer, sub.id)
    return redirect(f"{digest_url(organisation_id)}?fait=abonne")


@router.post("/espace/organisations/{organisation_id}/digest/{subscription_id}", openapi_extra=PAGE)
def change_subscription(
    request: Request,
    viewer: Member,
    session: SessionDep,
    organisation_id: RowId,
    subscription_id: RowId,
    frequency: Text = "",
    themes: Text = "",
    min_level: Text = "",
) -> Response:
    """Change an address's frequency, themes and level."""
    _require_acts_for(viewer, organisation_id)
    try:
        data = SubscriptionPatch.model_validate(
            {"frequency": frequency, "themes": themes_of(themes), "min_level": min_level}
        )
    except ValidationError as exc:
        errors = {subscription_id: _french(field_errors(exc))}
        return _page(request, session, organisation_id, edit_errors=errors, status_code=422)
    service.update_subscription(session, organisation_id, subscription_id, data)
    return redirect(f"{digest_url(organisation_id)}?fait=abonnement#abonnement-{subscription_id}")


@router.post(
    "/espace/organisations/{organisation_id}/digest/{subscription_id}/suppression",
    openapi_extra=PAGE,
)
def delete_subscription(
    viewer: Member, session: SessionDep, organisation_id: RowId, subscription_id: RowId
) -> Response:
    """Delete an address's subscription."""
    _require_acts_for(viewer, organisation_id)
    service.delete_subscription(session, organisation_id, subscription_id)
    return redirect(f"{digest_url(organisation_id)}?fait=desabonne")


@router.post(
    "/espace/organisations/{organisation_id}/digest/{subscription_id}/confirmation",
    openapi_extra=PAGE,
)
def resend(
    viewer: Member,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    writer: WriterDep,
    background: BackgroundTasks,
    organisation_id: RowId,
    subscription_id: RowId,
) -> Response:
    """Send the confirmation link again (an address not yet confirmed)."""
    _require_acts_for(viewer, organisation_id)
    sub = service.check_confirmation_due(session, organisation_id, subscription_id)
    background.add_task(service.send_confirmation, settings, mailer, writer, sub.id)
    return redirect(f"{digest_url(organisation_id)}?fait=renvoye")
