"""Listing organisations (filters, French sort, pagination), no 500 on odd input, and
matching that follows the organisation API's writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.kit.pagination import encode_cursor
from tests.api.organisation_helpers import (
    ORGS,
    SEARCH,
    SECRET,
    STATEMENTS,
    create,
)
from tests.factories import make_organisation


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


class TestListOrganisations:
    def test_filters_by_kind_legal_form_and_words_of_name_or_description(
        self, client: TestClient
    ) -> None:
        create(client, name="Office Alpha", legal_form="OPH", description="Logement étudiant")
        create(client, name="Coop Bravo", legal_form="Coopérative Hlm", description=None)
        create(
            client,
            name="Asso Charlie",
            kind="association",
            legal_form=None,
            description="Quartiers",
        )
        assert names(client.get(ORGS, params={"kind": "association"}).json()) == ["Asso Charlie"]
        assert names(client.get(ORGS, params={"legal_form": "oph"}).json()) == ["Office Alpha"]
        by_form = client.get(ORGS, params={"legal_form": "coopérative hlm"}).json()
        assert names(by_form) == ["Coop Bravo"]
        assert names(client.get(ORGS, params={"q": "étudiant"}).json()) == ["Office Alpha"]
        assert names(client.get(ORGS, params={"q": "office logement"}).json()) == ["Office Alpha"]
        assert names(client.get(ORGS, params={"q": "office charlie"}).json()) == []
        assert client.get(ORGS, params={"q": "100%_"}).json()["total"] == 0

    def test_sorted_by_name_then_id_both_ways(self, client: TestClient) -> None:
        ids = {
            label: create(client, name=name, duplicate=True)["id"]
            for label, name in [("b1", "Bravo"), ("a", "Alpha"), ("b2", "Bravo"), ("c", "Charlie")]
        }
        ascending = [i["id"] for i in client.get(ORGS, params={"sort": "name"}).json()["items"]]
        assert ascending == [ids["a"], ids["b1"], ids["b2"], ids["c"]]
        descending = [i["id"] for i in client.get(ORGS, params={"sort": "-name"}).json()["items"]]
        assert descending == [ids["c"], ids["b2"], ids["b1"], ids["a"]]

    def test_sorted_by_creation_then_id_both_ways(
        self, client: TestClient, session: Session
    ) -> None:
        stamps = [
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 2, 1, 12, 30, 15, 123456, tzinfo=UTC),
        ]
        ids = []
        for i, stamp in enumerate(stamps):
            org = make_organisation(session, name=f"Org {i}")
            org.created_at = stamp
            ids.append(org.id)
        session.flush()
        expected = [ids[1], ids[3], ids[0], ids[2]]
        for sort, order in (("created_at", expected), ("-created_at", expected[::-1])):
            for limit in (200, 1):
                walked: list[int] = []
                params: dict[str, Any] = {"sort": sort, "limit": limit}
                while True:
                    page = client.get(ORGS, params=params).json()
                    walked += [i["id"] for i in page["items"]]
                    if page["next_cursor"] is None:
                        break
                    params = {"sort": sort, "limit": limit, "cursor": page["next_cursor"]}
                assert walked == order, (sort, limit)

    def test_offset_pages_carry_the_total(self, client: TestClient, session: Session) -> None:
        for i in range(5):
            make_organisation(session, name=f"Paginée {i}")
        first = client.get(ORGS, params={"q": "Paginée", "limit": 2}).json()
        assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
        assert names(first) == ["Paginée 0", "Paginée 1"]
        last = client.get(ORGS, params={"q": "Paginée", "limit": 2, "offset": 4}).json()
        assert names(last) == ["Paginée 4"]
        assert last["next_cursor"] is None
        beyond = client.get(ORGS, params={"q": "Paginée", "limit": 2, "offset": 10}).json()
        assert (beyond["items"], beyond["total"]) == ([], 5)

    @pytest.mark.parametrize("sort", ["name", "-name", "created_at", "-created_at"])
    def test_cursor_walk_has_no_duplicate_and_no_miss(
        self, client: TestClient, session: Session, sort: str
    ) -> None:
        for i in range(9):
            org = make_organisation(session, name=f"Curseur {i % 4}")
            org.created_at = datetime(2026, 1, 1 + i % 3, tzinfo=UTC)
        session.flush()
        whole = client.get(ORGS, params={"q": "Curseur", "sort": sort, "limit": 200}).json()
        walked: list[int] = []
        params: dict[str, Any] = {"q": "Curseur", "sort": sort, "limit": 2}
        pages = 0
        while True:
            page = client.get(ORGS, params=params).json()
            assert page["total"] == 9
            assert page["offset"] == (0 if pages == 0 else None)
            walked += [i["id"] for i in page["items"]]
            pages += 1
            if page["next_cursor"] is None:
                break
            params = {"q": "Curseur", "sort": sort, "limit": 2, "cursor": page["next_cursor"]}
        assert pages == 5
        assert walked == [i["id"] for i in whole["items"]]
        assert len(set(walked)) == 9

    def test_rows_added_during_a_cursor_walk_shift_nothing(
        self, client: TestClient, session: Session
    ) -> None:
        for name in ("Bravo", "Delta", "Foxtrot"):
            make_organisation(session, name=name)
        first = client.get(ORGS, params={"limit": 2}).json()
        assert names(first) == ["Bravo", "Delta"]
        make_organisation(session, name="Alpha")  # before the cursor: an offset would repeat
        rest = client.get(ORGS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert names(rest) == ["Foxtrot"]
        assert rest["total"] == 4

    def test_archived_organisations_are_not_listed(self, client: TestClient) -> None:
        org = create(client, name="Bientôt archivée")
        client.delete(f"{ORGS}/{org['id']}")
        assert client.get(ORGS, params={"q": "archivée"}).json()["total"] == 0

    def test_a_cursor_serves_only_its_own_filters_and_sort(
        self, client: TestClient, session: Session
    ) -> None:
        for i in range(3):
            make_organisation(session, name=f"Filtre {i}")
        cursor = client.get(ORGS, params={"q": "Filtre", "limit": 1}).json()["next_cursor"]
        for params in ({"q": "Autre"}, {"sort": "-name", "q": "Filtre"}, {"kind": "research"}):
            response = client.get(ORGS, params={**params, "cursor": cursor})
            assert response.status_code == 404, response.text
            assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
            assert "filtres" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("cursor", "status"),
        [
            ("abc", 404),  # the document's pattern, naming no page: unknown
            ("Zm9v", 404),  # "foo"
            ("e30", 404),  # "{}"
            ("x" * 2001, 422),  # against the document: invalid
            ("!!", 422),
        ],
    )
    def test_unreadable_cursors_are_refused(
        self, client: TestClient, cursor: str, status: int
    ) -> None:
        response = client.get(ORGS, params={"cursor": cursor})
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]

    def test_forged_cursors_are_404_not_500(self, client: TestClient) -> None:
        from api.kit.pagination import scope_of

        scope = scope_of(
            list="organisations", q="", kind=None, legal_form=None, territory=None, sort="name"
        )
        for key in (["a", 10**30], ["a\u0000", 1], [3, 1], ["a"], ["a", True], ["a", -1]):
            response = client.get(ORGS, params={"cursor": encode_cursor(scope, key)})
            assert response.status_code == 404, (key, response.text)
        dated = scope_of(
            list="organisations",
            q="",
            kind=None,
            legal_form=None,
            territory=None,
            sort="created_at",
        )
        for key in (["hier", 1], ["2026-13-45", 1]):
            response = client.get(
                ORGS, params={"sort": "created_at", "cursor": encode_cursor(dated, key)}
            )
            assert response.status_code == 404, (key, response.text)

    @pytest.mark.parametrize(
        "params",
        [
            {"sort": "size"},
            {"kind": "bailleur"},
            {"limit": 0},
            {"limit": 201},
            {"offset": -1},
            {"q": "nul\u0000"},
            {"legal_form": "x" * 81},
            {"territory": "93"},
            {"territory": "commune:1300\u0000"},
            {"cursor": "e30\u0000"},
        ],
    )
    def test_bad_parameters_are_422(self, client: TestClient, params: dict[str, Any]) -> None:
        assert client.get(ORGS, params=params).status_code == 422


class TestNeverA500:
    def test_odd_inputs_on_every_endpoint(self, client: TestClient) -> None:
        org = create(client)
        statement = org["statements"][0]["id"]
        # A lone surrogate or a NUL character would make PostgreSQL fail if stored.
        odd_json = [
            b'{"name": "\\ud800"}',
            b'{"text": "\\u0000abc"}',
            b"[1, 2]",
            b'{"name": 1e999}',
            b'{"contacts": [null]}',
            b'{"territories": [null, 3]}',
            b'{"kind": {"a": 1}}',
            b'"\xff"',
            b"",
        ]
        for body in odd_json:
            for method, url in (
                ("PATCH", f"{ORGS}/{org['id']}"),
                ("POST", ORGS),
                ("POST", f"{ORGS}/{org['id']}/statements"),
                ("PATCH", f"{STATEMENTS}/{statement}"),
            ):
                response = client.request(
                    method, url, content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code in (400, 422), (method, url, body, response.text)


@pytest.mark.slow
class TestMatchingFollows:
    """Search and partner suggestions read each write at once, with the real model."""

    def _search(self, client: TestClient, q: str) -> list[dict[str, Any]]:
        response = client.get(SEARCH, params={"q": q})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def _network(self, client: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
        repairers = create(
            client,
            name="Atelier Vélo Solidaire",
            kind="association",
            legal_form=None,
            description=None,
            statements=[
                {"kind": "competency", "text": "Ateliers de couture et de retouche de vêtements"},
                {"kind": "need", "text": "Un local en pied d'immeuble pour l'atelier"},
            ],
        )
        landlord = create(
            client,
            name="Habitat Provence",
            statements=[
                {"kind": "competency", "text": "Mise à disposition de locaux en pied d'immeuble"},
                {"kind": "need", "text": "Des ateliers de réparation de vélos pour les locataires"},
            ],
        )
        return repairers, landlord

    def test_an_edited_statement_is_found_by_the_next_search(self, client: TestClient) -> None:
        repairers, _landlord = self._network(client)
        statement = repairers["statements"][0]["id"]
        text = "Réparation de vélos et de vélos cargos avec les habitants"
        response = client.patch(f"{STATEMENTS}/{statement}", json={"text": text})
        assert response.status_code == 200
        items = self._search(client, "réparer son vélo cargo")
        assert items
        assert items[0]["organisation"]["id"] == repairers["id"]
        assert items[0]["statements"][0]["text"] == text
        assert all(
            "couture" not in s["text"]
            for item in self._search(client, "couture et retouche de vêtements")
            for s in item["statements"]
        )

    def test_a_new_statement_is_found_and_a_deleted_one_forgotten(self, client: TestClient) -> None:
        repairers, _landlord = self._network(client)
        text = "Collecte et réemploi de meubles pour les ménages relogés"
        created = client.post(
            f"{ORGS}/{repairers['id']}/statements", json={"kind": "competency", "text": text}
        ).json()
        items = self._search(client, "réemploi de meubles")
        assert items[0]["organisation"]["id"] == repairers["id"]
        client.delete(f"{STATEMENTS}/{created['id']}")
        assert all(
            s["id"] != created["id"]
            for item in self._search(client, "réemploi de meubles")
            for s in item["statements"]
        )

    def test_a_statement_made_coordinator_only_leaves_search_at_once(
        self, client: TestClient
    ) -> None:
        repairers, _landlord = self._network(client)
        statement = repairers["statements"][0]["id"]
        client.patch(
            f"{STATEMENTS}/{statement}",
            json={"text": f"Réparation de vélos cargos {SECRET}", "visibility": "coordinator"},
        )
        for q in ("réparation de vélos cargos", SECRET):
            items = self._search(client, q)  # the answer repeats the query: look at the hits
            assert SECRET not in str(items)
            assert statement not in [s["id"] for item in items for s in item["statements"]]

    def test_archived_organisation_leaves_search_and_partners_at_once(
        self, client: TestClient
    ) -> None:
        repairers, landlord = self._network(client)
        statement = repairers["statements"][0]["id"]
        client.patch(f"{STATEMENTS}/{statement}", json={"text": "Réparation de vélos"})
        partners = client.get(f"{ORGS}/{landlord['id']}/partners").json()["items"]
        assert repairers["id"] in [p["organisation"]["id"] for p in partners]
        assert (
            self._search(client, "réparer son vélo")[0]["organisation"]["id"] == (repairers["id"])
        )
        assert client.delete(f"{ORGS}/{repairers['id']}").status_code == 204
        found = [i["organisation"]["id"] for i in self._search(client, "réparer son vélo")]
        assert repairers["id"] not in found
        partners = client.get(f"{ORGS}/{landlord['id']}/partners").json()["items"]
        assert repairers["id"] not in [p["organisation"]["id"] for p in partners]
        listed = client.get(ORGS, params={"limit": 200}).json()["items"]
        assert repairers["id"] not in [i["id"] for i in listed]
