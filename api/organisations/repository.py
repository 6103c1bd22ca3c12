"""Organisation queries: the organisations not archived, their listing, their statements."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from api.kit.pagination import after
from api.territories import service as territory_service
from matcher.text import name_key
from models import Organisation, Statement, Territory, organisation_territories
from models.enums import OrganisationKind, StatementKind, Visibility

Order = Sequence[tuple[Any, bool]]


def active() -> ColumnElement[bool]:
    """Organisations not archived."""
    return Organisation.archived_at.is_(None)


def find_active(
    session: Session, organisation_id: int, *, for_update: bool = False
) -> Organisation | None:
    """The organisation with its territories, contacts and statements, unless it is unknown
    or archived. `for_update`: its row locked until the transaction ends (PostgreSQL;
    SQLite's writers hold the whole database), and its state read again after the lock:
    concurrent writes to one organisation then run one after the other, each on what the
    previous one committed."""
    query = (
        select(Organisation)
        .where(Organisation.id == organisation_id, active())
        .options(
            selectinload(Organisation.territories),
            selectinload(Organisation.contacts),
            selectinload(Organisation.statements),
        )
    )
    if for_update:
        query = query.with_for_update(of=Organisation).execution_options(populate_existing=True)
    return session.scalar(query)


# Namespaces of the transaction-level advisory locks that serialise the creation (or the
# renaming) of organisations of one name or one SIREN on PostgreSQL: one lock for them all
# (taken shared by each request, exclusive by a large import), one per identity.
ALL_IDENTITIES = 7_263_000
ONE_IDENTITY = 7_263_001
# More identities than this are locked all at once: each advisory lock takes a slot of
# PostgreSQL's shared lock table (max_locks_per_transaction × connections).
MAX_IDENTITY_LOCKS = 32


def lock_identities(session: Session, keys: Iterable[str]) -> None:
    """Wait until no other transaction is creating or renaming an organisation of these
    identities (`identity_keys`), and hold them until this transaction ends; so that the
    checks that follow (SIREN taken, namesake) see what a concurrent request committed and
    answer as if it had come second. Keys are taken in order, after the shared lock of all
    identities: two requests cannot each hold a lock the other waits for. Past
    MAX_IDENTITY_LOCKS keys (an import), the lock of all identities is taken exclusive.
    PostgreSQL only: on SQLite a writer holds the whole database from its first statement."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(set(keys))
    if not ordered:
        return
    if len(ordered) > MAX_IDENTITY_LOCKS:
        session.execute(select(func.pg_advisory_xact_lock(ALL_IDENTITIES, 0)))
        return
    session.execute(select(func.pg_advisory_xact_lock_shared(ALL_IDENTITIES, 0)))
    for key in ordered:
        session.execute(select(func.pg_advisory_xact_lock(ONE_IDENTITY, func.hashtext(key))))


def identity_keys(name: str | None, siren: str | None) -> list[str]:
    """What makes two organisations the same one to the checks: the folded name, the SIREN."""
    keys = [f"name:{name_key(name)}"] if name else []
    return keys + ([f"siren:{siren}"] if siren else [])


def find_statement(session: Session, statement_id: int) -> Statement | None:
    """The statement, unless it is unknown or its organisation is archived."""
    return session.scalar(
        select(Statement)
        .join(Organisation, Organisation.id == Statement.organisation_id)
        .where(Statement.id == statement_id, active())
    )


def siren_holder(session: Session, siren: str) -> Organisation | None:
    """The organisation holding this SIREN, archived ones included (a SIREN stays taken)."""
    return session.scalar(select(Organisation).where(Organisation.siren == siren))


def organisations(
    *,
    q: str | None,
    kind: OrganisationKind | None,
    legal_form: str | None,
    within: Select[Any] | None,
) -> Select[Organisation]:
    """Organisations not archived that the filters keep: each word of `q` in the name
    (accents, case and apostrophe style aside: through `name_key`) or the description
    (case-insensitive), the kind, the legal form (case-insensitive), the ids `within`
    selects (a territory filter)."""
    query = select(Organisation).where(active())
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    if legal_form is not None:
        query = query.where(func.lower(Organisation.legal_form) == legal_form.lower())
    for token in unicodedata.normalize("NFC", q or "").split():
        key = name_key(token)
        matches = [Organisation.description.icontains(token, autoescape=True)]
        if key:
            matches.append(Organisation.name_key.contains(key, autoescape=True))
        query = query.where(or_(*matches))
    if within is not None:
        query = query.where(Organisation.id.in_(within))
    return query


def statements(
    organisation_id: int, *, kind: StatementKind | None, coordinator_only: bool
) -> Select[Statement]:
    """The organisation's statements of `kind`; those of visibility coordinator only when
    `coordinator_only` (the viewer acts for the organisation)."""
    query = select(Statement).where(Statement.organisation_id == organisation_id)
    if kind is not None:
        query = query.where(Statement.kind == kind)
    if not coordinator_only:
        query = query.where(Statement.visibility == Visibility.network)
    return query


def same_name(
    session: Session, name: str, kind: OrganisationKind, *, exclude_id: int | None = None
) -> list[Organisation]:
    """Organisations not archived of this kind whose name folds as `name` does."""
    query = select(Organisation).where(
        active(), Organisation.name_key == name_key(name), Organisation.kind == kind
    )
    if exclude_id is not None:
        query = query.where(Organisation.id != exclude_id)
    return list(session.scalars(query.order_by(Organisation.id)).all())


def count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def page_rows(
    session: Session,
    query: Select[Any],
    order: Order,
    *,
    limit: int,
    offset: int,
    key: Sequence[Any] | None,
) -> tuple[list[Any], bool]:
    """One page of `query` in `order` ((column, descending) pairs, the last one unique),
    after `key` (keyset) or from `offset`; and whether more rows follow."""
    if key is not None:
        query = query.where(after(order, key))
    ordered = query.order_by(*(c.desc() if d else c.asc() for c, d in order))
    if key is None and offset:
        ordered = ordered.offset(offset)
    rows = list(session.scalars(ordered.limit(limit + 1)).all())
    return rows[:limit], len(rows) > limit


def working_on(target: Territory) -> Select[tuple[int]]:
    """Ids of organisations working inside `target`, on a territory that contains it, or on
    an EPCI that reaches into it (the Métropole d'Aix-Marseille-Provence counts for the Var)."""
    return select(organisation_territories.c.organisation_id).where(
        organisation_territories.c.territory_id.in_(territory_service.overlapping(target))
    )
