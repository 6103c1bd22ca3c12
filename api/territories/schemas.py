"""Territory responses."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TerritoryBrief(BaseModel):
    ref: str = Field(
        description="Typed reference, e.g. 'commune:13001'.", examples=["commune:13001"]
    )
    level: str = Field(description="arrondissement, commune, epci, departement or region.")
    code: str = Field(description="INSEE code, or SIREN for an EPCI.")
    name: str


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


class TerritoryPage(BaseModel):
    items: list[TerritoryOut]
    total: int = Field(description="Number of matches before the limit.")
