"""The club's « mesure de l'impact »: what the consortia became.

Choices where the issue is silent:
- A consortium's *date* is that of its latest step: the funder's decision
  (`outcome_on`) once won or lost, else the filing (`submitted_on`), else the review's
  approval or rejection (`decided_at`), else its creation. `from`/`to` (inclusive) and
  the quarters use it.
- A consortium's *départements* are those of its lead's territories (a commune's, an
  EPCI's when it lies in one, a département itself); a lead working in several counts in
  each, a lead on a région or a multi-département EPCI only counts under « sans
  département » (code null). The lead is where the project is carried; a call's
  perimeter is often the whole country.
- *Partner pairs* are the pairs of organisations within formed consortia (approved or
  later). A pair is *new* when the earliest formed consortium holding it (by date, then
  id) falls in the period, *repeated* when it was already together in an earlier one.
- *Inter-landlord*: formed consortia with at least two social landlords among members.
- *Calls answered*: distinct calls with a consortium submitted, won or lost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import combinations

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.consortia.states import ANSWERED, FORMED
from models import Consortium, ConsortiumMember, Organisation
from models.enums import ConsortiumStatus, MemberRole, OrganisationKind, TerritoryLevel


class BucketOut(BaseModel):
    consortia: int = Field(description="Consortiums (tous statuts).")
    formed: int = Field(description="Consortiums approuvés ou au-delà.")
    answered: int = Field(description="Candidatures déposées (submitted, won, lost).")
    won: int
    amount_won: Decimal = Field(description="Montant obtenu en euros.")


class DepartementOut(BucketOut):
    departement: str | None = Field(description="Code du département ; null : sans département.")


class QuarterOut(BucketOut):
    quarter: str = Field(description="Trimestre, « 2026-T4 ».")


class PairsOut(BaseModel):
    distinct: int = Field(description="Paires de partenaires distinctes formées.")
    new: int = Field(description="Paires jamais réunies auparavant.")
    repeated: int = Field(description="Paires déjà réunies dans un consortium antérieur.")


class ImpactOut(BaseModel):
    period_from: date | None
    period_to: date | None
    by_status: dict[ConsortiumStatus, int]
    consortia: int
    inter_landlord: int = Field(description="Consortiums formés réunissant au moins 2 bailleurs.")
    calls_answered: int
    won: int
    lost: int
    amount_won: Decimal = Field(description="Somme des montants obtenus, en euros.")
    pairs: PairsOut
    by_departement: list[DepartementOut]
    by_quarter: list[QuarterOut]


def reference_date(consortium: Consortium) -> date:
    """The date of a consortium's latest step (see module docstring)."""
    if consortium.status in (ConsortiumStatus.won, ConsortiumStatus.lost) and consortium.outcome_on:
        return consortium.outcome_on
    if consortium.submitted_on is not None:
        return consortium.submitted_on
    if consortium.decided_at is not None:
        return consortium.decided_at.date()
    return consortium.created_at.date()


def quarter_of(day: date) -> str:
    return f"{day.year}-T{(day.month - 1) // 3 + 1}"


def _departements(lead: Organisation | None) -> list[str | None]:
    codes: set[str] = set()
    for territory in lead.territories if lead else []:
        if territory.level == TerritoryLevel.departement:
            codes.add(territory.code)
        elif territory.departement_code:
            codes.add(territory.departement_code)
    found: list[str | None] = [*sorted(codes)]
    return found or [None]


@dataclass
class _Bucket:
    consortia: int = 0
    formed: int = 0
    answered: int = 0
    won: int = 0
    amount_won: Decimal = Decimal("0.00")

    def add(self, consortium: Consortium) -> None:
        self.consortia += 1
        self.formed += consortium.status in FORMED
        self.answered += consortium.status in ANSWERED
        if consortium.status == ConsortiumStatus.won:
            self.won += 1
            self.amount_won += consortium.outcome_amount or Decimal("0.00")


def impact(session: Session, *, start: date | None = None, end: date | None = None) -> ImpactOut:
    """The impact report over the consortia whose date falls in [start, end] (either
    bound optional); pairs are new or repeated against every earlier consortium."""
    every = session.scalars(
        select(Consortium).options(
            selectinload(Consortium.members)
            .selectinload(ConsortiumMember.organisation)
            .selectinload(Organisation.territories)
        )
    ).all()
    dated = sorted(((reference_date(c), c.id, c) for c in every), key=lambda t: (t[0], t[1]))

    def within(day: date) -> bool:
        return (start is None or day >= start) and (end is None or day <= end)

    chosen = [c for day, _, c in dated if within(day)]
    first_seen: dict[tuple[int, int], date] = {}
    for day, _, consortium in dated:
        if consortium.status in FORMED:
            ids = sorted({m.organisation_id for m in consortium.members})
            for pair in combinations(ids, 2):
                first_seen.setdefault(pair, day)
    pairs_in: set[tuple[int, int]] = set()
    by_status: Counter[ConsortiumStatus] = Counter()
    total = _Bucket()
    by_departement: dict[str | None, _Bucket] = defaultdict(_Bucket)
    by_quarter: dict[str, _Bucket] = defaultdict(_Bucket)
    inter_landlord = 0
    calls_answered: set[int] = set()
    lost = 0
    for consortium in chosen:
        by_status[consortium.status] += 1
        total.add(consortium)
        lead = next((m.organisation for m in consortium.members if m.role == MemberRole.lead), None)
        for code in _departements(lead):
            by_departement[code].add(consortium)
        by_quarter[quarter_of(reference_date(consortium))].add(consortium)
        if consortium.status in ANSWERED:
            calls_answered.add(consortium.call_id)
        lost += consortium.status == ConsortiumStatus.lost
        if consortium.status in FORMED:
            landlords = sum(
                m.organisation.kind == OrganisationKind.landlord for m in consortium.members
            )
            inter_landlord += landlords >= 2
            pairs_in.update(
                combinations(sorted({m.organisation_id for m in consortium.members}), 2)
            )
    new = sum(within(first_seen[p]) for p in pairs_in)
    return ImpactOut(
        period_from=start,
        period_to=end,
        by_status={s: by_status.get(s, 0) for s in ConsortiumStatus},
        consortia=total.consortia,
        inter_landlord=inter_landlord,
        calls_answered=len(calls_answered),
        won=total.won,
        lost=lost,
        amount_won=total.amount_won,
        pairs=PairsOut(distinct=len(pairs_in), new=new, repeated=len(pairs_in) - new),
        by_departement=[
            DepartementOut(departement=code, **vars(bucket))
            for code, bucket in sorted(
                by_departement.items(), key=lambda kv: (kv[0] is None, kv[0] or "")
            )
        ],
        by_quarter=[
            QuarterOut(quarter=q, **vars(bucket)) for q, bucket in sorted(by_quarter.items())
        ],
    )
