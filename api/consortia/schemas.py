"""Request and response bodies of the consortium review and of the impact report."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from api.consortia.states import ReasonCode
from api.kit.fields import (
    NOT_BLANK_PATTERN,
    IsoDate,
    RowId,
    StrictModel,
    Text2000,
    UtcDatetime,
    absent,
    complete_branches,
    never_null,
)
from models.enums import ConsortiumStatus, ReviewDecision

Id = RowId
Version = Annotated[RowId, Field(description="La version du consortium lue avant d'écrire.")]


Decision = Annotated[ReviewDecision, Field(strict=False)]
Reason = Annotated[ReasonCode, Field(strict=False)]
StatusMove = Literal["contacted", "proposed"]
OutcomeStatus = Literal["submitted", "won", "lost"]


def _distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("Une organisation figure plusieurs fois.")
    return ids


def _change_schema(schema: dict[str, Any]) -> None:
    complete_branches(schema, [{"required": ["member_ids"]}, {"required": ["lead_id"]}])


class ConsortiumChange(StrictModel):
    """New members and/or lead (one of them at least). The lead is always a member: with
    `member_ids`, it must be among them."""

    model_config = ConfigDict(json_schema_extra=_change_schema)

    version: Version
    member_ids: Annotated[
        list[Id],
        Field(min_length=2, max_length=20, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_distinct),
    ] = absent("Tous les membres, chef de file compris (2 à 20, chacun une fois).")
    lead_id: Id = absent("Le bailleur social chef de file.")

    _never_null = never_null("member_ids", "lead_id")

    @model_validator(mode="after")
    def _something(self) -> ConsortiumChange:
        if self.member_ids is None and self.lead_id is None:
            raise ValueError("Rien à modifier : donnez member_ids et/ou lead_id.")
        return self


_REASONS_BUT_OTHER = [c.value for c in ReasonCode if c != ReasonCode.other]
# The kinds of review (ReviewIn checks the same): an approval may go without a reason; a
# reason other than « other » stands alone; « other » needs a comment.
_REVIEW_KINDS: list[dict[str, Any]] = [
    {
        "title": "Approval without a reason",
        "required": ["decision"],
        "not": {"required": ["reason_code"]},
        "properties": {"decision": {"enum": [ReviewDecision.approve.value]}},
    },
    {
        "title": "A listed reason",
        "required": ["reason_code"],
        "properties": {"reason_code": {"enum": _REASONS_BUT_OTHER}},
    },
    {
        "title": "Another reason, said in the comment",
        "required": ["reason_code", "comment"],
        "properties": {
            "reason_code": {"enum": [ReasonCode.other.value]},
            "comment": {"pattern": NOT_BLANK_PATTERN},
        },
    },
]


def _review_schema(schema: dict[str, Any]) -> None:
    complete_branches(schema, _REVIEW_KINDS)


class ReviewIn(StrictModel):
    model_config = ConfigDict(json_schema_extra=_review_schema)

    version: Version
    decision: Decision = Field(
        description="approve : approuver ; reject : rejeter ; request_changes : demander des "
        "modifications."
    )
    reason_code: Reason = absent(
        "Motif (obligatoire pour reject et request_changes) : "
        + "; ".join(f"{c.value}" for c in ReasonCode)
    )
    comment: Text2000 = absent("Commentaire libre (obligatoire avec le motif « other »).")

    _never_null = never_null("reason_code", "comment")

    @model_validator(mode="after")
    def _reasoned(self) -> ReviewIn:
        if self.decision != ReviewDecision.approve and self.reason_code is None:
            raise ValueError(
                "Un motif (reason_code) est obligatoire pour rejeter ou demander des modifications."
            )
        if self.reason_code == ReasonCode.other and not (self.comment or "").strip():
            raise ValueError("Le motif « other » demande un commentaire.")
        return self


class StatusIn(StrictModel):
    version: Version
    status: StatusMove = Field(
        description="contacted : partenaires contactés (depuis approved) ; proposed : retour "
        "en revue (depuis changes_requested)."
    )


_AMOUNT_TEXT = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,2})?$")
_MAX_AMOUNT = Decimal("999999999999.99")


def _amount(value: object) -> object:
    # A number of euros to the cent, or its decimal writing: "1234.50".
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("Un montant en euros est attendu (nombre ou chaîne « 1234.50 »).")
    if isinstance(value, str) and not _AMOUNT_TEXT.match(value):
        raise ValueError("Montant illisible : écrivez-le « 1234.50 » (2 décimales au plus).")
    amount = Decimal(str(value))
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("Un montant a 2 décimales au plus.")
    return amount


Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    Field(ge=0, le=_MAX_AMOUNT),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 999999999999.99, "multipleOf": 0.01},
                {"type": "string", "pattern": _AMOUNT_TEXT.pattern, "maxLength": 15},
            ],
            "description": "Montant obtenu en euros, au plus 2 décimales (nombre ou chaîne).",
        }
    ),
]


def _outcome_schema(schema: dict[str, Any]) -> None:
    complete_branches(
        schema,
        [
            {"properties": {"status": {"enum": ["won"]}}},
            {
                "not": {"required": ["amount"]},
                "properties": {"status": {"enum": ["submitted", "lost"]}},
            },
        ],
    )


class OutcomeIn(StrictModel):
    model_config = ConfigDict(json_schema_extra=_outcome_schema)

    version: Version
    status: OutcomeStatus
    on: IsoDate = Field(
        description="Date du dépôt (submitted) ou de la décision du financeur (won, lost), "
        "AAAA-MM-JJ."
    )
    amount: Amount = absent("Montant obtenu, seulement pour won.")

    _never_null = never_null("amount")

    @model_validator(mode="after")
    def _amount_for_won(self) -> OutcomeIn:
        if self.amount is not None and self.status != "won":
            raise ValueError("Un montant ne se donne qu'avec le statut won.")
        return self


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
    created_at: UtcDatetime


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
    decided_at: UtcDatetime | None
    submitted_on: date | None
    outcome_on: date | None
    amount: Decimal | None = Field(description="Montant obtenu en euros (won).")
    created_at: UtcDatetime
    updated_at: UtcDatetime


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
