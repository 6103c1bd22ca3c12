"""Organisations: creation with territories and statements, listing, detail."""

from __future__ import annotations

import unicodedata

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from api.kit.errors import Conflict, NotFound
from api.matching.engine import MatchingEngine, organisation_texts
from api.organisations.schemas import (
    ContactOut,
    OrganisationIn,
    OrganisationOut,
    OrganisationPage,
    OrganisationSummary,
    StatementOut,
)
from api.territories import service as territory_service
from matcher.text import content_hash, fold
from models import Contact, Organisation, Statement, Territory, organisation_territories
from models.enums import OrganisationKind, Visibility


def _apply(session: Session, org: Organisation, data: OrganisationIn) -> None:
    """Copy the payload onto `org`, replacing territories, contacts and statements."""
    _resolve_territories(session, org, data)
    _copy(org, data)


def _resolve_territories(session: Session, org: Organisation, data: OrganisationIn) -> None:
    org.territories = territory_service.resolve_refs(
        session, data.territories, ["body", "territories"]
    )


def _copy(org: Organisation, data: OrganisationIn) -> None:
    """Copy what the payload holds besides territories; reads no database."""
    org.name = data.name
    org.kind = data.kind
    org.legal_form = data.legal_form
    org.siren = data.siren
    org.website = data.website
    org.description = data.description
    org.contacts = [
        Contact(name=c.name, role=c.role, email=c.email, phone=c.phone) for c in data.contacts
    ]
    org.statements = [
        Statement(
            kind=s.kind,
            # Stored composed (NFC): the text hashed, shown and matched is the same string.
            text=unicodedata.normalize("NFC", s.text),
            themes=list(s.themes),
            visibility=s.visibility,
            content_hash=content_hash(s.text),
        )
        for s in data.statements
    ]


def _check_siren_free(session: Session, siren: str | None, own_id: int | None = None) -> None:
    if siren is None:
        return
    other = session.scalar(select(Organisation).where(Organisation.siren == siren))
    if other is not None and other.id != own_id:
        raise Conflict(
            f"Le SIREN {siren} est déjà celui de l'organisation « {other.name} » (n° {other.id})."
        )


def create_organisation(
    session: Session,
    data: OrganisationIn,
    *,
    slug: str | None = None,
    matching: MatchingEngine | None = None,
) -> Organisation:
    """Create an organisation; with `matching`, embed its statements in the same transaction."""
    org = Organisation(slug=slug)
    _copy(org, data)
    # Encoded before the request's first statement: on SQLite that statement takes the
    # write lock (models.db), which concurrent writers would otherwise wait on while
    # this one encodes.
    encoded = matching.embed(organisation_texts(org)) if matching is not None else None
    _check_siren_free(session, data.siren)
    _resolve_territories(session, org, data)
    session.add(org)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "Cette organisation entre en conflit avec une organisation existante."
        ) from exc
    if matching is not None:
        matching.organisation_written(session, org, encoded=encoded)
    return org


def upsert_fixture_organisation(session: Session, slug: str, data: OrganisationIn) -> Organisation:
    """Create or replace the organisation that a fixture file names by `slug`."""
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        return create_organisation(session, data, slug=slug)
    _check_siren_free(session, data.siren, org.id)
    _apply(session, org, data)
    session.flush()
    return org


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    org = session.scalar(
        select(Organisation)
        .where(Organisation.id == organisation_id)
        .options(
            selectinload(Organisation.territories),
            selectinload(Organisation.contacts),
            selectinload(Organisation.statements),
        )
    )
    if org is None:
        raise NotFound(f"Aucune organisation n° {organisation_id}.")
    return org


def list_organisations(
    session: Session,
    *,
    q: str | None,
    kind: OrganisationKind | None,
    territory: str | None,
    limit: int,
    offset: int,
) -> OrganisationPage:
    query = select(Organisation)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    if q is not None and fold(q):
        # Names are short: a case- and accent-tolerant match in Python would not scale,
        # so match case-insensitively in SQL on each word.
        for token in q.split():
            query = query.where(Organisation.name.icontains(token, autoescape=True))
    if territory is not None:
        target = territory_service.resolve_ref(session, territory)
        query = query.where(Organisation.id.in_(working_on(target)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    orgs = session.scalars(
        query.options(selectinload(Organisation.territories))
        .order_by(Organisation.name, Organisation.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return OrganisationPage(
        items=[summary(o) for o in orgs], total=total, limit=limit, offset=offset
    )


_CHILD_COLUMN = {
    "commune": Territory.commune_code,
    "epci": Territory.epci_code,
    "departement": Territory.departement_code,
    "region": Territory.region_code,
}


def working_on(target: Territory) -> Select[tuple[int]]:
    """Ids of organisations working inside `target`, on a territory that contains it, or on
    an EPCI that reaches into it (the Métropole d'Aix-Marseille-Provence counts for the Var)."""
    place = territory_service.place_of(target)
    conditions: list[ColumnElement[bool]] = [
        (Territory.level == level) & (Territory.code == code) for level, code in place.ancestors
    ]
    child_column = _CHILD_COLUMN.get(target.level.value)
    if child_column is not None:
        conditions.append(child_column == target.code)
    if child_column is not None and target.level.value in ("departement", "region"):
        reaching = select(Territory.epci_code).where(
            Territory.level == "commune", child_column == target.code
        )
        conditions.append((Territory.level == "epci") & Territory.code.in_(reaching))
    territory_ids = select(Territory.id).where(or_(*conditions))
    return select(organisation_territories.c.organisation_id).where(
        organisation_territories.c.territory_id.in_(territory_ids)
    )


def summary(org: Organisation) -> OrganisationSummary:
    return OrganisationSummary(
        id=org.id,
        name=org.name,
        kind=org.kind,
        legal_form=org.legal_form,
        territories=[territory_service.brief(t) for t in org.territories],
    )


def detail(org: Organisation) -> OrganisationOut:
    return OrganisationOut(
        **summary(org).model_dump(),
        siren=org.siren,
        website=org.website,
        description=org.description,
        contacts=[
            ContactOut(name=c.name, role=c.role, email=c.email, phone=c.phone) for c in org.contacts
        ],
        statements=[
            StatementOut(id=s.id, kind=s.kind, text=s.text, themes=list(s.themes or []))
            for s in org.statements
            if s.visibility == Visibility.network
        ],
        created_at=org.created_at,
        updated_at=org.updated_at,
    )
