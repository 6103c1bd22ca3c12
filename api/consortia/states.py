"""The life of a consortium: its statuses, who moves it from one to the next, and the
reasons a review may give.

    proposed ─review─▶ approved ─status─▶ contacted ─outcome─▶ submitted ─outcome─▶ won | lost
        │
        ├──review──▶ rejected (final)
        └──review──▶ changes_requested ──PATCH (members, lead) or status──▶ proposed

- Reviews (`POST …/reviews`) decide a *proposed* consortium: approve → approved,
  reject → rejected, request_changes → changes_requested.
- A consortium in changes_requested goes back to proposed when the coordinator changes
  its members or lead (`PATCH`), or explicitly (`POST …/status` with `proposed`); it is
  then reviewed again. Members and lead may change only while proposed or
  changes_requested: an approved consortium is the one the partners were told about.
- `POST …/status` moves an approved consortium to contacted (the partners were called).
- `POST …/outcome` records the answer filed (submitted, with its date) and the funder's
  decision (won with an amount, or lost, with its date).
- rejected, won and lost are final.
"""

from __future__ import annotations

from enum import StrEnum

from models.enums import ConsortiumStatus as S
from models.enums import ReviewDecision

# Every legal move, whichever endpoint makes it.
NEXT: dict[S, tuple[S, ...]] = {
    S.proposed: (S.approved, S.rejected, S.changes_requested),
    S.changes_requested: (S.proposed,),
    S.approved: (S.contacted,),
    S.contacted: (S.submitted,),
    S.submitted: (S.won, S.lost),
    S.rejected: (),
    S.won: (),
    S.lost: (),
}

DECISION_STATUS: dict[ReviewDecision, S] = {
    ReviewDecision.approve: S.approved,
    ReviewDecision.reject: S.rejected,
    ReviewDecision.request_changes: S.changes_requested,
}

# Statuses in which members and lead may change.
EDITABLE = frozenset({S.proposed, S.changes_requested})
# A consortium that the coordinator approved, whatever came of it since: it was formed.
FORMED = frozenset({S.approved, S.contacted, S.submitted, S.won, S.lost})
# The call was answered.
ANSWERED = frozenset({S.submitted, S.won, S.lost})

LABELS: dict[S, str] = {
    S.proposed: "proposé",
    S.approved: "approuvé",
    S.rejected: "rejeté",
    S.changes_requested: "modifications demandées",
    S.contacted: "partenaires contactés",
    S.submitted: "candidature déposée",
    S.won: "lauréat",
    S.lost: "non retenu",
}


class ReasonCode(StrEnum):
    """Why a review decided what it did (`REASON_LABELS` gives the French label)."""

    complete_coverage = "complete_coverage"
    relevant_partnership = "relevant_partnership"
    coverage_gap = "coverage_gap"
    ineligible_member = "ineligible_member"
    unsuitable_lead = "unsuitable_lead"
    partners_unavailable = "partners_unavailable"
    duplicate = "duplicate"
    call_timing = "call_timing"
    other = "other"


REASON_LABELS: dict[ReasonCode, str] = {
    ReasonCode.complete_coverage: "Les exigences de l'appel sont bien couvertes",
    ReasonCode.relevant_partnership: "Partenariat pertinent sur le territoire",
    ReasonCode.coverage_gap: "Des exigences de l'appel restent mal couvertes",
    ReasonCode.ineligible_member: "Un membre n'est pas éligible à l'appel",
    ReasonCode.unsuitable_lead: "Le chef de file ne convient pas",
    ReasonCode.partners_unavailable: "Des partenaires ne sont pas disponibles",
    ReasonCode.duplicate: "Doublon d'un autre consortium",
    ReasonCode.call_timing: "Calendrier de l'appel incompatible (clos ou trop proche)",
    ReasonCode.other: "Autre raison (précisée en commentaire)",
}


def allowed_next(status: S) -> tuple[S, ...]:
    return NEXT[status]


def describe_allowed(status: S) -> str:
    """« approuvé (approved), rejeté (rejected) » or « aucun : statut final »."""
    allowed = NEXT[status]
    if not allowed:
        return "aucun : c'est un statut final"
    return ", ".join(f"{LABELS[s]} ({s.value})" for s in allowed)
