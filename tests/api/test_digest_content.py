"""The digest on the demo network, with the real model: what each organisation receives,
its web view, and the Atom and iCalendar feeds (validated by a feed parser and by the
iCalendar library's parser)."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from api.digest.links import view_url
from api.digest.selection import DigestBuilder
from api.digest.sending import Run, send_week
from api.digest.weeks import IsoWeek, current_week
from api.kit.mail import SmtpMailer
from api.kit.settings import Settings
from models import Organisation
from models.digest import DigestSubscription
from models.enums import AccountRole
from tests.api.test_search import OnDemoNetwork, demo_connection, org_id  # noqa: F401
from tests.conftest import bearer
from tests.smtp import smtp_server, text_of

LANDLORD = "arc-touloubre-habitat"


@pytest.mark.slow
class TestDemoDigest(OnDemoNetwork):
    @pytest.fixture
    def factory(self, connection: Connection) -> sessionmaker[Session]:
        return sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    def run(
        self, app: FastAPI, factory: sessionmaker[Session], settings: Settings, **kw: object
    ) -> Run:
        return Run(
            factory=factory,
            settings=settings,
            mailer=SmtpMailer(settings),
            week=current_week(),
            build=DigestBuilder(settings, app.state.matching),
            retry_wait=0,
            **kw,  # type: ignore[arg-type]
        )

    def test_a_dry_run_writes_one_message_per_organisation_with_a_matching_call(
        self,
        app: FastAPI,
        session: Session,
        factory: sessionmaker[Session],
        settings: Settings,
        tmp_path: Path,
    ) -> None:
        summary = send_week(self.run(app, factory, settings, dry_run_outbox=tmp_path))
        files = sorted(tmp_path.glob("*.eml"))
        subs = session.scalars(select(DigestSubscription)).all()
        assert summary.sent == len(files) >= len(subs) // 2
        assert summary.sent + summary.empty == len(subs)
        messages = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
        landlord = session.scalar(select(Organisation).where(Organisation.slug == LANDLORD))
        assert landlord is not None
        (mine,) = [m for m in messages if landlord.name in m["Subject"]]
        text = text_of(mine)  # type: ignore[arg-type]
        assert "Pourquoi vous :" in text
        assert "Avec qui y répondre :" in text
        assert "Date limite :" in text
        assert "Se désabonner en un clic" in text
        html = mine.get_body(preferencelist=("html",))
        assert html is not None
        assert "<h2" in html.get_content()

    def test_sent_once_and_unsubscribing_stops_only_that_address(
        self,
        app: FastAPI,
        client: TestClient,
        session: Session,
        factory: sessionmaker[Session],
        settings: Settings,
    ) -> None:
        with smtp_server() as (inbox, port):
            smtp = settings.model_copy(
                update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
            )
            first = send_week(self.run(app, factory, smtp))
            again = send_week(self.run(app, factory, smtp))
            assert first.sent == len(inbox.messages) > 1
            assert (again.sent, again.already) == (0, first.sent)
            # One address unsubscribes in one click; next week the others still receive.
            message = inbox.messages[0]
            url = message["List-Unsubscribe"].strip("<>")
            parts = urlsplit(url)
            assert (
                client.post(
                    f"{parts.path}?{parts.query}", data={"List-Unsubscribe": "One-Click"}
                ).status_code
                == 200
            )
            later = self.run(app, factory, smtp)
            later.week = IsoWeek.of(current_week().monday + timedelta(days=7))
            before = len(inbox.messages)
            send_week(later)
            next_week = [m["To"] for m in inbox.messages[before:]]
            assert message["To"] not in next_week

    def test_the_web_view_through_the_signed_link_and_with_a_token(
        self,
        app: FastAPI,
        client: TestClient,
        anonymous_client: TestClient,
        session: Session,
        settings: Settings,
    ) -> None:
        landlord = org_id(session, LANDLORD)
        sub = session.scalar(
            select(DigestSubscription).where(DigestSubscription.organisation_id == landlord)
        )
        assert sub is not None
        url = urlsplit(view_url(settings, sub, str(current_week())))
        page = anonymous_client.get(f"{url.path}?{url.query}")
        assert page.status_code == 200
        assert "Pourquoi vous" in page.text
        assert anonymous_client.get(url.path).status_code == 403
        member = bearer(session, AccountRole.member, [landlord])
        with_token = anonymous_client.get(url.path, headers={"Authorization": member})
        assert with_token.status_code == 200
        assert "Pourquoi vous" in with_token.text
        assert anonymous_client.get(f"{url.path}?token=abc").status_code == 400
        bad_week = anonymous_client.get(
            f"/digests/{landlord}/2026-W60", headers={"Authorization": member}
        )
        assert bad_week.status_code == 404

    def test_atom_and_ics_feeds_parse_and_rotate(
        self, client: TestClient, anonymous_client: TestClient, session: Session
    ) -> None:
        landlord = org_id(session, LANDLORD)
        base = f"/api/v1/organisations/{landlord}/feeds"
        assert all(i["url"] is None for i in client.get(base).json()["items"])
        atom_url = urlsplit(client.post(f"{base}/atom").json()["url"]).path
        ics_url = urlsplit(client.post(f"{base}/ics").json()["url"]).path
        atom = anonymous_client.get(atom_url)
        assert atom.status_code == 200
        assert atom.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(atom.content)
        assert not parsed.bozo
        assert parsed.version == "atom10"
        assert parsed.entries
        ics = anonymous_client.get(ics_url)
        assert ics.headers["content-type"].startswith("text/calendar")
        calendar = Calendar.from_ical(ics.content)
        events = calendar.walk("VEVENT")
        assert events
        assert all(e.walk("VALARM") for e in events)
        rotated = urlsplit(client.post(f"{base}/atom").json()["url"]).path
        assert rotated != atom_url
        assert anonymous_client.get(atom_url).status_code == 404
        assert anonymous_client.get(rotated).status_code == 200
