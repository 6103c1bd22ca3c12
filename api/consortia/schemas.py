"""Request and response bodies of the consortium review and of the impact report."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from api.consortia.states import ReasonCode
from api.organisations.schemas import StrictModel
from models.enums import ConsortiumStatus, ReviewDecision

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Version = Annotated[
    int,
    Field(ge=1, le=2**31 - 1, description="La version du consortium lue avant d'écrire."),
]


Decision = Annotated[ReviewDecision, Field(strict=False)]
Reason = Annotated[ReasonCode, Field(strict=False)]
StatusMove = Literal["contacted", "proposed"]
OutcomeStatus = Literal["submitted", "won", "lost"]


def _distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("Une organisation figure plusieurs fois.")
    return ids


class ConsortiumChange(StrictModel):
    """New members and/or lead. The lead is always a member: with `member_ids`, it must be
    among them."""

    version: Version
    member_ids: (
        Annotated[list[Id], Field(min_length=2, max_length=20), AfterValidator(_distinct)] | None
    ) = Field(default=None, description="Tous les membres, chef de file compris (2 à 20).")
    lead_id: Id | None = Field(default=None, description="Le bailleur social chef de file.")


class ReviewIn(StrictModel):
    version: Version
    decision: Decision = Field(
        description="approve : approuver ; reject : rejeter ; request_changes : demander des "
        "modifications."
    )
    reason_code: Reason | None = Field(
        default=None,
        description="Motif (obligatoire pour reject et request_changes) : "
        + "; ".join(f"{c.value}" for c in ReasonCode),
    )
    comment: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, description="Commentaire libre (obligatoire avec le motif « other »)."
    )


class StatusIn(StrictModel):
    version: Version
    status: StatusMove = Field(
        description="contacted : partenaires contactés (depuis approved) ; proposed : retour "
        "en revue (depuis changes_requested)."
    )


Amount = Annotated[
    Decimal,
    Field(
        ge=0,
        le=Decimal("999999999999.99"),
        max_digits=14,
        decimal_places=2,
        strict=False,
        description="Montant obtenu en euros, au plus 2 décimales (nombre ou chaîne).",
    ),
]


class OutcomeIn(StrictModel):
    version: Version
    status: OutcomeStatus
    on: date = Field(
        strict=False,
        description="Date du dépôt (submitted) ou de la décision du financeur (won, lost), "
        "AAAA-MM-JJ.",
    )
    amount: Amount | None = Field(default=None, description="Seulement pour won.")


class MemberOut(BaseModel):
    organisation_id: int
    name: str
    kind: str
    role: str = Field(description="lead (chef de file) ou member.")
    covers: list[int] = Field(description="Les exigences (ids) dont il est la couverture.")


class CoverOut(BaseModel):
    requirement_id: int
    requirement: str
    organisation_id: int | None
    statement_id: int | None
    similarity: float = Field(description="Entre 0 et 1.")
    covered: bool


class ReviewOut(BaseModel):
    id: int
    decision: ReviewDecision
    reason_code: str | None
    reason_label: str | None
    comment: str | None = Field(description="Visible de la coordination seulement.")
    account_id: int | None
    created_at: datetime


class CallBrief(BaseModel):
    id: int
    title: str
    deadline: date | None


class ConsortiumSummary(BaseModel):
    id: int
    call: CallBrief
    status: ConsortiumStatus
    status_label: str
    version: int
    lead: MemberOut | None
    members: list[MemberOut]
    coverage: float | None = Field(description="Similarité moyenne des exigences, 0 à 1.")
    score: float | None
    allowed_next: list[ConsortiumStatus] = Field(description="Les statuts suivants possibles.")
    decided_at: datetime | None
    submitted_on: date | None
    outcome_on: date | None
    amount: Decimal | None = Field(description="Montant obtenu en euros (won).")
    created_at: datetime
    updated_at: datetime


class ConsortiumOut(ConsortiumSummary):
    coverage_table: list[CoverOut]
    uncovered: list[int] = Field(description="Exigences (ids) non couvertes.")
    reviews: list[ReviewOut]


class ConsortiumPage(BaseModel):
    items: list[ConsortiumSummary]
    total: int
    limit: int
    offset: int


class ReasonOut(BaseModel):
    code: ReasonCode
    label: str
