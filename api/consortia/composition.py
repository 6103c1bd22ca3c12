"""Scoring a consortium's members and lead against its call, and storing the result:
shared by the coordinator's changes (PATCH) and the proposals (`store_consortium`)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.consortia.fit import DEFAULT_FIT, CallFit
from api.consortia.states import FORMED
from api.kit.errors import Conflict, NotFound
from matcher.consortium import (
    Candidate,
    ConsortiumProblem,
    ConsortiumProposal,
    evaluate_consortium,
)
from matcher.consortium_errors import CompositionError
from models import Call, Consortium, ConsortiumMember, Organisation
from models.base import utcnow
from models.enums import MemberRole, OrganisationKind


def past_pairs(
    session: Session, organisation_ids: Sequence[int], *, besides: int | None
) -> set[tuple[int, int]]:
    """Pairs of these organisations already together in a formed consortium (approved or
    later) other than `besides`."""
    rows = session.execute(
        select(ConsortiumMember.consortium_id, ConsortiumMember.organisation_id)
        .join(Consortium, Consortium.id == ConsortiumMember.consortium_id)
        .where(
            ConsortiumMember.organisation_id.in_(list(organisation_ids)),
            Consortium.status.in_(list(FORMED)),
            Consortium.id != (besides or 0),
        )
    ).all()
    by_consortium: dict[int, set[int]] = {}
    for consortium_id, organisation_id in rows:
        by_consortium.setdefault(consortium_id, set()).add(organisation_id)
    pairs: set[tuple[int, int]] = set()
    for members in by_consortium.values():
        pairs.update(combinations(sorted(members), 2))
    return pairs


def load_members(session: Session, member_ids: Sequence[int]) -> list[Organisation]:
    """The organisations, in the given order. NotFound (404) naming the unknown ids."""
    found = {
        o.id: o
        for o in session.scalars(select(Organisation).where(Organisation.id.in_(member_ids)))
    }
    unknown = [i for i in member_ids if i not in found]
    if unknown:
        raise NotFound(
            "Organisation(s) introuvable(s) : " + ", ".join(f"n° {i}" for i in unknown) + "."
        )
    return [found[i] for i in member_ids]


def evaluate(
    session: Session,
    call: Call,
    member_ids: Sequence[int],
    lead_id: int,
    *,
    fit: CallFit = DEFAULT_FIT,
    besides: int | None = None,
) -> tuple[list[Organisation], ConsortiumProposal | None]:
    """Check and score a member set (lead included) for the call.

    Returns the organisations (in `member_ids` order) and the composer's description
    (coverage table, score), None when the call has no requirement. Raises NotFound
    (unknown organisation), Conflict (409: an ineligible member, each with its reason in
    `errors`; a lead that is not a member or not a social landlord).
    """
    organisations = load_members(session, member_ids)
    if lead_id not in member_ids:
        raise Conflict(f"Le chef de file (n° {lead_id}) doit être membre du consortium.")
    reasons = fit.ineligibility(session, call, organisations)
    if reasons:
        raise Conflict(
            "Membre(s) non éligible(s) à l'appel : " + " ".join(reasons.values()),
            errors=[
                {"loc": ["body", "member_ids", member_ids.index(i)], "msg": m, "type": "ineligible"}
                for i, m in reasons.items()
            ],
        )
    lead = organisations[list(member_ids).index(lead_id)]
    if lead.kind != OrganisationKind.landlord:
        raise Conflict(
            f"Le chef de file doit être un bailleur social : {lead.name} (n° {lead.id}) "
            "n'en est pas un."
        )
    if not call.requirements:
        return organisations, None
    similarities = fit.similarities(session, call, organisations)
    problem = ConsortiumProblem(
        candidates=[
            Candidate(o.id, is_landlord=o.kind == OrganisationKind.landlord) for o in organisations
        ],
        similarity=similarities.values,
        statements=similarities.statements,
        past_pairs=past_pairs(session, member_ids, besides=besides),
    )
    try:
        proposal = evaluate_consortium(problem, list(member_ids), lead_id)
    except CompositionError as exc:
        raise Conflict(exc.message) from exc
    return organisations, proposal


def apply(
    consortium: Consortium,
    call: Call,
    member_ids: Sequence[int],
    lead_id: int,
    proposal: ConsortiumProposal | None,
) -> None:
    """Set the consortium's members (kept rows updated in place), lead, coverage, score
    and coverage table (`scores["table"]`: one entry per requirement, by requirement id)."""
    requirement_ids = [r.id for r in call.requirements]
    covers: dict[int, list[int]] = {}
    table: list[dict[str, Any]] = []
    if proposal is not None:
        for cover in proposal.coverage_table:
            requirement_id = requirement_ids[cover.requirement]
            if cover.covered and cover.organisation_id is not None:
                covers.setdefault(cover.organisation_id, []).append(requirement_id)
            table.append(
                {
                    "requirement_id": requirement_id,
                    "organisation_id": cover.organisation_id,
                    "statement_id": cover.statement_id,
                    "similarity": round(cover.similarity, 4),
                    "covered": cover.covered,
                }
            )
    existing = {m.organisation_id: m for m in consortium.members}
    kept: list[ConsortiumMember] = []
    for organisation_id in member_ids:
        member = existing.get(organisation_id) or ConsortiumMember(organisation_id=organisation_id)
        member.role = MemberRole.lead if organisation_id == lead_id else MemberRole.member
        member.covers = covers.get(organisation_id, [])
        kept.append(member)
    consortium.members = kept
    consortium.coverage = proposal.coverage if proposal else None
    consortium.score = proposal.score if proposal else None
    consortium.scores = (
        {
            **proposal.scores,
            "table": table,
            "new_pairs": proposal.new_pairs,
            "repeated_pairs": proposal.repeated_pairs,
        }
        if proposal
        else {"table": []}
    )
    # Always an UPDATE of the row, so that its version moves and a concurrent write fails.
    consortium.updated_at = utcnow()


def store_consortium(
    session: Session,
    call: Call,
    member_ids: Sequence[int],
    lead_id: int,
    created_by: int | None,
    *,
    fit: CallFit = DEFAULT_FIT,
) -> Consortium:
    """Store a proposed consortium for the call (status proposed, version 1), its members
    checked and scored as in `evaluate` (same errors). `created_by`: the account id."""
    member_ids = list(dict.fromkeys(member_ids))
    _, proposal = evaluate(session, call, member_ids, lead_id, fit=fit)
    consortium = Consortium(call_id=call.id, created_by_id=created_by, scores={})
    apply(consortium, call, member_ids, lead_id, proposal)
    session.add(consortium)
    session.flush()
    return consortium
