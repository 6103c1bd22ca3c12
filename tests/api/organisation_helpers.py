"""Helpers of the organisation API tests: viewers, a ready payload, a secret word."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from api.accounts.principal import Principal
from models.enums import AccountRole

ORGS = "/api/v1/organisations"
STATEMENTS = "/api/v1/statements"
SEARCH = "/api/v1/search/organisations"
SECRET = "Zorglubisation"  # a word no other text holds: it must never leak


ORGS = "/api/v1/organisations"


def member_of(*organisation_ids: int) -> Principal:
    return Principal(
        account_id=7, role=AccountRole.member, organisation_ids=frozenset(organisation_ids)
    )


COORDINATOR = Principal(account_id=8, role=AccountRole.coordinator, name="coordination")

SetViewer = Callable[[Principal], None]


def create(client: TestClient, *, duplicate: bool = False, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Habitat des Calanques",
        "kind": "landlord",
        "legal_form": "OPH",
        "website": "https://calanques.example",
        "description": "Office public de l'habitat à Marseille.",
        "territories": ["commune:13001"],
        "contacts": [{"name": "Camille Roux", "role": "Chargée RSE", "email": "c@cal.example"}],
        "statements": [
            {"kind": "competency", "text": "Accompagnement social des ménages en impayés"},
            {"kind": "need", "text": "Un partenaire pour animer des jardins partagés"},
        ],
    }
    payload.update(fields)
    params = {"allow_duplicate_name": "true"} if duplicate else {}
    response = client.post(ORGS, json=payload, params=params)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def organisation_with_secret(client: TestClient) -> dict[str, Any]:
    """An organisation with a coordinator-only need holding the secret word."""
    return create(
        client,
        statements=[
            {"kind": "competency", "text": "Accompagnement social des ménages en impayés"},
            {
                "kind": "need",
                "text": f"Plan de redressement {SECRET} à discuter avec la coordination",
                "visibility": "coordinator",
            },
        ],
    )
