"""Loading the fixtures that ship: territory referential, demo organisations and calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.service import create_account, issue_token
from api.accounts.sign_in import issue_link
from api.calls.schemas import CallIn
from api.calls.service import upsert_fixture_call
from api.kit.errors import InvalidInput
from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from api.matching.texts import reindex
from api.organisations.schemas import OrganisationIn
from api.organisations.service import upsert_fixture_organisation
from api.territories import referential
from models import Account, Organisation
from models.base import utcnow
from models.digest import DigestSubscription
from models.enums import AccountKind, AccountRole, CallStatus

DEMO_SOURCE = "demo"


@dataclass(frozen=True)
class FixtureReport:
    organisations: int
    statements: int
    calls: int


def _read_json(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise InvalidInput(f"{path} : une liste JSON est attendue.")
    return data


def load_organisations(session: Session, path: Path) -> tuple[int, int]:
    """Upsert every organisation of a fixture file (keyed by its slug)."""
    organisations = statements = 0
    for record in _read_json(path):
        record = dict(record)
        slug = record.pop("slug")
        try:
            data = OrganisationIn.model_validate(record)
        except ValidationError as exc:
            raise InvalidInput(f"{path.name}, organisation « {slug} » : {exc}") from exc
        try:
            upsert_fixture_organisation(session, slug, data)
        except InvalidInput as exc:
            raise InvalidInput(f"{path.name}, organisation « {slug} » : {exc.message}") from exc
        organisations += 1
        statements += len(data.statements)
    return organisations, statements


def load_calls(session: Session, path: Path, *, today: date | None = None) -> int:
    """Upsert the demo calls (keyed by their external id, source "demo"); their dates are
    relative to `today` so the demo never ages."""
    today = today or date.today()
    count = 0
    for record in _read_json(path):
        external_id = record["external_id"]
        opens = record.get("opens_in_days")
        deadline_in = record.get("deadline_in_days")
        deadline = today + timedelta(days=deadline_in) if deadline_in is not None else None
        payload = {
            "title": record["title"],
            "funders": [record["funder"]] if record.get("funder") else [],
            "description": record.get("description"),
            "requirements": list(record.get("requirements") or []),
            "perimeter": list(record.get("perimeter") or []),
            "eligible_kinds": list(record.get("eligible_kinds") or []),
            "eligible_legal_forms": list(record.get("eligible_legal_forms") or []),
            "opens_on": (today + timedelta(days=opens)).isoformat() if opens is not None else None,
            "deadline": deadline.isoformat() if deadline is not None else None,
            "url": record.get("url"),
            "themes": list(record.get("themes") or []),
            "aid_types": list(record.get("aid_types") or []),
            "source": DEMO_SOURCE,
            "external_id": external_id,
            "status": (
                CallStatus.closed if deadline is not None and deadline < today else CallStatus.open
            ).value,
        }
        try:
            data = CallIn.model_validate(payload)
        except ValidationError as exc:
            raise InvalidInput(f"{path.name}, appel « {external_id} » : {exc}") from exc
        try:
            upsert_fixture_call(session, data)
        except InvalidInput as exc:
            raise InvalidInput(f"{path.name}, appel « {external_id} » : {exc.message}") from exc
        count += 1
    session.flush()
    return count


def load_demo(
    session: Session,
    fixtures_dir: Path,
    *,
    today: date | None = None,
    matching: MatchingEngine | None = None,
) -> FixtureReport:
    """Upsert the demo organisations and calls; with `matching`, embed what is new."""
    demo = fixtures_dir / "demo"
    organisations, statements = load_organisations(session, demo / "organisations.json")
    calls = load_calls(session, demo / "calls.json", today=today)
    subscribe_demo_contacts(session)
    if matching is not None:
        reindex(session, matching)
    return FixtureReport(organisations=organisations, statements=statements, calls=calls)


def subscribe_demo_contacts(session: Session) -> int:
    """Each demo organisation's first contact receives its weekly digest: subscribed and
    already confirmed (demo addresses are fictitious; nothing leaves the outbox without an
    SMTP server). Existing subscriptions are left as they are. Returns how many are new."""
    created = 0
    for org in session.scalars(select(Organisation).where(Organisation.slug.is_not(None))):
        email = next((c.email for c in org.contacts if c.email), None)
        if email is None:
            continue
        known = session.scalar(
            select(DigestSubscription.id).where(
                DigestSubscription.organisation_id == org.id, DigestSubscription.email == email
            )
        )
        if known is None:
            session.add(
                DigestSubscription(organisation_id=org.id, email=email, confirmed_at=utcnow())
            )
            created += 1
    session.flush()
    return created


DEMO_LANDLORD = "arc-touloubre-habitat"


@dataclass(frozen=True)
class DemoToken:
    """A token `maillage demo` prints: who it acts for, and the bearer token itself."""

    who: str
    organisation_id: int | None
    secret: str
    sign_in_url: str | None = None  # a one-click sign-in to the web pages (single-use)


# How long the sign-in links `maillage demo` prints stay valid (each signs in once).
DEMO_LINK_MINUTES = 24 * 60


def demo_tokens(session: Session, settings: Settings | None = None) -> list[DemoToken]:
    """Fresh tokens for the demo's coordinator and for a member of a demo landlord (the
    accounts are created once, found again by e-mail; earlier tokens stay valid); with
    `settings`, a sign-in link to the web pages for each too (valid a day, single-use)."""
    landlord = session.scalar(select(Organisation).where(Organisation.slug == DEMO_LANDLORD))
    wanted: list[tuple[str, str, AccountRole, Organisation | None]] = [
        (
            "coordination.demo@maillage.invalid",
            "Coordination régionale (démo)",
            AccountRole.coordinator,
            None,
        ),
    ]
    if landlord is not None:
        wanted.append(
            (
                "equipe.demo@maillage.invalid",
                f"Équipe {landlord.name} (démo)",
                AccountRole.member,
                landlord,
            )
        )
    tokens = []
    for email, name, role, org in wanted:
        account = session.scalar(select(Account).where(Account.email == email))
        if account is None:
            account = create_account(
                session,
                name=name,
                role=role,
                email=email,
                kind=AccountKind.person,
                organisation_ids=[org.id] if org is not None else None,
            )
        issued = issue_token(session, account, label="démo", expires_at=None)
        who = f"membre de {org.name}" if org is not None else "coordination régionale"
        url = None
        if settings is not None:
            url = issue_link(session, settings, account, minutes=DEMO_LINK_MINUTES).url
        tokens.append(DemoToken(who, org.id if org is not None else None, issued.secret, url))
    return tokens


def ensure_territories(session: Session, fixtures_dir: Path) -> referential.LoadReport | None:
    """Load the referential unless it is already there at the shipped revision (an older
    one is refreshed in place: organisations keep their territories)."""
    path = fixtures_dir / referential.REFERENTIAL_FILE
    if referential.referential_is_current(session, path):
        return None
    return referential.load_territories(session, path)
