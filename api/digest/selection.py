"""What an organisation's digest holds for an ISO week (issue « digest », point 2).

For a subscription and a week: the open calls its organisation is eligible for (territory,
kind, legal form: `api.calls.fit`), whose fit reaches the subscription's level, on its themes
when it follows some, not marked « pas pertinent »; of those, the ones never sent to this
subscription (« nouveau ») or changed since it last received them (« modifié », with what
changed), plus calls already sent whose deadline falls within `REMINDER_DAYS` (« rappel »)
and calls the organisation marked « intéressé » (whatever their fit). Ordered by fit raised
by urgency, at most `MAX_ITEMS`. Each call comes with the statement pairs that make it fit
and up to `PARTNERS_PER_CALL` other organisations eligible on its perimeter that answer it
best. History only counts digests of earlier weeks, so a week's digest built again (its
web view) holds what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.calls import fit
from api.calls.fit_batch import OpenCall, OpenCallsFit, open_call
from api.calls.fit_schemas import OrganisationCallOut, RequirementCoverageOut
from api.digest.content import Digest, DigestItem, ItemStatus, Reason, SuggestedPartner
from api.digest.weeks import IsoWeek, current_week, today_in_paris
from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from matcher.text import name_key
from models import Call, CallChange, CallInterest, Organisation
from models.digest import CallDismissal, DigestDelivery, DigestSubscription
from models.enums import DeliveryStatus, MatchLevel

# Least fit (`matcher.call_fit.call_score`, 0–1: the power mean of order 3 over a call's
# requirements of the probability that the organisation answers each) per subscription
# level. Carried over from the mean's 0.05 / 0.10 / 0.25 (medium was the partners'
# strong-reason cut 0.1): on the 1,464 (call, eligible organisation) pairs of the labelled
# calls, each level lets through about the same share of pairs (65 %, 50 %, 32 %; before
# 65 %, 50 %, 31 %) and of the relevant ones (99 %, 97 %, 87 %; before 99 %, 97 %, 88 %).
LEVEL_MIN_FIT = {MatchLevel.weak: 0.075, MatchLevel.medium: 0.175, MatchLevel.strong: 0.40}
REMINDER_DAYS = 21
MAX_ITEMS = 10
PARTNERS_PER_CALL = 3
REASONS_PER_CALL = 3
# Urgency adds up to this much fit as the deadline nears (linearly over REMINDER_DAYS).
URGENCY = 0.1

FIELD_FR = {
    "title": "titre",
    "funders": "financeurs",
    "description": "description",
    "requirements": "attendus",
    "perimeter": "territoire",
    "eligible_kinds": "structures éligibles",
    "eligible_legal_forms": "formes juridiques éligibles",
    "opens_on": "ouverture",
    "deadline": "date limite",
    "url": "lien",
    "themes": "thèmes",
    "aid_types": "types d'aide",
    "status": "statut",
}


def _value_fr(value: object) -> str:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value if len(value) <= 60 else value[:57] + "…"
    if isinstance(value, list):
        return ", ".join(_value_fr(v) for v in value) or "aucun"
    return "aucune" if value is None else str(value)


def change_fr(field: str, old: object, new: object) -> str:
    """« date limite : 15/01/2027 → 31/01/2027 »; long texts are only named."""
    label = FIELD_FR.get(field, field)
    if field in ("description", "requirements"):
        return f"{label} mise à jour" if field == "description" else f"{label} mis à jour"
    return f"{label} : {_value_fr(old)} → {_value_fr(new)}"


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite gives naive UTC back
        return moment.replace(tzinfo=UTC)
    return moment


def as_of(week: IsoWeek) -> date:
    """The day a week's digest reads the calls on: today for the current week, else the
    week's Monday."""
    return today_in_paris() if week == current_week() else week.monday


@dataclass(frozen=True)
class _Candidate:
    """An open call the organisation may answer, as selection reads it."""

    call_id: int
    score: float  # 0–1, 4 decimals
    days_left: int | None
    interested: bool


# What the selection reads of an organisation's open calls: the candidates (best fit
# first), how it covers a call's requirements, and the calls by id.
_Fits = tuple[
    list[_Candidate], Callable[[int], list[RequirementCoverageOut]], Mapping[int, OpenCall]
]


