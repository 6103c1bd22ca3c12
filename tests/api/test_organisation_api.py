"""The organisation API: partial updates, archiving, and the order of a write's effects.

The `client` fixture sends an admin token; the services' own rules are tested by setting the
viewer (`as_viewer`, tests/api/conftest.py). Who may call each route at all is the permission
matrix's (tests/api/test_permissions.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from api.matching.repository import current_version
from api.organisations import service
from api.organisations.schemas import StatementPatch
from models import (
    Call,
    Consortium,
    ConsortiumMember,
    Embedding,
    Organisation,
)
from tests.api.organisation_helpers import (
    COORDINATOR,
    ORGS,
    STATEMENTS,
    create,
)
from tests.api.problems import assert_problem, field_locs
from tests.factories import make_organisation


class TestUpdateOrganisation:
    def test_absent_fields_stay_and_given_ones_change(self, client: TestClient) -> None:
        org = create(client)
        response = client.patch(f"{ORGS}/{org['id']}", json={"name": "Calanques Habitat"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == "Calanques Habitat"
        for field in ("kind", "legal_form", "website", "description", "territories", "contacts"):
            assert body[field] == org[field], field
        assert body["statements"] == org["statements"]
        assert client.get(f"{ORGS}/{org['id']}").json()["name"] == "Calanques Habitat"

    def test_null_clears_an_optional_field(self, client: TestClient) -> None:
        org = create(client, siren="732829320")
        response = client.patch(
            f"{ORGS}/{org['id']}",
            json={"legal_form": None, "website": None, "description": None, "siren": None},
        )
        assert response.status_code == 200, response.text
        body = client.get(f"{ORGS}/{org['id']}").json()
        assert (body["legal_form"], body["website"], body["description"], body["siren"]) == (
            None,
            None,
            None,
            None,
        )
        assert body["name"] == org["name"]

    def test_territories_and_contacts_are_replaced_when_given(self, client: TestClient) -> None:
        org = create(client)
        response = client.patch(
            f"{ORGS}/{org['id']}",
            json={
                "territories": ["departement:13", "commune:06088"],
                "contacts": [{"name": "Léa Martin", "phone": "04 91 00 00 00"}],
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert {t["ref"] for t in body["territories"]} == {"departement:13", "commune:06088"}
        assert [c["name"] for c in body["contacts"]] == ["Léa Martin"]
        cleared = client.patch(f"{ORGS}/{org['id']}", json={"contacts": []}).json()
        assert cleared["contacts"] == []
        assert {t["ref"] for t in cleared["territories"]} == {"departement:13", "commune:06088"}

    def test_territory_filter_follows_the_change_at_once(self, client: TestClient) -> None:
        org = create(client, territories=["commune:06088"])
        client.patch(f"{ORGS}/{org['id']}", json={"territories": ["commune:13001"]})
        inside = client.get(ORGS, params={"territory": "departement:13", "limit": 200}).json()
        assert org["id"] in [i["id"] for i in inside["items"]]

    def test_empty_body_changes_nothing(self, client: TestClient) -> None:
        org = create(client)
        response = client.patch(f"{ORGS}/{org['id']}", json={})
        assert response.status_code == 200
        assert response.json()["name"] == org["name"]

    @pytest.mark.parametrize("field", ["name", "kind", "territories", "contacts"])
    def test_null_is_refused_where_a_value_is_required(
        self, client: TestClient, field: str
    ) -> None:
        org = create(client)
        response = client.patch(f"{ORGS}/{org['id']}", json={field: None})
        assert field_locs(response) == [["body", field]]
        assert "null" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"name": 12}, ["body", "name"]),
            ({"kind": "bailleur"}, ["body", "kind"]),
            ({"territories": "13001"}, ["body", "territories"]),
            ({"statements": []}, ["body", "statements"]),
            ({"slug": "x"}, ["body", "slug"]),
            ({"siren": "732829321"}, ["body", "siren"]),
            ({"website": "calanques.example"}, ["body", "website"]),
            ({"contacts": [{"name": "A", "email": "pas-une-adresse"}]}, ["body", "contacts", 0]),
            ({"contacts": [{"name": "A", "age": 3}]}, ["body", "contacts", 0, "age"]),
            ({"description": "nul\u0000"}, ["body", "description"]),
            ({"name": "x" * 201}, ["body", "name"]),
        ],
    )
    def test_strict_bodies_name_the_field_at_fault(
        self, client: TestClient, body: dict[str, Any], loc: list[Any]
    ) -> None:
        org = create(client)
        response = client.patch(f"{ORGS}/{org['id']}", json=body)
        locs = field_locs(response)
        assert any(found[: len(loc)] == loc for found in locs), locs
        after = client.get(f"{ORGS}/{org['id']}").json()
        stamps = {"created_at": None, "updated_at": None}
        assert after | stamps == org | stamps

    def test_body_must_be_an_object(self, client: TestClient) -> None:
        org = create(client)
        for body in ([], "x", 3, None):
            response = client.patch(f"{ORGS}/{org['id']}", json=body)
            assert response.status_code == 422, body

    def test_unknown_territory_changes_nothing(self, client: TestClient) -> None:
        org = create(client)
        response = client.patch(
            f"{ORGS}/{org['id']}", json={"name": "Autre", "territories": ["99999"]}
        )
        assert response.status_code == 404, response.text
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "territories", 0]]
        assert client.get(f"{ORGS}/{org['id']}").json()["name"] == org["name"]

    def test_siren_of_another_organisation_is_a_conflict_naming_it(
        self, client: TestClient, session: Session
    ) -> None:
        holder = make_organisation(session, name="Premier Habitat", siren="552100554")
        org = create(client)
        response = client.patch(f"{ORGS}/{org['id']}", json={"siren": "552 100 554"})
        assert_problem(response, 409, "Premier Habitat", f"n° {holder.id}", "552100554")
        assert client.get(f"{ORGS}/{org['id']}").json()["siren"] is None

    def test_own_siren_sent_again_is_no_conflict(self, client: TestClient) -> None:
        org = create(client, siren="732829320")
        response = client.patch(f"{ORGS}/{org['id']}", json={"siren": "732829320"})
        assert response.status_code == 200, response.text

    def test_unknown_organisation_is_404(self, client: TestClient) -> None:
        assert_problem(client.patch(f"{ORGS}/999999", json={"name": "X"}), 404, "999999")

    def test_description_change_reembeds_the_profile_in_the_same_transaction(
        self, client: TestClient, session: Session, app: FastAPI
    ) -> None:
        org = create(client)
        before = current_version(session)
        client.patch(f"{ORGS}/{org['id']}", json={"description": "Bailleur des quartiers nord."})
        row = session.get(Organisation, org["id"])
        assert row is not None
        assert row.profile_hash is not None
        space = app.state.matching.space
        assert session.scalar(
            select(Embedding.id).where(
                Embedding.model == space, Embedding.content_hash == row.profile_hash
            )
        )
        assert current_version(session) > before


class TestArchive:
    def test_archived_organisation_answers_404_everywhere(self, client: TestClient) -> None:
        org = create(client)
        statement = org["statements"][0]["id"]
        assert client.delete(f"{ORGS}/{org['id']}").status_code == 204
        assert_problem(client.get(f"{ORGS}/{org['id']}"), 404, str(org["id"]))
        assert_problem(client.patch(f"{ORGS}/{org['id']}", json={"name": "X"}), 404)
        assert_problem(client.delete(f"{ORGS}/{org['id']}"), 404)
        assert_problem(client.get(f"{ORGS}/{org['id']}/statements"), 404)
        new = {"kind": "need", "text": "Un local"}
        assert_problem(client.post(f"{ORGS}/{org['id']}/statements", json=new), 404)
        assert_problem(client.get(f"{STATEMENTS}/{statement}"), 404)
        assert_problem(client.patch(f"{STATEMENTS}/{statement}", json={"text": "Autre"}), 404)
        assert_problem(client.delete(f"{STATEMENTS}/{statement}"), 404)
        assert_problem(client.get(f"{ORGS}/{org['id']}/partners"), 404)

    def test_archived_organisation_leaves_the_listing_at_once(self, client: TestClient) -> None:
        kept = create(client, name="Gardée")
        gone = create(client, name="Archivée")
        before = client.get(ORGS, params={"limit": 200}).json()
        client.delete(f"{ORGS}/{gone['id']}")
        after = client.get(ORGS, params={"limit": 200}).json()
        assert after["total"] == before["total"] - 1
        ids = [i["id"] for i in after["items"]]
        assert kept["id"] in ids
        assert gone["id"] not in ids

    def test_rows_and_history_in_consortia_stay(
        self, client: TestClient, session: Session, engine: Engine
    ) -> None:
        org = create(client)
        call = Call(title="AMI Habitat inclusif")
        session.add(call)
        session.flush()
        consortium = Consortium(
            call_id=call.id, members=[ConsortiumMember(organisation_id=org["id"])]
        )
        session.add(consortium)
        session.flush()
        assert client.delete(f"{ORGS}/{org['id']}").status_code == 204
        session.expire_all()
        row = session.get(Organisation, org["id"])
        assert row is not None
        assert row.archived_at is not None
        assert len(row.statements) == 2
        member = session.scalar(
            select(ConsortiumMember).where(ConsortiumMember.organisation_id == org["id"])
        )
        assert member is not None

    def test_archived_siren_stays_taken_and_the_conflict_names_it(self, client: TestClient) -> None:
        archived = create(client, name="Ancien Office", siren="552100554")
        client.delete(f"{ORGS}/{archived['id']}")
        response = client.post(
            ORGS,
            json={"name": "Nouvel Office", "kind": "landlord", "siren": "552100554"},
        )
        assert_problem(response, 409, "Ancien Office", f"n° {archived['id']}", "archivée")
        other = create(client, name="Autre Office")
        response = client.patch(f"{ORGS}/{other['id']}", json={"siren": "552100554"})
        assert_problem(response, 409, "Ancien Office", "archivée")

    def test_archiving_and_edits_are_in_the_audit_trail(self, client: TestClient) -> None:
        org = create(client)
        statement = org["statements"][0]["id"]
        client.patch(f"{STATEMENTS}/{statement}", json={"text": "Médiation locative"})
        client.delete(f"{ORGS}/{org['id']}")
        trail = client.get(
            "/api/v1/audit", params={"object_type": "organisation", "object_id": org["id"]}
        ).json()["items"]
        assert [e["action"] for e in trail][:1] == ["archive"]
        edits = client.get(
            "/api/v1/audit", params={"object_type": "statement", "object_id": statement}
        ).json()["items"]
        assert edits[0]["action"] == "update"
        assert edits[0]["details"]["changes"]["text"][1] == "Médiation locative"

    def test_archiving_bumps_the_index_version(self, client: TestClient, session: Session) -> None:
        org = create(client)
        before = current_version(session)
        client.delete(f"{ORGS}/{org['id']}")
        assert current_version(session) == before + 1


class TestWriteOrder:
    def test_an_edit_encodes_before_its_transactions_first_statement(
        self,
        session: Session,
        engine: Engine,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The look-ahead reads in a transaction of its own; the write's first statement,
        which takes SQLite's write lock, comes after the encoding."""
        org = make_organisation(session)
        statement = org.statements[0]
        matching = MatchingEngine(settings)
        events: list[str] = []
        encode = matching.encode

        def recording_encode(*args: Any, **kwargs: Any) -> Any:
            events.append("encode")
            return encode(*args, **kwargs)

        class RecordingReader:
            def __enter__(self) -> Session:
                events.append("read begins")
                return session

            def __exit__(self, *_: object) -> None:
                events.append("read ends")

        def record(*_: Any) -> None:
            events.append("sql")

        monkeypatch.setattr(matching, "encode", recording_encode)
        event.listen(engine, "before_cursor_execute", record)
        try:
            service.update_statement(
                session,
                RecordingReader,
                matching,
                COORDINATOR,
                statement.id,
                StatementPatch.model_validate({"text": "Réparation de vélos avec les habitants"}),
            )
        finally:
            event.remove(engine, "before_cursor_execute", record)
        # The look-ahead's last read (a statement's is two: its organisation, then what the
        # organisation holds, once its turn has come) ends before the encoding.
        last_read = len(events) - 1 - events[::-1].index("read ends")
        write = events[last_read + 1 :]
        assert write[0] == "encode"
        assert "sql" in write
        assert "encode" not in write[write.index("sql") :]
