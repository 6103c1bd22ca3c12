"""`maillage digest send`: each confirmed weekly subscription gets its digest of a week
once — none lost, none sent twice but for what SMTP itself cannot promise.

One delivery row per (subscription, ISO week):

1. **Claim** (its own committed transaction) before sending: a new row `pending`, or a
   `failed` one, or a `pending` one (left by a run killed after claiming: only one run
   goes at a time, see `run_lock`).
2. **Send**, with retries and exponential backoff (tenacity) for temporary failures.
3. **Complete** (another transaction): `sent`, or `failed` with the error (the next run
   tries it again; the other subscriptions go on).

A run killed between 1 and 3 leaves the row `pending`: the next run sends it again under
the Message-ID stored at the claim, so mail clients fold the two copies if the first one
had gone through. SMTP cannot say more: a kill after the server accepted the message but
before the row is completed repeats that one message, never any other.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import Enum
from itertools import islice
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from api.digest.content import Digest, digest_message, message_id_for
from api.digest.weeks import IsoWeek
from api.kit.mail import Mailer, MailError, OutboxMailer
from api.kit.settings import Settings
from models import Organisation
from models.db import transaction
from models.digest import DigestDelivery, DigestSubscription
from models.enums import DeliveryStatus, DigestFrequency

log = logging.getLogger(__name__)

# What a digest holds for a subscription and a week; None or no items: nothing to send.
Builder = Callable[[Session, DigestSubscription, IsoWeek], Digest | None]


@dataclass
class Summary:
    """What a run did, per subscription: sent (or written, in a dry run), empty (nothing
    to send this week), already (sent by an earlier run), failed (kept for the next run)."""

    sent: int = 0
    empty: int = 0
    already: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, error)

    @property
    def skipped(self) -> int:
        return self.empty + self.already

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)


class Outcome(Enum):
    """What became of a subscription without an SMTP exchange."""

    sent = "sent"  # written to the outbox (a dry run)
    empty = "empty"
    already = "already"


@dataclass(frozen=True)
class Prepared:
    """A digest ready to go: its message and what its delivery row records."""

    subscription_id: int
    address: str
    message_id: str
    items: list[dict[str, object]]
    message: EmailMessage


def due_subscriptions(session: Session) -> list[int]:
    """Ids of the confirmed weekly subscriptions of organisations not archived."""
    return list(
        session.scalars(
            select(DigestSubscription.id)
            .join(Organisation, Organisation.id == DigestSubscription.organisation_id)
            .where(
                DigestSubscription.confirmed_at.is_not(None),
                DigestSubscription.frequency == DigestFrequency.weekly,
                DigestSubscription.active.is_(True),
                Organisation.archived_at.is_(None),
            )
            .order_by(DigestSubscription.id)
        )
    )


def _items_of(digest: Digest) -> list[dict[str, object]]:
    return [{"call_id": i.call_id, "status": i.status.value} for i in digest.items]


@dataclass
class Run:
    """One run over a week's subscriptions (see the module)."""

    factory: sessionmaker[Session]  # writes (on SQLite: BEGIN IMMEDIATE)
    settings: Settings
    mailer: Mailer
    week: IsoWeek
    build: Builder
    dry_run_outbox: Path | None = None  # a dry run writes here and records nothing
    # Reads and builds each digest (on SQLite a writer's transaction would hold the write
    # lock while the digest is made); None: `factory`.
    read_factory: sessionmaker[Session] | None = None
    retries: int = 3
    retry_wait: float = 2.0  # seconds before the first retry, doubling

    def subscriptions(self) -> list[int]:
        with transaction(self.read_factory or self.factory) as session:
            return due_subscriptions(session)

    def deliver(self, subscription_id: int, summary: Summary) -> None:
        """Claim, send and complete one subscription's digest; the outcome is counted in
        `summary`. Errors other than sending errors propagate (the run stops, nothing
        half-written: every step is its own transaction)."""
        self.dispatch(self.prepare(subscription_id), summary)

    def prepare(self, subscription_id: int) -> Prepared | Outcome:
        """Read the subscription and build its message (reads only; in a dry run, write
        the `.eml`): what `dispatch` sends, or the outcome when there is nothing to send."""
        week = str(self.week)
        with transaction(self.read_factory or self.factory) as session:
            sub = session.get(DigestSubscription, subscription_id)
            if sub is None or sub.confirmed_at is None or sub.frequency != DigestFrequency.weekly:
                return Outcome.empty
            delivery = session.scalar(
                select(DigestDelivery).where(
                    DigestDelivery.subscription_id == sub.id, DigestDelivery.iso_week == week
                )
            )
            if delivery is not None and delivery.status == DeliveryStatus.sent:
                return Outcome.already
            digest = self.build(session, sub, self.week)
            if digest is None or not digest.items:
                return Outcome.empty
            message_id = (delivery.message_id if delivery else None) or message_id_for(
                self.settings, sub.id, self.week
            )
            message = digest_message(self.settings, sub, digest, message_id)
            if self.dry_run_outbox is not None:
                OutboxMailer(self.dry_run_outbox).send(message)
                return Outcome.sent
            return Prepared(subscription_id, sub.email, message_id, _items_of(digest), message)

    def dispatch(self, prepared: Prepared | Outcome, summary: Summary) -> None:
        """Claim, send and complete a prepared message, and count the outcome."""
        if isinstance(prepared, Outcome):
            summary.count(prepared)
            return
        week = str(self.week)
        self._claim(
            prepared.subscription_id,
            week,
            prepared.message_id,
            prepared.items,
            datetime.now(UTC),
        )
        try:
            self._send(prepared.message)
        except MailError as exc:
            self._complete(prepared.subscription_id, week, error=str(exc))
            summary.failed += 1
            summary.failures.append((prepared.address, str(exc)))
            return
        self._complete(prepared.subscription_id, week, error=None)
        summary.sent += 1

    def _claim(
        self,
        subscription_id: int,
        week: str,
        message_id: str,
        items: list[dict[str, object]],
        now: datetime,
    ) -> None:
        """Take the delivery for this run, committed before sending: the row is created
        `pending`, or an unsent one (`failed`, or `pending` from a killed run) is taken
        again, keeping its Message-ID."""
        with transaction(self.factory) as session:
            delivery = session.scalar(
                select(DigestDelivery).where(
                    DigestDelivery.subscription_id == subscription_id,
                    DigestDelivery.iso_week == week,
                )
            )
            if delivery is None:
                delivery = DigestDelivery(
                    subscription_id=subscription_id, iso_week=week, attempts=0
                )
                session.add(delivery)
            delivery.status = DeliveryStatus.pending
            delivery.claimed_at = now
            delivery.attempts = (delivery.attempts or 0) + 1
            delivery.items = items
            delivery.message_id = message_id

    def _send(self, message: object) -> None:
        for attempt in Retrying(
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=self.retry_wait, max=60),
            retry=retry_if_exception(lambda e: isinstance(e, MailError) and not e.permanent),
            reraise=True,
        ):
            with attempt:
                self.mailer.send(message)  # type: ignore[arg-type]

    def _complete(self, subscription_id: int, week: str, *, error: str | None) -> None:
        with transaction(self.factory) as session:
            session.execute(
                update(DigestDelivery)
                .where(
                    DigestDelivery.subscription_id == subscription_id,
                    DigestDelivery.iso_week == week,
                )
                .values(
                    status=DeliveryStatus.failed if error else DeliveryStatus.sent,
                    sent_at=None if error else datetime.now(UTC),
                    error=error[:2000] if error else None,
                )
                .execution_options(synchronize_session=False)
            )


