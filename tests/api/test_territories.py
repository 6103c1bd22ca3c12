from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.territories.service import get_territory, place_of


def _problem(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["detail"]
    return body


class TestTerritoryLookup:
    def test_aix_answers_with_its_epci_departement_and_region(self, client: TestClient) -> None:
        response = client.get("/api/v1/territories/13001")
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "Aix-en-Provence"
        assert body["ref"] == "commune:13001"
        assert body["epci"]["name"] == "Métropole d'Aix-Marseille-Provence"
        assert body["epci"]["code"] == "200054807"
        assert body["departement"]["code"] == "13"
        assert body["region"]["code"] == "93"
        assert "13100" in body["postal_codes"]

    def test_typed_references_of_every_level(self, client: TestClient) -> None:
        assert client.get("/api/v1/territories/epci:200054807").json()["subtype"] == "METRO"
        assert client.get("/api/v1/territories/departement:2A").json()["name"] == "Corse-du-Sud"
        assert (
            client.get("/api/v1/territories/region:93").json()["name"]
            == "Provence-Alpes-Côte d'Azur"
        )
        assert client.get("/api/v1/territories/region:94").json()["name"] == "Corse"

    def test_bare_93_is_refused_naming_both_meanings(self, client: TestClient) -> None:
        body = _problem(client.get("/api/v1/territories/93"))
        assert body["status"] == 422
        assert "departement:93" in body["detail"]
        assert "region:93" in body["detail"]
        assert "Seine-Saint-Denis" in body["detail"]

    def test_unknown_insee_code_is_404_naming_the_code(self, client: TestClient) -> None:
        body = _problem(client.get("/api/v1/territories/99999"))
        assert body["status"] == 404
        assert "99999" in body["detail"]


class TestTerritorySearch:
    def test_name_search_ignores_accents_and_case(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories", params={"q": "AIX EN PROVENCE"}).json()
        assert body["items"][0]["ref"] == "commune:13001"
        body = client.get("/api/v1/territories", params={"q": "bouches du rhone"}).json()
        assert body["items"][0]["ref"] == "departement:13"

    def test_saint_abbreviation(self, client: TestClient) -> None:
        body = client.get(
            "/api/v1/territories", params={"q": "St-Tropez", "level": "commune"}
        ).json()
        assert body["items"][0]["name"] == "Saint-Tropez"

    def test_postal_code_13001_is_marseille_not_aix(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories", params={"postal_code": "13001"}).json()
        names = {item["name"] for item in body["items"]}
        assert "Marseille 1er Arrondissement" in names
        assert "Aix-en-Provence" not in names

    def test_digits_in_q_point_to_the_right_field(self, client: TestClient) -> None:
        body = _problem(client.get("/api/v1/territories", params={"q": "13001"}))
        assert "postal_code=13001" in body["detail"]

    def test_nothing_found_is_an_empty_page(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories", params={"q": "Encagnane"}).json()
        assert body == {"items": [], "total": 0}

    def test_missing_query_is_a_problem(self, client: TestClient) -> None:
        assert _problem(client.get("/api/v1/territories"))["status"] == 422

    def test_bad_postal_code_is_a_problem(self, client: TestClient) -> None:
        assert (
            _problem(client.get("/api/v1/territories", params={"postal_code": "1300"}))["status"]
            == 422
        )


class TestContainmentInTheReferential:
    def test_marseille_arrondissements_sit_inside_marseille(self, session: Session) -> None:
        place = place_of(get_territory(session, "13201"))
        assert place.level == "arrondissement"
        assert place.within("commune", "13055")
        assert place.within("epci", "200054807")
        assert place.within("departement", "13")

    def test_corsica_2a_and_2b(self, session: Session) -> None:
        ajaccio = place_of(get_territory(session, "2A004"))
        bastia = place_of(get_territory(session, "commune:2B033"))
        assert ajaccio.within("departement", "2A")
        assert not ajaccio.within("departement", "2B")
        assert bastia.within("departement", "2B")
        assert bastia.within("region", "94")

    def test_commune_in_no_epci(self, session: Session) -> None:
        sein = get_territory(session, "29083")
        assert sein.name == "Île-de-Sein"
        assert sein.epci_code is None
        assert place_of(sein).within("departement", "29")

    def test_epci_within_its_single_departement(self, session: Session) -> None:
        arles = place_of(get_territory(session, "epci:241300417"))  # CA Arles Crau Camargue…
        assert arles.within("departement", "13")
        assert arles.within("region", "93")

    def test_epci_across_departements_is_only_inside_its_region(self, session: Session) -> None:
        # The Métropole d'Aix-Marseille-Provence includes Pertuis (84) and Saint-Zacharie (83).
        metropole = get_territory(session, "epci:200054807")
        assert metropole.departement_code is None
        assert place_of(metropole).within("region", "93")
