"""Organisation requests and responses."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from api.kit.fields import (
    Email,
    Line200,
    Siren,
    StatementText,
    StrictModel,
    Text40,
    Text80,
    Text5000,
    UtcDatetime,
    Website,
    absent,
    never_null,
)
from api.territories.schemas import TerritoryBrief, TerritoryRefText
from models.enums import OrganisationKind, StatementKind, Visibility

# Enum fields accept their string values: strict mode would demand enum instances.
Kind = Annotated[OrganisationKind, Field(strict=False)]
SKind = Annotated[StatementKind, Field(strict=False)]
Vis = Annotated[Visibility, Field(strict=False)]


class StatementIn(StrictModel):
    kind: SKind = Field(description="competency: what we know how to do; need: what we look for.")
    text: StatementText = Field(
        description="The statement in French, 3 to 2,000 characters (3 at least that are not "
        "spaces); spaces and line breaks inside are stored as single spaces."
    )
    themes: list[Line200] = Field(default_factory=list, max_length=10)
    visibility: Vis = Field(
        default=Visibility.network,
        description="network: visible to every member; coordinator: only to the coordinator.",
    )


class ContactIn(StrictModel):
    name: Line200
    role: Line200 | None = None
    email: Email | None = Field(default=None, description="Blank means none.")
    phone: Text40 | None = None


class OrganisationIn(StrictModel):
    name: Line200 = Field(description="Name of the organisation.")
    kind: Kind
    legal_form: Text80 | None = Field(
        default=None, description="OPH, ESH, Coopérative Hlm, SEM, Association loi 1901…"
    )
    siren: Siren | None = Field(
        default=None,
        description="9-digit SIREN (spaces or dots between groups allowed); its Luhn key is "
        "checked, and a placeholder (one digit repeated) refused. Blank means none.",
    )
    website: Website | None = Field(
        default=None, description="http:// or https:// address. Blank means none."
    )
    description: Text5000 | None = None
    territories: list[TerritoryRefText] = Field(
        default_factory=list,
        max_length=200,
        description="Where the organisation works: 'commune:13001', 'epci:200054807', "
        "'departement:13', 'region:93', or a bare 5-character INSEE code or 9-digit SIREN. "
        "A bare 2–3 character code is ambiguous and refused; a reference that names no "
        "territory is a 404.",
        examples=[["commune:13001", "departement:13"]],
    )
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)
    statements: list[StatementIn] = Field(default_factory=list, max_length=100)


class StatementPatch(StrictModel):
    """Partial update of a statement: absent fields stay as they are; none may be null."""

    kind: SKind = absent("competency: what we know how to do; need: what we look for.")
    text: StatementText = absent("The statement in French, 3 to 2,000 characters.")
    themes: Annotated[list[Line200], Field(max_length=10)] = absent(
        "Replaces the themes; [] clears them."
    )
    visibility: Vis = absent(
        "network: visible to every member; coordinator: only to the organisation's members "
        "and the coordinator (never matched against other organisations)."
    )

    _never_null = never_null("kind", "text", "themes", "visibility")


class StatementOut(BaseModel):
    id: int
    organisation_id: int
    kind: StatementKind
    text: str
    themes: list[str]
    visibility: Visibility = Field(
        description="network: visible to every member; coordinator: shown only to the "
        "organisation's members and the coordinator."
    )


class ContactOut(BaseModel):
    name: str
    role: str | None
    email: str | None
    phone: str | None


class OrganisationSummary(BaseModel):
    id: int
    name: str
    kind: Kind
    legal_form: str | None
    territories: list[TerritoryBrief]


class OrganisationPatch(StrictModel):
    """Partial update (JSON merge semantics): an absent field stays as it is; null clears an
    optional one (legal_form, siren, website, description); territories and contacts, when
    given, replace the current ones ([] clears them). Statements change through their own
    endpoints."""

    name: Line200 = absent("Name of the organisation; never null.")
    kind: Kind = absent("Kind of organisation; never null.")
    legal_form: Text80 | None = Field(
        default=None, description="OPH, ESH, Coopérative Hlm, SEM, Association loi 1901…"
    )
    siren: Siren | None = Field(
        default=None, description="9-digit SIREN; its Luhn key is checked. Blank means none."
    )
    website: Website | None = None
    description: Text5000 | None = None
    territories: Annotated[list[TerritoryRefText], Field(max_length=200)] = absent(
        "Replaces the territories (same references as on creation); never null."
    )
    contacts: Annotated[list[ContactIn], Field(max_length=50)] = absent(
        "Replaces the contacts; never null."
    )

    _never_null = never_null("name", "kind", "territories", "contacts")


class OrganisationOut(OrganisationSummary):
    siren: str | None
    website: str | None
    description: str | None
    contacts: list[ContactOut] | None = Field(
        description="Shown only to the organisation's members and the coordinator; null for "
        "everyone else."
    )
    statements: list[StatementOut] = Field(
        description="Its statements; those of visibility coordinator only for its members and "
        "the coordinator."
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime


class OrganisationSort(StrEnum):
    name = "name"
    name_desc = "-name"
    created_at = "created_at"
    created_at_desc = "-created_at"


class OrganisationPage(BaseModel):
    items: list[OrganisationSummary]
    total: int = Field(description="How many organisations the filters keep, all pages together.")
    limit: int
    offset: int | None = Field(
        description="Position of this page's first item when asked by offset; null when asked "
        "by cursor."
    )
    next_cursor: str | None = Field(
        description="Opaque: pass it as `cursor` (same filters and sort) for the next page; "
        "null on the last page."
    )


class StatementPage(BaseModel):
    items: list[StatementOut]
    total: int = Field(description="How many statements the filters keep, all pages together.")
    limit: int
    offset: int | None = Field(
        description="Position of this page's first item when asked by offset; null when asked "
        "by cursor."
    )
    next_cursor: str | None = Field(
        description="Opaque: pass it as `cursor` (same filters) for the next page; null on the "
        "last page."
    )
