"""Accounts and their bearer tokens: creation, listing, revocation, and authentication.

A token reads `mlg_<prefix>_<secret>`: the prefix (8 characters, stored as is) finds its
row, the secret (32 random bytes, URL-safe base64) is stored only as its SHA-256 and
compared in constant time (`hmac.compare_digest`). High-entropy random secrets need no
slow password hash (no dictionary to guess from); SHA-256 is what GitHub and PyPI tokens
use for the same job.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from api.accounts.principal import Principal
from api.kit.errors import Conflict, InvalidInput, NotFound, Unauthorized
from models import Account, ApiToken, Organisation, account_organisations
from models.enums import AccountKind, AccountRole

TOKEN_SCHEME = "mlg"
PREFIX_LENGTH = 8


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: `secret` is the whole bearer token, shown once, never stored."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(raw: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token, else None."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_SCHEME or len(parts[1]) != PREFIX_LENGTH:
        return None
    return parts[1], parts[2]


def token_prefix(raw: str) -> str | None:
    """The public part of a well-formed token (what rate limits count failures by)."""
    parts = _split(raw.strip())
    return parts[0] if parts else None


def create_account(
    session: Session,
    *,
    name: str,
    role: AccountRole,
    organisation_ids: list[int] | None = None,
    email: str | None = None,
    kind: AccountKind = AccountKind.machine,
) -> Account:
    """A new account. A member must belong to at least one existing organisation; the
    coordinator and admins belong to none. Raises InvalidInput, NotFound."""
    organisation_ids = sorted(set(organisation_ids or []))
    if role == AccountRole.member and not organisation_ids:
        raise InvalidInput("Un compte membre doit appartenir à au moins une organisation.")
    if role != AccountRole.member and organisation_ids:
        raise InvalidInput(
            "Seuls les comptes membres appartiennent à des organisations "
            "(la coordination et les administrateurs voient tout le réseau)."
        )
    orgs = list(session.scalars(select(Organisation).where(Organisation.id.in_(organisation_ids))))
    missing = set(organisation_ids) - {o.id for o in orgs}
    if missing:
        raise NotFound(f"Aucune organisation n° {min(missing)}.")
    account = Account(name=name, role=role, kind=kind, email=email, organisations=orgs)
    session.add(account)
    session.flush()
    return account


def issue_token(
    session: Session, account: Account, *, label: str | None = None, expires_at: datetime | None
) -> IssuedToken:
    """A new token for the account; the returned secret is the only copy."""
    if expires_at is not None and expires_at <= datetime.now(UTC):
        # Well formed, but the clock has gone past it: a conflict with the present.
        raise Conflict("La date d'expiration est déjà passée : le jeton naîtrait expiré.")
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if session.scalar(select(ApiToken.id).where(ApiToken.prefix == prefix)) is not None:
            continue
        secret = secrets.token_urlsafe(32)
        try:
            with session.begin_nested():
                token = ApiToken(
                    account=account,
                    prefix=prefix,
                    token_hash=_digest(secret),
                    label=label,
                    expires_at=expires_at,
                )
                session.add(token)
        except IntegrityError:  # a concurrent request drew the same prefix: draw again
            continue
        return IssuedToken(token, f"{TOKEN_SCHEME}_{prefix}_{secret}")


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, newest first, with its account and the account's organisations."""
    return list(
        session.scalars(
            select(ApiToken)
            .options(selectinload(ApiToken.account).selectinload(Account.organisations))
            .order_by(ApiToken.id.desc())
        )
    )


def find_token(session: Session, ref: str) -> ApiToken:
    """A token by id or by prefix. Raises NotFound."""
    token = None
    if ref.isdigit() and len(ref) < 10:
        token = session.get(ApiToken, int(ref))
    if token is None:
        token = session.scalar(select(ApiToken).where(ApiToken.prefix == ref))
    if token is None:
        raise NotFound(f"Aucun jeton « {ref} ».")
    return token


def revoke_token(session: Session, token: ApiToken) -> bool:
    """Revoke a token (at once: the next request with it gets a 401). False if it
    already was."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = datetime.now(UTC)
    session.flush()
    return True


def authenticate(session: Session, raw: str) -> Principal:
    """The principal a bearer token stands for. Raises Unauthorized (French detail) for an
    unknown, malformed, revoked or expired token, or a deactivated account."""
    parts = _split(raw.strip())
    if parts is None:
        raise Unauthorized("Jeton d'accès mal formé : il commence par « mlg_ ».")
    prefix, secret = parts
    # Plain rows, not ORM objects: every request with a token runs this.
    token = session.execute(
        select(
            ApiToken.token_hash,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            Account.id,
            Account.active,
            Account.role,
            Account.name,
        )
        .join(Account, Account.id == ApiToken.account_id)
        .where(ApiToken.prefix == prefix)
    ).first()
    # Compared even when no row matched, so that timing tells nothing about prefixes.
    expected = token.token_hash if token is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(secret)) or token is None:
        raise Unauthorized("Jeton d'accès inconnu.")
    if token.revoked_at is not None:
        raise Unauthorized("Ce jeton d'accès a été révoqué.")
    if token.expires_at is not None and _aware(token.expires_at) <= datetime.now(UTC):
        raise Unauthorized("Ce jeton d'accès a expiré.")
    if not token.active:
        raise Unauthorized("Ce compte est désactivé.")
    organisation_ids = session.scalars(
        select(account_organisations.c.organisation_id).where(
            account_organisations.c.account_id == token.id
        )
    ).all()
    return Principal(
        account_id=token.id,
        role=token.role,
        organisation_ids=frozenset(organisation_ids),
        name=token.name,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
