"""Accounts and tokens as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.enums import AccountRole


class TokenIn(BaseModel):
    """A new token, for a new account (`name`, `role`, `organisation_ids`) or for an
    existing one (`account_id`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    account_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Nom du compte ou du jeton."
    )
    # Enum and date fields accept their JSON strings (strict mode would demand instances).
    role: Annotated[AccountRole | None, Field(strict=False)] = Field(
        default=None, description="Rôle d'un nouveau compte."
    )
    organisation_ids: list[int] = Field(
        default_factory=list, max_length=50, description="Organisations d'un compte membre."
    )
    expires_at: Annotated[datetime | None, Field(strict=False)] = Field(
        default=None, description="Expiration (ISO 8601 ; sans fuseau : UTC). Aucune : jamais."
    )


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
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="Le jeton entier : affiché cette seule fois, jamais stocké.")


class Me(BaseModel):
    account_id: int | None
    name: str
    role: AccountRole
    organisation_ids: list[int]
