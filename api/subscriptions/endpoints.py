"""Digest subscription endpoints, and the public page that confirms an address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from api.kit.auth import Access, access
from api.kit.deps import MailerDep, SessionDep, SettingsDep, WriterDep
from api.kit.errors import problem_responses
from api.kit.idempotency import IdempotencyDep
from api.kit.pages import page
from api.kit.routing import Route
from api.subscriptions import service
from api.subscriptions.schemas import (
    ConfirmationSent,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionPatch,
)

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/organisations/{organisation_id}/subscriptions",
    tags=["digest"],
    responses=problem_responses(401, 403, 404, 422),
)
pages = APIRouter(route_class=Route, tags=["digest"])

OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# Pages check their token themselves: a mangled link gets a French page, not a problem.
Token = Annotated[str, Query(description="The signed token of the link.")]


@router.get("", response_model=SubscriptionList, openapi_extra=access(Access.organisation))
def list_subscriptions(session: SessionDep, organisation_id: OrganisationId) -> SubscriptionList:
    """The organisation's digest subscriptions (its members and the coordinator)."""
    return SubscriptionList(items=service.list_subscriptions(session, organisation_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses=problem_responses(409),
    openapi_extra=access(Access.organisation),
)
def create_subscription(
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    writer: WriterDep,
    background: BackgroundTasks,
    response: Response,
    organisation_id: OrganisationId,
    body: SubscriptionIn,
    _idempotency: IdempotencyDep,
) -> SubscriptionOut:
    """Subscribe an address to the organisation's weekly digest. The address receives a
    confirmation link (valid 7 days) once the subscription is stored; nothing else is
    sent to it before it is confirmed (state `pending`). 409 when the address already
    receives this organisation's digest."""
    sub = service.create_subscription(session, organisation_id, body)
    background.add_task(service.send_confirmation, settings, mailer, writer, sub.id)
    response.headers["Location"] = f"{router.prefix}/{sub.id}".replace(
        "{organisation_id}", str(organisation_id)
    )
    return service.to_out(sub)


@router.get(
    "/{subscription_id}", response_model=SubscriptionOut, openapi_extra=access(Access.organisation)
)
def get_subscription(
    session: SessionDep, organisation_id: OrganisationId, subscription_id: SubscriptionId
) -> SubscriptionOut:
    return service.get_subscription(session, organisation_id, subscription_id)


@router.patch(
    "/{subscription_id}", response_model=SubscriptionOut, openapi_extra=access(Access.organisation)
)
def update_subscription(
    session: SessionDep,
    organisation_id: OrganisationId,
    subscription_id: SubscriptionId,
    body: SubscriptionPatch,
) -> SubscriptionOut:
    """Change the frequency (weekly, off), the themes followed or the minimum level."""
    return service.update_subscription(session, organisation_id, subscription_id, body)


@router.delete(
    "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra=access(Access.organisation),
)
def delete_subscription(
    session: SessionDep, organisation_id: OrganisationId, subscription_id: SubscriptionId
) -> Response:
    service.delete_subscription(session, organisation_id, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{subscription_id}/confirmation",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ConfirmationSent,
    responses=problem_responses(409),
    openapi_extra=access(Access.organisation),
)
def resend_confirmation(
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    writer: WriterDep,
    background: BackgroundTasks,
    organisation_id: OrganisationId,
    subscription_id: SubscriptionId,
) -> ConfirmationSent:
    """Send the confirmation link again (a new one, valid 7 days). 409 when the address is
    already confirmed."""
    sub = service.check_confirmation_due(session, organisation_id, subscription_id)
    background.add_task(service.send_confirmation, settings, mailer, writer, sub.id)
    return ConfirmationSent(
        email=sub.email, detail=f"Un nouveau lien de confirmation part vers {sub.email}."
    )


@pages.get(
    "/subscriptions/confirm",
    response_class=HTMLResponse,
    include_in_schema=False,
    openapi_extra=access(Access.public),
)
def confirmation_page(request: Request, settings: SettingsDep, token: Token = "") -> HTMLResponse:
    """The page of a confirmation link: it asks for a click (POST), so that a mail
    scanner opening links does not confirm an address in its owner's place."""
    try:
        _, email = service.read_confirmation(settings, token)
    except service.ConfirmationError as exc:
        return page(request, "Lien non valide", error=exc.message, status_code=400)
    return page(
        request,
        "Confirmer votre abonnement",
        f"Confirmez que l'adresse {email} doit recevoir chaque semaine le digest de Maillage.",
        action="/subscriptions/confirm",
        fields={"token": token},
        button="Confirmer mon abonnement",
    )


@pages.post(
    "/subscriptions/confirm",
    response_class=HTMLResponse,
    include_in_schema=False,
    openapi_extra=access(Access.public),
)
def confirm(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    try:
        sub, organisation = service.confirm(session, settings, token)
    except service.ConfirmationError as exc:
        return page(request, "Lien non valide", error=exc.message, status_code=400)
    return page(
        request,
        "Abonnement confirmé",
        f"L'adresse {sub.email} recevra chaque semaine le digest de Maillage pour {organisation}.",
        "Chaque digest contient un lien pour se désabonner en un clic.",
    )
