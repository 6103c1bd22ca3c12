"""What people type, from their own spreadsheets and habits: organisation names with or
without accents, in any case, apostrophe style or Unicode form; names that already exist;
SIRENs that are placeholders or written in other digits. Each kind, not only the example
of the issue."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.tools.demo import load_demo
from matcher.identifiers import siren_error
from matcher.text import name_key
from models import Organisation
from tests.conftest import FIXTURES
from tests.factories import make_organisation

ORGS = "/api/v1/organisations"


def post(client: TestClient, name: str, **fields: Any) -> Any:
    params = fields.pop("params", {})
    payload = {"name": name, "kind": "landlord", "territories": ["commune:13001"], **fields}
    return client.post(ORGS, json=payload, params=params)


def names(client: TestClient, **params: Any) -> list[str]:
    response = client.get(ORGS, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


@pytest.fixture
def demo(session: Session) -> None:
    load_demo(session, FIXTURES)
    session.flush()


class TestNameKey:
    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("Coopérative Hlm", "cooperative hlm"),
            ("L’Établi", "l'etabli"),
            ("L'ÉTABLI", "L‘Établi"),
            ("Œuvre Sociale", "oeuvre sociale"),
            ("Habitat-13", "habitat 13"),
            (unicodedata.normalize("NFD", "Énergie Solidaire"), "énergie solidaire"),
            ("ＡＢＣ Habitat", "abc habitat"),
        ],
    )
    def test_same_key(self, a: str, b: str) -> None:
        assert name_key(a) == name_key(b)

    def test_other_scripts_keep_their_letters(self) -> None:
        assert name_key("Ассоциация Дом") == "ассоциация дом"


@pytest.mark.usefixtures("demo")
class TestNameSearchOnTheDemo:
    def test_cooperative_hlm_finds_the_three(self, client: TestClient) -> None:
        found = names(client, q="cooperative hlm")
        assert sorted(n for n in found if n.startswith("Coopérative Hlm")) == [
            "Coopérative Hlm L'Olivaie",
            "Coopérative Hlm La Bastidane",
            "Coopérative Hlm Lure et Luberon",
        ]

    @pytest.mark.parametrize("q", ["établi", "ÉTABLI", "etabli", "ETABLI", "l'établi", "L’Etabli"])
    def test_etabli_whatever_the_case_accents_and_apostrophe(
        self, client: TestClient, q: str
    ) -> None:
        assert "Association L'Établi des Habitants" in names(client, q=q)

    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            ("ages et voisinage", "Association Âges et Voisinage"),
            ("AGES", "Association Âges et Voisinage"),
            ("terres partagees", "Association Terres Partagées"),
            ("huveaune", "Huveaune Habitat"),
        ],
    )
    def test_other_accented_names(self, client: TestClient, q: str, expected: str) -> None:
        assert expected in names(client, q=q)


class TestNameSearch:
    @pytest.mark.parametrize(
        ("stored", "typed"),
        [
            ("Énergies Solidaires du Var", "energies solidaires"),
            ("ÉCOLE DES LOCATAIRES", "école des locataires"),
            ("Maison de l’Habitat Durance", "maison de l'habitat"),
            ("Régie de quartier Saint-Barthélémy", "REGIE SAINT BARTHELEMY"),
            ("Les Œuvres du Panier", "oeuvres"),
        ],
    )
    def test_accents_case_and_apostrophes_are_ignored(
        self, client: TestClient, session: Session, stored: str, typed: str
    ) -> None:
        make_organisation(session, name=stored)
        assert names(client, q=typed) == [stored]

    def test_a_name_sent_decomposed_is_stored_composed_and_found(
        self, client: TestClient, session: Session
    ) -> None:
        decomposed = unicodedata.normalize("NFD", "Société Coopérative Élan")
        response = post(client, decomposed)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "Société Coopérative Élan"
        stored = session.scalar(
            select(Organisation.name).where(Organisation.id == response.json()["id"])
        )
        assert stored == unicodedata.normalize("NFC", decomposed)
        assert names(client, q="Société") == ["Société Coopérative Élan"]
        assert names(client, q="societe cooperative") == ["Société Coopérative Élan"]

    def test_a_name_patched_decomposed_is_stored_composed(
        self, client: TestClient, session: Session
    ) -> None:
        org = make_organisation(session, name="Avant")
        response = client.patch(
            f"{ORGS}/{org.id}", json={"name": unicodedata.normalize("NFD", "Élan Após")}
        )
        assert response.status_code == 200, response.text
        assert response.json()["name"] == unicodedata.normalize("NFC", "Élan Após")
        assert names(client, q="elan apos") == ["Élan Após"]


class TestFrenchSort:
    NAMES = [
        "Association Terres",
        "association Alpha",
        "Association Âges",
        "Zéphyr Habitat",
        "École du Logement",
        "Établi",
        "ab Habitat",
        "Abri Solidaire",
        "Œuvre Sociale",
    ]
    EXPECTED = [
        "ab Habitat",
        "Abri Solidaire",
        "Association Âges",
        "association Alpha",
        "Association Terres",
        "École du Logement",
        "Établi",
        "Œuvre Sociale",
        "Zéphyr Habitat",
    ]

    def test_accents_and_case_do_not_move_a_name(
        self, client: TestClient, session: Session
    ) -> None:
        for name in self.NAMES:
            make_organisation(session, name=name)
        assert names(client, sort="name") == self.EXPECTED
        assert names(client, sort="-name") == self.EXPECTED[::-1]

    @pytest.mark.parametrize("sort", ["name", "-name"])
    def test_cursor_walk_follows_the_french_order(
        self, client: TestClient, session: Session, sort: str
    ) -> None:
        for name in [*self.NAMES, "Établi", "ETABLI"]:  # ties broken by id
            make_organisation(session, name=name)
        whole = client.get(ORGS, params={"sort": sort, "limit": 200}).json()["items"]
        walked: list[int] = []
        params: dict[str, Any] = {"sort": sort, "limit": 2}
        while True:
            page = client.get(ORGS, params=params).json()
            walked += [i["id"] for i in page["items"]]
            if page["next_cursor"] is None:
                break
            params = {"sort": sort, "limit": 2, "cursor": page["next_cursor"]}
        assert walked == [i["id"] for i in whole]
        assert len(set(walked)) == len(self.NAMES) + 2
        ties = [i["id"] for i in whole if name_key(i["name"]) == "etabli"]
        assert ties == (sorted(ties) if sort == "name" else sorted(ties, reverse=True))

    def test_demo_sorts_ages_before_terres(self, client: TestClient, session: Session) -> None:
        load_demo(session, FIXTURES)
        session.flush()
        found = names(client, q="association")
        assert found.index("Association Âges et Voisinage") < found.index(
            "Association Terres Partagées"
        )
        keys = [name_key(n) for n in names(client)]
        assert keys == sorted(keys)


class TestDuplicateNames:
    def test_huveaune_habitat_again_is_a_409_naming_the_first(
        self, client: TestClient, session: Session
    ) -> None:
        load_demo(session, FIXTURES)
        session.flush()
        first = session.scalar(select(Organisation).where(Organisation.name == "Huveaune Habitat"))
        assert first is not None
        response = post(client, "Huveaune Habitat", kind=first.kind.value)
        assert response.status_code == 409
        body = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "« Huveaune Habitat »" in body["detail"]
        assert f"n° {first.id}" in body["detail"]
        assert "allow_duplicate_name=true" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "name"]
        assert names(client, q="huveaune habitat") == ["Huveaune Habitat"]

    @pytest.mark.parametrize(
        "typed",
        [
            "Habitat des Collines",
            "HABITAT DES COLLINES",
            "habitat des collines",
            "Habitat-des-Collines",
            "  Habitat   des Collines ",
            "Hàbitat des Côllines",
            unicodedata.normalize("NFD", "Habitat des Collines"),
        ],
    )
    def test_other_spellings_of_an_existing_name_are_duplicates(
        self, client: TestClient, typed: str
    ) -> None:
        first = post(client, "Habitat des Collines")
        assert first.status_code == 201, first.text
        response = post(client, typed)
        assert response.status_code == 409, response.text
        assert f"n° {first.json()['id']}" in response.json()["detail"]

    def test_an_apostrophe_style_is_no_new_name(self, client: TestClient) -> None:
        assert post(client, "L'Olivier Solidaire", kind="association").status_code == 201
        response = post(client, "L’Olivier solidaire", kind="association")
        assert response.status_code == 409

    def test_the_flag_creates_it_anyway(self, client: TestClient) -> None:
        first = post(client, "Habitat des Collines").json()
        second = post(client, "Habitat des Collines", params={"allow_duplicate_name": "true"})
        assert second.status_code == 201, second.text
        assert second.json()["id"] != first["id"]

    def test_another_kind_is_another_organisation(self, client: TestClient) -> None:
        assert post(client, "Les Amis du Quartier", kind="association").status_code == 201
        assert post(client, "Les Amis du Quartier", kind="company").status_code == 201

    def test_two_sirens_tell_them_apart(self, client: TestClient) -> None:
        assert post(client, "Habitat Provence", siren="732829320").status_code == 201
        assert post(client, "Habitat Provence", siren="552100554").status_code == 201

    @pytest.mark.parametrize(("first", "second"), [("732829320", None), (None, "732829320")])
    def test_one_siren_alone_does_not(
        self, client: TestClient, first: str | None, second: str | None
    ) -> None:
        assert post(client, "Habitat Provence", siren=first).status_code == 201
        assert post(client, "Habitat Provence", siren=second).status_code == 409

    def test_an_archived_namesake_does_not_count(self, client: TestClient) -> None:
        first = post(client, "Habitat des Collines").json()
        assert client.delete(f"{ORGS}/{first['id']}").status_code == 204
        assert post(client, "Habitat des Collines").status_code == 201

    def test_renaming_into_a_namesake_is_a_409_unless_confirmed(self, client: TestClient) -> None:
        first = post(client, "Habitat des Collines").json()
        other = post(client, "Habitat des Plaines").json()
        url = f"{ORGS}/{other['id']}"
        response = client.patch(url, json={"name": "habitat des collines"})
        assert response.status_code == 409
        assert f"n° {first['id']}" in response.json()["detail"]
        confirmed = client.patch(
            url, json={"name": "habitat des collines"}, params={"allow_duplicate_name": "true"}
        )
        assert confirmed.status_code == 200
        # Its own name, other spelling: no conflict with itself.
        assert (
            client.patch(f"{ORGS}/{first['id']}", json={"name": "HABITAT DES COLLINES"}).status_code
            == 200
        )

    def test_a_refused_duplicate_leaves_nothing(self, client: TestClient, session: Session) -> None:
        post(client, "Habitat des Collines")
        before = len(session.scalars(select(Organisation.id)).all())
        assert post(client, "habitat des collines").status_code == 409
        assert len(session.scalars(select(Organisation.id)).all()) == before


class TestSirenPlaceholders:
    @pytest.mark.parametrize("siren", ["000000000", "000 000 000", "111111111", "999999999"])
    def test_placeholders_are_refused(self, siren: str) -> None:
        message = siren_error(siren)
        assert message is not None
        assert "remplissage" in message

    def test_000000000_is_a_422_and_leaves_the_next_one_free(self, client: TestClient) -> None:
        response = post(client, "Habitat Zéro", siren="000000000")
        assert response.status_code == 422
        assert "remplissage" in response.json()["detail"]
        assert post(client, "Habitat Un", siren="").status_code == 201
        assert post(client, "Habitat Deux").status_code == 201

    def test_a_patch_to_a_placeholder_is_refused(self, client: TestClient) -> None:
        org = post(client, "Habitat Trois").json()
        response = client.patch(f"{ORGS}/{org['id']}", json={"siren": "000000000"})
        assert response.status_code == 422


class TestSirenDigits:
    @pytest.mark.parametrize(
        "typed",
        [
            "７３２８２９３２０",  # fullwidth
            "٧٣٢٨٢٩٣٢٠",  # Arabic-Indic
            "۷۳۲۸۲۹۳۲۰",  # Extended Arabic-Indic (Persian)
            "७३२८२९३२०",  # Devanagari
            "７３２ ８２９ ３２０",
        ],
    )
    def test_other_digits_are_stored_ascii_and_stay_one_siren(
        self, client: TestClient, typed: str
    ) -> None:
        first = post(client, "Habitat Ascii", siren="732829320")
        assert first.status_code == 201, first.text
        response = post(client, "Habitat Autre Écriture", siren=typed)
        assert response.status_code == 409, response.text
        assert "732829320" in response.json()["detail"]

    def test_stored_as_ascii(self, client: TestClient) -> None:
        response = post(client, "Habitat Pleine Chasse", siren="５５２１００５５４")
        assert response.status_code == 201, response.text
        assert response.json()["siren"] == "552100554"

    @pytest.mark.parametrize("typed", ["５５２１００５５５", "٠٠٠٠٠٠٠٠٠", "²³⁴567890"])
    def test_still_checked(self, client: TestClient, typed: str) -> None:
        assert post(client, "Habitat Faux", siren=typed).status_code == 422


class TestImportAgreesWithTheApi:
    def test_a_row_naming_an_existing_organisation_otherwise_updates_it(
        self, client: TestClient, session: Session
    ) -> None:
        from api.imports.formats import COLUMNS, write_csv

        existing = post(client, "Coopérative Hlm Les Oliviers").json()
        row = {
            "nom": "COOPERATIVE HLM LES OLIVIERS",
            "type": "bailleur",
            "site_web": "https://oliviers.example",
        }
        data = write_csv([[row.get(c, "") for c in COLUMNS]])
        response = client.post(
            "/api/v1/imports/organisations", content=data, headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["created"] == 0
        assert report["organisations"][0]["id"] == existing["id"]
        # One organisation, the file's spelling of its name now (an import replaces).
        assert len(names(client, q="cooperative hlm les oliviers")) == 1
