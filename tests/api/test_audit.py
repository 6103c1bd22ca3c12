"""The audit trail: who created, changed or deleted what."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from models.enums import AccountRole
from tests.conftest import bearer


def body(name: str) -> dict[str, object]:
    return {
        "name": name,
        "kind": "association",
        "territories": ["commune:13001"],
        "statements": [{"kind": "competency", "text": "Animation de jardins partagés"}],
    }


def test_creations_and_revocations_are_recorded_with_who_and_what(
    client: TestClient, session: Session
) -> None:
    me = client.get("/api/v1/me").json()
    created = client.post("/api/v1/organisations", json=body("Jardins du Pays d'Aix"))
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    events = client.get(
        "/api/v1/audit", params={"object_type": "organisation", "object_id": org_id}
    ).json()
    assert events["total"] == 1
    event = events["items"][0]
    assert (event["action"], event["account_id"]) == ("create", me["account_id"])
    assert event["details"]["changes"]["name"] == "Jardins du Pays d'Aix"
    statements = client.get("/api/v1/audit", params={"object_type": "statement"}).json()
    assert any(
        e["details"]["changes"].get("text") == "Animation de jardins partagés"
        for e in statements["items"]
    )

    token = client.post("/api/v1/tokens", json={"name": "Robot", "role": "coordinator"}).json()
    assert client.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    trail = client.get(
        "/api/v1/audit", params={"object_type": "token", "object_id": token["id"]}
    ).json()["items"]
    assert [e["action"] for e in trail] == ["revoke", "create"]
    assert all("token_hash" not in e["details"]["changes"] for e in trail)
    assert token["token"] not in str(trail)
    mine = client.get("/api/v1/audit", params={"account_id": me["account_id"]}).json()
    assert mine["total"] >= 4


def test_members_do_not_read_the_audit_trail(client: TestClient, session: Session) -> None:
    org_id = client.post("/api/v1/organisations", json=body("Régie de quartier")).json()["id"]
    member = {"Authorization": bearer(session, AccountRole.member, [org_id])}
    assert client.get("/api/v1/audit", headers=member).status_code == 403
    coordinator = {"Authorization": bearer(session, AccountRole.coordinator)}
    assert client.get("/api/v1/audit", headers=coordinator).status_code == 200
