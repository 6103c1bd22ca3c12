"""What the call fit, interest and consortium-proposal endpoints read and return."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from api.kit.fields import RowId, StrictModel, UtcDatetime, whole_number
from api.organisations.schemas import OrganisationSummary

# Whole numbers within bounds (1.0 is the integer 1, as in JSON Schema).
Size = Annotated[int, Field(ge=1, le=50), BeforeValidator(whole_number)]
Count = Annotated[int, Field(ge=1, le=10), BeforeValidator(whole_number)]


class RequirementOut(BaseModel):
    id: int
    position: int = Field(description="Order of the requirement in the call, from 0.")
    text: str


class StatementBrief(BaseModel):
    id: int
    text: str


class RequirementCoverageOut(BaseModel):
    """How one organisation answers one requirement."""

    requirement_id: int
    statement: StatementBrief | None = Field(
        description="Its competency that answers the requirement best (none: no competency)."
    )
    similarity: float = Field(
        description="Calibrated probability (0–1) that the organisation answers the "
        "requirement: its best competency, its whole profile and their words."
    )
    statement_similarity: float = Field(description="The same for that competency alone (0–1).")
    covered: bool = Field(description="similarity reaches the strong-reason threshold.")


class EligibleOrganisationOut(BaseModel):
    organisation: OrganisationSummary
    score: float = Field(
        description="Fit to the call (0–1): power mean of order 3 of `similarity` over the "
        "requirements (one requirement answered well counts more than several half answered)."
    )
    covered: int = Field(description="How many requirements it covers.")
    coverage: list[RequirementCoverageOut]


class CallOrganisationsPage(BaseModel):
    call_id: int
    total: int = Field(description="Eligible organisations (not archived).")
    limit: int
    offset: int
    requirements: list[RequirementOut]
    items: list[EligibleOrganisationOut]


class CallBrief(BaseModel):
    id: int
    title: str
    deadline: date | None
    url: str | None


class OrganisationCallOut(BaseModel):
    call: CallBrief
    score: float = Field(
        description="Fit to the call (0–1): power mean of order 3 of `similarity` over the "
        "call's requirements (see the call ranking's `score`)."
    )
    days_left: int | None = Field(description="Days until the deadline (none: permanent call).")
    interested: bool = Field(description="The organisation marked the call « intéressé ».")
    coverage: list[RequirementCoverageOut] = Field(
        description="Per requirement, the statement that makes the fit."
    )


class OrganisationCallsPage(BaseModel):
    organisation_id: int
    total: int = Field(description="Open calls the organisation is eligible for.")
    items: list[OrganisationCallOut]


class InterestIn(StrictModel):
    organisation_id: RowId = Field(description="The organisation you act for.")


class InterestOut(BaseModel):
    organisation: OrganisationSummary
    since: UtcDatetime


class InterestPage(BaseModel):
    """Who else is interested. A member sees the organisations interested on a territory
    overlapping its own only once its organisation has marked the call itself (mutual
    reveal); the coordinator sees all."""

    call_id: int
    organisation_id: int | None = Field(description="Whose view this is (none: coordinator).")
    interested: bool | None = Field(description="That organisation marked the call.")
    items: list[InterestOut]


class ConsortiumRequest(StrictModel):
    """Options of the composer; options that contradict each other (more members required
    than allowed, an organisation both included and excluded…) are a 409, as is a request
    these candidates cannot satisfy."""

    min_size: Size = Field(default=2, description="Members, lead included.")
    max_size: Size = Field(default=5, description="Members, lead included.")
    include: list[RowId] = Field(
        default_factory=list, max_length=50, description="Must be members."
    )
    exclude: list[RowId] = Field(
        default_factory=list, max_length=10_000, description="Must not be members."
    )
    lead: RowId | None = Field(default=None, description="The landlord who must lead.")
    alternatives: Count = Field(default=3, description="How many consortia.")


class CoverOut(BaseModel):
    requirement_id: int
    position: int
    text: str
    organisation_id: int | None
    statement: StatementBrief | None
    similarity: float
    covered: bool


class MemberOut(BaseModel):
    organisation: OrganisationSummary
    role: str = Field(description="lead or member.")
    covers: list[int] = Field(description="Ids of the requirements this member covers.")


class ProposedConsortiumOut(BaseModel):
    id: int
    call_id: int
    status: str
    version: int
    lead_id: int
    score: float = Field(description="The composer's value: Σ coverage plus bonuses.")
    coverage: float = Field(description="Mean best similarity over the requirements (0–1).")
    scores: dict[str, float]
    members: list[MemberOut]
    coverage_table: list[CoverOut]
    uncovered: list[int] = Field(description="Ids of the requirements no member covers.")
    new_pairs: int
    repeated_pairs: int
