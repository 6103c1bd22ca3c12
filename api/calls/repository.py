"""Call queries: one call, the listing's filters and page, the territories a call's
perimeter must touch, existing calls an import may mean."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, and_, false, func, literal, or_, select
from sqlalchemy.orm import Session, selectinload

from api.calls.schemas import CallState
from api.kit.pagination import after
from api.territories import service as territory_service
from matcher.text import name_key
from models import Call, Territory, call_territories
from models.call import LANDLORD_FORMS, OPEN_TO_ALL
from models.enums import CallStatus, HlmLegalForm, OrganisationKind

Order = Sequence[tuple[Any, bool]]

# Where permanent calls (no deadline) sort by deadline: after every dated one.
NO_DEADLINE = date(9999, 12, 31)


def find(session: Session, call_id: int) -> Call | None:
    """The call with its perimeter and requirements, whatever its status."""
    return session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .options(selectinload(Call.perimeter), selectinload(Call.requirements))
    )


def by_source(session: Session, source: str, external_id: str) -> Call | None:
    return session.scalar(
        select(Call).where(Call.source == source, Call.external_id == external_id)
    )


def by_title_key(session: Session, title_key: str) -> list[Call]:
    """Calls whose title folds as `title_key` does, by id."""
    return list(
        session.scalars(select(Call).where(Call.title_key == title_key).order_by(Call.id)).all()
    )


def deadline_order() -> ColumnElement[date]:
    """The deadline as the listing sorts it: a permanent call after every dated one."""
    return func.coalesce(Call.deadline, literal(NO_DEADLINE, Date))


def _passed(today: date) -> ColumnElement[bool]:
    return and_(Call.deadline.is_not(None), Call.deadline < today)


def state_is(state: CallState, today: date) -> ColumnElement[bool]:
    """Calls whose status, read on `today`, is `state`: open means open and not past its
    deadline; closed, closed by hand or open past its deadline; any, all but archived."""
    if state == CallState.open:
        return and_(Call.status == CallStatus.open, ~_passed(today))
    if state == CallState.closed:
        return or_(
            Call.status == CallStatus.closed,
            and_(Call.status == CallStatus.open, _passed(today)),
        )
    if state == CallState.draft:
        return Call.status == CallStatus.draft
    if state == CallState.archived:
        return Call.status == CallStatus.archived
    return Call.status != CallStatus.archived


def _facet(name: str) -> ColumnElement[bool]:
    return Call.facets.contains(f"|{name}|", autoescape=True)


def open_to_kind(kind: OrganisationKind) -> ColumnElement[bool]:
    """Calls some organisations of `kind` may answer: open to everyone, to the kind, or
    (for landlords) to an Hlm legal form."""
    options = [_facet(OPEN_TO_ALL), _facet(f"kind:{kind.value}")]
    if kind == OrganisationKind.landlord:
        options += [_facet(f"form:{form}") for form in sorted(LANDLORD_FORMS)]
    return or_(*options)


def open_to_legal_form(legal_form: str) -> ColumnElement[bool]:
    """Calls an organisation of this legal form may answer: open to everyone, to the form,
    or (for an Hlm form) to landlords."""
    key = name_key(legal_form)
    options = [_facet(OPEN_TO_ALL), _facet(f"form:{key}")]
    if key in {name_key(form.value) for form in HlmLegalForm}:
        options.append(_facet(f"kind:{OrganisationKind.landlord.value}"))
    return or_(*options)


def touching(session: Session, target: Territory) -> ColumnElement[bool]:
    """Calls whose perimeter contains, lies inside or overlaps `target` (an EPCI across
    départements overlaps each of them), or is all of France."""
    place = territory_service.places_of(session, [target])[target.id]
    territory_ids = territory_service.overlapping(target, place)
    on_it = select(call_territories.c.call_id).where(
        call_territories.c.territory_id.in_(territory_ids)
    )
    return or_(Call.nationwide, Call.id.in_(on_it))


def calls(
    *,
    state: CallState,
    today: date,
    with_drafts: bool,
    q: str | None = None,
    territory: ColumnElement[bool] | None = None,
    theme: str | None = None,
    kind: OrganisationKind | None = None,
    legal_form: str | None = None,
    deadline_before: date | None = None,
    deadline_after: date | None = None,
) -> Select[Any]:
    """Calls the filters keep: status read on `today`; each word of `q` among the folded
    words of title, funders, description, themes and aid types; a territory condition
    (`touching`); a theme (folded, exact); open to a kind or a legal form; the deadline on or
    before / on or after a date (a permanent call is after every date). Drafts only
    `with_drafts`."""
    query = select(Call).where(state_is(state, today))
    if not with_drafts:
        query = query.where(Call.status != CallStatus.draft)
    for token in (q or "").split():
        key = name_key(token)
        if key:
            query = query.where(Call.search_key.contains(key, autoescape=True))
    if territory is not None:
        query = query.where(territory)
    if theme is not None:
        key = name_key(theme)
        query = query.where(_facet(f"theme:{key}") if key else false())
    if kind is not None:
        query = query.where(open_to_kind(kind))
    if legal_form is not None:
        query = query.where(open_to_legal_form(legal_form))
    if deadline_before is not None:
        query = query.where(Call.deadline.is_not(None), Call.deadline <= deadline_before)
    if deadline_after is not None:
        query = query.where(or_(Call.deadline.is_(None), Call.deadline >= deadline_after))
    return query


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
) -> tuple[list[Call], bool]:
    """One page of `query` in `order` ((expression, descending) pairs, the last one unique),
    after `key` (keyset) or from `offset`, with perimeters loaded; and whether more follow."""
    if key is not None:
        query = query.where(after(order, key))
    ordered = query.order_by(*(c.desc() if d else c.asc() for c, d in order))
    if key is None and offset:
        ordered = ordered.offset(offset)
    rows = list(
        session.scalars(ordered.options(selectinload(Call.perimeter)).limit(limit + 1)).all()
    )
    return rows[:limit], len(rows) > limit
