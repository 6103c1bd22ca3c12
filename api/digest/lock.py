"""One digest run at a time per database: a PostgreSQL advisory lock, or on SQLite an
exclusive lock on a file beside the database (the file is local, and so are its runs).

With one run at a time, a delivery row left `pending` was claimed by a run that died:
the next run takes it again at once (see `api.digest.sending`).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from api.kit.errors import Conflict

# Key of the advisory lock (any 64-bit number that no other job of the database uses).
DIGEST_LOCK_KEY = 0x4D41494C4C414745  # "MAILLAGE"
BUSY = "Un envoi du digest est déjà en cours sur cette base : attendez qu'il se termine."


@contextmanager
def run_lock(engine: Engine) -> Iterator[None]:
    """Hold the digest lock for the block. Raises Conflict when another run holds it."""
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            yield
            return
        path = Path(database).with_suffix(".digest.lock")
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(BUSY) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as connection:
        got = connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": DIGEST_LOCK_KEY})
        connection.commit()
        if not got:
            raise Conflict(BUSY)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DIGEST_LOCK_KEY})
            connection.commit()
