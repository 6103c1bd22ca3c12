"""Sending the weekly digest through a real SMTP server (aiosmtpd): once per subscription
and week, a failing address retried on the next run without blocking the others, a run
killed between sending and recording repeating only that message, under its Message-ID.

The content is made by a stand-in builder here: what is tested is the delivery, not the
selection of calls (tested with the real model elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from api.digest.content import Digest, DigestItem, ItemStatus, Reason
from api.digest.lock import run_lock
from api.digest.sending import Run, send_week
from api.digest.weeks import IsoWeek
from api.kit.errors import Conflict
from api.kit.mail import Mailer, MailError, Rendered, SmtpMailer, compose
from api.kit.settings import Settings
from models.digest import DigestDelivery, DigestSubscription
from models.enums import DeliveryStatus, DigestFrequency
from tests.factories import make_organisation
from tests.smtp import Inbox, smtp_server, text_of

WEEK = IsoWeek(2026, 49)


def builder(session: Session, sub: DigestSubscription, week: IsoWeek) -> Digest | None:
    if sub.email.startswith("vide"):
        return None
    item = DigestItem(
        call_id=1,
        title="Jardins partagés en quartier prioritaire",
        funder="ANCT",
        deadline=date(2026, 12, 20),
        days_left=17,
        perimeter="Bouches-du-Rhône",
        link="https://exemple.fr/appel",
        status=ItemStatus.new,
        fit=0.8,
        reasons=[Reason("Créer des jardins partagés", "Animation de jardins partagés", 0.9)],
    )
    return Digest(sub.organisation_id, "Habitat Test", week, [item])


@pytest.fixture
def factory(connection: Connection) -> sessionmaker[Session]:
    """Each of the run's transactions is a savepoint of the test's transaction."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def smtp(settings: Settings) -> Iterator[tuple[Inbox, Settings]]:
    with smtp_server() as (inbox, port):
        yield (
            inbox,
            settings.model_copy(
                update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
            ),
        )


def subscribe(session: Session, *emails: str, confirmed: bool = True) -> list[int]:
    ids = []
    for _i, email in enumerate(emails):
        org = make_organisation(session, name=f"Organisation {email}")
        sub = DigestSubscription(
            organisation_id=org.id,
            email=email,
            confirmed_at=datetime.now(UTC) if confirmed else None,
        )
        session.add(sub)
        session.flush()
        ids.append(sub.id)
    return ids


def run(factory: sessionmaker[Session], settings: Settings, mailer: Mailer | None = None) -> Run:
    return Run(
        factory=factory,
        settings=settings,
        # One connection for the run, as `maillage digest send` keeps it.
        mailer=mailer or SmtpMailer(settings, keep_open=True),
        week=WEEK,
        build=builder,
        retry_wait=0,
    )


def deliveries(session: Session) -> dict[int, DigestDelivery]:
    session.expire_all()
    return {d.subscription_id: d for d in session.scalars(select(DigestDelivery))}


