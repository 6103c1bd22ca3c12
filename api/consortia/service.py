"""The coordinator's review of consortia: listing (members see only their own), changes
of members and lead, reviews, status moves and outcomes — every write checked against
the version the client read (optimistic locking; see api/consortia/states.py for the
statuses)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from api.accounts.principal import Principal
from api.consortia import composition
from api.consortia.fit import DEFAULT_FIT, CallFit
from api.consortia.schemas import ConsortiumChange, OutcomeIn, ReviewIn, StatusIn
from api.consortia.states import (
    DECISION_STATUS,
    EDITABLE,
    NEXT,
    describe_allowed,
)
from api.kit.errors import Conflict, NotFound
from models import Call, Consortium, ConsortiumMember, ConsortiumReview
from models.base import utcnow
from models.enums import ConsortiumStatus, MemberRole, ReviewDecision


def _visible(query: Select[Any], viewer: Principal) -> Select[Any]:
    """Members see the consortia one of their organisations belongs to; the coordinator
    and admins see all."""
    if viewer.sees_everything:
        return query
    mine = select(ConsortiumMember.consortium_id).where(
        ConsortiumMember.organisation_id.in_(sorted(viewer.organisation_ids))
    )
    return query.where(Consortium.id.in_(mine))


@dataclass(frozen=True)
class ConsortiumPage:
    items: list[Consortium]
    total: int


def list_consortia(
    session: Session,
    viewer: Principal,
    *,
    status: Sequence[ConsortiumStatus] = (),
    call_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    below_id: int | None = None,
) -> ConsortiumPage:
    """Consortia the viewer may see, newest first, filtered by status (any of) and call;
    with `below_id` (keyset: the last id of the previous page), only those after it in
    that order — `total` still counts them all."""
    query = _visible(select(Consortium), viewer)
    if status:
        query = query.where(Consortium.status.in_(list(status)))
    if call_id is not None:
        query = query.where(Consortium.call_id == call_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if below_id is not None:
        query = query.where(Consortium.id < below_id)
    items = session.scalars(
        query.options(selectinload(Consortium.members).selectinload(ConsortiumMember.organisation))
        .order_by(Consortium.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return ConsortiumPage(list(items), total)


def get_consortium(session: Session, consortium_id: int, viewer: Principal) -> Consortium:
    """The consortium; NotFound (404) when it does not exist or the viewer may not see it
    (to a member, another's consortium does not exist)."""
    consortium: Consortium | None = session.scalar(
        _visible(select(Consortium).where(Consortium.id == consortium_id), viewer)
    )
    if consortium is None:
        raise NotFound(f"Consortium n° {consortium_id} introuvable.")
    return consortium


def call_of(session: Session, consortium: Consortium) -> Call:
    call = session.get(Call, consortium.call_id)
    assert call is not None  # the foreign key cascades
    return call


def _check_version(consortium: Consortium, version: int) -> None:
    if consortium.version != version:
        raise Conflict(
            f"Le consortium a changé depuis votre lecture (version envoyée : {version}, "
            f"version actuelle : {consortium.version}) : relisez-le avant de recommencer."
        )


def _move(consortium: Consortium, target: ConsortiumStatus) -> None:
    if target not in NEXT[consortium.status]:
        raise Conflict(
            f"Passage impossible de « {consortium.status.value} » à « {target.value} ». "
            f"Statuts possibles depuis « {consortium.status.value} » : "
            f"{describe_allowed(consortium.status)}."
        )
    consortium.status = target


@contextmanager
def _writing(session: Session, consortium: Consortium) -> Iterator[None]:
    """Make the changes of the block (no autoflush inside it), then write them: a
    concurrent writer that got there first (the row's version moved under us) is a 409
    (the request's transaction is then rolled back), not a 500."""
    consortium_id = consortium.id  # the row is unreadable once the flush failed
    with session.no_autoflush:
        yield
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            f"Le consortium n° {consortium_id} vient d'être modifié par quelqu'un d'autre : "
            "relisez-le avant de recommencer."
        ) from exc


