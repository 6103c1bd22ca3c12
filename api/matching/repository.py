"""What matching reads from and writes to the database besides embeddings: the network as
plain records, the index version, dismissals, the organisations to show."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from api.organisations.schemas import OrganisationSummary
from api.territories.schemas import TerritoryBrief
from matcher.index import OrganisationRecord, StatementRecord
from models import (
    Dismissal,
    Embedding,
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


def bump_version(session: Session) -> None:
    """Mark every cached snapshot stale, in the writer's transaction."""
    session.execute(
        update(MatchState).where(MatchState.id == 1).values(version=MatchState.version + 1)
    )


def read_network(session: Session) -> tuple[list[OrganisationRecord], list[StatementRecord]]:
    """Every organisation not archived with the places it works on, and every statement of
    theirs visible to the network (visibility `network`), as the matcher's plain records."""
    from api.territories.service import places_of

    active = select(Organisation.id).where(Organisation.archived_at.is_(None))
    territory_ids: dict[int, list[int]] = {}
    for org_id, territory_id in session.execute(
        select(
            organisation_territories.c.organisation_id, organisation_territories.c.territory_id
        ).where(organisation_territories.c.organisation_id.in_(active))
    ):
        territory_ids.setdefault(org_id, []).append(territory_id)
    used = session.scalars(
        select(Territory).where(
            Territory.id.in_(select(organisation_territories.c.territory_id).distinct())
        )
    ).all()
    places = places_of(session, used)
    records = [
        OrganisationRecord(
            id=org_id,
            name=name,
            kind=kind.value,
            places=tuple(places[t] for t in sorted(territory_ids.get(org_id, ()))),
            description=description or "",
        )
        for org_id, name, kind, description in session.execute(
            select(
                Organisation.id, Organisation.name, Organisation.kind, Organisation.description
            ).where(Organisation.archived_at.is_(None))
        )
    ]
    statements = [
        StatementRecord(id=i, organisation_id=org, kind=kind.value, text=t, content_hash=h)
        for i, org, kind, t, h in session.execute(
            select(
                Statement.id,
                Statement.organisation_id,
                Statement.kind,
                Statement.text,
                Statement.content_hash,
            ).where(
                Statement.visibility == Visibility.network,
                Statement.organisation_id.in_(active),
            )
        )
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
