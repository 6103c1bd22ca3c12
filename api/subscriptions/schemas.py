"""Digest subscription requests and responses."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, Field

from api.kit.fields import Line200, StrictModel, UtcDatetime
from models.enums import DigestFrequency, MatchLevel

Frequency = Annotated[DigestFrequency, Field(strict=False)]
Level = Annotated[MatchLevel, Field(strict=False)]
Theme = Line200


def normalise_email(value: str) -> str:
    """The address as stored: checked for syntax by `email-validator` (no DNS lookup),
    its domain in lower case and IDNA-normalised, its local part as typed. Raises
    ValueError with a French message."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"« {value.strip()} » n'est pas une adresse e-mail valide.") from exc
    return checked.normalized


_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = "[A-Za-z0-9](?:-?[A-Za-z0-9]){0,30}"
# The usual form of an address, as the document shows it: every address it matches,
# email-validator reads (tests/api/test_fields.py), and email-validator also reads
# international ones (é@société.fr).
MAILBOX_PATTERN = (
    f"^{_ATOM}{{1,20}}(?:\\.{_ATOM}{{1,20}}){{0,2}}@(?:{_LABEL}\\.){{1,3}}[a-z]{{2,24}}$"
)
# The domains email-validator refuses (RFC 6761 special use: .test, .local…).
SPECIAL_USE_PATTERN = "\\.(?:" + "|".join(SPECIAL_USE_DOMAIN_NAMES) + ")$"
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        json_schema_extra={
            "format": "email",
            "pattern": MAILBOX_PATTERN,
            "not": {"pattern": SPECIAL_USE_PATTERN},
        },
    ),
    AfterValidator(normalise_email),
]


class SubscriptionIn(StrictModel):
    email: Email = Field(description="Address that receives the digest; confirmed by a link.")
    frequency: Frequency = Field(
        default=DigestFrequency.weekly, description="weekly, or off to pause."
    )
    themes: list[Theme] = Field(
        default_factory=list,
        max_length=20,
        description="Only calls on these themes (any theme when empty).",
    )
    min_level: Level = Field(
        default=MatchLevel.medium,
        description="Least fit of a call to the organisation for the digest to show it: "
        "weak, medium or strong.",
    )


class SubscriptionPatch(StrictModel):
    frequency: Frequency | None = None
    themes: list[Theme] | None = Field(default=None, max_length=20)
    min_level: Level | None = None


class SubscriptionState(StrEnum):
    """pending: waiting for its address to be confirmed (nothing is sent before);
    active: confirmed and weekly; paused: frequency off; unsubscribed: off, by the link
    of a digest."""

    pending = "pending"
    active = "active"
    paused = "paused"
    unsubscribed = "unsubscribed"


class SubscriptionOut(BaseModel):
    id: int
    organisation_id: int
    email: str
    frequency: DigestFrequency
    themes: list[str]
    min_level: MatchLevel
    state: SubscriptionState
    confirmed_at: UtcDatetime | None
    confirmation_sent_at: UtcDatetime | None = Field(
        description="When the last confirmation link was sent (null: not sent yet, or the "
        "sending failed; POST …/confirmation sends it again)."
    )
    created_at: UtcDatetime


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class ConfirmationSent(BaseModel):
    email: str
    detail: str


class Confirmed(BaseModel):
    subscription_id: int
    email: str
    organisation: str
    confirmed_at: UtcDatetime