def send_week(
    run: Run,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    prepare_ahead: int = 0,
) -> Summary:
    """Deliver every due subscription's digest of the run's week. `on_progress(done,
    total)` after each one.

    With `prepare_ahead` > 0, a second thread reads, builds and renders up to that many
    digests ahead of the one being sent: while a message waits on the SMTP server and its
    delivery rows on the database, the next one is being made. Deliveries are still
    claimed, sent and completed one at a time, in order; the thread only reads, so a run
    killed at any point leaves what a run without it would. It needs a session factory
    whose sessions may live in another thread (an engine's, not one test connection's).
    """
    summary = Summary()
    ids = run.subscriptions()
    if prepare_ahead <= 0:
        for done, subscription_id in enumerate(ids, start=1):
            run.deliver(subscription_id, summary)
            if on_progress is not None:
                on_progress(done, len(ids))
        return summary
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maillage-digest-prepare")
    try:
        pending: deque[Future[Prepared | Outcome]] = deque()
        upcoming = iter(ids)
        for subscription_id in islice(upcoming, prepare_ahead + 1):
            pending.append(pool.submit(run.prepare, subscription_id))
        done = 0
        while pending:
            prepared = pending.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                pending.append(pool.submit(run.prepare, following))
            run.dispatch(prepared, summary)
            done += 1
            if on_progress is not None:
                on_progress(done, len(ids))
    finally:
        # A failed or killed run: what was prepared ahead is dropped (nothing was claimed).
        pool.shutdown(wait=True, cancel_futures=True)
    return summary
