"""Fields of request bodies whose rules the OpenAPI document states as the server applies
them: a length, and a `pattern` saying what text is read.

Each pattern is written with explicit character classes (no `\\s`, `\\w`, `.`), so that
JSON Schema validators, Python's `re` and Rust's regex engines read it alike, and each
check the server runs is the same rule written in Python (tests/api/test_fields.py holds
them equal on generated text). "Blank" is what Python's `str.isspace` calls whitespace,
which is what `str.split` and `str.strip` remove.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from matcher.identifiers import normalise_siren, siren_error

# Exactly the characters for which str.isspace() is true.
BLANK = "\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_SOLID = f"[^\\x00{BLANK}]"  # neither blank nor NUL

NO_NUL_PATTERN = "^[^\\x00]*$"
NOT_BLANK_PATTERN = f"^[{BLANK}]*{_SOLID}[^\\x00]*$"
STATEMENT_TEXT_PATTERN = f"^[{BLANK}]*(?:{_SOLID}[{BLANK}]*){{3}}[^\\x00]*$"
_NOT_AT = f"[^\\x00@{BLANK}]"
EMAIL_PATTERN = f"^[{BLANK}]*(?:{_NOT_AT}+@{_NOT_AT}+\\.{_NOT_AT}+[{BLANK}]*)?$"
WEBSITE_PATTERN = f"^[{BLANK}]*(?:https?://{_SOLID}{{4,}}[{BLANK}]*)?$"
# The syntax of a SIREN (9 digits, a space or a dot between groups); its Luhn key, which a
# pattern cannot check, is what the custom format `siren` says.
SIREN_PATTERN = f"^[{BLANK}]*(?:[0-9](?:[ .]?[0-9]){{8}}[{BLANK}]*)?$"


def _pattern(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern}


def storable(value: object) -> bool:
    """False for a string the databases cannot store: a NUL character (PostgreSQL refuses
    it) or a lone surrogate (not UTF-8); lists are checked item by item."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(storable(v) for v in value)
    return True


