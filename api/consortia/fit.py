"""What the consortium review needs to know about a call and organisations: who is
eligible (and why not), and how well each covers each requirement.

`CallFit` is the seam with the call ranking (api/calls): the app uses `PerimeterFit`
until it is wired to the ranking's functions (`get_call_fit` is the one place to change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from fastapi import Request
from sqlalchemy.orm import Session

from api.territories.service import places_of
from models import Call, Organisation


@dataclass(frozen=True)
class Similarities:
    """values : (n_organisations, n_requirements) float in [0, 1], the best similarity of
    an organisation's statements to each requirement (the call ranking's calibrated
    probability). statements : same shape, int, the statement id giving it, −1 for none;
    None when unknown."""

    values: npt.NDArray[np.float64]
    statements: npt.NDArray[np.int64] | None = None


class CallFit(Protocol):
    def ineligibility(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> dict[int, str]:
        """Organisation id → why it may not answer the call (French), for the ineligible
        ones only."""
        ...

    def similarities(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> Similarities:
        """How well each organisation (rows, in the given order) covers each requirement
        (columns, in `call.requirements` order)."""
        ...


class PerimeterFit:
    """Eligibility from the call's own fields, similarity left at 0.

    Eligible: not archived; its kind among `call.eligible_kinds` (none listed: any kind);
    its legal form among `call.eligible_legal_forms` (none listed: any form); one of its
    territories lies in or overlaps the call's perimeter (an empty perimeter, or France,
    is everywhere; an EPCI spanning départements touches each of them).
    """

    def ineligibility(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> dict[int, str]:
        reasons: dict[int, str] = {}
        perimeter = places_of(session, call.perimeter)
        perimeter_keys = {p.key for p in perimeter.values()}
        for organisation in organisations:
            label = f"{organisation.name} (n° {organisation.id})"
            if organisation.archived_at is not None:
                reasons[organisation.id] = f"{label} est archivée."
                continue
            kinds = [str(k) for k in call.eligible_kinds or []]
            if kinds and organisation.kind.value not in kinds:
                reasons[organisation.id] = (
                    f"{label} : le type d'organisation « {organisation.kind.value} » n'est pas "
                    f"éligible à l'appel (types acceptés : {', '.join(kinds)})."
                )
                continue
            forms = [str(f) for f in call.eligible_legal_forms or []]
            if forms and organisation.legal_form not in forms:
                reasons[organisation.id] = (
                    f"{label} : la forme juridique « {organisation.legal_form or 'inconnue'} » "
                    f"n'est pas éligible à l'appel (formes acceptées : {', '.join(forms)})."
                )
                continue
            if not perimeter:
                continue
            own = places_of(session, organisation.territories).values()
            overlaps = any(
                place.ancestors & perimeter_keys
                or any(place.key in area.ancestors for area in perimeter.values())
                for place in own
            )
            if not overlaps:
                names = ", ".join(t.name for t in call.perimeter)
                reasons[organisation.id] = (
                    f"{label} n'intervient sur aucun territoire du périmètre de l'appel ({names})."
                )
        return reasons

    def similarities(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> Similarities:
        # TODO(merge): the call ranking's per-requirement similarity (api/calls) replaces
        # this; without it every requirement reads as uncovered.
        n = len(organisations)
        r = len(call.requirements)
        return Similarities(np.zeros((n, r)), np.full((n, r), -1, dtype=np.int64))


DEFAULT_FIT = PerimeterFit()


async def get_call_fit(request: Request) -> CallFit:
    """The app's CallFit (`app.state.call_fit` when set, else `PerimeterFit`)."""
    fit: CallFit = getattr(request.app.state, "call_fit", DEFAULT_FIT)
    return fit
