"""What a digest holds, and its e-mail (Jinja2, a plain-text part and an HTML part)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import make_msgid
from enum import StrEnum

from api.digest.links import dismiss_url, unsubscribe_url, view_url
from api.digest.weeks import IsoWeek
from api.kit.mail import compose, render, sender_domain
from api.kit.settings import Settings
from models.digest import DigestSubscription


class ItemStatus(StrEnum):
    """Why a call is in this week's digest."""

    new = "new"  # never sent to this subscription
    changed = "changed"  # sent before, changed since (`changes` says what)
    reminder = "reminder"  # sent before, deadline within the reminder window
    interested = "interested"  # the organisation marked it « intéressé »


STATUS_FR = {
    ItemStatus.new: "nouveau",
    ItemStatus.changed: "modifié",
    ItemStatus.reminder: "rappel",
    ItemStatus.interested: "intéressé",
}


@dataclass(frozen=True)
class Reason:
    """A statement pair that makes a call fit: the call's requirement and the
    organisation's statement that answers it, with their similarity (0–1)."""

    requirement: str
    statement: str
    similarity: float


@dataclass(frozen=True)
class SuggestedPartner:
    organisation_id: int
    name: str
    reason: str


@dataclass(frozen=True)
class DigestItem:
    call_id: int
    title: str
    funder: str | None
    deadline: date | None
    days_left: int | None  # None: a permanent call
    perimeter: str
    link: str  # where to read the call (its own page, else Maillage's)
    status: ItemStatus
    fit: float  # 0–1, how well the organisation answers the call
    changes: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    partners: list[SuggestedPartner] = field(default_factory=list)

    @property
    def status_fr(self) -> str:
        return STATUS_FR[self.status]


@dataclass(frozen=True)
class Digest:
    organisation_id: int
    organisation: str
    week: IsoWeek
    items: list[DigestItem]


def message_id_for(settings: Settings, subscription_id: int, week: IsoWeek) -> str:
    """A new Message-ID for a subscription's digest of a week (kept on its delivery row)."""
    return make_msgid(idstring=f"digest.{subscription_id}.{week}", domain=sender_domain(settings))


def digest_context(
    settings: Settings, sub: DigestSubscription, digest: Digest
) -> dict[str, object]:
    """The templates' context: the links are signed for this subscription (none for a
    subscription not stored, as a member's preview)."""
    stored = sub.id is not None
    return {
        "digest": digest,
        "items": [
            (item, dismiss_url(settings, sub, item.call_id) if stored else None)
            for item in digest.items
        ],
        "view": view_url(settings, sub, str(digest.week)) if stored else None,
        "unsubscribe": unsubscribe_url(settings, sub) if stored else None,
        "email": sub.email,
    }


def digest_message(
    settings: Settings, sub: DigestSubscription, digest: Digest, message_id: str
) -> EmailMessage:
    """The e-mail of a digest for one subscription, with one-click unsubscribe (RFC 8058:
    `List-Unsubscribe` with the signed URL, `List-Unsubscribe-Post`)."""
    context = digest_context(settings, sub, digest)
    unsubscribe = context["unsubscribe"]
    count = len(digest.items)
    subject = (
        f"Maillage — {count} appel{'s' if count > 1 else ''} à projets pour "
        f"{digest.organisation} (semaine {digest.week.week})"
    )
    return compose(
        settings,
        to=sub.email,
        subject=subject,
        body=render("digest", context),
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"Digest Maillage <digest.{sender_domain(settings)}>",
        },
        message_id=message_id,
    )
