"""The web view of a digest and the content of the feeds: the same builder as the e-mail."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.digest.content import digest_context
from api.digest.feeds import FeedEntry
from api.digest.links import VIEW, LinkError, read
from api.digest.selection import DigestBuilder
from api.digest.weeks import IsoWeek
from api.kit.errors import InvalidInput, NotFound
from api.kit.mail import render
from api.kit.pages import page
from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from models import Call, Organisation
from models.digest import DigestSubscription
from models.enums import MatchLevel

FEED_LEVEL = MatchLevel.medium  # feeds show the calls a medium-level digest would


def require_organisation(session: Session, organisation_id: int) -> Organisation:
    org = session.get(Organisation, organisation_id)
    if org is None or org.archived_at is not None:
        raise NotFound(f"Aucune organisation n° {organisation_id}.")
    return org


def feed_entries(
    session: Session, settings: Settings, matching: MatchingEngine, organisation_id: int
) -> tuple[str, list[FeedEntry]]:
    """The organisation's name and its matching open calls (a medium-level digest's),
    best fit first, not marked « pas pertinent »."""
    org = require_organisation(session, organisation_id)
    fits = DigestBuilder(settings, matching).matching_calls(session, org.id, FEED_LEVEL)
    calls = {
        c.id: c for c in session.scalars(select(Call).where(Call.id.in_([f.call.id for f in fits])))
    }
    entries = []
    for f in fits:
        call = calls[f.call.id]
        updated = call.updated_at or datetime.now(UTC)
        entries.append(
            FeedEntry(
                call_id=call.id,
                title=call.title,
                funder=", ".join(call.funders or []) or None,
                summary=(call.description or "")[:500],
                deadline=call.deadline,
                link=call.url or f"{settings.base_url}/api/v1/calls/{call.id}",
                updated=updated if updated.tzinfo else updated.replace(tzinfo=UTC),
                fit=f.score,
            )
        )
    return org.name, entries


def digest_page(
    request: Request,
    session: Session,
    settings: Settings,
    matching: MatchingEngine,
    viewer: Principal,
    organisation_id: int,
    week: str,
    token: str,
) -> HTMLResponse:
    """The digest of `week` as a page: for the subscription of a signed link (exactly what
    it was sent), or for someone acting for the organisation (its first subscription's
    settings, or the defaults)."""
    try:
        target = IsoWeek.parse(week)
    except InvalidInput as exc:
        return page(request, "Semaine inconnue", error=exc.message, status_code=404)
    sub: DigestSubscription | None = None
    if token:
        try:
            link = read(settings, VIEW, token)
        except LinkError as exc:
            return page(request, "Lien non valide", error=exc.message, status_code=400)
        sub = session.get(DigestSubscription, link.subscription_id)
        if sub is None or sub.email != link.email or sub.organisation_id != organisation_id:
            return page(
                request,
                "Lien non valide",
                error="Ce lien ne correspond à aucun abonnement.",
                status_code=400,
            )
        if link.week != str(target):
            return page(
                request,
                "Lien non valide",
                error="Ce lien est celui d'une autre semaine.",
                status_code=400,
            )
    elif viewer.account_id is None or not viewer.acts_for(organisation_id):
        return page(
            request,
            "Accès refusé",
            error="Ouvrez ce digest depuis le lien de son courriel, ou connectez-vous avec un "
            "compte de l'organisation.",
            status_code=403,
        )
    org = session.get(Organisation, organisation_id)
    if org is None or org.archived_at is not None:
        return page(
            request,
            "Introuvable",
            error=f"Aucune organisation n° {organisation_id}.",
            status_code=404,
        )
    if sub is None:
        sub = session.scalar(
            select(DigestSubscription)
            .where(DigestSubscription.organisation_id == organisation_id)
            .order_by(DigestSubscription.id)
        ) or DigestSubscription(
            organisation_id=organisation_id, email="", themes=[], min_level=MatchLevel.medium
        )
    digest = DigestBuilder(settings, matching)(session, sub, target)
    if digest is None:
        return page(
            request,
            f"Digest de la semaine {target.week}",
            f"Aucun appel à projets à signaler à {org.name} cette semaine-là.",
        )
    html = render("digest", digest_context(settings, sub, digest)).html or ""
    return HTMLResponse(html)
