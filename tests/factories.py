"""Plain typed factories for test data."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from api.organisations.schemas import OrganisationIn
from api.organisations.service import create_organisation
from models import Organisation


def make_organisation(
    session: Session,
    *,
    name: str = "Habitat Test",
    kind: str = "landlord",
    territories: Sequence[str] = ("commune:13001",),
    competencies: Sequence[str] = ("Accompagnement social des locataires",),
    needs: Sequence[str] = ("Trouver un partenaire pour animer un jardin partagé",),
    siren: str | None = None,
    allow_duplicate_name: bool = True,
) -> Organisation:
    data = OrganisationIn.model_validate(
        {
            "name": name,
            "kind": kind,
            "siren": siren,
            "territories": list(territories),
            "statements": [{"kind": "competency", "text": t} for t in competencies]
            + [{"kind": "need", "text": t} for t in needs],
        }
    )
    # Test data may share names freely; the API's duplicate rule is tested through the API.
    return create_organisation(session, data, allow_duplicate_name=allow_duplicate_name)
