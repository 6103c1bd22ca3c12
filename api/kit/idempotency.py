"""`Idempotency-Key` on creating requests, after the IETF draft "The Idempotency-Key HTTP
Header Field" (draft-ietf-httpapi-idempotency-key-header) and Stripe's practice.

A client that sends a POST again with the same key (its answer was lost, it timed out)
gets the first answer again — status, body, `Location`, and `Idempotent-Replayed: true`
— and nothing is created twice. Keys belong to the account of the token (two accounts may
use the same key) and are kept `Settings.idempotency_hours` (24 h by default).

- Same key, another request (method, path, query string or body differ): 422.
- The first request failed (any error): nothing was kept, its writes were rolled back; the
  same key runs the request again.
- Two requests with the same key at once: the second waits for the first to end at its
  first database statement, then answers as above (PostgreSQL waits on the key's unique
  index, SQLite on its write lock; both within `db_lock_timeout`, else 503).

The key is claimed (a row without an answer) at the request transaction's first statement,
as its first write, so that on SQLite the request still encodes before it takes the write
lock; the answer is stored in the same transaction once built (`api.kit.routing.Route`):
the key is kept exactly when the request's writes are.

A token's creation is never answered twice: its secret is shown once and not stored. A
retry with the same key gets a 409 naming the token already created.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, cast

import anyio
from fastapi import Depends, FastAPI, Header, Request, Response
from sqlalchemy import Connection, Table, delete, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from api.kit.deps import SessionDep
from api.kit.errors import Conflict, InvalidInput
from models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
_CLAIM = "maillage_idempotency"  # Session.info: the claim to make at the first statement
_CONNECTED = "maillage_connected"  # Session.info: the session's transaction has a connection
_KEPT_HEADERS = ("location", "content-type")
PURGE_BATCH = 100  # expired keys deleted by each claim
_TABLE = cast(Table, IdempotencyKey.__table__)


class Replay(Exception):  # noqa: N818 — not an error: the answer already given
    """The first answer to a key, to send again."""

    def __init__(self, status_code: int, body: str, headers: dict[str, str]) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body.encode()
        self.headers = headers


@dataclass
class Claim:
    """One request's key: claimed in its transaction, then given the request's answer."""

    session: Session
    account_id: int
    key: str
    fingerprint: str
    method: str
    path: str
    expires_at: datetime
    secret_field: str | None = None  # an answer field never stored (a token's secret)
    row_id: int | None = field(default=None, init=False)

    def claim(self, connection: Connection) -> None:
        """Insert the key without an answer, or raise: Replay (the key's request succeeded),
        InvalidInput (422: the key came with another request), Conflict (409, a token's
        creation, or — never seen in practice — a key whose request has not ended)."""
        now = datetime.now(UTC)
        table = _TABLE
        expired = select(table.c.id).where(table.c.expires_at < now).limit(PURGE_BATCH)
        if connection.dialect.name == "postgresql":
            expired = expired.with_for_update(skip_locked=True)  # never wait on a purge
        connection.execute(
            delete(table).where(
                (table.c.account_id == self.account_id)
                & (table.c.key == self.key)
                & (table.c.expires_at < now)
            )
        )
        connection.execute(delete(table).where(table.c.id.in_(expired.scalar_subquery())))
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        # ON CONFLICT DO NOTHING waits for a concurrent transaction holding the same key,
        # then inserts (it rolled back) or skips (it committed).
        self.row_id = connection.scalar(
            insert(table)
            .values(
                account_id=self.account_id,
                key=self.key,
                fingerprint=self.fingerprint,
                method=self.method,
                path=self.path,
                created_at=now,
                expires_at=self.expires_at,
            )
            .on_conflict_do_nothing(index_elements=["account_id", "key"])
            .returning(table.c.id)
        )
        if self.row_id is not None:
            return
        row = connection.execute(
            select(table).where(table.c.account_id == self.account_id, table.c.key == self.key)
        ).one()
        if row.fingerprint != self.fingerprint:
            raise InvalidInput(
                f"La clé {HEADER} « {self.key} » a déjà servi pour une autre requête "
                f"({row.method} {row.path}, ou un autre contenu) : chaque nouvelle requête "
                "demande une clé nouvelle.",
                errors=[{"loc": ["header", HEADER], "msg": "Clé déjà utilisée.", "type": "reused"}],
            )
        if row.status_code is None:
            raise Conflict(f"Une requête avec la clé {HEADER} « {self.key} » est en cours.")
        if self.secret_field is not None:
            created = json.loads(row.response_body or "{}")
            raise Conflict(
                f"La requête de clé {HEADER} « {self.key} » a déjà créé le jeton n° "
                f"{created.get('id')} (préfixe {created.get('prefix')}) ; son secret ne "
                "s'affiche qu'une fois. Révoquez-le s'il est perdu, et créez-en un autre "
                "avec une clé nouvelle."
            )
        raise Replay(row.status_code, row.response_body or "", dict(row.response_headers or {}))

    def store(self, response: Response) -> None:
        """Keep a successful answer with the key (claimed now if the request ran no
        statement); forget the key of any other answer."""
        connection = self.session.connection()  # begins it, and claims, if not yet
        if self.row_id is None:
            self.claim(connection)
        ok = 200 <= response.status_code < 300
        table = _TABLE
        if not ok:
            self.session.execute(delete(table).where(table.c.id == self.row_id))
            return
        body = bytes(response.body).decode()
        if self.secret_field is not None:
            data = json.loads(body)
            data.pop(self.secret_field, None)
            body = json.dumps(data, ensure_ascii=False)
        headers = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
        self.session.execute(
            update(table)
            .where(table.c.id == self.row_id)
            .values(status_code=response.status_code, response_body=body, response_headers=headers)
        )


@event.listens_for(Session, "after_begin")
def _claim_at_first_statement(
    session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    session.info[_CONNECTED] = True
    claim = session.info.pop(_CLAIM, None)
    if claim is not None:
        claim.claim(connection)


# What `_key` accepts, for the OpenAPI document: visible ASCII but `"` and `\`, bare or
# quoted (an sf-string).
_KEY_CHARS = rf"[!#-\[\]-~]{{1,{MAX_LENGTH}}}"
KEY_PATTERN = rf'^(?:{_KEY_CHARS}|"{_KEY_CHARS}")$'


def _key(raw: str) -> str:
    """The key of the header: an sf-string (`"…"`, as the draft writes it) or a bare value,
    1 to 255 visible ASCII characters. Raises InvalidInput."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_LENGTH or not all(
        33 <= ord(c) <= 126 and c not in '"\\' for c in key
    ):
        message = (
            f"1 à {MAX_LENGTH} caractères ASCII visibles, sans guillemet ni barre oblique "
            "inverse (par exemple un UUID)."
        )
        raise InvalidInput(
            f"En-tête {HEADER} invalide : {message}",
            errors=[{"loc": ["header", HEADER], "msg": message, "type": "value_error"}],
        )
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 (hex) of what makes a request the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.hexdigest()