class TestOncePerWeek:
    def test_each_due_subscription_gets_one_digest_with_one_click_unsubscribe(
        self, session: Session, factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        subscribe(session, "a@exemple.fr", "b@exemple.fr", "vide@exemple.fr")
        subscribe(session, "pas-confirmee@exemple.fr", confirmed=False)
        paused = subscribe(session, "en-pause@exemple.fr")[0]
        session.get(DigestSubscription, paused).frequency = DigestFrequency.off  # type: ignore[union-attr]
        session.flush()

        summary = send_week(run(factory, settings))
        assert (summary.sent, summary.empty, summary.failed) == (2, 1, 0)
        assert sorted(m["To"] for m in inbox.messages) == ["a@exemple.fr", "b@exemple.fr"]
        message = inbox.to("a@exemple.fr")[0]
        assert message["List-Unsubscribe"].startswith("<http")
        assert "/subscriptions/unsubscribe?token=" in message["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_body(preferencelist=("html",)) is not None
        text = text_of(message)
        assert "[nouveau] Jardins partagés en quartier prioritaire" in text
        assert "20/12/2026 (dans 17 jours)" in text
        assert "/digests/dismiss?token=" in text

        again = send_week(run(factory, settings))
        assert (again.sent, again.already) == (0, 2)
        assert len(inbox.messages) == 2
        rows = deliveries(session)
        assert {r.status for r in rows.values()} == {DeliveryStatus.sent}
        assert all(r.message_id and r.attempts == 1 for r in rows.values())

    def test_a_dry_run_writes_eml_files_and_records_nothing(
        self,
        session: Session,
        factory: sessionmaker[Session],
        smtp: tuple[Inbox, Settings],
        tmp_path: Path,
    ) -> None:
        inbox, settings = smtp
        subscribe(session, "a@exemple.fr", "b@exemple.fr")
        dry = run(factory, settings)
        dry.dry_run_outbox = tmp_path / "essai"
        assert send_week(dry).sent == 2
        assert len(list((tmp_path / "essai").glob("*.eml"))) == 2
        assert inbox.messages == []
        assert deliveries(session) == {}


class FlakyMailer:
    """Fails `failures` times with a temporary error, then delivers."""

    def __init__(self, inner: Mailer, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def send(self, message: EmailMessage) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise MailError("connexion perdue")
        self.inner.send(message)


class Killed(BaseException):
    """Stands for a kill -9 (not an Exception: nothing may catch it)."""


class DiesAfterSending:
    """Sends the `n`-th message, then the process « dies » before recording it."""

    def __init__(self, inner: Mailer, n: int) -> None:
        self.inner, self.n, self.calls = inner, n, 0

    def send(self, message: EmailMessage) -> None:
        self.calls += 1
        self.inner.send(message)
        if self.calls == self.n:
            raise Killed


class TestFailures:
    def test_temporary_failures_are_retried_with_backoff(
        self, session: Session, factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        subscribe(session, "a@exemple.fr")
        flaky = FlakyMailer(SmtpMailer(settings), failures=2)
        assert send_week(run(factory, settings, flaky)).sent == 1
        assert flaky.calls == 3
        assert len(inbox.messages) == 1

    def test_a_refused_address_fails_alone_and_is_retried_on_the_next_run(
        self, session: Session, factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        subscribe(session, "a@exemple.fr", "refusee@exemple.fr", "c@exemple.fr")
        inbox.refuse.add("refusee@exemple.fr")
        summary = send_week(run(factory, settings))
        assert (summary.sent, summary.failed) == (2, 1)
        assert summary.failures[0][0] == "refusee@exemple.fr"
        assert "550" in summary.failures[0][1]
        failed = [d for d in deliveries(session).values() if d.status == DeliveryStatus.failed]
        assert len(failed) == 1
        assert failed[0].error
        assert failed[0].attempts == 1

        inbox.refuse.clear()
        summary = send_week(run(factory, settings))
        assert (summary.sent, summary.already, summary.failed) == (1, 2, 0)
        assert len(inbox.to("refusee@exemple.fr")) == 1
        assert all(d.status == DeliveryStatus.sent for d in deliveries(session).values())

    def test_a_server_dropping_the_connection_mid_message_delays_only_that_message(
        self, session: Session, factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        subscribe(session, "a@exemple.fr", "coupee@exemple.fr", "c@exemple.fr")
        inbox.drop["coupee@exemple.fr"] = 1  # once: the retry goes through
        summary = send_week(run(factory, settings))
        assert (summary.sent, summary.failed) == (3, 0)
        assert sorted(m["To"] for m in inbox.messages) == [
            "a@exemple.fr",
            "c@exemple.fr",
            "coupee@exemple.fr",
        ]
        # Every time: that one fails (kept for the next run), the others go out.
        subscribe(session, "toujours-coupee@exemple.fr", "d@exemple.fr")
        inbox.drop["toujours-coupee@exemple.fr"] = 10
        summary = send_week(run(factory, settings))
        assert (summary.sent, summary.already, summary.failed) == (1, 3, 1)
        assert summary.failures[0][0] == "toujours-coupee@exemple.fr"
        assert len(inbox.to("d@exemple.fr")) == 1
        assert inbox.to("toujours-coupee@exemple.fr") == []
        inbox.drop.clear()
        assert send_week(run(factory, settings)).sent == 1
        assert len(inbox.to("toujours-coupee@exemple.fr")) == 1

    def test_a_run_killed_after_sending_repeats_only_that_message_under_its_message_id(
        self, session: Session, factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        subscribe(session, "a@exemple.fr", "b@exemple.fr", "c@exemple.fr")
        with pytest.raises(Killed):
            send_week(run(factory, settings, DiesAfterSending(SmtpMailer(settings), 2)))
        assert [m["To"] for m in inbox.messages] == ["a@exemple.fr", "b@exemple.fr"]
        rows = deliveries(session)
        assert sorted(r.status for r in rows.values()) == [
            DeliveryStatus.pending,
            DeliveryStatus.sent,
        ]

        summary = send_week(run(factory, settings))
        assert (summary.sent, summary.already) == (2, 1)
        received = [m["To"] for m in inbox.messages]
        assert sorted(received) == ["a@exemple.fr", "b@exemple.fr", "b@exemple.fr", "c@exemple.fr"]
        first, second = inbox.to("b@exemple.fr")
        assert first["Message-ID"] == second["Message-ID"]
        assert all(d.status == DeliveryStatus.sent for d in deliveries(session).values())


class TestConnection:
    def test_a_run_sends_every_digest_through_one_connection(
        self, session: Session, factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        subscribe(session, *(f"membre-{i}@exemple.fr" for i in range(5)))
        mailer = SmtpMailer(settings, keep_open=True)
        assert send_week(run(factory, settings, mailer)).sent == 5
        mailer.close()
        assert len(inbox.messages) == 5
        assert len(set(inbox.peers)) == 1

    def test_a_refused_address_drops_the_connection_and_the_next_message_opens_one(
        self, smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        inbox.refuse.add("refusee@exemple.fr")
        mailer = SmtpMailer(settings, keep_open=True)
        mailer.send(_message(settings, "a@exemple.fr"))
        with pytest.raises(MailError) as refused:
            mailer.send(_message(settings, "refusee@exemple.fr"))
        assert refused.value.permanent
        mailer.send(_message(settings, "b@exemple.fr"))
        mailer.close()
        mailer.close()  # closing twice is harmless
        assert [m["To"] for m in inbox.messages] == ["a@exemple.fr", "b@exemple.fr"]
        assert len(set(inbox.peers)) == 2

    def test_a_connection_the_server_closed_while_idle_is_opened_again(
        self, smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        mailer = SmtpMailer(settings, keep_open=True)
        mailer.send(_message(settings, "a@exemple.fr"))
        assert mailer._smtp is not None
        mailer._smtp.sock.close()  # type: ignore[union-attr]  # as a server's idle time-out
        mailer.send(_message(settings, "b@exemple.fr"))
        mailer.close()
        assert [m["To"] for m in inbox.messages] == ["a@exemple.fr", "b@exemple.fr"]

    def test_without_keep_open_each_message_has_its_connection(
        self, smtp: tuple[Inbox, Settings]
    ) -> None:
        inbox, settings = smtp
        mailer = SmtpMailer(settings)
        for address in ("a@exemple.fr", "b@exemple.fr"):
            mailer.send(_message(settings, address))
        assert len(set(inbox.peers)) == 2


def _message(settings: Settings, to: str) -> EmailMessage:
    return compose(settings, to=to, subject="Essai", body=Rendered(text="Bonjour.", html=None))


def test_one_run_at_a_time(engine: object) -> None:
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    # The suite's SQLite database is a file (tests/conftest.py): the lock file goes beside.
    with run_lock(engine):
        with pytest.raises(Conflict, match="déjà en cours"):
            with run_lock(engine):
                pass
    with run_lock(engine):  # released
        pass
