from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Organisation, Statement
from tests.factories import make_organisation


def _payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Habitat du Pays d'Aygues",
        "kind": "landlord",
        "legal_form": "OPH",
        "siren": "732829320",
        "website": "https://aygues.example",
        "territories": ["commune:13001", "epci:200054807", "departement:13", "region:93", "13201"],
        "contacts": [{"name": "Camille Roux", "email": "camille@aygues.example"}],
        "statements": [
            {"kind": "competency", "text": "Accompagnement social des ménages en impayés"},
            {
                "kind": "need",
                "text": "Un partenaire pour animer des jardins partagés avec les locataires",
            },
        ],
    }
    payload.update(overrides)
    return payload


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


class TestCreateOrganisation:
    def test_created_with_territories_of_every_level_and_statements(
        self, client: TestClient
    ) -> None:
        response = client.post("/api/v1/organisations", json=_payload())
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/api/v1/organisations/{body['id']}"
        refs = [t["ref"] for t in body["territories"]]
        assert set(refs) == {
            "commune:13001",
            "epci:200054807",
            "departement:13",
            "region:93",
            "arrondissement:13201",
        }
        assert [s["kind"] for s in body["statements"]] == ["competency", "need"]
        again = client.get(f"/api/v1/organisations/{body['id']}").json()
        assert again["name"] == "Habitat du Pays d'Aygues"

    def test_unknown_insee_code_is_refused_by_name_and_nothing_is_written(
        self, client: TestClient, session: Session
    ) -> None:
        before = (_count(session, Organisation), _count(session, Statement))
        response = client.post(
            "/api/v1/organisations", json=_payload(territories=["commune:13001", "99999"])
        )
        assert response.status_code == 404  # well formed, names no territory
        body = response.json()
        assert "99999" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "territories", 1]
        assert (_count(session, Organisation), _count(session, Statement)) == before

    def test_bare_93_is_refused_as_ambiguous(self, client: TestClient) -> None:
        response = client.post("/api/v1/organisations", json=_payload(territories=["93"]))
        assert response.status_code == 422
        assert "ambigu" in response.json()["detail"]

    def test_invalid_siren_is_refused(self, client: TestClient) -> None:
        response = client.post("/api/v1/organisations", json=_payload(siren="732829321"))
        assert response.status_code == 422
        assert "Luhn" in response.json()["detail"]

    def test_duplicate_siren_is_a_conflict(self, client: TestClient, session: Session) -> None:
        make_organisation(session, name="Premier", siren="552100554")
        response = client.post("/api/v1/organisations", json=_payload(siren="552 100 554"))
        assert response.status_code == 409
        assert "Premier" in response.json()["detail"]

    def test_wrong_types_are_not_coerced(self, client: TestClient) -> None:
        for bad in (
            {"name": 12},
            {"kind": "bailleur"},
            {"territories": "13001"},
            {"extra": 1},
            {"statements": [{"kind": "need", "text": "  "}]},
            {"statements": [{"kind": "need", "text": "x" * 2001}]},
        ):
            response = client.post("/api/v1/organisations", json=_payload(**bad))
            assert response.status_code == 422, bad
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["errors"]

    def test_malformed_json_is_a_problem(self, client: TestClient) -> None:
        response = client.post(
            "/api/v1/organisations",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422


class TestReadOrganisations:
    def test_unknown_id_is_404(self, client: TestClient) -> None:
        response = client.get("/api/v1/organisations/999999")
        assert response.status_code == 404
        assert "999999" in response.json()["detail"]

    def test_non_numeric_id_is_422(self, client: TestClient) -> None:
        assert client.get("/api/v1/organisations/abc").status_code == 422

    def test_territory_filter_keeps_those_inside_and_those_containing_it(
        self, client: TestClient, session: Session
    ) -> None:
        inside = make_organisation(session, name="Sur Aix", territories=["commune:13001"])
        region = make_organisation(session, name="Sur la région", territories=["region:93"])
        elsewhere = make_organisation(session, name="À Nice", territories=["commune:06088"])
        body = client.get(
            "/api/v1/organisations", params={"territory": "departement:13", "limit": 200}
        ).json()
        ids = {item["id"] for item in body["items"]}
        assert inside.id in ids
        assert region.id in ids
        assert elsewhere.id not in ids

    def test_unknown_territory_filter_is_a_404(self, client: TestClient) -> None:
        response = client.get("/api/v1/organisations", params={"territory": "commune:99999"})
        assert response.status_code == 404
        assert "99999" in response.json()["detail"]

    def test_unreadable_territory_filter_is_a_422(self, client: TestClient) -> None:
        response = client.get("/api/v1/organisations", params={"territory": "13"})
        assert response.status_code == 422

    def test_limit_bounds(self, client: TestClient) -> None:
        assert client.get("/api/v1/organisations", params={"limit": 0}).status_code == 422
        assert client.get("/api/v1/organisations", params={"limit": 10000}).status_code == 422
