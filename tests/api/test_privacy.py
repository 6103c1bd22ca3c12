"""What other organisations never see: coordinator-only statements (on purpose, with a
distinctive word, through every route that shows text), contacts and dismissals."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from models.enums import AccountRole
from tests.conftest import bearer

SECRET_WORD = "Zéphyrinkerguelen"


def create(client: TestClient, body: dict[str, object]) -> int:
    response = client.post("/api/v1/organisations", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_coordinator_only_statements_contacts_and_dismissals_stay_private(
    client: TestClient, session: Session
) -> None:
    secretive = create(
        client,
        {
            "name": "Habitat Discret",
            "kind": "landlord",
            "territories": ["commune:13001"],
            "contacts": [{"name": "Claire Martin", "email": "claire.martin@exemple.fr"}],
            "statements": [
                {"kind": "competency", "text": "Animation de jardins partagés en pied d'immeuble"},
                {
                    "kind": "need",
                    "text": f"Redresser nos comptes avant la fusion {SECRET_WORD} : jardins partagés",
                    "visibility": "coordinator",
                },
                {
                    "kind": "competency",
                    "text": f"Médiation {SECRET_WORD} pour jardins partagés entre voisins",
                    "visibility": "coordinator",
                },
            ],
        },
    )
    neighbour = create(
        client,
        {
            "name": "Association Voisins Jardiniers",
            "kind": "association",
            "territories": ["commune:13001"],
            "statements": [
                {"kind": "competency", "text": "Créer et animer des jardins partagés"},
                {
                    "kind": "need",
                    "text": "Des bailleurs pour des jardins partagés en pied d'immeuble",
                },
            ],
        },
    )
    other = {"Authorization": bearer(session, AccountRole.member, [neighbour])}
    own = {"Authorization": bearer(session, AccountRole.member, [secretive])}
    coordinator = {"Authorization": bearer(session, AccountRole.coordinator)}
    assert client.post(
        f"/api/v1/organisations/{secretive}/dismissals",
        json={"organisation_id": neighbour, "reason": "Déjà partenaires"},
        headers=own,
    ).status_code in (200, 201)

    seen_by_other = [
        client.get("/api/v1/search/organisations", params={"q": SECRET_WORD}, headers=other),
        client.get(
            "/api/v1/search/organisations",
            params={"q": f"médiation {SECRET_WORD} jardins partagés", "limit": 50},
            headers=other,
        ),
        client.get(f"/api/v1/organisations/{neighbour}/partners", headers=other),
        client.get(
            f"/api/v1/organisations/{neighbour}/partners", params={"mode": "peer"}, headers=other
        ),
        client.get(f"/api/v1/organisations/{secretive}", headers=other),
        client.get("/api/v1/organisations", params={"q": "Discret"}, headers=other),
    ]
    for response in seen_by_other:
        assert response.status_code == 200, response.text
        body = response.json()
        shown = json.dumps(body.get("items", body), ensure_ascii=False)  # a search echoes q
        assert SECRET_WORD.lower() not in shown.lower(), response.request.url
        assert "claire.martin" not in shown
    # The neighbour still finds the organisation, by what it shows to the network.
    assert secretive in [item["organisation"]["id"] for item in seen_by_other[2].json()["items"]]
    refused = client.get(f"/api/v1/organisations/{secretive}/dismissals", headers=other)
    assert refused.status_code == 403
    assert "Déjà partenaires" not in refused.text

    for allowed in (own, coordinator):
        page = client.get(f"/api/v1/organisations/{secretive}", headers=allowed)
        assert SECRET_WORD in page.text
        assert "claire.martin@exemple.fr" in page.text
        dismissals = client.get(f"/api/v1/organisations/{secretive}/dismissals", headers=allowed)
        assert "Déjà partenaires" in dismissals.text
