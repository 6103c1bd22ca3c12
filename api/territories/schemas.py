"""Territory responses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from matcher.territory import TERRITORY_REF_PATTERN

# A territory reference as the OpenAPI document describes it. The pattern is documented,
# not enforced: the reader also takes other cases, spaces and digits of other scripts.
TERRITORY_REF_SCHEMA: dict[str, Any] = {"pattern": TERRITORY_REF_PATTERN}
TerritoryRefText = Annotated[
    str,
    Field(
        max_length=40,
        json_schema_extra=TERRITORY_REF_SCHEMA,
        examples=["commune:13001", "epci:200054807", "departement:13", "region:93", "13001"],
    ),
]


class TerritoryBrief(BaseModel):
    ref: str = Field(
        description="Typed reference, e.g. 'commune:13001'.", examples=["commune:13001"]
    )
    level: str = Field(description="arrondissement, commune, epci, departement or region.")
    code: str = Field(description="INSEE code, or SIREN for an EPCI.")
    name: str


class FormerCommune(BaseModel):
    """The commune of the past a request named, now part of the commune described."""

    code: str = Field(description="Its INSEE code (a déléguée may keep the current one's).")
    name: str | None = Field(
        description="Its name; null for a commune merged without délégation (the referential "
        "keeps only its code)."
    )
    status: Literal["deleguee", "associee", "ancienne"] = Field(
        description="deleguee: commune déléguée of a commune nouvelle; associee: commune "
        "associée; ancienne: merged without délégation."
    )
    note: str = Field(
        description="In French, what became of it.",
        examples=[
            "La Faute-sur-Mer (85307) n'est plus une commune : c'est une commune déléguée de "
            "L'Aiguillon-la-Presqu'île (85001), décrite ici."
        ],
    )


class TerritoryOut(TerritoryBrief):
    population: int | None = None
    subtype: str | None = Field(default=None, description="EPCI nature: CC, CA, CU, METRO.")
    postal_codes: list[str] = Field(default_factory=list)
    commune: TerritoryBrief | None = Field(
        default=None, description="For an arrondissement municipal, its commune."
    )
    epci: TerritoryBrief | None = None
    departement: TerritoryBrief | None = Field(
        default=None, description="Null for an EPCI that spans several départements."
    )
    region: TerritoryBrief | None = None
    formerly: FormerCommune | None = Field(
        default=None,
        description="Set when the request named a former commune (old INSEE code or old name "
        "of a commune déléguée, associée or merged): the current commune is described, and "
        "this says which former one was asked for. Null otherwise.",
    )


class TerritoryPage(BaseModel):
    items: list[TerritoryOut]
    total: int = Field(description="Number of matches before the limit.")
    notes: list[str] = Field(
        default_factory=list,
        description="In French, how the query was read when it was not taken as typed "
        "(a postal code whose leading zero was lost) or why nothing was found (a CEDEX "
        "code, an unknown département).",
    )
