from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.territories.service import place_of, resolve_ref


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
        body = client.get("/api/v1/territories", params={"q": "13001"}).json()
        assert body["items"] == []
        assert "postal_code=13001" in body["notes"][0]

    def test_nothing_found_is_an_empty_page(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories", params={"q": "Encagnane"}).json()
        assert body == {"items": [], "total": 0, "notes": []}

    def test_no_query_lists_the_territories_of_a_level(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories", params={"level": "region", "limit": 100}).json()
        assert body["total"] == len(body["items"]) > 12
        assert {item["level"] for item in body["items"]} == {"region"}
        assert body["items"][0]["name"] == "Île-de-France"  # the most populous first

    def test_a_query_without_words_finds_nothing_and_says_so(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories", params={"q": " - "}).json()
        assert body["items"] == []
        assert "aucun mot" in body["notes"][0]

    def test_bad_postal_code_is_a_problem(self, client: TestClient) -> None:
        assert (
            _problem(client.get("/api/v1/territories", params={"postal_code": "13A01"}))["status"]
            == 422
        )


class TestContainmentInTheReferential:
    def test_marseille_arrondissements_sit_inside_marseille(self, session: Session) -> None:
        place = place_of(resolve_ref(session, "13201"))
        assert place.level == "arrondissement"
        assert place.within("commune", "13055")
        assert place.within("epci", "200054807")
        assert place.within("departement", "13")

    def test_corsica_2a_and_2b(self, session: Session) -> None:
        ajaccio = place_of(resolve_ref(session, "2A004"))
        bastia = place_of(resolve_ref(session, "commune:2B033"))
        assert ajaccio.within("departement", "2A")
        assert not ajaccio.within("departement", "2B")
        assert bastia.within("departement", "2B")
        assert bastia.within("region", "94")

    def test_commune_in_no_epci(self, session: Session) -> None:
        sein = resolve_ref(session, "29083")
        assert sein.name == "Île-de-Sein"
        assert sein.epci_code is None
        assert place_of(sein).within("departement", "29")

    def test_epci_within_its_single_departement(self, session: Session) -> None:
        arles = place_of(resolve_ref(session, "epci:241300417"))  # CA Arles Crau Camargue…
        assert arles.within("departement", "13")
        assert arles.within("region", "93")

    def test_epci_across_departements_is_only_inside_its_region(self, session: Session) -> None:
        # The Métropole d'Aix-Marseille-Provence includes Pertuis (84) and Saint-Zacharie (83).
        metropole = resolve_ref(session, "epci:200054807")
        assert metropole.departement_code is None
        assert place_of(metropole).within("region", "93")


def _search(client: TestClient, **params: str) -> dict:  # type: ignore[type-arg]
    response = client.get("/api/v1/territories", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class TestFormerCommunes:
    """Communes merged into a commune nouvelle live on in people's files: their old code or
    name gives the current commune, and the answer says so."""

    @pytest.mark.parametrize(
        ("old", "current", "name", "status"),
        [
            ("85307", "85001", "La Faute-sur-Mer", "deleguee"),  # the example
            ("74011", "74010", "Annecy-le-Vieux", "deleguee"),
            ("01120", "01262", "Cordieux", "associee"),
            ("55273", "55386", "Lamarche-en-Woëvre", "associee"),  # the délégation wins
            ("85060", "85194", None, "ancienne"),  # merged without délégation: code only
            ("commune:85307", "85001", "La Faute-sur-Mer", "deleguee"),
        ],
    )
    def test_old_code_gives_the_current_commune_saying_so(
        self, client: TestClient, old: str, current: str, name: str | None, status: str
    ) -> None:
        response = client.get(f"/api/v1/territories/{old}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ref"] == f"commune:{current}"
        formerly = body["formerly"]
        assert formerly["code"] == old.removeprefix("commune:")
        assert formerly["name"] == name
        assert formerly["status"] == status
        assert body["name"] in formerly["note"]
        assert "n'est plus une commune" in formerly["note"]

    def test_current_commune_has_no_formerly(self, client: TestClient) -> None:
        body = client.get("/api/v1/territories/85001").json()
        assert body["formerly"] is None

    def test_unknown_code_is_still_404(self, client: TestClient) -> None:
        assert _problem(client.get("/api/v1/territories/85999"))["status"] == 404

    @pytest.mark.parametrize(
        ("q", "current", "former"),
        [
            ("La Faute-sur-Mer", "85001", "La Faute-sur-Mer"),
            ("la faute sur mer", "85001", "La Faute-sur-Mer"),
            ("Annecy-le-Vieux", "74010", "Annecy-le-Vieux"),
            ("Cherbourg-Octeville", "50129", "Cherbourg-Octeville"),
            ("Lamarche-en-Woevre", "55386", "Lamarche-en-Woëvre"),
        ],
    )
    def test_old_name_finds_the_current_commune_saying_so(
        self, client: TestClient, q: str, current: str, former: str
    ) -> None:
        body = _search(client, q=q)
        first = body["items"][0]
        assert first["code"] == current
        assert first["formerly"]["name"] == former
        assert first["formerly"]["note"]

    def test_a_current_name_match_says_nothing_of_former_ones(self, client: TestClient) -> None:
        body = _search(client, q="Annecy", level="commune")
        assert body["items"][0]["code"] == "74010"
        assert body["items"][0]["formerly"] is None

    def test_an_organisation_may_name_a_former_commune(self, client: TestClient) -> None:
        response = client.post(
            "/api/v1/organisations",
            json={
                "name": "Association du littoral",
                "kind": "association",
                "territories": ["85307"],
            },
        )
        assert response.status_code == 201, response.text
        assert [t["ref"] for t in response.json()["territories"]] == ["commune:85001"]


class TestCodesInTheNameSearch:
    @pytest.mark.parametrize(
        ("q", "hint"),
        [
            ("2A001", "/api/v1/territories/2A001"),
            ("2b033", "/api/v1/territories/2B033"),
            (" 2A004 ", "/api/v1/territories/2A004"),
            ("2A", "/api/v1/territories/departement:2A"),
            ("13001", "postal_code=13001"),
            ("１３００１", "postal_code=13001"),
            ("commune:13001", "/api/v1/territories/commune:13001"),
        ],
    )
    def test_a_code_in_q_points_to_the_right_field(
        self, client: TestClient, q: str, hint: str
    ) -> None:
        # Well formed, it finds no name: an empty page whose note says where to look.
        response = client.get("/api/v1/territories", params={"q": q})
        assert response.status_code == 200
        assert response.json()["items"] == []
        assert hint in response.json()["notes"][0]

    def test_names_with_digits_are_names(self, client: TestClient) -> None:
        body = _search(client, q="Marseille 1er Arrondissement")
        assert body["items"][0]["code"] == "13201"

    @pytest.mark.parametrize(
        ("q", "code"),
        [
            ("Marseille 1ère arr.", "13201"),
            ("Paris 16ème", "75116"),
            ("Lyon 2eme arrondissement", "69382"),
            ("Paris 1er", "75101"),
        ],
    )
    def test_ordinals_as_people_write_them(self, client: TestClient, q: str, code: str) -> None:
        assert _search(client, q=q)["items"][0]["code"] == code


class TestPostalCodesAsTyped:
    @pytest.mark.parametrize("typed", ["01500 ", " 01500", "01 500", "01500\t", "０１５００"])
    def test_spaces_and_fullwidth_digits_are_read(self, client: TestClient, typed: str) -> None:
        body = _search(client, postal_code=typed)
        assert "Ambérieu-en-Bugey" in {i["name"] for i in body["items"]}
        assert body["notes"] == []

    @pytest.mark.parametrize(
        ("typed", "code", "commune"),
        [
            ("1500", "01500", "Ambérieu-en-Bugey"),
            ("6000", "06000", "Nice"),
            ("2100", "02100", "Saint-Quentin"),
        ],
    )
    def test_a_lost_leading_zero_is_restored_and_said(
        self, client: TestClient, typed: str, code: str, commune: str
    ) -> None:
        body = _search(client, postal_code=typed)
        assert commune in {i["name"] for i in body["items"]}
        assert all(code in i["postal_codes"] for i in body["items"])
        assert len(body["notes"]) == 1
        assert f"lu comme {code}" in body["notes"][0]
        assert "zéro" in body["notes"][0]

    @pytest.mark.parametrize(
        ("typed", "departement"),
        [
            ("44021", "Loire-Atlantique"),  # Nantes CEDEX 1
            ("13617", "Bouches-du-Rhône"),  # Aix-en-Provence CEDEX 1
            ("75700", "Paris"),
            ("20191", "Corse"),
            ("97461", "La Réunion"),
            ("44021 CEDEX 1", "Loire-Atlantique"),
        ],
    )
    def test_a_cedex_code_says_it_names_no_place(
        self, client: TestClient, typed: str, departement: str
    ) -> None:
        body = _search(client, postal_code=typed)
        assert body["items"] == []
        (note,) = body["notes"]
        assert "CEDEX" in note
        assert "ne désigne pas un lieu" in note
        assert departement in note

    def test_a_code_of_no_departement_says_so(self, client: TestClient) -> None:
        (note,) = _search(client, postal_code="00123")["notes"]
        assert "aucun département" in note

    def test_cedex_mention_on_a_geographic_code_is_dropped(self, client: TestClient) -> None:
        body = _search(client, postal_code="13100 Cedex")
        assert "Aix-en-Provence" in {i["name"] for i in body["items"]}

    @pytest.mark.parametrize(
        ("typed", "words"),
        [
            ("130", "3 chiffre(s)"),
            ("130011", "6 chiffre(s)"),
            ("0150", "4 chiffre(s)"),
            ("13A01", "sans lettre"),
            ("2A004", "code INSEE de commune corse"),
            ("   ", "vide"),
        ],
    )
    def test_what_is_wrong_is_said(self, client: TestClient, typed: str, words: str) -> None:
        body = _problem(client.get("/api/v1/territories", params={"postal_code": typed}))
        assert body["status"] == 422
        assert words in body["detail"]
        assert body["detail"] != "Valeur invalide."


class TestReferentialRevision:
    def test_a_database_of_an_older_revision_is_refreshed(self, session: Session) -> None:
        from sqlalchemy import delete, func, select

        from api.territories.referential import REFERENTIAL_FILE, referential_is_current
        from api.tools.demo import ensure_territories
        from models import FormerCommune, ReferentialVersion
        from tests.conftest import FIXTURES

        path = FIXTURES / REFERENTIAL_FILE
        assert referential_is_current(session, path)
        assert ensure_territories(session, FIXTURES) is None
        # As a database loaded before the history of merged communes shipped.
        session.execute(delete(FormerCommune))
        session.execute(delete(ReferentialVersion))
        assert not referential_is_current(session, path)
        report = ensure_territories(session, FIXTURES)
        assert report is not None
        assert report.inserted == 0
        assert report.former_communes > 4000
        assert referential_is_current(session, path)
        assert session.scalar(select(func.count()).select_from(FormerCommune)) == (
            report.former_communes
        )
        assert resolve_ref(session, "85307").code == "85001"