def drop_null_defaults(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a model: no `"default": null` on a property that cannot be
    null (a field of a partial update that may be left out, not sent as null)."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None and not _nullable(prop):
            del prop["default"]


def _nullable(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(
        branch.get("type") == "null" for branch in prop.get("anyOf", [])
    )


class StrictModel(BaseModel):
    """A request body: unknown fields refused, no coercion (`{"name": 12}` is an error, not
    "12"), and no text the databases could not store."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=drop_null_defaults)

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        if not storable(value):
            raise ValueError("Texte illisible : caractère nul ou hors Unicode.")
        return value


def solid_count(text: str) -> int:
    """How many characters of `text` are not blank."""
    return sum(not ch.isspace() for ch in text)


def _strip_not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Ce texte est vide (des espaces seulement).")
    return value


def _statement_text(value: str) -> str:
    if solid_count(value) < 3:
        raise ValueError("Le texte est vide ou trop court (3 caractères au moins, hors espaces).")
    return " ".join(value.split())


def _email(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    local, _, domain = value.partition("@")
    host, dot, tld = domain.rpartition(".")
    if (
        not local
        or not host
        or not dot
        or not tld
        or "@" in domain
        or any(ch.isspace() for ch in value)
    ):
        raise ValueError(f"« {value} » n'est pas une adresse e-mail.")
    return value


def _website(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    rest = value.removeprefix("https://") if value.startswith("https://") else None
    if rest is None and value.startswith("http://"):
        rest = value.removeprefix("http://")
    if rest is None or len(rest) < 4 or any(ch.isspace() for ch in value):
        raise ValueError(
            "L'adresse web doit commencer par http:// ou https://, suivi de 4 caractères au "
            "moins, sans espace."
        )
    return value


def _siren(value: str) -> str | None:
    if not value.strip():
        return None
    error = siren_error(value)
    if error:
        raise ValueError(error)
    return normalise_siren(value)


def _as_utc(moment: datetime) -> datetime:
    # SQLite gives timestamps back naive; they were written in UTC. One spelling in responses
    # whichever way the row was read (just written, or reloaded after a rollback).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _a_string(value: object) -> object:
    if not isinstance(value, str | datetime):
        raise ValueError("Une date ISO 8601 est attendue, entre guillemets.")
    return value


def whole_number(value: object) -> object:
    # JSON Schema's integers are numbers without a fraction: 7.0 is the integer 7 (strict
    # mode would refuse it). A string or a boolean stays refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A row id in a body: a whole number from 1 to 2**31 - 1.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(whole_number)]

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date(value: object) -> object:
    # Lax mode would read "0" as a Unix timestamp; the document says an ISO 8601 date.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("Une date AAAA-MM-JJ est attendue.")
    return date.fromisoformat(value)


# A calendar day, written AAAA-MM-JJ (a query parameter, or a JSON string).
IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    WithJsonSchema(
        {"type": "string", "format": "date", "pattern": _ISO_DATE.pattern, "maxLength": 10}
    ),
]

# Responses: every timestamp with its offset (RFC 3339 date-time).
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
# Requests: an ISO 8601 string (strict mode would want a datetime object; lax mode would
# also take a number of seconds, which the document does not say).
IsoDatetime = Annotated[datetime, Field(strict=False), BeforeValidator(_a_string)]

# A required one-line text: 1 to 200 characters, not blank, stored trimmed.
Line200 = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra=_pattern(NOT_BLANK_PATTERN)),
    AfterValidator(_strip_not_blank),
]
Text40 = Annotated[str, Field(max_length=40, json_schema_extra=_pattern(NO_NUL_PATTERN))]
Text80 = Annotated[str, Field(max_length=80, json_schema_extra=_pattern(NO_NUL_PATTERN))]
Text1000 = Annotated[str, Field(max_length=1000, json_schema_extra=_pattern(NO_NUL_PATTERN))]
Text2000 = Annotated[str, Field(max_length=2000, json_schema_extra=_pattern(NO_NUL_PATTERN))]
Text5000 = Annotated[str, Field(max_length=5000, json_schema_extra=_pattern(NO_NUL_PATTERN))]
StatementText = Annotated[
    str,
    Field(min_length=3, max_length=2000, json_schema_extra=_pattern(STATEMENT_TEXT_PATTERN)),
    AfterValidator(_statement_text),
]
# Blank means none (null).
Email = Annotated[
    str, Field(max_length=254, json_schema_extra=_pattern(EMAIL_PATTERN)), AfterValidator(_email)
]
Website = Annotated[
    str,
    Field(max_length=300, json_schema_extra=_pattern(WEBSITE_PATTERN)),
    AfterValidator(_website),
]
Siren = Annotated[
    str,
    Field(max_length=20, json_schema_extra={"pattern": SIREN_PATTERN, "format": "siren"}),
    AfterValidator(_siren),
]


def never_null(*fields: str) -> Any:
    """A validator refusing null for `fields` of a partial update (absent: unchanged)."""

    def check(value: object) -> object:
        if value is None:
            raise ValueError(
                "Ce champ ne peut pas être null : omettez-le pour le laisser tel quel."
            )
        return value

    return field_validator(*fields, mode="before")(check)


def complete_branches(
    schema: dict[str, Any], kinds: list[dict[str, Any]], *, title: str = ""
) -> None:
    """`json_schema_extra` helper: `schema` becomes the `anyOf` of `kinds` (the body's
    kinds of request, each a partial schema: required, not, properties overriding some),
    each made complete (every property, with its own constraints and the kind's), so that
    generators reading one branch at a time produce valid bodies."""
    drop_null_defaults(schema)
    properties: dict[str, Any] = schema["properties"]
    schema["anyOf"] = [
        {
            **kind,
            "additionalProperties": False,
            "properties": {
                name: {**prop, **kind.get("properties", {}).get(name, {})}
                for name, prop in properties.items()
            },
        }
        for kind in kinds
    ]


def absent(description: str) -> Any:
    """`Field` of an optional field that may be left out but not sent as null (None stands
    for "absent" on the server side; `drop_null_defaults` keeps the null default out of the
    document)."""
    return Field(default=None, description=description)