class Idempotency:
    """Dependency of a creating route: its `Idempotency-Key` header, claimed at the
    request transaction's first statement. `secret_field`: a field of the answer that is
    never stored (and a retry is a 409)."""

    def __init__(self, *, secret_field: str | None = None) -> None:
        self.secret_field = secret_field

    async def __call__(
        self,
        request: Request,
        session: SessionDep,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias=HEADER,
                max_length=MAX_LENGTH + 2,
                pattern=KEY_PATTERN,
                description="Optional: a unique value per request, such as a UUID (1 to 255 "
                "visible ASCII characters, quoted or not). Sent again with the same request, "
                "the first answer comes back (Idempotent-Replayed: true) and nothing is "
                "created twice; with another request, 422. Kept 24 hours, per account.",
            ),
        ] = None,
    ) -> None:
        if idempotency_key is None:
            return
        key = _key(idempotency_key)
        account_id = getattr(getattr(request.state, "principal", None), "account_id", None)
        if account_id is None:
            return  # creating routes need a token: never reached
        body = getattr(request.state, "body", None)
        if body is None:
            body = await request.body()  # already read and parsed by FastAPI
        hours = request.app.state.settings.idempotency_hours
        claim = Claim(
            session=session,
            account_id=account_id,
            key=key,
            fingerprint=fingerprint(request.method, request.url.path, request.url.query, body),
            method=request.method,
            path=request.url.path,
            expires_at=datetime.now(UTC) + timedelta(hours=hours),
            secret_field=self.secret_field,
        )
        request.state.idempotency = claim
        if session.info.get(_CONNECTED):
            # Already begun (a test's session): claim now; a request's session connects at
            # the route's first statement, after this.
            await anyio.to_thread.run_sync(claim.claim, session.connection())
        else:
            session.info[_CLAIM] = claim


IdempotencyDep = Annotated[None, Depends(Idempotency())]
# A token's creation: its secret is never stored, a retry is a 409.
SecretIdempotencyDep = Annotated[None, Depends(Idempotency(secret_field="token"))]


async def store_answer(request: Request, response: Response) -> None:
    """Keep the answer of a request sent with a key, in its transaction (which commits
    after this). In a thread that waits for no turn: the request holds its connection."""
    claim: Claim | None = getattr(request.state, "idempotency", None)
    if claim is None:
        return
    await anyio.to_thread.run_sync(claim.store, response, limiter=anyio.CapacityLimiter(1))


def install_idempotency(app: FastAPI) -> None:
    """The handler that sends a kept answer again."""

    @app.exception_handler(Replay)
    async def _replay(_request: Request, exc: Replay) -> Response:
        headers = {k: v for k, v in exc.headers.items() if k != "content-type"}
        return Response(
            exc.body,
            status_code=exc.status_code,
            headers={**headers, REPLAYED: "true"},
            media_type=exc.headers.get("content-type", "application/json"),
        )
