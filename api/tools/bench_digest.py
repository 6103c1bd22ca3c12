"""`maillage bench --only digest`: the weekly digests of a synthetic network built and
sent through the real send path (`api.digest.sending`, the builder `maillage digest send`
uses) to an SMTP server on 127.0.0.1 (aiosmtpd in this process, counting what it accepts).

The network: `organisations` organisations with their statements and vectors as the
search bench makes them (`api.tools.bench`), `calls` open calls whose requirements are
drawn from the same French fragments, perimeters nationwide, a département or a région,
some reserved to kinds of organisation; one confirmed weekly subscription per
organisation. Build time is the builder's (the network's index, every call scored once,
then each digest selected); send time the rest of the run (rendering, claiming and
completing each delivery, SMTP).
"""

from __future__ import annotations

import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from api.calls.requirement_queries import store_requirement_queries
from api.digest.content import Digest
from api.digest.lock import run_lock
from api.digest.selection import DigestBuilder
from api.digest.sending import Run, send_week
from api.digest.weeks import IsoWeek, current_week, today_in_paris
from api.kit.mail import SmtpMailer
from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from api.tools.bench import (
    ACTIONS,
    PLACES,
    PUBLICS,
    SUBJECTS,
    _after_bulk_load,
    _generate,
    _reset,
    _unit,
)
from api.tools.demo import ensure_territories
from matcher.encoders import QUERY
from matcher.index import REQUIREMENT_QUERY
from matcher.text import content_hash
from models import Call, CallRequirement, Embedding, Organisation, Territory, migrate
from models.db import for_writes, make_engine, make_session_factory
from models.digest import DigestSubscription
from models.enums import CallStatus

FUNDERS = [
    "Agence nationale de la cohésion des territoires",
    "Banque des Territoires",
    "ADEME",
    "Fondation de France",
    "Union sociale pour l'habitat",
    "Fondation Abbé Pierre",
    "Région",
    "Caisse d'allocations familiales",
]
KINDS = ["landlord", "association", "public_body", "company", "research", "other"]


@dataclass(frozen=True)
class DigestBenchResult:
    backend: str
    organisations: int
    calls: int
    statements: int
    subscriptions: int
    load_seconds: float
    build_seconds: float  # index, scoring, selection (the builder's time)
    send_seconds: float  # rendering, delivery rows, SMTP
    total_seconds: float  # the whole run, as `maillage digest send` spends it
    sent: int
    empty: int
    failed: int
    received: int  # messages the SMTP server accepted
    requirements: int  # distinct requirement texts of the open calls
    # A first run, no requirement vector stored yet, encodes every requirement: this
    # many seconds more at the model's measured rate.
    first_run_encoding_seconds: float
    peak_memory_mb: float


