"""Statements through the API, and privacy: what a viewer may see of an organisation, by
viewer override and end to end with member tokens.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.matching.repository import current_version
from matcher.text import content_hash
from models import (
    Embedding,
    Organisation,
)
from models.enums import AccountRole
from tests.api.organisation_helpers import (
    COORDINATOR,
    ORGS,
    SECRET,
    STATEMENTS,
    SetViewer,
    create,
    member_of,
    organisation_with_secret,
)
from tests.api.problems import assert_problem, field_locs
from tests.conftest import bearer


class TestStatements:
    def test_created_listed_and_read_back(self, client: TestClient) -> None:
        org = create(client)
        response = client.post(
            f"{ORGS}/{org['id']}/statements",
            json={"kind": "need", "text": "Un local pour stocker du matériel", "themes": ["local"]},
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["location"] == f"{STATEMENTS}/{created['id']}"
        assert created | {"id": 0} == {
            "id": 0,
            "organisation_id": org["id"],
            "kind": "need",
            "text": "Un local pour stocker du matériel",
            "themes": ["local"],
            "visibility": "network",
        }
        assert client.get(f"{STATEMENTS}/{created['id']}").json() == created
        page = client.get(f"{ORGS}/{org['id']}/statements").json()
        assert page["total"] == 3
        assert page["items"][-1] == created

    def test_edit_text_kind_themes_and_visibility(self, client: TestClient) -> None:
        org = create(client)
        statement = org["statements"][1]["id"]
        response = client.patch(
            f"{STATEMENTS}/{statement}",
            json={
                "text": "Animation de jardins partagés",
                "kind": "competency",
                "themes": ["jardins"],
                "visibility": "coordinator",
            },
        )
        assert response.status_code == 200, response.text
        assert response.json() | {"id": 0} == {
            "id": 0,
            "organisation_id": org["id"],
            "kind": "competency",
            "text": "Animation de jardins partagés",
            "themes": ["jardins"],
            "visibility": "coordinator",
        }
        partial = client.patch(f"{STATEMENTS}/{statement}", json={"visibility": "network"}).json()
        assert (partial["text"], partial["themes"], partial["visibility"]) == (
            "Animation de jardins partagés",
            ["jardins"],
            "network",
        )

    def test_an_edit_is_embedded_in_the_same_transaction_and_the_index_follows(
        self, client: TestClient, session: Session, app: FastAPI
    ) -> None:
        org = create(client)
        statement = org["statements"][0]["id"]
        before = current_version(session)
        text = "Diagnostic thermique des logements anciens"
        client.patch(f"{STATEMENTS}/{statement}", json={"text": text})
        space = app.state.matching.space
        roles = set(
            session.scalars(
                select(Embedding.role).where(
                    Embedding.model == space, Embedding.content_hash == content_hash(text)
                )
            )
        )
        assert "competency" in roles
        row = session.get(Organisation, org["id"])
        assert row is not None
        # The profile reads the competencies: it changed with the text.
        assert session.scalar(
            select(Embedding.id).where(
                Embedding.model == space,
                Embedding.role == "profile",
                Embedding.content_hash == row.profile_hash,
            )
        )
        assert current_version(session) > before

    def test_deleted_statement_is_gone(self, client: TestClient, session: Session) -> None:
        org = create(client)
        statement = org["statements"][0]["id"]
        before = current_version(session)
        assert client.delete(f"{STATEMENTS}/{statement}").status_code == 204
        assert_problem(client.get(f"{STATEMENTS}/{statement}"), 404, str(statement))
        assert_problem(client.delete(f"{STATEMENTS}/{statement}"), 404)
        assert client.get(f"{ORGS}/{org['id']}/statements").json()["total"] == 1
        assert current_version(session) > before

    def test_filtered_by_kind(self, client: TestClient) -> None:
        org = create(client)
        needs = client.get(f"{ORGS}/{org['id']}/statements", params={"kind": "need"}).json()
        assert needs["total"] == 1
        assert [s["kind"] for s in needs["items"]] == ["need"]
        bad = client.get(f"{ORGS}/{org['id']}/statements", params={"kind": "wish"})
        assert field_locs(bad) == [["query", "kind"]]

    def test_statement_pages_walk_by_cursor(self, client: TestClient) -> None:
        org = create(
            client,
            statements=[{"kind": "need", "text": f"Besoin numéro {i}"} for i in range(7)],
        )
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 3}
        while True:
            page = client.get(f"{ORGS}/{org['id']}/statements", params=params).json()
            assert page["total"] == 7
            seen += [s["id"] for s in page["items"]]
            if page["next_cursor"] is None:
                break
            params = {"limit": 3, "cursor": page["next_cursor"]}
        assert seen == sorted(s["id"] for s in org["statements"])

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"text": None}, ["body", "text"]),
            ({"kind": None}, ["body", "kind"]),
            ({"visibility": None}, ["body", "visibility"]),
            ({"themes": None}, ["body", "themes"]),
            ({"text": "  "}, ["body", "text"]),
            ({"text": 12}, ["body", "text"]),
            ({"kind": "wish"}, ["body", "kind"]),
            ({"visibility": "public"}, ["body", "visibility"]),
            ({"themes": "jardins"}, ["body", "themes"]),
            ({"themes": ["x"] * 11}, ["body", "themes"]),
            ({"organisation_id": 3}, ["body", "organisation_id"]),
        ],
    )
    def test_strict_edit_bodies_name_the_field_at_fault(
        self, client: TestClient, body: dict[str, Any], loc: list[Any]
    ) -> None:
        org = create(client)
        statement = org["statements"][0]
        response = client.patch(f"{STATEMENTS}/{statement['id']}", json=body)
        assert loc in field_locs(response)
        assert client.get(f"{STATEMENTS}/{statement['id']}").json()["text"] == statement["text"]

    @pytest.mark.parametrize(
        "body",
        [
            {"text": "Un local"},
            {"kind": "need"},
            {"kind": "need", "text": "Un local", "extra": 1},
            {"kind": "need", "text": "x" * 2001},
            {"kind": "need", "text": "Un local", "visibility": None},
        ],
    )
    def test_strict_creation_bodies_are_refused(
        self, client: TestClient, body: dict[str, Any]
    ) -> None:
        org = create(client)
        response = client.post(f"{ORGS}/{org['id']}/statements", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"]

    def test_unknown_statement_or_organisation_is_404(self, client: TestClient) -> None:
        assert_problem(client.get(f"{STATEMENTS}/999999"), 404, "999999")
        assert_problem(client.patch(f"{STATEMENTS}/999999", json={"text": "Autre"}), 404)
        assert_problem(client.delete(f"{STATEMENTS}/999999"), 404)
        new = {"kind": "need", "text": "Un local"}
        assert_problem(client.post(f"{ORGS}/999999/statements", json=new), 404, "999999")
        assert_problem(client.get(f"{ORGS}/999999/statements"), 404)

    @pytest.mark.parametrize("statement", ["0", "-1", "abc", "2147483648", "1.5"])
    def test_invalid_statement_ids_are_422(self, client: TestClient, statement: str) -> None:
        assert client.get(f"{STATEMENTS}/{statement}").status_code == 422
        assert client.delete(f"{STATEMENTS}/{statement}").status_code == 422


class TestPrivacy:
    def test_outsiders_see_neither_contacts_nor_coordinator_statements(
        self, client: TestClient, as_viewer: SetViewer
    ) -> None:
        org = organisation_with_secret(client)
        other = create(client, name="Voisin")
        as_viewer(member_of(other["id"]))
        body = client.get(f"{ORGS}/{org['id']}").json()
        assert body["contacts"] is None
        assert [s["visibility"] for s in body["statements"]] == ["network"]
        page = client.get(f"{ORGS}/{org['id']}/statements").json()
        assert page["total"] == 1
        hidden = org["statements"][1]["id"]
        response = client.get(f"{STATEMENTS}/{hidden}")
        assert_problem(response, 404)
        for response in (
            client.get(f"{ORGS}/{org['id']}"),
            client.get(f"{ORGS}/{org['id']}/statements"),
            client.get(f"{STATEMENTS}/{hidden}"),
            client.patch(f"{STATEMENTS}/{hidden}", json={"text": "Autre chose"}),
            client.delete(f"{STATEMENTS}/{hidden}"),
            client.get(ORGS, params={"q": SECRET}),
        ):
            assert SECRET not in response.text

    @pytest.mark.parametrize("viewer", ["member", "coordinator"])
    def test_members_and_the_coordinator_see_everything(
        self, client: TestClient, as_viewer: SetViewer, viewer: str
    ) -> None:
        org = organisation_with_secret(client)
        as_viewer(member_of(org["id"]) if viewer == "member" else COORDINATOR)
        body = client.get(f"{ORGS}/{org['id']}").json()
        assert [c["name"] for c in body["contacts"]] == ["Camille Roux"]
        assert [s["visibility"] for s in body["statements"]] == ["network", "coordinator"]
        assert client.get(f"{ORGS}/{org['id']}/statements").json()["total"] == 2
        hidden = org["statements"][1]["id"]
        assert SECRET in client.get(f"{STATEMENTS}/{hidden}").json()["text"]

    def test_outsiders_may_not_change_an_organisation(
        self, client: TestClient, as_viewer: SetViewer
    ) -> None:
        org = organisation_with_secret(client)
        other = create(client, name="Voisin")
        visible, hidden = (s["id"] for s in org["statements"])
        as_viewer(member_of(other["id"]))
        forbidden = [
            client.patch(f"{ORGS}/{org['id']}", json={"name": "Piraté"}),
            client.delete(f"{ORGS}/{org['id']}"),
            client.post(f"{ORGS}/{org['id']}/statements", json={"kind": "need", "text": "Abc"}),
            client.patch(f"{STATEMENTS}/{visible}", json={"text": "Piraté aussi"}),
            client.delete(f"{STATEMENTS}/{visible}"),
        ]
        for response in forbidden:
            body = assert_problem(response, 403, "Habitat des Calanques", "coordinateur")
            assert SECRET not in response.text
            assert body["title"] == "Accès refusé"
        # A coordinator-only statement of another organisation is not even found.
        assert_problem(client.patch(f"{STATEMENTS}/{hidden}", json={"text": "Piraté"}), 404)
        assert_problem(client.delete(f"{STATEMENTS}/{hidden}"), 404)
        as_viewer(COORDINATOR)
        unchanged = client.get(f"{ORGS}/{org['id']}").json()
        assert unchanged["name"] == "Habitat des Calanques"
        assert len(unchanged["statements"]) == 2

    def test_an_outsider_asking_for_an_unknown_organisation_gets_404(
        self, client: TestClient, as_viewer: SetViewer
    ) -> None:
        as_viewer(member_of(1))
        assert_problem(client.patch(f"{ORGS}/999999", json={"name": "X"}), 404)

    def test_members_change_their_own_organisation(
        self, client: TestClient, as_viewer: SetViewer
    ) -> None:
        org = create(client)
        as_viewer(member_of(org["id"]))
        assert client.patch(f"{ORGS}/{org['id']}", json={"name": "Nouveau nom"}).status_code == 200
        created = client.post(
            f"{ORGS}/{org['id']}/statements", json={"kind": "need", "text": "Un local"}
        )
        assert created.status_code == 201
        statement = created.json()["id"]
        assert client.patch(f"{STATEMENTS}/{statement}", json={"text": "Deux locaux"}).is_success
        assert client.delete(f"{STATEMENTS}/{statement}").status_code == 204
        assert client.delete(f"{ORGS}/{org['id']}").status_code == 204

    def test_outsiders_listing_shows_no_contacts(
        self, client: TestClient, as_viewer: SetViewer
    ) -> None:
        create(client)
        as_viewer(member_of())
        body = client.get(ORGS).json()
        assert body["items"]
        assert all("contacts" not in item for item in body["items"])
        assert "Camille" not in client.get(ORGS).text


class TestWithTokens:
    """The same rules end to end, the viewer being the account of a bearer token."""

    def test_a_member_of_another_organisation(
        self, client: TestClient, anonymous_client: TestClient, session: Session
    ) -> None:
        org = organisation_with_secret(client)
        other = create(client, name="Voisin")
        auth = {"Authorization": bearer(session, AccountRole.member, [other["id"]])}
        body = anonymous_client.get(f"{ORGS}/{org['id']}", headers=auth).json()
        assert body["contacts"] is None
        assert SECRET not in str(body)
        hidden = org["statements"][1]["id"]
        assert_problem(anonymous_client.get(f"{STATEMENTS}/{hidden}", headers=auth), 404)
        refused = anonymous_client.patch(
            f"{ORGS}/{org['id']}", json={"name": "Piraté"}, headers=auth
        )
        assert_problem(refused, 403)
        assert SECRET not in refused.text
        created = anonymous_client.post(
            ORGS, json={"name": "Nouvelle", "kind": "other"}, headers=auth
        )
        assert_problem(created, 403)

    def test_a_member_of_the_organisation(
        self, client: TestClient, anonymous_client: TestClient, session: Session
    ) -> None:
        org = organisation_with_secret(client)
        auth = {"Authorization": bearer(session, AccountRole.member, [org["id"]])}
        body = anonymous_client.get(f"{ORGS}/{org['id']}", headers=auth).json()
        assert [c["name"] for c in body["contacts"]] == ["Camille Roux"]
        assert SECRET in str(body)
        hidden = org["statements"][1]["id"]
        changed = anonymous_client.patch(
            f"{STATEMENTS}/{hidden}", json={"visibility": "network"}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        assert anonymous_client.delete(f"{ORGS}/{org['id']}", headers=auth).status_code == 204
