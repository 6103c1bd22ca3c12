"""Signing in to the web pages: by a link sent by e-mail, or by pasting an API token.

A sign-in link carries, signed with the deployment's key (`api.kit.signing`, purpose
`sign-in`), the id of its `SignInLink` row and a random nonce whose SHA-256 only is stored.
It signs in once (`used_at`), within `LINK_MINUTES` (the signature's age and the row's
`expires_at` both say so), and only an active account. The link's address is the
configured public address (`Settings.base_url`), never the Host a request came with: a
forged Host must not send a victim a link to someone else's server.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.accounts.principal import Principal
from api.accounts.service import authenticate
from api.kit.errors import Unauthorized
from api.kit.mail import Mailer, MailError, compose, render
from api.kit.settings import Settings
from api.kit.signing import InvalidToken, Signer
from models import Account, ApiToken, SignInLink

log = logging.getLogger(__name__)

PURPOSE = "sign-in"
LINK_MINUTES = 30  # how long an e-mailed link signs in
LINK_PATH = "/connexion/lien"


class LinkRefused(Exception):
    """A sign-in link that cannot sign in: `message` says why, in French."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class IssuedLink:
    """A link just made: `url` is its only copy (the nonce is stored hashed)."""

    url: str
    account_id: int
    email: str | None
    expires_at: datetime


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def find_person(session: Session, email: str) -> Account | None:
    """The active account of this e-mail address (case ignored), None when there is none."""
    address = email.strip().lower()
    if not address:
        return None
    return session.scalar(
        select(Account).where(func.lower(Account.email) == address, Account.active.is_(True))
    )


def issue_link(
    session: Session, settings: Settings, account: Account, *, minutes: int = LINK_MINUTES
) -> IssuedLink:
    """A new single-use sign-in link for the account, valid `minutes` minutes."""
    nonce = secrets.token_urlsafe(24)
    expires_at = datetime.now(UTC) + timedelta(minutes=minutes)
    row = SignInLink(account_id=account.id, nonce_hash=_digest(nonce), expires_at=expires_at)
    session.add(row)
    session.flush()
    token = Signer(settings, PURPOSE).sign({"l": row.id, "n": nonce, "m": minutes})
    url = f"{settings.base_url}{LINK_PATH}?jeton={quote(token)}"
    return IssuedLink(url=url, account_id=account.id, email=account.email, expires_at=expires_at)


def _read(settings: Settings, token: str) -> tuple[int, str]:
    """(link id, nonce) of a well-signed, unexpired token. Raises LinkRefused."""
    if not token or len(token) > 500:
        raise LinkRefused("Ce lien de connexion est incomplet : copiez-le en entier.")
    signer = Signer(settings, PURPOSE)
    try:
        # Read once without an age, to learn the validity the link was made with.
        payload = signer.read(token)
        minutes = payload.get("m")
        if not isinstance(minutes, int) or not 1 <= minutes <= 7 * 24 * 60:
            raise InvalidToken(expired=False)
        payload = signer.read(token, max_age_seconds=minutes * 60)
    except InvalidToken as exc:
        if exc.expired:
            raise LinkRefused(
                "Ce lien de connexion a expiré : demandez-en un nouveau ci-dessous."
            ) from exc
        raise LinkRefused(
            "Ce lien de connexion n'est pas valide : demandez-en un nouveau ci-dessous."
        ) from exc
    link_id, nonce = payload.get("l"), payload.get("n")
    if not isinstance(link_id, int) or not isinstance(nonce, str):
        raise LinkRefused("Ce lien de connexion n'est pas valide : demandez-en un nouveau.")
    return link_id, nonce


def peek_link(session: Session, settings: Settings, token: str) -> Account:
    """The account a link would sign in, without using it (the page with the button).
    Raises LinkRefused."""
    return _usable(session, settings, token)[1]


def _usable(session: Session, settings: Settings, token: str) -> tuple[SignInLink, Account]:
    link_id, nonce = _read(settings, token)
    row = session.get(SignInLink, link_id, with_for_update=True)
    if row is None or not secrets.compare_digest(row.nonce_hash, _digest(nonce)):
        raise LinkRefused("Ce lien de connexion n'est pas valide : demandez-en un nouveau.")
    if row.used_at is not None:
        raise LinkRefused(
            "Ce lien de connexion a déjà servi : chaque lien ne sert qu'une fois. "
            "Demandez-en un nouveau ci-dessous."
        )
    if _aware(row.expires_at) <= datetime.now(UTC):
        raise LinkRefused("Ce lien de connexion a expiré : demandez-en un nouveau ci-dessous.")
    account = row.account
    if not account.active:
        raise LinkRefused("Ce compte est désactivé : adressez-vous à la coordination.")
    return row, account


def use_link(session: Session, settings: Settings, token: str) -> Principal:
    """Sign in with a link: marks it used (its row locked, so two clicks at once sign in
    once) and returns the account's principal. Raises LinkRefused."""
    row, account = _usable(session, settings, token)
    row.used_at = datetime.now(UTC)
    session.flush()
    return principal_of(account)


def principal_of(account: Account) -> Principal:
    return Principal(
        account_id=account.id,
        role=account.role,
        organisation_ids=frozenset(o.id for o in account.organisations),
        name=account.name,
    )


def sign_in_with_token(session: Session, raw: str) -> tuple[Principal, int]:
    """The principal of a pasted API token and the token's id (the web session ends when
    the token is revoked or expires). Raises Unauthorized (French), as `authenticate`."""
    principal = authenticate(session, raw)
    token_id = session.scalar(
        select(ApiToken.id).where(ApiToken.prefix == raw.strip().split("_", 2)[1])
    )
    if token_id is None:  # authenticate found it: only a concurrent deletion gets here
        raise Unauthorized("Jeton d'accès inconnu.")
    return principal, token_id


def session_principal(session: Session, account_id: int, token_id: int | None) -> Principal | None:
    """The principal of a web session: its account while active and, for a session opened
    with a token, while that token is neither revoked nor expired. None otherwise."""
    account = session.scalar(
        select(Account).where(Account.id == account_id).options(selectinload(Account.organisations))
    )
    if account is None or not account.active:
        return None
    if token_id is not None:
        token = session.get(ApiToken, token_id)
        if token is None or token.account_id != account_id or token.revoked_at is not None:
            return None
        if token.expires_at is not None and _aware(token.expires_at) <= datetime.now(UTC):
            return None
    return principal_of(account)


def send_link(settings: Settings, mailer: Mailer, link: IssuedLink) -> None:
    """E-mail the link (after the request's transaction committed). A failure is logged,
    not raised: the person asks again."""
    if link.email is None:
        return
    context = {"link": link.url, "minutes": LINK_MINUTES, "email": link.email}
    message = compose(
        settings,
        to=link.email,
        subject="Votre lien de connexion à Maillage",
        body=render("sign_in", context),
    )
    try:
        mailer.send(message)
    except MailError as exc:
        log.warning("sign-in link for account %s not sent: %s", link.account_id, exc)
