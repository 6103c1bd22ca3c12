"""Search, partner suggestion and dismissal schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.organisations import OrganisationSummary
from api.schemas.territories import TerritoryBrief


class PartnerMode(StrEnum):
    complementary = "complementary"
    peer = "peer"


class Within(StrEnum):
    commune = "commune"
    epci = "epci"
    departement = "departement"
    region = "region"
    any = "any"


class StatementRef(BaseModel):
    id: int
    text: str


class ReasonOut(BaseModel):
    direction: str = Field(
        description="they_cover_me: their competency answers my need; i_cover_them: my "
        "competency answers their need; shared_need / shared_competency: we have the same."
    )
    mine: StatementRef
    theirs: StatementRef
    similarity: float = Field(description="How well the two statements match, 0 to 1.")


class SharedTerritory(TerritoryBrief):
    pass


class PartnerSuggestionOut(BaseModel):
    organisation: OrganisationSummary
    score: float = Field(description="Ranking score, 0 to 1 (territory weight included).")
    scores: dict[str, float] = Field(
        description="Per direction: they_cover_me, i_cover_them and reciprocal (complementary), "
        "or shared_need and shared_competency (peer)."
    )
    shared_territory: SharedTerritory | None = Field(
        description="The finest territory both work on (commune > EPCI > département > région)."
    )
    reasons: list[ReasonOut]


class PartnerPage(BaseModel):
    organisation_id: int
    mode: PartnerMode
    within: Within
    items: list[PartnerSuggestionOut]


class MatchedStatementOut(BaseModel):
    id: int
    text: str
    score: float = Field(description="How well this statement answers the query, 0 to 1.")
    similarity: float = Field(description="Dense (semantic) cosine similarity.")


class SearchHitOut(BaseModel):
    organisation: OrganisationSummary
    score: float
    statements: list[MatchedStatementOut] = Field(description="Its best-matching competencies.")


class SearchPage(BaseModel):
    query: str
    territory: TerritoryBrief | None
    items: list[SearchHitOut]


class DismissalIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    organisation_id: int = Field(
        ge=1, le=2**31 - 1, description="The suggested organisation to dismiss."
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = (
        Field(default=None, description="Why, in a few words (kept for the coordinator).")
    )


class DismissalOut(BaseModel):
    organisation: OrganisationSummary
    reason: str | None
    created_at: datetime
