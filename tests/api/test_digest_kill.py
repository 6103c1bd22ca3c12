"""`maillage digest send` killed (SIGKILL) in the middle of a run, as a real process, then
run again: every digest is delivered, none twice but the one whose SMTP transaction the
kill cut short, which goes out again under the same Message-ID.

The kill is deterministic: the SMTP server (aiosmtpd, in the test process) kills the
sender when it has received the third message, before answering its DATA."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from api.digest.lock import DIGEST_LOCK_KEY
from api.digest.weeks import current_week
from api.kit.settings import REPO_ROOT, Settings
from api.matching.engine import MatchingEngine
from api.matching.texts import reindex
from api.tools.demo import ensure_territories
from matcher.text import content_hash
from models import Call, CallRequirement, migrate
from models.db import is_sqlite, make_engine
from models.digest import DigestDelivery, DigestSubscription
from models.enums import DeliveryStatus, MatchLevel
from tests.conftest import FIXTURES, scratch_database
from tests.factories import make_organisation
from tests.smtp import smtp_server

SUBSCRIBERS = 6
KILL_AT = 3
REQUIREMENTS = [
    "Animation de jardins partagés en pied d'immeuble avec les locataires",
    "Accompagnement social des ménages en difficulté",
]


@pytest.fixture
def network(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Iterator[tuple[Engine, Settings]]:
    """A database of its own (a real process writes it), with organisations that each
    answer an open call, each subscribed, their texts embedded."""
    with scratch_database(database_url, "digest_kill", tmp_path_factory) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        settings = Settings(
            database_url=url,
            data_dir=tmp_path,
            fixtures_dir=FIXTURES,
            secret_key="clé de test du digest interrompu",  # type: ignore[arg-type]
        )
        with Session(engine) as session, session.begin():
            ensure_territories(session, FIXTURES)
            call = Call(
                title="Jardins partagés et accompagnement des locataires",
                funders=["Fondation de France"],
                nationwide=True,
                deadline=date.today() + timedelta(days=40),
            )
            call.requirements = [
                CallRequirement(position=i, text=t, content_hash=content_hash(t))
                for i, t in enumerate(REQUIREMENTS)
            ]
            session.add(call)
            for i in range(SUBSCRIBERS):
                org = make_organisation(
                    session,
                    name=f"Association des jardins n° {i + 1}",
                    kind="association",
                    competencies=REQUIREMENTS,
                    needs=[],
                )
                session.add(
                    DigestSubscription(
                        organisation_id=org.id,
                        email=f"jardins-{i + 1}@exemple.fr",
                        confirmed_at=datetime.now(UTC),
                        min_level=MatchLevel.weak,
                    )
                )
            reindex(session, MatchingEngine(settings))
        yield engine, settings
        engine.dispose()


def digest_send(settings: Settings, port: int, cwd: Path) -> subprocess.Popen[str]:
    """The real command line, in a process of its own."""
    env = {
        **os.environ,
        "MAILLAGE_DATABASE_URL": settings.database_url,
        "MAILLAGE_DATA_DIR": str(settings.data_dir),
        "MAILLAGE_FIXTURES_DIR": str(FIXTURES),
        "MAILLAGE_SECRET_KEY": settings.secret_key.get_secret_value(),
        "MAILLAGE_SMTP_HOST": "127.0.0.1",
        "MAILLAGE_SMTP_PORT": str(port),
        "MAILLAGE_SMTP_SECURITY": "none",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "digest", "send", "--week", str(current_week())],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_lock_release(engine: Engine) -> None:
    """PostgreSQL frees a killed client's advisory lock once it sees the connection gone."""
    if is_sqlite(str(engine.url)):
        return
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": DIGEST_LOCK_KEY}):
            assert time.monotonic() < deadline, "the killed run's lock was never released"
            time.sleep(0.2)
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DIGEST_LOCK_KEY})
        conn.commit()


def deliveries(engine: Engine) -> dict[str, DigestDelivery]:
    with Session(engine) as session:
        rows = session.execute(
            select(DigestSubscription.email, DigestDelivery).join(
                DigestDelivery, DigestDelivery.subscription_id == DigestSubscription.id
            )
        ).all()
        return {email: delivery for email, delivery in rows}  # noqa: C416 (rows of two)


@pytest.mark.slow
def test_a_run_killed_mid_message_then_run_again_delivers_each_digest_once(
    network: tuple[Engine, Settings], tmp_path: Path
) -> None:
    engine, settings = network
    with smtp_server() as (inbox, port):
        first = digest_send(settings, port, tmp_path)

        def kill_the_sender(count: int) -> None:
            if count == KILL_AT:  # its DATA received, not yet answered
                first.send_signal(signal.SIGKILL)
                first.wait()

        inbox.on_message = kill_the_sender
        output, _ = first.communicate(timeout=600)
        assert first.returncode == -signal.SIGKILL, output
        inbox.on_message = None
        assert len(inbox.messages) == KILL_AT
        cut = inbox.messages[-1]
        # Sent and recorded before the kill; the cut one claimed, not recorded as sent.
        states = Counter(d.status for d in deliveries(engine).values())
        assert states == {DeliveryStatus.sent: KILL_AT - 1, DeliveryStatus.pending: 1}
        assert deliveries(engine)[cut["To"]].status == DeliveryStatus.pending

        wait_for_lock_release(engine)
        second = digest_send(settings, port, tmp_path)
        output, _ = second.communicate(timeout=600)
        assert second.returncode == 0, output
        assert f"{SUBSCRIBERS - KILL_AT + 1} envoyés" in output, output

    received = Counter(m["To"] for m in inbox.messages)
    addresses = {f"jardins-{i + 1}@exemple.fr" for i in range(SUBSCRIBERS)}
    assert set(received) == addresses  # none lost
    assert {a for a, n in received.items() if n > 1} == {cut["To"]}  # only the cut one again
    assert received[cut["To"]] == 2
    copies = [m for m in inbox.messages if m["To"] == cut["To"]]
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"] == cut["Message-ID"]
    assert len({m["Message-ID"] for m in inbox.messages}) == SUBSCRIBERS
    final = deliveries(engine)
    assert {d.status for d in final.values()} == {DeliveryStatus.sent}
    assert len(final) == SUBSCRIBERS
    assert final[cut["To"]].attempts == 2
    assert final[cut["To"]].message_id == str(cut["Message-ID"]).strip()  # long: folded
