"""`maillage bench load`: the load test (`api.tools.load`) against a real server process.

On each database: a scratch database (a temporary SQLite file, or the PostgreSQL database
given, whose schema is emptied), migrated, with the territory referential; a server
started as `maillage serve` would be (its own process, the configured model, warmed up,
rate limits off: the bench measures capacity, not the limits), on a free port of
127.0.0.1; the French demo organisations posted through the API; then writers and readers
released together. The bench process never loads the model: the server encodes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.accounts.service import create_account, issue_token
from api.kit.settings import Settings
from api.tools.demo import ensure_territories
from api.tools.load import ORGANISATIONS, LoadReport, run_load
from models import migrate
from models.db import make_engine
from models.enums import AccountRole

START_TIMEOUT = 600.0  # seconds: the server loads the model and builds its index first


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(url: str, settings: Settings) -> str:
    """Empty, migrate and load the referential; return an administrator's bearer token."""
    engine = make_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate.upgrade(engine)
        with Session(engine) as session, session.begin():
            ensure_territories(session, settings.fixtures_dir)
            account = create_account(session, name="Banc de charge", role=AccountRole.admin)
            return issue_token(session, account, expires_at=None).secret
    finally:
        engine.dispose()


@contextmanager
def server_process(url: str, data_dir: Path, log: Path) -> Iterator[str]:
    """`maillage serve` on `url` in a process of its own; yields its base URL once it
    answers, and stops it (SIGINT, then SIGKILL) on the way out. Raises RuntimeError if it
    does not start within START_TIMEOUT."""
    port = _free_port()
    env = {
        **os.environ,
        "MAILLAGE_DATABASE_URL": url,
        "MAILLAGE_DATA_DIR": str(data_dir),
        "MAILLAGE_RATE_LIMITS": "false",
    }
    command = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.5)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(60)


def _post_demo(base: str, headers: dict[str, str], fixtures_dir: Path) -> int:
    """The demo organisations, created through the API (the server encodes them)."""
    records = json.loads((fixtures_dir / "demo" / "organisations.json").read_text("utf-8"))
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        for record in records:
            record = {k: v for k, v in record.items() if k != "slug"}
            response = client.post(
                ORGANISATIONS, json=record, params={"allow_duplicate_name": "true"}
            )
            if response.status_code != 201:
                raise RuntimeError(f"demo organisation refused: {response.text[:500]}")
    return len(records)


def run_load_bench(
    settings: Settings,
    *,
    backend: str,
    database_url: str | None,
    writers: int,
    readers: int,
    rounds: int,
    timeout: float,
) -> LoadReport:
    """The load test on one database (`database_url`: PostgreSQL's, emptied; None: a new
    SQLite file). Raises RuntimeError when the server or the setup fails."""
    with tempfile.TemporaryDirectory(prefix="maillage-charge-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'charge.sqlite3'}"
        secret = _prepare(url, settings)
        headers = {"Authorization": f"Bearer {secret}"}
        with server_process(url, Path(tmp), Path(tmp) / "serveur.log") as base:
            _post_demo(base, headers, settings.fixtures_dir)
            return run_load(
                base,
                headers,
                backend=backend,
                writers=writers,
                readers=readers,
                rounds=rounds,
                timeout=timeout,
            )
