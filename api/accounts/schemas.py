"""Accounts and tokens as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.kit.fields import (
    IsoDatetime,
    Line200,
    RowId,
    StrictModel,
    UtcDatetime,
    absent,
    complete_branches,
    never_null,
)
from models.enums import AccountRole

# The three kinds of request, as the OpenAPI document states them (TokenIn checks the
# same): a token for an existing account; a new member with its organisations; a new
# coordinator or admin, who belongs to none.
_TOKEN_KINDS: list[dict[str, Any]] = [
    {
        "title": "Existing account",
        "required": ["account_id"],
        "not": {"required": ["role"]},
        "properties": {"organisation_ids": {"maxItems": 0}},
    },
    {
        "title": "New member",
        "required": ["name", "organisation_ids"],
        "not": {"required": ["account_id"]},
        "properties": {"role": {"enum": ["member"]}, "organisation_ids": {"minItems": 1}},
    },
    {
        "title": "New coordinator or admin",
        "required": ["name", "role"],
        "not": {"required": ["account_id"]},
        "properties": {
            "role": {"enum": ["coordinator", "admin"]},
            "organisation_ids": {"maxItems": 0},
        },
    },
]


def _token_schema(schema: dict[str, Any]) -> None:
    complete_branches(schema, _TOKEN_KINDS)


class TokenIn(StrictModel):
    """A new token, for a new account (`name`, `role`, `organisation_ids`) or for an
    existing one (`account_id`, `name` then naming the token)."""

    model_config = ConfigDict(json_schema_extra=_token_schema)

    account_id: RowId = absent("Compte existant.")
    name: Line200 = absent("Nom du compte ou du jeton.")
    # Enum fields accept their JSON strings (strict mode would demand instances).
    role: Annotated[AccountRole, Field(strict=False)] = absent(
        "Rôle d'un nouveau compte (member par défaut)."
    )
    organisation_ids: list[RowId] = Field(
        default_factory=list,
        max_length=50,
        description="Organisations d'un compte membre (une au moins) ; aucune pour la "
        "coordination et les administrateurs.",
    )
    expires_at: IsoDatetime = absent("Expiration (ISO 8601 ; sans fuseau : UTC). Absente : jamais.")

    _never_null = never_null("account_id", "name", "role", "expires_at")

    @model_validator(mode="after")
    def _one_kind(self) -> TokenIn:
        if self.account_id is not None:
            if self.role is not None or self.organisation_ids:
                raise ValueError(
                    "Un jeton pour un compte existant ne change ni son rôle ni ses organisations."
                )
            return self
        if self.name is None:
            raise ValueError(
                "Nommez le nouveau compte (name) ou donnez un compte existant (account_id)."
            )
        if (self.role or AccountRole.member) == AccountRole.member:
            if not self.organisation_ids:
                raise ValueError("Un compte membre doit appartenir à au moins une organisation.")
        elif self.organisation_ids:
            raise ValueError(
                "Seuls les comptes membres appartiennent à des organisations "
                "(la coordination et les administrateurs voient tout le réseau)."
            )
        return self


class AccountOut(BaseModel):
    id: int
    name: str
    role: AccountRole
    organisation_ids: list[int]


class TokenOut(BaseModel):
    id: int
    prefix: str = Field(description="Partie publique du jeton (mlg_<prefix>_…).")
    label: str | None
    account: AccountOut
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="Le jeton entier : affiché cette seule fois, jamais stocké.")


class Me(BaseModel):
    account_id: int | None
    name: str
    role: AccountRole
    organisation_ids: list[int]
