"""What matching reads from and writes to the database besides embeddings: the network as
plain records, the index version and its change log, dismissals, the organisations to
show."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.orm import Session

from api.organisations.schemas import OrganisationSummary
from api.territories.schemas import TerritoryBrief
from matcher.index import OrganisationRecord, StatementRecord
from models import (
    Dismissal,
    Embedding,
    MatchChange,
    MatchState,
    Organisation,
    Statement,
    Territory,
    organisation_territories,
)
from models.enums import Visibility


def current_version(session: Session) -> int:
    """The network's version: a counter every write that changes matching bumps."""
    return int(session.scalar(select(MatchState.version).where(MatchState.id == 1)) or 0)


# The change log keeps the last CHANGE_LOG_KEPT versions, pruned every so many writes.
CHANGE_LOG_KEPT = 10_000
CHANGE_LOG_PRUNE_EVERY = 1_000


def bump_version(session: Session, organisation_ids: Iterable[int] | None = None) -> int:
    """Mark every cached snapshot stale, in the writer's transaction, and log what changed:
    the organisations written (created, edited, archived, deleted), or by default the whole
    network (a reindex, a bulk load), which every process rebuilds from the database: a
    write should name its organisations. Returns the new version."""
    version = int(
        session.scalar(
            update(MatchState)
            .where(MatchState.id == 1)
            .values(version=MatchState.version + 1)
            .returning(MatchState.version)
        )
        or 0
    )
    changed: list[int | None] = [None]
    if organisation_ids is not None:
        changed = [*sorted(set(organisation_ids))] or [None]
    session.execute(
        insert(MatchChange), [{"version": version, "organisation_id": i} for i in changed]
    )
    if version % CHANGE_LOG_PRUNE_EVERY == 0:
        # A process whose snapshot is older than the log rebuilds it whole.
        session.execute(delete(MatchChange).where(MatchChange.version <= version - CHANGE_LOG_KEPT))
    return version


def changes_since(session: Session, since: int, version: int) -> set[int] | None:
    """The organisations changed after version `since` up to `version`, or None when the
    whole network may have: a "whole network" entry, or a version without entries (a write
    that bumped the version without logging, or a log pruned past `since`)."""
    seen: set[int] = set()
    changed: set[int] = set()
    for at, organisation_id in session.execute(
        select(MatchChange.version, MatchChange.organisation_id).where(
            MatchChange.version > since, MatchChange.version <= version
        )
    ):
        if organisation_id is None:
            return None
        seen.add(at)
        changed.add(organisation_id)
    if len(seen) != version - since:
        return None
    return changed


def read_network(
    session: Session, organisation_ids: Sequence[int] | None = None
) -> tuple[list[OrganisationRecord], list[StatementRecord]]:
    """Every organisation not archived (or those of `organisation_ids`, for a delta) with
    the places it works on, and its statements visible to the network (visibility
    `network`), as the matcher's plain records."""
    from api.territories.service import places_of

    def chunks() -> Iterator[Sequence[int] | None]:
        if organisation_ids is None:
            yield None
            return
        for start in range(0, len(organisation_ids), 1000):
            yield organisation_ids[start : start + 1000]

    records: list[OrganisationRecord] = []
    statements: list[StatementRecord] = []
    links = organisation_territories.c
    for ids in chunks():
        link_query = select(links.organisation_id, links.territory_id)
        # An archived organisation has left matching: for a delta, as if deleted.
        active = select(Organisation.id).where(Organisation.archived_at.is_(None))
        org_query = select(
            Organisation.id, Organisation.name, Organisation.kind, Organisation.description
        ).where(Organisation.archived_at.is_(None))
        statement_query = select(
            Statement.id,
            Statement.organisation_id,
            Statement.kind,
            Statement.text,
            Statement.content_hash,
        ).where(Statement.visibility == Visibility.network, Statement.organisation_id.in_(active))
        link_query = link_query.where(links.organisation_id.in_(active))
        if ids is not None:
            link_query = link_query.where(links.organisation_id.in_(ids))
            org_query = org_query.where(Organisation.id.in_(ids))
            statement_query = statement_query.where(Statement.organisation_id.in_(ids))
        territory_ids: dict[int, list[int]] = {}
        for org_id, territory_id in session.execute(link_query):
            territory_ids.setdefault(org_id, []).append(territory_id)
        used = session.scalars(
            select(Territory).where(
                Territory.id.in_(link_query.with_only_columns(links.territory_id).distinct())
            )
        ).all()
        places = places_of(session, used)
        records += [
            OrganisationRecord(
                id=org_id,
                name=name,
                kind=kind.value,
                places=tuple(places[t] for t in sorted(territory_ids.get(org_id, ()))),
                description=description or "",
            )
            for org_id, name, kind, description in session.execute(org_query)
        ]
        statements += [
            StatementRecord(id=i, organisation_id=org, kind=kind.value, text=t, content_hash=h)
            for i, org, kind, t, h in session.execute(statement_query)
        ]
    return records, statements


def vectors_query(
    space: str, id_column: Any, hash_column: Any, role: Any
) -> Select[tuple[int, Any]]:
    """(id, vector) of statements or profiles, joined to their embedding in `space`;
    `role` is a literal or a column (a statement's kind)."""
    return select(id_column, Embedding.vector).join(
        Embedding,
        (Embedding.content_hash == hash_column)
        & (Embedding.model == space)
        & (Embedding.role == role),
    )


def organisations_to_show(session: Session, ids: list[int]) -> dict[int, OrganisationSummary]:
    """The organisations to show, by id, with their territories: one query, no ORM
    object (a page of results loads no more than it shows)."""
    if not ids:
        return {}
    out: dict[int, OrganisationSummary] = {}
    for org_id, name, kind, legal_form, level, code, territory in session.execute(
        select(
            Organisation.id,
            Organisation.name,
            Organisation.kind,
            Organisation.legal_form,
            Territory.level,
            Territory.code,
            Territory.name,
        )
        .outerjoin(
            organisation_territories, organisation_territories.c.organisation_id == Organisation.id
        )
        .outerjoin(Territory, Territory.id == organisation_territories.c.territory_id)
        .where(Organisation.id.in_(ids))
        .order_by(Organisation.id, Territory.id)
    ):
        if org_id not in out:
            out[org_id] = OrganisationSummary(
                id=org_id, name=name, kind=kind, legal_form=legal_form, territories=[]
            )
        if level is not None:
            out[org_id].territories.append(
                TerritoryBrief(
                    ref=f"{level.value}:{code}", level=level.value, code=code, name=territory
                )
            )
    return out


def dismissed_ids(session: Session, organisation_id: int) -> set[int]:
    """Ids of the organisations this one dismissed."""
    return set(
        session.scalars(
            select(Dismissal.dismissed_id).where(Dismissal.organisation_id == organisation_id)
        )
    )
