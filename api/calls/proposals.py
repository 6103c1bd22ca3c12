"""Consortia proposed for a call (POST /calls/{id}/consortia): the composer over the
eligible organisations, stored as proposals for the coordinator's review."""

from __future__ import annotations

from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.calls.fit import (
    fit_call,
    get_call,
    statement_brief,
)
from api.calls.fit_schemas import (
    ConsortiumRequest,
    CoverOut,
    MemberOut,
    ProposedConsortiumOut,
)
from api.consortia.composition import apply
from api.consortia.states import FORMED
from api.kit.errors import Conflict
from api.matching import repository
from api.matching.engine import MatchingEngine
from matcher.consortium import (
    Candidate,
    ConsortiumOptions,
    ConsortiumProblem,
    ConsortiumProposal,
    compose_consortia,
)
from matcher.consortium_errors import ImpossibleConsortium, InvalidComposition
from models import Call, CallInterest, Consortium, ConsortiumMember
from models.enums import OrganisationKind

# --- POST /calls/{id}/consortia ---------------------------------------------------------


def past_pairs(session: Session) -> set[tuple[int, int]]:
    """Pairs of organisations (smaller id first) that have been members of one formed
    consortium (`FORMED`: approved or later) together, whoever they are (the review's
    `composition.past_pairs` names its organisations: here they are every candidate)."""
    members: dict[int, list[int]] = {}
    for consortium_id, organisation_id in session.execute(
        select(ConsortiumMember.consortium_id, ConsortiumMember.organisation_id)
        .join(Consortium, Consortium.id == ConsortiumMember.consortium_id)
        .where(Consortium.status.in_(list(FORMED)))
    ):
        members.setdefault(consortium_id, []).append(organisation_id)
    return {
        (min(a, b), max(a, b))
        for ids in members.values()
        for a, b in combinations(sorted(set(ids)), 2)
    }


class CompositionRefused(Conflict):
    """The composer's ImpossibleConsortium (409)."""


def store_consortium(
    session: Session,
    call: Call,
    proposal: ConsortiumProposal,
    *,
    created_by: int | None,
) -> Consortium:
    """Store one composed proposal as a Consortium (status proposed, version 1): its
    members (the lead with role lead, each with the ids of the requirements it covers),
    coverage (mean, 0–1), score (Φ) and `scores` (Φ's parts, the coverage table by
    requirement id under "table", new/repeated pairs), as the review's
    `api.consortia.composition.apply` writes them; the composer already checked the
    members, so they are not evaluated again."""
    consortium = Consortium(call_id=call.id, created_by_id=created_by, scores={})
    apply(consortium, call, list(proposal.member_ids), proposal.lead_id, proposal)
    session.add(consortium)
    session.flush()
    return consortium


def propose_consortia(
    session: Session,
    matching: MatchingEngine,
    viewer: Principal,
    call_id: int,
    request: ConsortiumRequest,
) -> list[ProposedConsortiumOut]:
    """Compose consortia among the eligible organisations (`matcher.consortium`), store
    each alternative as a proposed Consortium and return them, best first. Raises
    NotFound and Conflict (409: options that contradict each other, or that these
    candidates cannot satisfy), with the composer's French message."""
    call = get_call(session, call_id)
    cf = fit_call(session, matching, call)
    index = cf.snapshot.index
    interested = set(
        session.scalars(select(CallInterest.organisation_id).where(CallInterest.call_id == call_id))
    )
    candidates = []
    for p in cf.fit.positions.tolist():
        record = index.organisations[p]
        candidates.append(
            Candidate(
                id=record.id,
                is_landlord=record.kind == OrganisationKind.landlord.value,
                interested=record.id in interested,
            )
        )
    options = ConsortiumOptions(
        min_size=request.min_size,
        max_size=request.max_size,
        include=request.include,
        exclude=request.exclude,
        lead=request.lead,
        alternatives=request.alternatives,
        uncovered_below=matching.settings.partner_strong_reason,
    )
    try:
        problem = ConsortiumProblem(
            candidates, cf.fit.similarity, cf.fit.statements, past_pairs(session)
        )
        proposals = compose_consortia(problem, options)
    except InvalidComposition as exc:  # well-formed options that contradict each other
        raise CompositionRefused(exc.message) from exc
    except ImpossibleConsortium as exc:
        raise CompositionRefused(exc.message) from exc
    stored = [store_consortium(session, call, p, created_by=viewer.account_id) for p in proposals]
    member_ids = sorted({m for p in proposals for m in p.member_ids})
    orgs = repository.organisations_to_show(session, member_ids)
    requirements = call.requirements
    out = []
    for consortium, proposal in zip(stored, proposals, strict=True):
        table = [
            CoverOut(
                requirement_id=requirements[c.requirement].id,
                position=requirements[c.requirement].position,
                text=requirements[c.requirement].text,
                organisation_id=c.organisation_id,
                statement=statement_brief(index, c.statement_id) if c.statement_id else None,
                similarity=round(c.similarity, 4),
                covered=c.covered,
            )
            for c in proposal.coverage_table
        ]
        out.append(
            ProposedConsortiumOut(
                id=consortium.id,
                call_id=call.id,
                status=consortium.status.value,
                version=consortium.version,
                lead_id=proposal.lead_id,
                score=round(proposal.score, 4),
                coverage=round(proposal.coverage, 4),
                scores={k: round(v, 4) for k, v in proposal.scores.items()},
                members=[
                    MemberOut(
                        organisation=orgs[m.organisation_id],
                        role=m.role.value,
                        covers=list(m.covers),
                    )
                    for m in consortium.members
                ],
                coverage_table=table,
                uncovered=[requirements[r].id for r in proposal.uncovered],
                new_pairs=proposal.new_pairs,
                repeated_pairs=proposal.repeated_pairs,
            )
        )
    return out
