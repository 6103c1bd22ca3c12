"""Shared test data for consortia: a call on département 13 and a fake CallFit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.consortia.fit import PerimeterFit, Similarities
from matcher.text import content_hash
from models import Call, CallRequirement, Organisation, Territory
from models.enums import TerritoryLevel


@dataclass
class FakeFit(PerimeterFit):
    """Eligibility as the app decides it; similarity from a table (organisation id →
    one value per requirement), 0 elsewhere."""

    table: dict[int, list[float]] = field(default_factory=dict)

    def similarities(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> Similarities:
        n_req = len(call.requirements)
        rows = [self.table.get(o.id, [0.0] * n_req) for o in organisations]
        return Similarities(np.array(rows, dtype=np.float64).reshape(len(rows), n_req))


def make_call(
    session: Session,
    *,
    title: str = "Jardins partagés en QPV",
    requirements: Sequence[str] = ("Animer un jardin partagé", "Mobiliser les locataires"),
    departement: str | None = "13",
) -> Call:
    call = Call(title=title, funders=["Région Sud"], eligible_kinds=[], eligible_legal_forms=[])
    if departement:
        territory = session.scalar(
            select(Territory).where(
                Territory.level == TerritoryLevel.departement, Territory.code == departement
            )
        )
        assert territory is not None
        call.perimeter = [territory]
    call.requirements = [
        CallRequirement(position=i, text=t, content_hash=content_hash(t))
        for i, t in enumerate(requirements)
    ]
    session.add(call)
    session.flush()
    return call
