"""Call requests and responses."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from api.calls.vocabulary import canonical_legal_form, unique
from api.organisations.schemas import StrictModel, UtcDatetime
from api.territories.schemas import TerritoryBrief
from matcher.text import name_key
from models.enums import CallStatus, OrganisationKind

# Enum fields accept their string values: strict mode would demand enum instances.
Kind = Annotated[OrganisationKind, Field(strict=False)]
Status = Annotated[CallStatus, Field(strict=False)]

# The perimeter reference that means all of France.
FRANCE = "France"
MAX_DESCRIPTION = 50_000
MAX_REQUIREMENTS = 30

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date(value: object) -> object:
    """Only an ISO date string (or a date, from Python): a number is not a date."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        raise ValueError("Date attendue au format AAAA-MM-JJ (par exemple 2027-03-31).")
    return value.strip()


def _plausible(value: date) -> date:
    if not 2000 <= value.year <= 2100:
        raise ValueError(f"Date invraisemblable : {value.isoformat()} (années 2000 à 2100).")
    return value


IsoDate = Annotated[
    date, BeforeValidator(_iso_date), Field(strict=False), AfterValidator(_plausible)
]


def _check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("http://", "https://")) or len(value) < 11 or " " in value:
        raise ValueError(
            "L'adresse web doit commencer par http:// ou https:// et ne pas contenir d'espace."
        )
    return value


def _check_title(value: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if len(text) < 3:
        raise ValueError("Le titre est vide ou trop court (3 caractères au moins).")
    return text


def _check_requirement(value: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if len(text) < 3:
        raise ValueError("L'exigence est vide ou trop courte (3 caractères au moins).")
    return text


def _no_duplicate_requirement(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    seen: dict[str, int] = {}
    for index, text in enumerate(values):
        key = name_key(text)
        if key in seen:
            raise ValueError(
                f"Exigence en double : la n° {index + 1} répète la n° {seen[key] + 1}."
            )
        seen[key] = index
    return values


def _legal_forms(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return unique(canonical_legal_form(v) for v in values)


def _kinds(values: list[OrganisationKind] | None) -> list[OrganisationKind] | None:
    return None if values is None else list(dict.fromkeys(values))


def _distinct(values: list[str] | None) -> list[str] | None:
    return None if values is None else unique(values)


def _perimeter_ref(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise ValueError("Référence de territoire vide.")
    return FRANCE if name_key(text) == "france" else text


Title = Annotated[str, Field(max_length=300), AfterValidator(_check_title)]
Requirement = Annotated[str, Field(max_length=2000), AfterValidator(_check_requirement)]
Requirements = Annotated[
    list[Requirement], Field(max_length=MAX_REQUIREMENTS), AfterValidator(_no_duplicate_requirement)
]
PerimeterRef = Annotated[str, Field(max_length=60), AfterValidator(_perimeter_ref)]
Perimeter = Annotated[list[PerimeterRef], Field(min_length=1, max_length=200)]
Funders = Annotated[list[Text300], Field(max_length=20), AfterValidator(_distinct)]
Kinds = Annotated[list[Kind], Field(max_length=6), AfterValidator(_kinds)]
LegalForms = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]],
    Field(max_length=20),
    AfterValidator(_legal_forms),
]
Themes = Annotated[list[Text200], Field(max_length=20), AfterValidator(_distinct)]
Url = Annotated[str | None, Field(max_length=500), AfterValidator(_check_url)]
Source = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9._-]*$"
    ),
]
ExternalId = Annotated[
    str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
]
Description = Annotated[str | None, Field(max_length=MAX_DESCRIPTION)]

_DESCRIPTIONS: dict[str, str] = {
    "title": "Title of the call, 3 to 300 characters.",
    "funders": "Who funds it (several when co-funded): Région Sud, Banque des Territoires…",
    "description": "Plain text, up to 50,000 characters.",
    "requirements": "Short statements of what answering takes (3 to 2,000 characters each, "
    "30 at most), matched against organisations' competencies; their order is kept.",
    "perimeter": "Where the call applies: territory references of any level "
    "('commune:13001', 'epci:200054807', 'departement:13', 'region:93', a bare INSEE code "
    "or EPCI SIREN), or 'France' for everywhere (which makes any other reference moot).",
    "eligible_kinds": "Kinds of organisation that may answer. With eligible_legal_forms: an "
    "organisation of a listed kind or of a listed legal form is eligible; both empty: "
    "every organisation.",
    "eligible_legal_forms": "Legal forms that may answer. The Hlm forms are read however "
    'they are spelt and stored as OPH, ESH, Coopérative Hlm, SEM ("SA d\'HLM" is ESH); '
    "other forms are kept as given.",
    "opens_on": "Opening date (AAAA-MM-JJ), if any.",
    "deadline": "Last day to apply (AAAA-MM-JJ); null for a permanent call. Once it has "
    "passed the call reads as closed and leaves the default listing.",
    "url": "Page of the call (http:// or https://).",
    "themes": "Themes, as the digest and the theme filter read them.",
    "aid_types": "Subvention, Prêt, Ingénierie technique…",
    "source": "Where the call comes from (lower-case, digits, '.', '_' or '-'): 'manual' "
    "for one written here, 'aides-territoires' for the national catalogue…",
    "external_id": "Its id in that source; (source, external_id) is unique.",
    "status": "draft (seen by the coordination only), open, closed (before its deadline) "
    "or archived (left out of every listing but status=archived).",
}


