"""What a digest's links do once clicked: unsubscribe, dismiss a call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.digest.links import DISMISS, UNSUBSCRIBE, LinkError, read
from api.kit.settings import Settings
from models import Call, Organisation
from models.digest import CallDismissal, DigestSubscription
from models.enums import DigestFrequency


@dataclass(frozen=True)
class Done:
    email: str
    organisation: str
    call_title: str | None = None


def _subscription(session: Session, sub_id: int, email: str) -> DigestSubscription:
    sub = session.get(DigestSubscription, sub_id)
    if sub is None or sub.email != email:
        raise LinkError(
            "Cet abonnement n'existe plus : aucun digest ne part plus vers cette adresse pour "
            "cette organisation."
        )
    return sub


def _organisation_name(session: Session, organisation_id: int) -> str:
    return session.scalar(select(Organisation.name).where(Organisation.id == organisation_id)) or ""


def peek(session: Session, settings: Settings, purpose: str, token: str) -> Done:
    """What a link would do, for the page that asks for the click. Raises LinkError."""
    target = read(settings, purpose, token)
    sub = _subscription(session, target.subscription_id, target.email)
    title = None
    if target.call_id is not None:
        title = session.scalar(select(Call.title).where(Call.id == target.call_id))
        if title is None:
            raise LinkError("Cet appel à projets n'existe plus.")
    return Done(sub.email, _organisation_name(session, sub.organisation_id), title)


def unsubscribe(session: Session, settings: Settings, token: str) -> Done:
    """Stop the subscription's digests (frequency off): idempotent, no sign-in, and only
    this subscription. Raises LinkError."""
    target = read(settings, UNSUBSCRIBE, token)
    sub = _subscription(session, target.subscription_id, target.email)
    if sub.frequency != DigestFrequency.off or sub.unsubscribed_at is None:
        sub.frequency = DigestFrequency.off
        sub.unsubscribed_at = datetime.now(UTC)
        session.flush()
    return Done(sub.email, _organisation_name(session, sub.organisation_id))


def dismiss_call(session: Session, settings: Settings, token: str) -> Done:
    """Record that the subscription's organisation finds the call « pas pertinent »: it
    leaves its next digests. Idempotent (a second click, or two at once). Raises LinkError."""
    target = read(settings, DISMISS, token)
    sub = _subscription(session, target.subscription_id, target.email)
    title = session.scalar(select(Call.title).where(Call.id == target.call_id))
    if title is None:
        raise LinkError("Cet appel à projets n'existe plus.")
    exists = select(CallDismissal.id).where(
        CallDismissal.organisation_id == sub.organisation_id,
        CallDismissal.call_id == target.call_id,
    )
    if session.scalar(exists) is None:
        try:
            with session.begin_nested():
                session.add(
                    CallDismissal(
                        organisation_id=sub.organisation_id,
                        call_id=target.call_id,
                        subscription_id=sub.id,
                    )
                )
                session.flush()
        except IntegrityError:
            if session.scalar(exists) is None:  # not the race: a real fault
                raise
    return Done(sub.email, _organisation_name(session, sub.organisation_id), title)