class _Counter:
    """An aiosmtpd handler that only counts the messages it accepts."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received += 1
        return "250 Message accepted for delivery"


def serve_smtp(port: int) -> None:
    """The SMTP server's process (a mail server is another process than its client): it
    listens on 127.0.0.1:`port` until its standard input closes, then prints how many
    messages it accepted."""
    import sys

    from aiosmtpd.controller import Controller

    counter = _Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)  # noqa: T201
    sys.stdin.read()
    controller.stop()
    print(counter.received, flush=True)  # noqa: T201


class _SmtpServer:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process, self.port, self.received = process, port, 0


@contextmanager
def _smtp_server() -> Iterator[_SmtpServer]:
    """An SMTP server on 127.0.0.1 in a process of its own (`serve_smtp`); `received` is
    set when the block ends."""
    try:
        import aiosmtpd  # noqa: F401
    except ImportError as exc:  # a dev dependency (pyproject's dev extras)
        raise RuntimeError(
            "Le banc d'essai du digest demande aiosmtpd (pip install -e '.[dev]')."
        ) from exc
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "api.tools.bench_digest", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    server = _SmtpServer(process, port)
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("Le serveur SMTP du banc d'essai n'a pas démarré.")
        yield server
        process.stdin.close()
        server.received = int(process.stdout.readline().strip() or 0)
    finally:
        if process.poll() is None:
            process.wait(10)
        if process.poll() is None:
            process.kill()


def _generate_calls(
    session: Session, rng: np.random.Generator, n_calls: int
) -> dict[str, tuple[str, str, str]]:
    """Open calls: perimeter nationwide (40 %), a département (35 %) or a région; one in
    two open to every kind, else to two or three kinds; deadlines within 4 months, one in
    ten permanent; three or four requirements from the statements' fragments. Returns
    the requirements' fragments (action, subject, public) by text."""
    today = today_in_paris()
    fragments: dict[str, tuple[str, str, str]] = {}
    departements = list(session.scalars(select(Territory).where(Territory.level == "departement")))
    regions = list(session.scalars(select(Territory).where(Territory.level == "region")))
    for i in range(1, n_calls + 1):
        focus = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        roll = rng.random()
        perimeter = (
            []
            if roll < 0.4 or not departements
            else [departements[int(rng.integers(len(departements)))]]
            if roll < 0.75 or not regions
            else [regions[int(rng.integers(len(regions)))]]
        )
        kinds = (
            []
            if rng.random() < 0.5
            else sorted(rng.choice(KINDS, size=int(rng.integers(2, 4)), replace=False).tolist())
        )
        requirements = []
        for j in range(int(rng.integers(3, 5))):
            parts = (
                ACTIONS[int(rng.integers(len(ACTIONS)))],
                focus
                if j == 0 or rng.random() < 0.5
                else SUBJECTS[int(rng.integers(len(SUBJECTS)))],
                PUBLICS[int(rng.integers(len(PUBLICS)))],
            )
            requirements.append(" ".join(parts))
            fragments[requirements[-1]] = parts
        call = Call(
            title=f"Appel à projets n° {i} : {focus} {PLACES[int(rng.integers(len(PLACES)))]}",
            funders=[FUNDERS[int(rng.integers(len(FUNDERS)))]],
            description=f"Soutien aux projets de {focus}.",
            eligible_kinds=kinds,
            eligible_legal_forms=[],
            themes=[],
            deadline=None
            if rng.random() < 0.1
            else today + timedelta(days=int(rng.integers(1, 121))),
            url=f"https://appels.exemple.fr/{i}",
            source="bench",
            external_id=str(i),
            status=CallStatus.open,
            nationwide=not perimeter,
        )
        call.perimeter = perimeter
        call.requirements = [
            CallRequirement(position=j, text=t, content_hash=content_hash(t))
            for j, t in enumerate(requirements)
        ]
        session.add(call)
    session.flush()
    return fragments


def _store_requirement_queries(
    session: Session,
    matching: MatchingEngine,
    rng: np.random.Generator,
    fragments: dict[str, tuple[str, str, str]],
) -> None:
    """The requirements' query vectors, as earlier runs stored them
    (`store_requirement_queries`): mixtures of the real query vectors of their fragments,
    as the statements' are (`api.tools.bench`)."""
    words = sorted({w for parts in fragments.values() for w in parts})
    by_word = dict(zip(words, matching.encode(words, role=QUERY), strict=True))
    now = datetime.now(UTC)
    rows = []
    for text, (action, subject, public) in fragments.items():
        vector = _unit(
            by_word[action] * 0.5
            + by_word[subject] * 1.0
            + by_word[public] * 0.4
            + rng.normal(0, 0.02, size=by_word[subject].shape)
        )
        rows.append(
            {
                "model": matching.space,
                "role": REQUIREMENT_QUERY,
                "content_hash": content_hash(text),
                "dimension": int(vector.shape[0]),
                "vector": vector,
                "created_at": now,
            }
        )
    for start in range(0, len(rows), 2000):
        session.execute(insert(Embedding), rows[start : start + 2000])