def _field(name: str, **kwargs: Any) -> Any:
    return Field(description=_DESCRIPTIONS[name], **kwargs)


class CallIn(StrictModel):
    title: Title = _field("title")
    funders: Funders = _field("funders", default_factory=list)
    description: Description = _field("description", default=None)
    requirements: Requirements = _field("requirements", default_factory=list)
    perimeter: Perimeter = _field("perimeter", examples=[["departement:13"], ["France"]])
    eligible_kinds: Kinds = _field("eligible_kinds", default_factory=list)
    eligible_legal_forms: LegalForms = _field(
        "eligible_legal_forms", default_factory=list, examples=[["OPH", "ESH"]]
    )
    opens_on: IsoDate | None = _field("opens_on", default=None)
    deadline: IsoDate | None = _field("deadline", default=None)
    url: Url = _field("url", default=None)
    themes: Themes = _field("themes", default_factory=list)
    aid_types: Themes = _field("aid_types", default_factory=list)
    source: Source = _field("source", default="manual")
    external_id: ExternalId = _field("external_id", default=None)
    status: Status = _field("status", default=CallStatus.open)

    @model_validator(mode="after")
    def _dates_in_order(self) -> CallIn:
        check_dates(self.opens_on, self.deadline)
        return self


def check_dates(opens_on: date | None, deadline: date | None) -> None:
    """ValueError (French) when the call would close before it opens."""
    if opens_on is not None and deadline is not None and deadline < opens_on:
        raise ValueError(
            f"La date limite ({deadline.isoformat()}) précède l'ouverture ({opens_on.isoformat()})."
        )


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("Ce champ ne peut pas être null : omettez-le pour le laisser tel quel.")
    return value


class CallPatch(StrictModel):
    """Partial update (JSON merge semantics): an absent field stays as it is; null clears an
    optional one (description, opens_on, deadline, url, external_id); lists, when given,
    replace the current ones ([] clears them; perimeter never empty)."""

    title: Title | None = _field("title", default=None)
    funders: Funders | None = _field("funders", default=None)
    description: Description = _field("description", default=None)
    requirements: Requirements | None = _field("requirements", default=None)
    perimeter: Perimeter | None = _field("perimeter", default=None)
    eligible_kinds: Kinds | None = _field("eligible_kinds", default=None)
    eligible_legal_forms: LegalForms | None = _field("eligible_legal_forms", default=None)
    opens_on: IsoDate | None = _field("opens_on", default=None)
    deadline: IsoDate | None = _field("deadline", default=None)
    url: Url = _field("url", default=None)
    themes: Themes | None = _field("themes", default=None)
    aid_types: Themes | None = _field("aid_types", default=None)
    source: Source | None = _field("source", default=None)
    external_id: ExternalId = _field("external_id", default=None)
    status: Status | None = _field("status", default=None)

    _never_null = field_validator(
        "title",
        "funders",
        "requirements",
        "perimeter",
        "eligible_kinds",
        "eligible_legal_forms",
        "themes",
        "aid_types",
        "source",
        "status",
        mode="before",
    )(_not_null)


class RequirementOut(BaseModel):
    id: int
    position: int = Field(description="Its place in the call's list, from 0.")
    text: str


class CallSummary(BaseModel):
    id: int
    title: str
    funders: list[str]
    perimeter: list[TerritoryBrief] = Field(
        description="Territories of any level; all of France is "
        "{'ref': 'France', 'level': 'pays', 'code': 'FR', 'name': 'France'}."
    )
    eligible_kinds: list[OrganisationKind]
    eligible_legal_forms: list[str]
    opens_on: date | None
    deadline: date | None = Field(description="Last day to apply; null for a permanent call.")
    days_left: int | None = Field(
        description="Days from today to the deadline (0: today is the last day); null for a "
        "permanent call and for a call that is not open."
    )
    url: str | None
    themes: list[str]
    aid_types: list[str]
    source: str
    external_id: str | None
    status: CallStatus = Field(
        description="draft, open, closed (by hand, or its deadline has passed) or archived."
    )


class CallOut(CallSummary):
    description: str | None
    requirements: list[RequirementOut]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CallSort(StrEnum):
    deadline = "deadline"
    deadline_desc = "-deadline"
    title_asc = "title"
    title_desc = "-title"
    created_at = "created_at"
    created_at_desc = "-created_at"


class CallState(StrEnum):
    """Which calls a listing keeps, by status as read today."""

    open = "open"
    closed = "closed"
    draft = "draft"
    archived = "archived"
    any = "any"


class CallPage(BaseModel):
    items: list[CallSummary]
    total: int = Field(description="How many calls the filters keep, all pages together.")
    limit: int
    offset: int | None = Field(
        description="Position of this page's first item when asked by offset; null when asked "
        "by cursor."
    )
    next_cursor: str | None = Field(
        description="Opaque: pass it as `cursor` (same filters and sort) for the next page; "
        "null on the last page."
    )