@dataclass
class DigestBuilder:
    """Builds digests (`api.digest.sending.Builder`); the suggested partners of a call are
    computed once per builder (they do not depend on the subscription).

    `batched`: for a run over many organisations, every open call is scored once against
    every organisation (`api.calls.fit_batch.OpenCallsFit`, made at the first digest of a
    day and kept for the builder's life: one consistent network per run) instead of
    scoring every call again for each organisation (`fit.organisation_calls`, right for
    one digest: a web view). Both select the same calls."""

    settings: Settings
    matching: MatchingEngine
    batched: bool = False

    def __post_init__(self) -> None:
        self._partners: dict[int, list[tuple[int, str, str]]] = {}
        self._batch: OpenCallsFit | None = None

    def matching_calls(
        self,
        session: Session,
        organisation_id: int,
        level: MatchLevel,
        today: date | None = None,
    ) -> list[OrganisationCallOut]:
        """The open calls the organisation is eligible for whose fit reaches `level` (or
        that it marked « intéressé »), not marked « pas pertinent », best fit first."""
        page = fit.organisation_calls(
            session, self.matching, organisation_id, limit=10_000, today=today
        )
        dismissed = set(
            session.scalars(
                select(CallDismissal.call_id).where(
                    CallDismissal.organisation_id == organisation_id
                )
            )
        )
        minimum = LEVEL_MIN_FIT[level]
        return [
            item
            for item in page.items
            if item.call.id not in dismissed and (item.interested or item.score >= minimum)
        ]

    def batch(self, session: Session, today: date) -> OpenCallsFit:
        """The open calls of `today` scored against every organisation, made once."""
        if self._batch is None or self._batch.today != today:
            self._batch = OpenCallsFit(session, self.matching, today)
            self._partners.clear()
        return self._batch

    def _fits(self, session: Session, organisation_id: int, today: date) -> _Fits:
        if self.batched:
            batch = self.batch(session, today)
            scores = batch.scores(organisation_id)
            if scores is not None:  # else created since the batch: scored on its own
                interested = set(
                    session.scalars(
                        select(CallInterest.call_id).where(
                            CallInterest.organisation_id == organisation_id
                        )
                    )
                )
                return (
                    [
                        _Candidate(s.call_id, s.score, s.days_left, s.call_id in interested)
                        for s in scores
                    ],
                    lambda call_id: batch.coverage(organisation_id, call_id),
                    batch.calls,
                )
        page = fit.organisation_calls(
            session, self.matching, organisation_id, limit=10_000, today=today
        )
        calls = {
            c.id: open_call(c)
            for c in session.scalars(
                select(Call)
                .where(Call.id.in_([i.call.id for i in page.items]))
                .options(selectinload(Call.perimeter), selectinload(Call.requirements))
            )
        }
        coverage = {i.call.id: i.coverage for i in page.items}
        return (
            [_Candidate(i.call.id, i.score, i.days_left, i.interested) for i in page.items],
            lambda call_id: coverage.get(call_id, []),
            calls,
        )

    def __call__(self, session: Session, sub: DigestSubscription, week: IsoWeek) -> Digest | None:
        org = session.get(Organisation, sub.organisation_id)
        if org is None or org.archived_at is not None:
            return None
        today = as_of(week)
        candidates, coverage, calls = self._fits(session, org.id, today)
        if not candidates:
            return None
        dismissed = set(
            session.scalars(
                select(CallDismissal.call_id).where(CallDismissal.organisation_id == org.id)
            )
        )
        last_sent = self._history(session, sub, week)
        changes = self._changes(session, last_sent)
        wanted_themes = {name_key(t) for t in sub.themes or []}
        minimum = LEVEL_MIN_FIT[sub.min_level]
        chosen: list[tuple[float, _Candidate, ItemStatus, list[str]]] = []
        for item in candidates:
            call = calls.get(item.call_id)
            if call is None or call.id in dismissed:
                continue
            if wanted_themes and not wanted_themes & {name_key(t) for t in call.themes}:
                continue
            status = self._status(item, minimum, call.id in last_sent, changes.get(call.id))
            if status is None:
                continue
            days = item.days_left if item.days_left is not None else REMINDER_DAYS
            urgency = URGENCY * max(0, REMINDER_DAYS - days) / REMINDER_DAYS
            chosen.append((item.score + urgency, item, status, changes.get(call.id, [])))
        if not chosen:
            return None
        chosen.sort(key=lambda c: (-c[0], c[1].days_left if c[1].days_left is not None else 10**6))
        items = [
            self._item(
                session,
                calls[item.call_id],
                item,
                coverage(item.call_id),
                status,
                changed,
                org.id,
                today,
            )
            for _, item, status, changed in chosen[:MAX_ITEMS]
        ]
        return Digest(org.id, org.name, week, items)

    @staticmethod
    def _status(
        item: _Candidate, minimum: float, sent: bool, changed: list[str] | None
    ) -> ItemStatus | None:
        if item.interested:
            return ItemStatus.interested
        if item.score < minimum:
            return None
        if not sent:
            return ItemStatus.new
        if changed:
            return ItemStatus.changed
        if item.days_left is not None and item.days_left <= REMINDER_DAYS:
            return ItemStatus.reminder
        return None

    @staticmethod
    def _history(session: Session, sub: DigestSubscription, week: IsoWeek) -> dict[int, datetime]:
        """When each call was last sent to this subscription, in a digest of an earlier week."""
        if sub.id is None:
            return {}
        last: dict[int, datetime] = {}
        rows = session.execute(
            select(DigestDelivery.items, DigestDelivery.sent_at).where(
                DigestDelivery.subscription_id == sub.id,
                DigestDelivery.status == DeliveryStatus.sent,
                DigestDelivery.iso_week < str(week),
            )
        )
        for items, sent_at in rows:
            moment = _aware(sent_at) or datetime.min.replace(tzinfo=UTC)
            for entry in items or []:
                call_id = entry.get("call_id") if isinstance(entry, dict) else None
                if isinstance(call_id, int) and moment > last.get(
                    call_id, moment.min.replace(tzinfo=UTC)
                ):
                    last[call_id] = moment
        return last

    @staticmethod
    def _changes(session: Session, last_sent: dict[int, datetime]) -> dict[int, list[str]]:
        """What changed in each call since it was last sent, field by field (the last
        change of a field wins, compared with its value when sent)."""
        if not last_sent:
            return {}
        first: dict[tuple[int, str], object] = {}
        latest: dict[tuple[int, str], object] = {}
        rows = session.execute(
            select(
                CallChange.call_id,
                CallChange.field,
                CallChange.old,
                CallChange.new,
                CallChange.changed_at,
            )
            .where(CallChange.call_id.in_(list(last_sent)))
            .order_by(CallChange.changed_at, CallChange.id)
        )
        for call_id, field, old, new, changed_at in rows:
            if (_aware(changed_at) or last_sent[call_id]) <= last_sent[call_id]:
                continue
            first.setdefault((call_id, field), old)
            latest[(call_id, field)] = new
        out: dict[int, list[str]] = {}
        for (call_id, field), new in latest.items():
            old = first[(call_id, field)]
            if old != new:
                out.setdefault(call_id, []).append(change_fr(field, old, new))
        return out

    def _item(
        self,
        session: Session,
        call: OpenCall,
        item: _Candidate,
        coverage: list[RequirementCoverageOut],
        status: ItemStatus,
        changed: list[str],
        organisation_id: int,
        today: date,
    ) -> DigestItem:
        texts = {r.id: r.text for r in call.requirements}
        reasons = sorted(
            (c for c in coverage if c.statement is not None and c.covered),
            key=lambda c: -c.similarity,
        )[:REASONS_PER_CALL]
        return DigestItem(
            call_id=call.id,
            title=call.title,
            funder=", ".join(call.funders) or None,
            deadline=call.deadline,
            days_left=item.days_left,
            perimeter=call.perimeter,
            link=call.url or f"{self.settings.base_url}/api/v1/calls/{call.id}",
            status=status,
            fit=item.score,
            changes=changed,
            reasons=[
                Reason(texts.get(c.requirement_id, ""), c.statement.text, c.similarity)  # type: ignore[union-attr]
                for c in reasons
            ],
            partners=[
                SuggestedPartner(pid, name, reason)
                for pid, name, reason in self._partners_of(session, call.id, today)
                if pid != organisation_id
            ][:PARTNERS_PER_CALL],
        )

    def _partners_of(
        self, session: Session, call_id: int, today: date
    ) -> list[tuple[int, str, str]]:
        """The organisations eligible on the call that answer it best, each with its best
        answering statement (computed once per call)."""
        if call_id not in self._partners:
            limit = PARTNERS_PER_CALL + 1
            page = (
                self.batch(session, today).organisations(session, call_id, limit)
                if self.batched
                else None
            ) or fit.call_organisations(session, self.matching, call_id, limit=limit, offset=0)
            texts = {r.id: r.text for r in page.requirements}
            found = []
            for entry in page.items:
                best = max(
                    (c for c in entry.coverage if c.statement is not None and c.covered),
                    key=lambda c: c.similarity,
                    default=None,
                )
                if best is None or best.statement is None:
                    continue
                reason = (
                    f"« {best.statement.text} » (pour « {texts.get(best.requirement_id, '')} »)"
                )
                found.append((entry.organisation.id, entry.organisation.name, reason))
            self._partners[call_id] = found
        return self._partners[call_id]