def _encoding_rate(matching: MatchingEngine, texts: list[str]) -> float:
    """Requirement texts encoded as queries per second, by the real model."""
    start = time.perf_counter()
    matching.encode(texts, role=QUERY)
    return len(texts) / (time.perf_counter() - start)


def run_digest_bench(
    settings: Settings,
    *,
    backend: str,
    database_url: str | None,
    organisations: int = 1000,
    calls: int = 500,
    statements_per_organisation: int = 10,
    seed: int = 0,
) -> DigestBenchResult:
    """Generate the network (see the module), then time one `maillage digest send` run of
    the current week against the loopback SMTP server."""
    rng = np.random.default_rng(seed)
    statements = organisations * statements_per_organisation
    with tempfile.TemporaryDirectory(prefix="maillage-bench-digest-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = make_engine(url)
        _reset(engine)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        matching = MatchingEngine(settings)
        start = time.perf_counter()
        with factory() as session, session.begin():
            ensure_territories(session, settings.fixtures_dir)
        _generate(factory, matching, rng, organisations, statements)
        now = datetime.now(UTC)
        with factory() as session, session.begin():
            fragments = _generate_calls(session, rng, calls)
            _store_requirement_queries(session, matching, rng, fragments)
            ids = list(session.scalars(select(Organisation.id).order_by(Organisation.id)))
            session.execute(
                insert(DigestSubscription),
                [
                    {
                        "organisation_id": org_id,
                        "email": f"contact-{org_id}@exemple.fr",
                        "confirmed_at": now,
                        "themes": [],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for org_id in ids
                ],
            )
        _after_bulk_load(engine)
        load_seconds = time.perf_counter() - start

        with _smtp_server() as smtp:
            run_settings = settings.model_copy(
                update={
                    "database_url": url,
                    "data_dir": Path(tmp),
                    "secret_key": SecretStr(secrets.token_hex(32)),
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "smtp_security": "none",
                    "smtp_username": "",
                }
            )
            builder = DigestBuilder(run_settings, matching, batched=True)
            building = [0.0]
            writes = make_session_factory(for_writes(engine))

            def timed_build(
                session: Session, sub: DigestSubscription, week: IsoWeek
            ) -> Digest | None:
                t0 = time.perf_counter()
                try:
                    return builder(session, sub, week)
                finally:
                    building[0] += time.perf_counter() - t0

            mailer = SmtpMailer(run_settings, keep_open=True)  # as `maillage digest send`
            run = Run(
                factory=writes,
                read_factory=factory,
                settings=run_settings,
                mailer=mailer,
                week=current_week(),
                build=timed_build,
            )
            t0 = time.perf_counter()
            with run_lock(engine):  # as `maillage digest send` runs
                store_requirement_queries(factory, writes, matching, today_in_paris())
                building[0] += time.perf_counter() - t0
                try:
                    summary = send_week(run, prepare_ahead=2)  # as `maillage digest send`
                finally:
                    mailer.close()
            total = time.perf_counter() - t0
        received = smtp.received
        sample = list(fragments)[:40]
        rate = _encoding_rate(matching, sample)
        engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return DigestBenchResult(
        backend=backend,
        organisations=organisations,
        calls=calls,
        statements=statements,
        subscriptions=len(ids),
        load_seconds=round(load_seconds, 1),
        build_seconds=round(building[0], 1),
        send_seconds=round(total - building[0], 1),
        total_seconds=round(total, 1),
        sent=summary.sent,
        empty=summary.empty,
        failed=summary.failed,
        received=received,
        requirements=len(fragments),
        first_run_encoding_seconds=round(len(fragments) / rate, 0),
        peak_memory_mb=round(peak, 0),
    )


def digest_result_dict(result: DigestBenchResult) -> dict[str, Any]:
    return asdict(result)


if __name__ == "__main__":
    import sys as _sys

    serve_smtp(int(_sys.argv[1]))
