"""Recording and reading the audit trail.

Every flush of a session records, in the same transaction, one `AuditEvent` per created,
changed or deleted organisation, statement, account, token, call and review decision: who
(the account in `session.info["principal"]`, none for commands), when, and what changed
field by field (`{"field": [before, after]}`; a creation lists its values, a deletion
its last ones). Secrets (token hashes) and derived fields (content hashes) are left out.
Installed once per process by `install_audit()`; nothing to call from services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import event, func, insert, inspect, select
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from models import (
    Account,
    ApiToken,
    AuditEvent,
    Call,
    ConsortiumReview,
    Organisation,
    Statement,
)

# Audited classes, the name events give them, and the fields never recorded.
AUDITED: dict[type, tuple[str, frozenset[str]]] = {
    Organisation: ("organisation", frozenset({"profile_hash", "created_at", "updated_at"})),
    Statement: ("statement", frozenset({"content_hash", "created_at", "updated_at"})),
    Account: ("account", frozenset({"created_at", "updated_at"})),
    ApiToken: ("token", frozenset({"token_hash", "last_used_at"})),
    ConsortiumReview: ("review", frozenset()),
    Call: (
        "call",
        frozenset({"title_key", "search_key", "facets", "created_at", "updated_at"}),
    ),
}
PRINCIPAL_KEY = "principal"
_installed = False


def _plain(value: Any) -> Any:
    """A JSON-ready value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _changes(obj: Any, skip: frozenset[str], *, mode: str) -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in skip or key == "id":
            continue
        history = state.attrs[key].history
        if mode == "update":
            if history.has_changes() and history.deleted:
                before, after = history.deleted[0], history.added[0] if history.added else None
                if before != after:
                    out[key] = [_plain(before), _plain(after)]
        else:
            value = state.attrs[key].value
            if value is not None:
                out[key] = _plain(value)
    return out


def _action(obj: Any, mode: str, changes: dict[str, Any]) -> str:
    if isinstance(obj, Organisation) and "archived_at" in changes and mode == "update":
        return "archive" if changes["archived_at"][1] is not None else "restore"
    if isinstance(obj, ApiToken) and "revoked_at" in changes and mode == "update":
        return "revoke"
    return mode


def _after_flush(session: Session, _context: Any) -> None:
    principal: Principal | None = session.info.get(PRINCIPAL_KEY)
    rows = []
    for mode, objects in (
        ("create", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in objects:
            audited = AUDITED.get(type(obj))
            if audited is None:
                continue
            name, skip = audited
            if mode == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _changes(obj, skip, mode=mode)
            if mode == "update" and not changes:
                continue
            rows.append(
                {
                    "account_id": principal.account_id if principal else None,
                    "action": _action(obj, mode, changes),
                    "object_type": name,
                    "object_id": getattr(obj, "id", None),
                    "details": {"changes": changes, "by": principal.name if principal else None},
                }
            )
    if rows:
        session.connection().execute(insert(AuditEvent), rows)


def install_audit() -> None:
    """Record audit events on every session of this process (idempotent)."""
    global _installed
    if not _installed:
        event.listen(Session, "after_flush", _after_flush)
        _installed = True


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    total: int


def list_events(
    session: Session,
    *,
    object_type: str | None,
    object_id: int | None,
    account_id: int | None,
    limit: int,
    offset: int,
) -> AuditPage:
    """Events newest first, filtered by object (type, and id) and by account."""
    query = select(AuditEvent)
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return AuditPage(list(items), total)
