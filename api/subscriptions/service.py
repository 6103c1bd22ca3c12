"""Digest subscriptions: managed by an organisation's members and the coordinator, each
address confirmed by a signed link before anything is sent to it (double opt-in)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.kit.deps import Writer
from api.kit.errors import Conflict, InvalidInput, NotFound
from api.kit.mail import Mailer, MailError, compose, render
from api.kit.settings import Settings
from api.kit.signing import InvalidToken, Signer
from api.subscriptions.schemas import (
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionState,
)
from models import Organisation
from models.digest import DigestSubscription
from models.enums import DigestFrequency

log = logging.getLogger(__name__)

CONFIRM_PURPOSE = "subscription-confirm"
CONFIRM_MAX_AGE = 7 * 24 * 3600  # seconds a confirmation link stays valid


def state_of(sub: DigestSubscription) -> SubscriptionState:
    if sub.confirmed_at is None:
        return SubscriptionState.pending
    if sub.frequency == DigestFrequency.off:
        return (
            SubscriptionState.unsubscribed
            if sub.unsubscribed_at is not None
            else SubscriptionState.paused
        )
    return SubscriptionState.active


def to_out(sub: DigestSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        organisation_id=sub.organisation_id,
        email=sub.email,
        frequency=sub.frequency,
        themes=list(sub.themes or []),
        min_level=sub.min_level,
        state=state_of(sub),
        confirmed_at=sub.confirmed_at,
        confirmation_sent_at=sub.confirmation_sent_at,
        created_at=sub.created_at,
    )


def _organisation(session: Session, organisation_id: int) -> Organisation:
    org = session.get(Organisation, organisation_id)
    if org is None or org.archived_at is not None:
        raise NotFound(f"Aucune organisation n° {organisation_id}.")
    return org


def _subscription(
    session: Session, organisation_id: int, subscription_id: int
) -> DigestSubscription:
    sub = session.get(DigestSubscription, subscription_id)
    if sub is None or sub.organisation_id != organisation_id:
        raise NotFound(
            f"Aucun abonnement n° {subscription_id} pour l'organisation n° {organisation_id}."
        )
    return sub


def _same_address(session: Session, organisation_id: int, email: str) -> DigestSubscription | None:
    return session.scalar(
        select(DigestSubscription).where(
            DigestSubscription.organisation_id == organisation_id,
            func.lower(DigestSubscription.email) == email.lower(),
        )
    )


def _taken(existing: DigestSubscription) -> Conflict:
    return Conflict(
        f"L'adresse {existing.email} est déjà abonnée au digest de cette organisation "
        f"(abonnement n° {existing.id}) : modifiez cet abonnement plutôt que d'en créer un autre."
    )


def list_subscriptions(session: Session, organisation_id: int) -> list[SubscriptionOut]:
    """The organisation's subscriptions, oldest first. Raises NotFound."""
    _organisation(session, organisation_id)
    rows = session.scalars(
        select(DigestSubscription)
        .where(DigestSubscription.organisation_id == organisation_id)
        .order_by(DigestSubscription.id)
    )
    return [to_out(s) for s in rows]


def get_subscription(
    session: Session, organisation_id: int, subscription_id: int
) -> SubscriptionOut:
    _organisation(session, organisation_id)
    return to_out(_subscription(session, organisation_id, subscription_id))


def create_subscription(
    session: Session, organisation_id: int, data: SubscriptionIn
) -> DigestSubscription:
    """A new subscription waiting for its address to be confirmed (the caller sends the
    link once the transaction has committed). Raises NotFound, Conflict (the address
    already receives this organisation's digest, whatever its case)."""
    _organisation(session, organisation_id)
    existing = _same_address(session, organisation_id, data.email)
    if existing is not None:
        raise _taken(existing)
    sub = DigestSubscription(
        organisation_id=organisation_id,
        email=data.email,
        frequency=data.frequency,
        themes=list(dict.fromkeys(data.themes)),
        min_level=data.min_level,
    )
    try:
        with session.begin_nested():
            session.add(sub)
            session.flush()
    except IntegrityError:
        # Another request subscribed the same address meanwhile: the answer it would get now.
        existing = _same_address(session, organisation_id, data.email)
        if existing is None:
            raise
        raise _taken(existing) from None
    return sub


