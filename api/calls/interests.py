"""Organisations interested in a call (« intéressé »): marked, withdrawn, listed with the
other interested organisations nearby."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from api.accounts.principal import Principal
from api.calls.fit import (
    call_rules,
    get_call,
    organisation_row,
)
from api.calls.fit_schemas import (
    InterestOut,
    InterestPage,
)
from api.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from api.matching import repository
from api.territories import service as territory_service
from matcher.eligibility import overlaps, refusals
from models import CallInterest, Organisation

# --- interests -----------------------------------------------------------------------------


def _acting_for(viewer: Principal, organisation_id: int) -> None:
    if not viewer.acts_for(organisation_id):
        raise Forbidden(f"Vous n'agissez pas pour l'organisation n° {organisation_id}.")


def mark_interest(
    session: Session, viewer: Principal, call_id: int, organisation_id: int
) -> tuple[InterestOut, bool]:
    """Mark the call « intéressé » for an organisation the viewer acts for; marking again
    changes nothing. Returns (the interest, created). Raises NotFound, Forbidden, and
    Conflict (the organisation is not eligible: the reasons, in French)."""
    _acting_for(viewer, organisation_id)
    call = get_call(session, call_id)
    org = organisation_row(session, organisation_id)
    reasons = refusals(
        call_rules(session, call),
        org.kind.value,
        org.legal_form,
        list(territory_service.places_of(session, org.territories).values()),
    )
    if reasons:
        raise Conflict(f"{org.name} n'est pas éligible à cet appel : " + " ".join(reasons))
    existing = session.scalar(
        select(CallInterest).where(
            CallInterest.call_id == call_id, CallInterest.organisation_id == organisation_id
        )
    )
    created = existing is None
    if existing is None:
        existing = CallInterest(
            call_id=call_id, organisation_id=organisation_id, account_id=viewer.account_id
        )
        session.add(existing)
        session.flush()
    summary = repository.organisations_to_show(session, [organisation_id])[organisation_id]
    return InterestOut(organisation=summary, since=existing.created_at), created


def withdraw_interest(
    session: Session, viewer: Principal, call_id: int, organisation_id: int
) -> None:
    """Withdraw an organisation's interest. Raises Forbidden, NotFound (not marked)."""
    _acting_for(viewer, organisation_id)
    get_call(session, call_id)
    result = session.execute(
        delete(CallInterest).where(
            CallInterest.call_id == call_id, CallInterest.organisation_id == organisation_id
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"L'organisation n° {organisation_id} n'a pas marqué cet appel.")


def list_interests(
    session: Session, viewer: Principal, call_id: int, organisation_id: int | None
) -> InterestPage:
    """Interested organisations. The coordinator sees all (or, naming an organisation,
    that organisation's view). A member names the organisation it acts for (optional when
    it belongs to one only) and sees, once that organisation has marked the call, the
    others interested on a territory overlapping its own (mutual reveal). Raises
    NotFound, Forbidden, InvalidInput (a member of several organisations naming none).

    Overlapping: a territory of one lies in, contains or overlaps a territory of the
    other (as for eligibility); two communes of one EPCI do not overlap, an organisation
    working on the EPCI overlaps both."""
    get_call(session, call_id)
    rows = session.scalars(
        select(CallInterest)
        .where(CallInterest.call_id == call_id)
        .order_by(CallInterest.created_at, CallInterest.id)
    ).all()
    if organisation_id is None and not viewer.sees_everything:
        if len(viewer.organisation_ids) != 1:
            raise InvalidInput(
                "Précisez l'organisation pour laquelle vous agissez (organisation_id).",
                errors=[
                    {
                        "loc": ["query", "organisation_id"],
                        "msg": "Organisation requise.",
                        "type": "missing",
                    }
                ],
            )
        organisation_id = next(iter(viewer.organisation_ids))
    if organisation_id is None:  # the coordinator's view: everyone
        shown = list(rows)
        mine: bool | None = None
    else:
        _acting_for(viewer, organisation_id)
        own = organisation_row(session, organisation_id)
        mine = any(r.organisation_id == organisation_id for r in rows)
        shown = []
        if mine:
            others = [r for r in rows if r.organisation_id != organisation_id]
            orgs = {
                o.id: o
                for o in session.scalars(
                    select(Organisation)
                    .where(
                        Organisation.id.in_([r.organisation_id for r in others]),
                        Organisation.archived_at.is_(None),
                    )
                    .options(selectinload(Organisation.territories))
                )
            }
            territories = {t.id: t for o in [own, *orgs.values()] for t in o.territories}
            places = territory_service.places_of(session, territories.values())
            own_places = [places[t.id] for t in own.territories]
            own_keys = frozenset(p.key for p in own_places)
            own_ancestors = frozenset(k for p in own_places for k in p.ancestors)
            shown = [
                r
                for r in others
                if r.organisation_id in orgs
                and overlaps(
                    [places[t.id] for t in orgs[r.organisation_id].territories],
                    own_keys,
                    own_ancestors,
                )
            ]
    summaries = repository.organisations_to_show(session, [r.organisation_id for r in shown])
    return InterestPage(
        call_id=call_id,
        organisation_id=organisation_id,
        interested=mine,
        items=[
            InterestOut(organisation=summaries[r.organisation_id], since=r.created_at)
            for r in shown
            if r.organisation_id in summaries
        ],
    )
