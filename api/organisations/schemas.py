"""Organisation requests and responses."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from api.territories.schemas import TerritoryBrief
from matcher.identifiers import normalise_siren, siren_error
from models.enums import OrganisationKind, StatementKind, Visibility

# Enum fields accept their string values: strict mode would demand enum instances.
Kind = Annotated[OrganisationKind, Field(strict=False)]
SKind = Annotated[StatementKind, Field(strict=False)]
Vis = Annotated[Visibility, Field(strict=False)]


def _as_utc(moment: datetime) -> datetime:
    # SQLite gives timestamps back naive; they were written in UTC. One spelling in responses
    # whichever way the row was read (just written, or reloaded after a rollback).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _check_siren(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    error = siren_error(value)
    if error:
        raise ValueError(error)
    return normalise_siren(value)


def _check_website(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("http://", "https://")) or len(value) < 11 or " " in value:
        raise ValueError(
            "L'adresse web doit commencer par http:// ou https:// et ne pas contenir d'espace."
        )
    return value


def _check_email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or " " in value:
        raise ValueError(f"« {value} » n'est pas une adresse e-mail.")
    return value


def _check_statement_text(value: str) -> str:
    text = " ".join(value.split())
    if len(text) < 3:
        raise ValueError("Le texte est vide ou trop court (3 caractères au moins).")
    return text


def _readable(value: object) -> bool:
    """False for a string the databases cannot store: a NUL character (PostgreSQL refuses
    it) or a lone surrogate (not UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_readable(v) for v in value)
    return True


class StrictModel(BaseModel):
    """A request body: unknown fields refused, no coercion (`{"name": 12}` is an error, not
    "12"), and no text the databases could not store."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        if not _readable(value):
            raise ValueError("Texte illisible : caractère nul ou hors Unicode.")
        return value


class StatementIn(StrictModel):
    kind: SKind = Field(description="competency: what we know how to do; need: what we look for.")
    text: Annotated[str, Field(max_length=2000), AfterValidator(_check_statement_text)] = Field(
        description="The statement in French, 3 to 2,000 characters."
    )
    themes: list[Text200] = Field(default_factory=list, max_length=10)
    visibility: Vis = Field(
        default=Visibility.network,
        description="network: visible to every member; coordinator: only to the coordinator.",
    )


class ContactIn(StrictModel):
    name: Text200
    role: Text200 | None = None
    email: Annotated[str | None, Field(max_length=254), AfterValidator(_check_email)] = None
    phone: Annotated[str | None, Field(max_length=40)] = None


class OrganisationIn(StrictModel):
    name: Text200 = Field(description="Name of the organisation.")
    kind: Kind
    legal_form: Annotated[str | None, Field(max_length=80)] = Field(
        default=None, description="OPH, ESH, Coopérative Hlm, SEM, Association loi 1901…"
    )
    siren: Annotated[str | None, Field(max_length=20), AfterValidator(_check_siren)] = Field(
        default=None, description="9-digit SIREN; its Luhn key is checked."
    )
    website: Annotated[str | None, Field(max_length=300), AfterValidator(_check_website)] = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    territories: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list,
        max_length=200,
        description="Where the organisation works: 'commune:13001', 'epci:200054807', "
        "'departement:13', 'region:93', or a bare 5-character INSEE code or 9-digit SIREN. "
        "A bare 2–3 character code is ambiguous and refused.",
        examples=[["commune:13001", "departement:13"]],
    )
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)
    statements: list[StatementIn] = Field(default_factory=list, max_length=100)


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("Ce champ ne peut pas être null : omettez-le pour le laisser tel quel.")
    return value


class StatementPatch(StrictModel):
    """Partial update of a statement: absent fields stay as they are; none may be null."""

    kind: SKind | None = Field(
        default=None, description="competency: what we know how to do; need: what we look for."
    )
    text: Annotated[str, Field(max_length=2000), AfterValidator(_check_statement_text)] | None = (
        Field(default=None, description="The statement in French, 3 to 2,000 characters.")
    )
    themes: list[Text200] | None = Field(
        default=None, max_length=10, description="Replaces the themes; [] clears them."
    )
    visibility: Vis | None = Field(
        default=None,
        description="network: visible to every member; coordinator: only to the organisation's "
        "members and the coordinator (never matched against other organisations).",
    )

    _never_null = field_validator("kind", "text", "themes", "visibility", mode="before")(_not_null)


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

    name: Text200 | None = Field(default=None, description="Name of the organisation; never null.")
    kind: Kind | None = Field(default=None, description="Kind of organisation; never null.")
    legal_form: Annotated[str | None, Field(max_length=80)] = Field(
        default=None, description="OPH, ESH, Coopérative Hlm, SEM, Association loi 1901…"
    )
    siren: Annotated[str | None, Field(max_length=20), AfterValidator(_check_siren)] = Field(
        default=None, description="9-digit SIREN; its Luhn key is checked."
    )
    website: Annotated[str | None, Field(max_length=300), AfterValidator(_check_website)] = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    territories: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None,
        max_length=200,
        description="Replaces the territories (same references as on creation); never null.",
    )
    contacts: list[ContactIn] | None = Field(
        default=None, max_length=50, description="Replaces the contacts; never null."
    )

    _never_null = field_validator("name", "kind", "territories", "contacts", mode="before")(
        _not_null
    )


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
