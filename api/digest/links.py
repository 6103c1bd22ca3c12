"""The signed links of a digest: one-click unsubscribe (RFC 8058) and « pas pertinent ».

They work without signing in and only for what they were made for: a token names its
purpose (one itsdangerous salt each), its subscription and that subscription's address
(a link stops working when the subscription is deleted or its address replaced), and,
for « pas pertinent », the call. They do not expire: an old digest's unsubscribe link
must still unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.kit.errors import InvalidInput
from api.kit.settings import Settings
from api.kit.signing import InvalidToken, Signer
from models.digest import DigestSubscription

UNSUBSCRIBE = "digest-unsubscribe"
DISMISS = "digest-dismiss"
VIEW = "digest-view"
MAX_TOKEN = 500  # characters; a real token is about 60–90


class LinkError(InvalidInput):
    """A link that cannot do what it says (French message for the page)."""


@dataclass(frozen=True)
class LinkTarget:
    subscription_id: int
    email: str
    call_id: int | None = None
    week: str | None = None


def unsubscribe_url(settings: Settings, sub: DigestSubscription) -> str:
    """The `List-Unsubscribe` URL of a subscription's digests: a POST to it (the one-click
    request of RFC 8058, body `List-Unsubscribe=One-Click`) unsubscribes; a GET shows a page
    with the button."""
    token = Signer(settings, UNSUBSCRIBE).sign({"s": sub.id, "e": sub.email})
    return f"{settings.base_url}/subscriptions/unsubscribe?token={token}"


def dismiss_url(settings: Settings, sub: DigestSubscription, call_id: int) -> str:
    token = Signer(settings, DISMISS).sign({"s": sub.id, "e": sub.email, "c": call_id})
    return f"{settings.base_url}/digests/dismiss?token={token}"


def view_url(settings: Settings, sub: DigestSubscription, week: str) -> str:
    """The web view of a subscription's digest of `week`, readable without signing in."""
    token = Signer(settings, VIEW).sign({"s": sub.id, "e": sub.email, "w": week})
    return f"{settings.base_url}/digests/{sub.organisation_id}/{week}?token={token}"


def read(settings: Settings, purpose: str, token: str) -> LinkTarget:
    """What a token of `purpose` points at. Raises LinkError."""
    bad = LinkError("Ce lien n'est pas valide : vérifiez qu'il a été copié en entier.")
    if not token or len(token) > MAX_TOKEN:
        raise bad
    try:
        payload = Signer(settings, purpose).read(token)
    except InvalidToken as exc:
        raise bad from exc
    sub_id, email, call_id = payload.get("s"), payload.get("e"), payload.get("c")
    if not isinstance(sub_id, int) or not isinstance(email, str):
        raise bad
    if purpose == DISMISS and not isinstance(call_id, int):
        raise bad
    week = payload.get("w")
    if purpose == VIEW and not isinstance(week, str):
        raise bad
    return LinkTarget(
        sub_id,
        email,
        call_id if isinstance(call_id, int) else None,
        week if isinstance(week, str) else None,
    )
