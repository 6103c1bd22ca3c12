"""Turns per organisation: in one server process, the writes to one organisation's texts run
one after the other, from the read that tells them what to encode to their commit.

A write encodes its texts before its transaction takes any lock (SQLite's write lock, a
PostgreSQL row lock), reading ahead what the organisation holds (`api.organisations.
service._encode_ahead`). Two writes to one organisation at once would each read the texts
before the other's commit: the second finds its profile changed under the lock and
encodes it there, holding the lock (a whole database on SQLite) through an encoding —
measured at up to 4 s each under load, enough to make every other writer time out. Taking
the organisation's turn before the read-ahead, and giving it back after the commit, keeps
encodings out of the locks. Writes from other processes still meet at the database's locks
(correct, only slower).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from api.kit.errors import ServiceUnavailable


class Turns:
    """Process-wide: one turn per key (an organisation id), taken by one request at a time,
    waited for up to `timeout` seconds (then ServiceUnavailable, 503)."""

    def __init__(self, *, timeout: float, retry_after: int) -> None:
        self.timeout = timeout
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._turns: dict[Hashable, tuple[threading.Semaphore, int]] = {}

    def acquire(self, key: Hashable) -> None:
        with self._lock:
            semaphore, users = self._turns.get(key, (threading.Semaphore(1), 0))
            self._turns[key] = (semaphore, users + 1)
        if not semaphore.acquire(timeout=self.timeout):
            self._forget(key)
            raise ServiceUnavailable(
                "Cette organisation est en cours de modification par d'autres requêtes : "
                "rien n'a été enregistré. Réessayez dans quelques secondes.",
                headers={"Retry-After": str(self.retry_after)},
            )

    def release(self, key: Hashable) -> None:
        with self._lock:
            semaphore, _users = self._turns[key]
        semaphore.release()  # a Semaphore: any thread may give the turn back
        self._forget(key)

    def _forget(self, key: Hashable) -> None:
        with self._lock:
            semaphore, users = self._turns[key]
            if users <= 1:
                del self._turns[key]
            else:
                self._turns[key] = (semaphore, users - 1)


class HeldTurns:
    """The turns one request holds: taken by its services, given back after its commit or
    rollback (`api.kit.deps.get_session`)."""

    def __init__(self, turns: Turns) -> None:
        self._turns = turns
        self._held: list[Hashable] = []

    def take(self, key: Hashable) -> None:
        """Wait for the key's turn (a turn already held by this request is held)."""
        if key in self._held:
            return
        self._turns.acquire(key)
        self._held.append(key)

    def release_all(self) -> None:
        while self._held:
            self._turns.release(self._held.pop())
