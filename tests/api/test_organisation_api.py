"""The organisation API complete: partial updates, archiving, statements, lists, privacy.

The `client` fixture sends an admin token; the services' own rules (what a viewer may see
and change) are tested by setting the viewer through `app.dependency_overrides[get_viewer]`,
and once end to end with member tokens (`TestWithTokens`). Who may call each route at all is
the permission matrix's (tests/api/test_permissions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.deps import get_viewer
from api.kit.pagination import encode_cursor
from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from api.matching.repository import current_version
from api.organisations import service
from api.organisations.schemas import StatementPatch
from matcher.text import content_hash
from models import (
    Call,
    Consortium,
    ConsortiumMember,
    Embedding,
    Organisation,
)
from models.enums import AccountRole
from tests.conftest import bearer
from tests.factories import make_organisation

ORGS = "/api/v1/organisations"
STATEMENTS = "/api/v1/statements"
SEARCH = "/api/v1/search/organisations"
SECRET = "Zorglubisation"  # a word no other text holds: it must never leak


def member_of(*organisation_ids: int) -> Principal:
    return Principal(
        account_id=7, role=AccountRole.member, organisation_ids=frozenset(organisation_ids)
    )


COORDINATOR = Principal(account_id=8, role=AccountRole.coordinator, name="coordination")

SetViewer = Callable[[Principal], None]


@pytest.fixture
def as_viewer(app: FastAPI) -> SetViewer:
    """Make the app's next requests act for a principal."""

    def set_viewer(principal: Principal) -> None:
        app.dependency_overrides[get_viewer] = lambda: principal

    return set_viewer


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """A problem+json answer with this status whose French detail says each fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], (fragment, body["detail"])
    return body


def field_locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["errors"]]


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
