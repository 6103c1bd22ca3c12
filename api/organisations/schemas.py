"""Organisation requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from api.territories.schemas import TerritoryBrief
from matcher.identifiers import normalise_siren, siren_error
from models.enums import OrganisationKind, StatementKind, Visibility

# Enum fields accept their string values: strict mode would demand enum instances.
Kind = Annotated[OrganisationKind, Field(strict=False)]
SKind = Annotated[StatementKind, Field(strict=False)]
Vis = Annotated[Visibility, Field(strict=False)]

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


class StrictModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


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


class StatementOut(BaseModel):
    id: int
    kind: StatementKind
    text: str
    themes: list[str]


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


class OrganisationOut(OrganisationSummary):
    siren: str | None
    website: str | None
    description: str | None
    contacts: list[ContactOut]
    statements: list[StatementOut]
    created_at: datetime
    updated_at: datetime


class OrganisationPage(BaseModel):
    items: list[OrganisationSummary]
    total: int
    limit: int
    offset: int
