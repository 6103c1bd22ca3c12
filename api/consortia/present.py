"""Consortium rows as response bodies."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.consortia.schemas import (
    CallBrief,
    ConsortiumOut,
    ConsortiumSummary,
    CoverOut,
    MemberOut,
    ReviewOut,
)
from api.consortia.states import LABELS, NEXT, REASON_LABELS, ReasonCode
from models import Call, CallRequirement, Consortium, ConsortiumMember
from models.enums import MemberRole


def _member(member: ConsortiumMember) -> MemberOut:
    return MemberOut(
        organisation_id=member.organisation_id,
        name=member.organisation.name,
        kind=member.organisation.kind.value,
        role=member.role.value,
        covers=[int(c) for c in member.covers or []],
    )


def summary_out(session: Session, consortium: Consortium) -> ConsortiumSummary:
    call = session.get(Call, consortium.call_id)
    assert call is not None
    members = [_member(m) for m in consortium.members]
    return ConsortiumSummary(
        id=consortium.id,
        call=CallBrief(id=call.id, title=call.title, deadline=call.deadline),
        status=consortium.status,
        status_label=LABELS[consortium.status],
        version=consortium.version,
        lead=next((m for m in members if m.role == MemberRole.lead.value), None),
        members=members,
        coverage=consortium.coverage,
        score=consortium.score,
        allowed_next=list(NEXT[consortium.status]),
        decided_at=consortium.decided_at,
        submitted_on=consortium.submitted_on,
        outcome_on=consortium.outcome_on,
        amount=consortium.outcome_amount,
        created_at=consortium.created_at,
        updated_at=consortium.updated_at,
    )


def _label(code: str | None) -> str | None:
    if code is None:
        return None
    try:
        return REASON_LABELS[ReasonCode(code)]
    except ValueError:
        return code


def consortium_out(session: Session, consortium: Consortium, viewer: Principal) -> ConsortiumOut:
    """Everything about a consortium; review comments only for the coordinator."""
    call = session.get(Call, consortium.call_id)
    assert call is not None
    texts = {r.id: r.text for r in call.requirements}
    table: list[CoverOut] = []
    stored = {int(e["requirement_id"]): e for e in (consortium.scores or {}).get("table", [])}
    requirement: CallRequirement
    for requirement in call.requirements:
        entry = stored.get(requirement.id, {})
        table.append(
            CoverOut(
                requirement_id=requirement.id,
                requirement=texts[requirement.id],
                organisation_id=entry.get("organisation_id"),
                statement_id=entry.get("statement_id"),
                similarity=float(entry.get("similarity", 0.0)),
                covered=bool(entry.get("covered", False)),
            )
        )
    return ConsortiumOut(
        **dict(summary_out(session, consortium)),
        coverage_table=table,
        uncovered=[c.requirement_id for c in table if not c.covered],
        reviews=[
            ReviewOut(
                id=r.id,
                decision=r.decision,
                reason_code=r.reason_code,
                reason_label=_label(r.reason_code),
                comment=r.comment if viewer.sees_everything else None,
                account_id=r.account_id,
                created_at=r.created_at,
            )
            for r in consortium.reviews
        ],
    )
