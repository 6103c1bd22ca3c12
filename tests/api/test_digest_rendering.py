"""The demo digest as its reader sees it: the HTML part of a dry run's `.eml`, rendered by
Chromium at a desktop and a phone width (screenshots in the test artefacts), with its
structure checked; and the plain-text part, which must read well alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from api.calls import fit
from api.digest.selection import DigestBuilder
from api.digest.sending import Run, send_week
from api.digest.weeks import IsoWeek, current_week
from api.kit.mail import OutboxMailer
from api.kit.settings import Settings
from models import CallChange, CallInterest, Organisation
from models.digest import DigestDelivery, DigestSubscription
from models.enums import DeliveryStatus
from tests.api.test_search import OnDemoNetwork, demo_connection, org_id  # noqa: F401
from tests.browser import artifacts
from tests.smtp import text_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LANDLORD = "arc-touloubre-habitat"
DESKTOP, PHONE = 800, 390


@pytest.mark.slow
class TestDigestAsRead(OnDemoNetwork):
    @pytest.fixture
    def message(
        self,
        app: FastAPI,
        connection: Connection,
        session: Session,
        settings: Settings,
        tmp_path: Path,
    ) -> EmailMessage:
        """The landlord's digest of the week from a dry run, after a week where it received
        its best call (changed since) and with a call it marked « intéressé »."""
        matching = app.state.matching
        landlord = org_id(session, LANDLORD)
        page = fit.organisation_calls(session, matching, landlord, limit=100)
        best, weakest = page.items[0], page.items[-1]
        sub = session.scalar(
            select(DigestSubscription).where(DigestSubscription.organisation_id == landlord)
        )
        assert sub is not None
        week = current_week()
        sent_at = datetime.now(UTC) - timedelta(days=7)
        session.add(
            DigestDelivery(
                subscription_id=sub.id,
                iso_week=str(IsoWeek.of(week.monday - timedelta(days=7))),
                status=DeliveryStatus.sent,
                sent_at=sent_at,
                items=[{"call_id": best.call.id, "status": "new"}],
            )
        )
        if best.call.deadline is not None:
            session.add(
                CallChange(
                    call_id=best.call.id,
                    changed_at=sent_at + timedelta(days=1),
                    field="deadline",
                    old=(best.call.deadline - timedelta(days=14)).isoformat(),
                    new=best.call.deadline.isoformat(),
                )
            )
        session.add(CallInterest(call_id=weakest.call.id, organisation_id=landlord))
        session.flush()
        factory = sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        outbox = tmp_path / "outbox"
        summary = send_week(
            Run(
                factory=factory,
                settings=settings,
                mailer=OutboxMailer(outbox),
                week=week,
                build=DigestBuilder(settings, matching, batched=True),
                dry_run_outbox=outbox,
            )
        )
        assert summary.sent > 1
        name = session.get(Organisation, landlord).name  # type: ignore[union-attr]
        for path in outbox.glob("*.eml"):
            parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
            if name in parsed["Subject"]:
                return parsed  # type: ignore[return-value]
        raise AssertionError(f"no digest for {name}")

    def test_the_html_part_reads_like_a_newsletter_on_a_desktop_and_a_phone(
        self, message: EmailMessage, browser: Browser
    ) -> None:
        part = message.get_body(preferencelist=("html",))
        assert part is not None
        html = part.get_content()
        (artifacts() / "digest.html").write_text(html, encoding="utf-8")
        for label, width in (("desktop", DESKTOP), ("phone", PHONE)):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_content(html)
            shot = artifacts() / f"digest-{label}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            # Nothing wider than the screen: no sideways scrolling on a phone.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            if label == "desktop":
                # What the README shows: the header, the summary and the first call.
                page.screenshot(
                    path=str(artifacts() / "digest-desktop-top.png"),
                    clip={"x": 0, "y": 0, "width": width, "height": 1560},
                    full_page=True,
                )
                self.check_structure(page, message)
            page.close()

    @staticmethod
    def check_structure(page: Page, message: EmailMessage) -> None:
        calls = page.locator("[data-call]")
        count = calls.count()
        assert count >= 2
        title = page.locator("h1").inner_text()
        assert f"{count} appels à projets pour Arc-Touloubre Habitat" in title
        assert f"{count} appels" in message["Subject"]
        assert page.title().startswith("Maillage")
        # The summary lists every call, in the order of the blocks.
        summary = page.locator("a[href^='#appel-']")
        assert summary.count() == count
        for i in range(count):
            block = calls.nth(i)
            anchor = summary.nth(i).get_attribute("href")
            assert anchor == f"#{block.get_attribute('id')}"
            text = block.inner_text()
            assert block.locator("h2 a").get_attribute("href", timeout=1000)
            assert block.locator("a", has_text="Lire l'appel").count() == 1
            assert "Date limite" in text
            assert block.locator("a", has_text="Pas pertinent").count() == 1
        statuses = {s.strip().lower() for s in page.locator("[data-status]").all_inner_texts()}
        assert statuses >= {"modifié", "intéressé", "nouveau"}
        assert "POURQUOI VOUS" in page.locator("body").inner_text()
        assert "AVEC QUI Y RÉPONDRE" in page.locator("body").inner_text()
        assert page.locator("a", has_text="Se désabonner en un clic").count() == 1
        assert page.locator("a", has_text="Voir dans le navigateur").count() == 1
        unsubscribe = page.locator("a", has_text="Se désabonner en un clic").get_attribute("href")
        assert unsubscribe is not None
        assert message["List-Unsubscribe"].strip("<>") == unsubscribe

    def test_the_plain_text_part_reads_alone(self, message: EmailMessage) -> None:
        text = text_of(message)
        (artifacts() / "digest.txt").write_text(text, encoding="utf-8")
        assert "<" not in text  # no markup
        assert "&" not in text.replace("&amp;", "")  # no entity left escaped
        # Lines of 76 characters at most, but links, which are never cut.
        assert all(len(line) <= 76 for line in text.splitlines() if "http" not in line)
        for fragment in (
            "Bonjour",
            "Au sommaire :",
            "Date limite :",
            "Pourquoi vous :",
            "Avec qui y répondre :",
            "Lire l'appel : http",
            "Pas pertinent pour vous ? http",
            "Voir ce digest dans le navigateur : http",
            "Se désabonner en un clic : http",
        ):
            assert fragment in text, fragment
        html = message.get_body(preferencelist=("html",))
        assert html is not None
        count = html.get_content().count("data-call=")
        assert text.count("Lire l'appel : ") == count
