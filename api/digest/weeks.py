"""ISO 8601 weeks (« 2026-W48 »), the digest's unit of time, in Paris time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from api.kit.errors import InvalidInput

PARIS = ZoneInfo("Europe/Paris")
_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def parse(cls, raw: str) -> IsoWeek:
        """« 2026-W48 » (or « 2026W48 », « 2026-w48 »). Raises InvalidInput in French,
        e.g. for W53 of a year that has 52 weeks."""
        match = _WEEK.match(raw.strip().upper())
        if not match:
            raise InvalidInput(
                f"Semaine illisible « {raw} » : attendu une semaine ISO comme 2026-W48."
            )
        year, week = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            weeks = date(year, 12, 28).isocalendar().week
            raise InvalidInput(
                f"La semaine {week} n'existe pas en {year} (semaines 1 à {weeks})."
            ) from None
        return cls(year, week)


def today_in_paris(now: datetime | None = None) -> date:
    return (now or datetime.now(PARIS)).astimezone(PARIS).date()


def current_week(now: datetime | None = None) -> IsoWeek:
    return IsoWeek.of(today_in_paris(now))
