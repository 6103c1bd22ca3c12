"""Per-organisation feeds of matching calls: Atom (RFC 4287, feedgen) and iCalendar
(RFC 5545, icalendar: one all-day VEVENT per deadline, with a VALARM a week before),
each behind a secret URL that members can rotate."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from feedgen.feed import FeedGenerator
from icalendar import Alarm, Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.errors import NotFound
from api.kit.mail import sender_domain
from api.kit.settings import Settings
from models.digest import FeedKey

ALARM_BEFORE = timedelta(days=7)  # the calendar reminds a week before each deadline


class FeedKind(StrEnum):
    atom = "atom"
    ics = "ics"


@dataclass(frozen=True)
class FeedEntry:
    """A call in a feed: `fit` is the organisation's fit to it (0–1)."""

    call_id: int
    title: str
    funder: str | None
    summary: str
    deadline: date | None
    link: str
    updated: datetime
    fit: float


def feed_url(settings: Settings, key: FeedKey) -> str:
    return f"{settings.base_url}/feeds/{key.secret}.{key.kind}"


def feed_keys(session: Session, organisation_id: int) -> dict[FeedKind, FeedKey]:
    rows = session.scalars(select(FeedKey).where(FeedKey.organisation_id == organisation_id))
    return {FeedKind(k.kind): k for k in rows}


def rotate(session: Session, organisation_id: int, kind: FeedKind) -> FeedKey:
    """Create the feed's secret, or replace it (the old URL stops working)."""
    key = feed_keys(session, organisation_id).get(kind)
    if key is None:
        key = FeedKey(organisation_id=organisation_id, kind=kind.value)
        session.add(key)
    key.secret = secrets.token_urlsafe(32)
    key.created_at = datetime.now(UTC)
    session.flush()
    return key


def organisation_of(session: Session, secret: str, kind: FeedKind) -> int:
    """The organisation whose feed this secret opens. Raises NotFound (unknown or rotated)."""
    organisation_id = (
        session.scalar(
            select(FeedKey.organisation_id).where(
                FeedKey.secret == secret, FeedKey.kind == kind.value
            )
        )
        if 20 <= len(secret) <= 64
        else None
    )
    if organisation_id is None:
        raise NotFound(
            "Aucun flux à cette adresse : elle a peut-être été renouvelée ; demandez la "
            "nouvelle à un membre de votre organisation."
        )
    return organisation_id


def atom(settings: Settings, organisation: str, self_url: str, entries: list[FeedEntry]) -> bytes:
    """An Atom 1.0 document of the entries (best fit first)."""
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(f"Appels à projets pour {organisation} — Maillage")
    fg.subtitle("Les appels à projets ouverts qui correspondent à votre organisation.")
    fg.link(href=self_url, rel="self")
    fg.link(href=settings.base_url, rel="alternate")
    fg.language("fr")
    fg.author({"name": "Maillage"})
    fg.updated(max((e.updated for e in entries), default=datetime.now(UTC)))
    for entry in reversed(entries):  # feedgen puts each new entry first
        item = fg.add_entry()
        item.id(f"tag:{sender_domain(settings)},2026:call:{entry.call_id}")
        item.title(entry.title)
        item.link(href=entry.link)
        item.updated(entry.updated)
        deadline = entry.deadline.strftime("%d/%m/%Y") if entry.deadline else "appel permanent"
        funder = f"Financeur : {entry.funder}. " if entry.funder else ""
        item.summary(f"{funder}Date limite : {deadline}. {entry.summary}".strip())
    data: bytes = fg.atom_str(pretty=True)
    return data


def ics(settings: Settings, organisation: str, entries: list[FeedEntry]) -> bytes:
    """An iCalendar document: one all-day event on each dated call's deadline, with an
    alarm `ALARM_BEFORE` it; permanent calls have no event."""
    calendar = Calendar()
    calendar.add("prodid", "-//Maillage//Appels a projets//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Appels à projets — {organisation}")
    stamp = datetime.now(UTC)
    for entry in entries:
        if entry.deadline is None:
            continue
        event = Event()
        event.add("uid", f"call-{entry.call_id}@{sender_domain(settings)}")
        event.add("dtstamp", stamp)
        event.add("last-modified", entry.updated)
        event.add("summary", f"Date limite : {entry.title}")
        event.add("dtstart", entry.deadline)
        event.add("dtend", entry.deadline + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
        event.add("url", entry.link)
        funder = f"Financeur : {entry.funder}\n" if entry.funder else ""
        event.add("description", f"{funder}{entry.summary}\n{entry.link}".strip())
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"Dans une semaine : date limite de « {entry.title} »")
        alarm.add("trigger", -ALARM_BEFORE)
        event.add_component(alarm)
        calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