def change_consortium(
    session: Session,
    consortium_id: int,
    change: ConsortiumChange,
    viewer: Principal,
    *,
    fit: CallFit = DEFAULT_FIT,
) -> Consortium:
    """Change the members and/or the lead; the coverage is recomputed. A consortium in
    changes_requested goes back to proposed. Raises NotFound, Conflict (stale version;
    status other than proposed or changes_requested; an ineligible member, with the
    reason; a lead that is not a landlord or not a member; no lead to keep). ConsortiumChange
    refuses a body that changes nothing."""
    consortium = get_consortium(session, consortium_id, viewer)
    _check_version(consortium, change.version)
    if consortium.status not in EDITABLE:
        raise Conflict(
            f"Les membres d'un consortium au statut « {consortium.status.value} » ne changent "
            "plus : seuls les consortiums proposed ou changes_requested se modifient."
        )
    current_lead = next(
        (m.organisation_id for m in consortium.members if m.role == MemberRole.lead), None
    )
    members = (
        list(change.member_ids)
        if change.member_ids is not None
        else [m.organisation_id for m in consortium.members]
    )
    lead = change.lead_id if change.lead_id is not None else current_lead
    if lead is None:  # a state of this consortium, not a fault of the body
        raise Conflict("Ce consortium n'a pas de chef de file : donnez lead_id.")
    if lead not in members:
        if change.member_ids is not None:
            raise Conflict(f"Le chef de file (n° {lead}) doit figurer parmi member_ids.")
        members.insert(0, lead)
    call = call_of(session, consortium)
    _, proposal = composition.evaluate(session, call, members, lead, fit=fit, besides=consortium.id)
    with _writing(session, consortium):
        composition.apply(consortium, call, members, lead, proposal)
        if consortium.status == ConsortiumStatus.changes_requested:
            _move(consortium, ConsortiumStatus.proposed)
    return consortium


def review_consortium(
    session: Session, consortium_id: int, data: ReviewIn, viewer: Principal
) -> Consortium:
    """Record the coordinator's decision on a proposed consortium and move it (approve →
    approved, reject → rejected, request_changes → changes_requested). Raises NotFound,
    Conflict (stale version, illegal transition naming the allowed ones). ReviewIn refuses
    a reject or request_changes without reason code, « other » without comment."""
    consortium = get_consortium(session, consortium_id, viewer)
    _check_version(consortium, data.version)
    with _writing(session, consortium):
        _move(consortium, DECISION_STATUS[data.decision])
        if data.decision != ReviewDecision.request_changes:
            consortium.decided_at = utcnow()
        consortium.reviews.append(
            ConsortiumReview(
                account_id=viewer.account_id,
                decision=data.decision,
                reason_code=data.reason_code.value if data.reason_code else None,
                comment=(data.comment or "").strip() or None,
            )
        )
    return consortium


def change_status(
    session: Session, consortium_id: int, data: StatusIn, viewer: Principal
) -> Consortium:
    """approved → contacted, or changes_requested → proposed. Raises NotFound, Conflict
    (stale version, illegal transition)."""
    consortium = get_consortium(session, consortium_id, viewer)
    _check_version(consortium, data.version)
    with _writing(session, consortium):
        _move(consortium, ConsortiumStatus(data.status))
        consortium.updated_at = utcnow()
    return consortium


def record_outcome(
    session: Session, consortium_id: int, data: OutcomeIn, viewer: Principal
) -> Consortium:
    """contacted → submitted (its date), submitted → won (date, amount in euros) or lost
    (date). Raises NotFound, Conflict (stale version, illegal transition, a decision dated
    before the submission). OutcomeIn refuses an amount other than for won."""
    consortium = get_consortium(session, consortium_id, viewer)
    _check_version(consortium, data.version)
    with _writing(session, consortium):
        _move(consortium, ConsortiumStatus(data.status))
        if data.status == ConsortiumStatus.submitted:
            consortium.submitted_on = data.on
        else:
            if consortium.submitted_on is not None and data.on < consortium.submitted_on:
                raise Conflict(  # the body is well formed; the recorded submission is later
                    f"La décision ({data.on.isoformat()}) ne peut précéder le dépôt "
                    f"({consortium.submitted_on.isoformat()}).",
                    errors=[
                        {
                            "loc": ["body", "on"],
                            "msg": "Date antérieure au dépôt.",
                            "type": "value_error",
                        }
                    ],
                )
            consortium.outcome_on = data.on
            consortium.outcome_amount = data.amount
    return consortium
