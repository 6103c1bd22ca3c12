"""The coordinator's review of consortia: visibility, changes of members and lead,
reviews and the status machine, outcomes, and optimistic locking."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.consortia.composition import store_consortium
from api.consortia.fit import get_call_fit
from models import Call, Consortium
from models.enums import AccountRole
from tests.conftest import bearer
from tests.consortia import FakeFit, make_call
from tests.factories import make_organisation

URL = "/api/v1/consortia"


@dataclass
class World:
    call: Call
    lead: int  # landlord, Marseille
    landlord: int  # another landlord, Marseille
    gardens: int  # association covering the gardens requirement
    tenants: int  # association covering the tenants requirement
    paris: int  # outside the call's perimeter
    fit: FakeFit
    consortium: Consortium
    other: Consortium  # a consortium the member's organisation is not in


@pytest.fixture
def world(session: Session, app: FastAPI) -> World:
    lead = make_organisation(session, name="Habitat Marseille Provence").id
    landlord = make_organisation(session, name="Logirem Test").id
    gardens = make_organisation(session, name="Jardiniers du 13", kind="association").id
    tenants = make_organisation(session, name="Locataires unis", kind="association").id
    paris = make_organisation(
        session, name="Paris Jardins", kind="association", territories=("commune:75056",)
    ).id
    fit = FakeFit(
        table={lead: [0.05, 0.3], landlord: [0.0, 0.2], gardens: [0.9, 0.1], tenants: [0.1, 0.8]}
    )
    app.dependency_overrides[get_call_fit] = lambda: fit
    call = make_call(session)
    consortium = store_consortium(session, call, [lead, gardens], lead, None, fit=fit)
    other = store_consortium(session, call, [landlord, tenants], landlord, None, fit=fit)
    return World(call, lead, landlord, gardens, tenants, paris, fit, consortium, other)


@pytest.fixture
def member_client(app: FastAPI, session: Session, world: World) -> Iterator[TestClient]:
    headers = {"Authorization": bearer(session, AccountRole.member, [world.gardens])}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        yield c


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


class TestReading:
    def test_the_coordinator_sees_every_consortium_with_its_coverage(
        self, client: TestClient, world: World
    ) -> None:
        page = ok(client.get(URL, params={"call_id": world.call.id}))
        assert page["total"] == 2
        body = ok(client.get(f"{URL}/{world.consortium.id}"))
        assert body["status"] == "proposed"
        assert body["version"] == 1
        assert body["lead"]["organisation_id"] == world.lead
        assert {m["organisation_id"] for m in body["members"]} == {world.lead, world.gardens}
        assert body["allowed_next"] == ["approved", "rejected", "changes_requested"]
        gardens, tenants = body["coverage_table"]
        assert gardens["organisation_id"] == world.gardens
        assert gardens["similarity"] == pytest.approx(0.9)
        assert tenants["organisation_id"] == world.lead
        assert body["coverage"] == pytest.approx((0.9 + 0.3) / 2)
        assert body["uncovered"] == []

    def test_a_member_sees_only_the_consortia_of_its_organisations(
        self, member_client: TestClient, world: World
    ) -> None:
        page = ok(member_client.get(URL))
        assert [c["id"] for c in page["items"]] == [world.consortium.id]
        ok(member_client.get(f"{URL}/{world.consortium.id}"))
        hidden = member_client.get(f"{URL}/{world.other.id}")
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
        assert "introuvable" in hidden.json()["detail"]

    def test_a_member_may_not_review(self, member_client: TestClient, world: World) -> None:
        response = member_client.post(
            f"{URL}/{world.consortium.id}/reviews", json={"decision": "approve", "version": 1}
        )
        assert response.status_code == 403

    def test_the_status_filter(self, client: TestClient, world: World) -> None:
        ok(
            client.post(
                f"{URL}/{world.other.id}/reviews",
                json={"decision": "reject", "reason_code": "duplicate", "version": 1},
            ),
            201,
        )
        page = ok(client.get(URL, params={"status": "rejected"}))
        assert [c["id"] for c in page["items"]] == [world.other.id]
        both = ok(client.get(URL, params=[("status", "rejected"), ("status", "proposed")]))
        assert both["total"] == 2
        assert client.get(URL, params={"status": "perdu"}).status_code == 422

    def test_the_reasons_are_listed_in_french(self, client: TestClient) -> None:
        reasons = ok(client.get(f"{URL}/reasons"))
        assert {"code": "duplicate", "label": "Doublon d'un autre consortium"} in reasons


class TestChanges:
    def test_adding_a_member_recomputes_the_coverage(
        self, client: TestClient, world: World
    ) -> None:
        body = ok(
            client.patch(
                f"{URL}/{world.consortium.id}",
                json={"version": 1, "member_ids": [world.lead, world.gardens, world.tenants]},
            )
        )
        assert body["version"] == 2
        table = {c["requirement_id"]: c for c in body["coverage_table"]}
        second = world.call.requirements[1].id
        assert table[second]["organisation_id"] == world.tenants
        assert body["coverage"] == pytest.approx((0.9 + 0.8) / 2)
        tenants = next(m for m in body["members"] if m["organisation_id"] == world.tenants)
        assert tenants["covers"] == [second]

    def test_changing_the_lead(self, client: TestClient, world: World) -> None:
        body = ok(
            client.patch(
                f"{URL}/{world.consortium.id}", json={"version": 1, "lead_id": world.landlord}
            )
        )
        assert body["lead"]["organisation_id"] == world.landlord
        assert {m["organisation_id"] for m in body["members"]} == {
            world.lead,
            world.gardens,
            world.landlord,
        }

    def test_an_ineligible_member_is_refused_with_the_reason(
        self, client: TestClient, world: World
    ) -> None:
        response = client.patch(
            f"{URL}/{world.consortium.id}",
            json={"version": 1, "member_ids": [world.lead, world.paris]},
        )
        assert response.status_code == 409, response.text
        problem = response.json()
        assert "Paris Jardins" in problem["detail"]
        assert "périmètre" in problem["detail"]
        assert problem["errors"][0]["loc"] == ["body", "member_ids", 1]
        assert ok(client.get(f"{URL}/{world.consortium.id}"))["version"] == 1

    def test_a_lead_that_is_not_a_landlord_is_refused(
        self, client: TestClient, world: World
    ) -> None:
        response = client.patch(
            f"{URL}/{world.consortium.id}", json={"version": 1, "lead_id": world.gardens}
        )
        assert response.status_code == 409
        assert "bailleur social" in response.json()["detail"]

    def test_a_stale_version_changes_nothing(self, client: TestClient, world: World) -> None:
        url = f"{URL}/{world.consortium.id}"
        ok(client.patch(url, json={"version": 1, "lead_id": world.landlord}))
        stale = client.patch(url, json={"version": 1, "member_ids": [world.lead, world.tenants]})
        assert stale.status_code == 409
        assert "version actuelle : 2" in stale.json()["detail"]
        body = ok(client.get(url))
        assert body["version"] == 2
        assert world.gardens in {m["organisation_id"] for m in body["members"]}

    @pytest.mark.parametrize(
        "payload",
        [
            {"member_ids": [1, 2]},  # no version
            {"version": "1", "lead_id": 1},  # no coercion
            {"version": 1, "member_ids": [1]},  # too few
            {"version": 1, "member_ids": [1, 1]},  # repeated
            {"version": 1, "members": [1, 2]},  # unknown field
            {"version": 0, "lead_id": 1},
        ],
    )
    def test_malformed_changes_are_422_in_french(
        self, client: TestClient, world: World, payload: dict[str, Any]
    ) -> None:
        response = client.patch(f"{URL}/{world.consortium.id}", json=payload)
        assert response.status_code == 422, response.text
        assert response.json()["title"] == "Données invalides"

    def test_unknown_members_and_consortia_are_404(self, client: TestClient, world: World) -> None:
        response = client.patch(
            f"{URL}/{world.consortium.id}", json={"version": 1, "member_ids": [world.lead, 999999]}
        )
        assert response.status_code == 404
        assert client.get(f"{URL}/999999").status_code == 404
        assert client.get(f"{URL}/99999999999").status_code in (404, 422)


class TestReviews:
    def test_approving_then_an_illegal_move_names_the_allowed_ones(
        self, client: TestClient, world: World
    ) -> None:
        url = f"{URL}/{world.consortium.id}"
        body = ok(
            client.post(
                f"{url}/reviews",
                json={"decision": "approve", "reason_code": "complete_coverage", "version": 1},
            ),
            201,
        )
        assert body["status"] == "approved"
        assert body["allowed_next"] == ["contacted"]
        assert body["decided_at"] is not None
        assert body["reviews"][0]["reason_label"].startswith("Les exigences")
        again = client.post(
            f"{url}/reviews",
            json={
                "decision": "reject",
                "reason_code": "other",
                "version": 2,
                "comment": "Finalement non",
            },
        )
        assert again.status_code == 409
        assert "contacted" in again.json()["detail"]
        frozen = client.patch(url, json={"version": 2, "lead_id": world.landlord})
        assert frozen.status_code == 409

    def test_a_rejection_needs_a_reason(self, client: TestClient, world: World) -> None:
        url = f"{URL}/{world.consortium.id}/reviews"
        missing = client.post(url, json={"decision": "reject", "version": 1})
        assert missing.status_code == 422
        assert "motif" in missing.json()["detail"].lower()
        other = client.post(url, json={"decision": "reject", "reason_code": "other", "version": 1})
        assert other.status_code == 422
        unknown = client.post(url, json={"decision": "reject", "reason_code": "x", "version": 1})
        assert unknown.status_code == 422

    def test_requested_changes_go_back_to_review_after_a_change(
        self, client: TestClient, world: World
    ) -> None:
        url = f"{URL}/{world.consortium.id}"
        body = ok(
            client.post(
                f"{url}/reviews",
                json={
                    "decision": "request_changes",
                    "reason_code": "coverage_gap",
                    "comment": "Il manque un partenaire pour mobiliser les locataires.",
                    "version": 1,
                },
            ),
            201,
        )
        assert body["status"] == "changes_requested"
        assert body["allowed_next"] == ["proposed"]
        body = ok(
            client.patch(
                url,
                json={"version": 2, "member_ids": [world.lead, world.gardens, world.tenants]},
            )
        )
        assert body["status"] == "proposed"
        assert body["version"] == 3

    def test_members_do_not_read_the_coordinators_comments(
        self, client: TestClient, member_client: TestClient, world: World
    ) -> None:
        url = f"{URL}/{world.consortium.id}"
        ok(
            client.post(
                f"{url}/reviews",
                json={"decision": "approve", "comment": "Note interne", "version": 1},
            ),
            201,
        )
        assert ok(client.get(url))["reviews"][0]["comment"] == "Note interne"
        assert ok(member_client.get(url))["reviews"][0]["comment"] is None

    def test_the_audit_records_the_decision(self, client: TestClient, world: World) -> None:
        ok(
            client.post(
                f"{URL}/{world.consortium.id}/reviews", json={"decision": "approve", "version": 1}
            ),
            201,
        )
        events = ok(client.get("/api/v1/audit", params={"object_type": "review"}))
        assert events["total"] == 1
        assert events["items"][0]["details"]["changes"]["decision"] == "approve"


class TestOutcome:
    def walk(self, client: TestClient, consortium_id: int) -> str:
        url = f"{URL}/{consortium_id}"
        ok(client.post(f"{url}/reviews", json={"decision": "approve", "version": 1}), 201)
        ok(client.post(f"{url}/status", json={"status": "contacted", "version": 2}))
        ok(
            client.post(
                f"{url}/outcome", json={"status": "submitted", "on": "2026-10-01", "version": 3}
            )
        )
        return url

    def test_a_won_consortium_with_its_amount(self, client: TestClient, world: World) -> None:
        url = self.walk(client, world.consortium.id)
        body = ok(
            client.post(
                f"{url}/outcome",
                json={"status": "won", "on": "2026-12-15", "amount": "12500.50", "version": 4},
            )
        )
        assert body["status"] == "won"
        assert body["amount"] == "12500.50"
        assert body["submitted_on"] == "2026-10-01"
        assert body["outcome_on"] == "2026-12-15"
        assert body["allowed_next"] == []
        final = client.post(
            f"{url}/outcome", json={"status": "lost", "on": "2026-12-16", "version": 5}
        )
        assert final.status_code == 409
        assert "statut final" in final.json()["detail"]

    @pytest.mark.parametrize(
        "payload",
        [
            {"status": "won", "on": "2026-12-15", "amount": "12.345", "version": 4},
            {"status": "won", "on": "2026-12-15", "amount": -1, "version": 4},
            {"status": "won", "on": "2026-12-15", "amount": "NaN", "version": 4},
            {"status": "won", "on": "2026-12-15", "amount": True, "version": 4},
            {"status": "won", "on": "15/12/2026", "version": 4},
            {"status": "lost", "on": "2026-12-15", "amount": 10, "version": 4},
            {"status": "approved", "on": "2026-12-15", "version": 4},
        ],
    )
    def test_bad_outcomes_are_422(
        self, client: TestClient, world: World, payload: dict[str, Any]
    ) -> None:
        url = self.walk(client, world.consortium.id)
        response = client.post(f"{url}/outcome", json=payload)
        assert response.status_code == 422, response.text
        assert ok(client.get(url))["status"] == "submitted"

    def test_a_decision_before_the_submission_is_a_conflict(
        self, client: TestClient, world: World
    ) -> None:
        url = self.walk(client, world.consortium.id)
        response = client.post(
            f"{url}/outcome", json={"status": "lost", "on": "2026-09-15", "version": 4}
        )
        assert response.status_code == 409, response.text  # well formed; the dates conflict
        assert "précéder le dépôt" in response.json()["detail"]

    def test_an_outcome_before_the_submission_is_an_illegal_move(
        self, client: TestClient, world: World
    ) -> None:
        response = client.post(
            f"{URL}/{world.consortium.id}/outcome",
            json={"status": "won", "on": "2026-12-15", "amount": 10, "version": 1},
        )
        assert response.status_code == 409
        detail = response.json()["detail"]
        assert all(s in detail for s in ("approved", "rejected", "changes_requested"))

    def test_a_stale_outcome_changes_nothing(self, client: TestClient, world: World) -> None:
        url = self.walk(client, world.consortium.id)
        response = client.post(
            f"{url}/outcome", json={"status": "lost", "on": "2026-12-15", "version": 3}
        )
        assert response.status_code == 409
        assert ok(client.get(url))["status"] == "submitted"