def update_subscription(
    session: Session, organisation_id: int, subscription_id: int, data: SubscriptionPatch
) -> SubscriptionOut:
    """Change frequency, themes or level. Setting the frequency back to weekly after a
    one-click unsubscribe is a member's explicit choice: it resubscribes. Raises NotFound."""
    _organisation(session, organisation_id)
    sub = _subscription(session, organisation_id, subscription_id)
    if data.frequency is not None:
        sub.frequency = data.frequency
        if data.frequency == DigestFrequency.weekly:
            sub.unsubscribed_at = None
    if data.themes is not None:
        sub.themes = list(dict.fromkeys(data.themes))
    if data.min_level is not None:
        sub.min_level = data.min_level
    session.flush()
    return to_out(sub)


def delete_subscription(session: Session, organisation_id: int, subscription_id: int) -> None:
    _organisation(session, organisation_id)
    session.delete(_subscription(session, organisation_id, subscription_id))
    session.flush()


def check_confirmation_due(
    session: Session, organisation_id: int, subscription_id: int
) -> DigestSubscription:
    """The subscription whose link is to be sent again. Raises NotFound, Conflict (already
    confirmed)."""
    _organisation(session, organisation_id)
    sub = _subscription(session, organisation_id, subscription_id)
    if sub.confirmed_at is not None:
        raise Conflict(f"L'adresse {sub.email} est déjà confirmée.")
    return sub


def confirmation_link(settings: Settings, sub: DigestSubscription) -> str:
    token = Signer(settings, CONFIRM_PURPOSE).sign({"s": sub.id, "e": sub.email})
    return f"{settings.base_url}/subscriptions/confirm?token={token}"


def send_confirmation(
    settings: Settings, mailer: Mailer, writer: Writer, subscription_id: int
) -> None:
    """Send the confirmation link of a subscription (after its transaction committed) and
    record when. A failure is logged, not raised: the subscription stays pending, its
    `confirmation_sent_at` empty, and POST …/confirmation sends the link again."""
    with writer() as session:
        sub = session.get(DigestSubscription, subscription_id)
        if sub is None or sub.confirmed_at is not None:
            return
        org_name = session.scalar(
            select(Organisation.name).where(Organisation.id == sub.organisation_id)
        )
        context = {
            "organisation": org_name,
            "email": sub.email,
            "link": confirmation_link(settings, sub),
            "days": CONFIRM_MAX_AGE // 86400,
        }
        message = compose(
            settings,
            to=sub.email,
            subject=f"Confirmez votre abonnement au digest Maillage de {org_name}",
            body=render("confirm_subscription", context),
        )
        try:
            mailer.send(message)
        except MailError as exc:
            log.warning("confirmation of subscription %s not sent: %s", subscription_id, exc)
            return
        sub.confirmation_sent_at = datetime.now(UTC)


class ConfirmationError(InvalidInput):
    """A confirmation link that cannot confirm anything (French message for the page)."""


def read_confirmation(settings: Settings, token: str) -> tuple[int, str]:
    """(subscription id, address) of a confirmation token. Raises ConfirmationError."""
    if not token or len(token) > 500:
        raise ConfirmationError(
            "Ce lien de confirmation n'est pas valide : vérifiez qu'il a été copié en entier."
        )
    try:
        payload = Signer(settings, CONFIRM_PURPOSE).read(token, CONFIRM_MAX_AGE)
    except InvalidToken as exc:
        if exc.expired:
            raise ConfirmationError(
                "Ce lien de confirmation a expiré : demandez-en un nouveau depuis les "
                "réglages du digest de votre organisation."
            ) from exc
        raise ConfirmationError(
            "Ce lien de confirmation n'est pas valide : vérifiez qu'il a été copié en entier."
        ) from exc
    sub_id, email = payload.get("s"), payload.get("e")
    if not isinstance(sub_id, int) or not isinstance(email, str):
        raise ConfirmationError("Ce lien de confirmation n'est pas valide.")
    return sub_id, email


def confirm(session: Session, settings: Settings, token: str) -> tuple[DigestSubscription, str]:
    """Confirm the address of a token (again: no change). Returns the subscription and its
    organisation's name. Raises ConfirmationError (bad, expired, or its subscription was
    deleted or now holds another address)."""
    sub_id, email = read_confirmation(settings, token)
    sub = session.get(DigestSubscription, sub_id)
    if sub is None or sub.email != email:
        raise ConfirmationError(
            "Cet abonnement n'existe plus : il a été supprimé depuis l'envoi du lien."
        )
    if sub.confirmed_at is None:
        sub.confirmed_at = datetime.now(UTC)
        session.flush()
    name = session.scalar(select(Organisation.name).where(Organisation.id == sub.organisation_id))
    return sub, name or ""
