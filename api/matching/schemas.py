"""Search, partner suggestion and dismissal schemas."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from api.kit.fields import RowId, StrictModel, Text1000, UtcDatetime
from api.organisations.schemas import OrganisationSummary
from api.territories.schemas import TerritoryBrief


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
    strength: float = Field(
        description="How well the need of this pair is answered, 0 to 1: for they_cover_me, "
        "by the whole organisation (its best statement, its profile and their words, as a "
        "search for my need would score it); otherwise the pair's similarity. Below "
        "MAILLAGE_PARTNER_STRONG_REASON a reason is weak."
    )


class SharedTerritory(TerritoryBrief):
    pass


class PartnerSuggestionOut(BaseModel):
    organisation: OrganisationSummary
    score: float = Field(
        description="Ranking score, 0 to 1 (territory included). Complementary: how well it "
        "answers my best-answered need, lifted a little by reciprocity (what I answer of its "
        "needs). Suggestions whose best reason is weak come after all the others."
    )
    scores: dict[str, float] = Field(
        description="Per direction: they_cover_me, i_cover_them and reciprocal (complementary), "
        "or shared_need and shared_competency (peer)."
    )
    shared_territory: SharedTerritory | None = Field(
        description="The finest territory both work on (commune > EPCI > département > région)."
    )
    answers_my_needs: list[ReasonOut] = Field(
        description="Complementary mode: which of my needs this organisation answers, the "
        "best answered first, each with its statement that answers it."
    )
    needs_i_answer: list[ReasonOut] = Field(
        description="Complementary mode: which of its needs my competencies answer, best first."
    )
    reasons: list[ReasonOut] = Field(
        description="Every statement pair behind the suggestion, both directions (or shared "
        "needs and competencies in peer mode), strongest first within each direction."
    )


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
    read_as: str | None = Field(
        default=None,
        description="The query as searched when some of its words were taken for typing "
        'mistakes and corrected ("acceuil" read as "accueil"); null when it was '
        "searched as written.",
    )
    territory: TerritoryBrief | None
    items: list[SearchHitOut]


class DismissalIn(StrictModel):
    organisation_id: RowId = Field(description="The suggested organisation to dismiss.")
    reason: Text1000 | None = Field(
        default=None, description="Why, in a few words (kept for the coordinator)."
    )


class DismissalOut(BaseModel):
    organisation: OrganisationSummary
    reason: str | None
    created_at: UtcDatetime
