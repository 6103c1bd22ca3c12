"""Who fits a call, which calls fit an organisation, interest with mutual reveal, and
consortium proposals, through the HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.territories.service import resolve_refs
from matcher.text import content_hash
from models import Call, CallRequirement, Consortium, Organisation
from models.enums import AccountRole, ConsortiumStatus
from tests.api.test_search import OnDemoNetwork, demo_connection, org_id  # noqa: F401
from tests.conftest import bearer
from tests.factories import make_organisation


def make_call(
    session: Session,
    *,
    title: str = "Jardins partagés en pied d'immeuble",
    perimeter: Sequence[str] = ("departement:13",),
    kinds: Sequence[str] = ("landlord", "association"),
    legal_forms: Sequence[str] = (),
    requirements: Sequence[str] = ("La création et l'animation de jardins partagés",),
    deadline: date | None = None,
) -> Call:
    call = Call(
        title=title,
        eligible_kinds=list(kinds),
        eligible_legal_forms=list(legal_forms),
        deadline=deadline,
    )
    call.perimeter = resolve_refs(session, list(perimeter), ["perimeter"])
    call.requirements = [
        CallRequirement(position=i, text=t, content_hash=content_hash(t))
        for i, t in enumerate(requirements)
    ]
    session.add(call)
    session.flush()
    return call


def member_client(client: TestClient, session: Session, *organisation_ids: int) -> TestClient:
    return TestClient(
        client.app,
        raise_server_exceptions=False,
        headers={"Authorization": bearer(session, AccountRole.member, list(organisation_ids))},
    )


class TestInterests:
    def test_mutual_reveal_on_overlapping_territory(
        self, client: TestClient, session: Session
    ) -> None:
        call = make_call(session)
        aix = make_organisation(session, name="Habitat d'Aix", territories=["commune:13001"])
        metro = make_organisation(
            session,
            name="Jardins de la Métropole",
            kind="association",
            territories=["epci:200054807"],
        )
        arles = make_organisation(
            session, name="Jardins d'Arles", kind="association", territories=["commune:13004"]
        )
        as_aix = member_client(client, session, aix.id)
        as_metro = member_client(client, session, metro.id)
        as_arles = member_client(client, session, arles.id)
        url = f"/api/v1/calls/{call.id}/interests"

        marked = as_aix.post(url, json={"organisation_id": aix.id})
        assert marked.status_code == 201, marked.text
        assert marked.json()["organisation"]["id"] == aix.id
        assert as_aix.post(url, json={"organisation_id": aix.id}).status_code == 200

        # Not marked yet: Métropole sees nobody, and says so.
        before = as_metro.get(url)
        assert before.status_code == 200, before.text
        assert before.json()["interested"] is False
        assert before.json()["items"] == []
        assert as_metro.post(url, json={"organisation_id": metro.id}).status_code == 201
        assert [i["organisation"]["id"] for i in as_metro.get(url).json()["items"]] == [aix.id]
        assert [i["organisation"]["id"] for i in as_aix.get(url).json()["items"]] == [metro.id]

        # Arles lies in another EPCI: it overlaps neither Aix nor the Métropole.
        assert as_arles.post(url, json={"organisation_id": arles.id}).status_code == 201
        assert as_arles.get(url).json()["items"] == []
        assert [i["organisation"]["id"] for i in as_aix.get(url).json()["items"]] == [metro.id]

        # The coordinator sees all.
        everyone = client.get(url).json()
        assert everyone["organisation_id"] is None
        assert {i["organisation"]["id"] for i in everyone["items"]} == {aix.id, metro.id, arles.id}

        # Withdrawn: hidden again, and hides the others.
        assert as_metro.delete(url, params={"organisation_id": metro.id}).status_code == 204
        assert as_aix.get(url).json()["items"] == []
        assert as_metro.get(url).json() | {"items": None} == {
            "call_id": call.id,
            "organisation_id": metro.id,
            "interested": False,
            "items": None,
        }
        gone = as_metro.delete(url, params={"organisation_id": metro.id})
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"

    def test_acting_for_another_organisation_is_forbidden(
        self, client: TestClient, session: Session
    ) -> None:
        call = make_call(session)
        mine = make_organisation(session, name="Mon bailleur")
        other = make_organisation(session, name="Un autre bailleur")
        as_me = member_client(client, session, mine.id)
        url = f"/api/v1/calls/{call.id}/interests"
        for response in (
            as_me.post(url, json={"organisation_id": other.id}),
            as_me.delete(url, params={"organisation_id": other.id}),
            as_me.get(url, params={"organisation_id": other.id}),
        ):
            assert response.status_code == 403, response.text
            assert "n'agissez pas" in response.json()["detail"]

    def test_an_ineligible_organisation_cannot_mark_and_is_told_why(
        self, client: TestClient, session: Session
    ) -> None:
        call = make_call(session, kinds=["landlord"], legal_forms=["OPH"])
        company = make_organisation(session, name="Bureau d'études", kind="company")
        avignon = make_organisation(
            session, name="Habitat d'Avignon", territories=["commune:84007"]
        )
        url = f"/api/v1/calls/{call.id}/interests"
        refused = client.post(url, json={"organisation_id": company.id})
        assert refused.status_code == 409
        assert "bailleurs sociaux de forme juridique OPH" not in refused.json()["detail"]
        assert "réservé" in refused.json()["detail"]
        far = client.post(url, json={"organisation_id": avignon.id})
        assert far.status_code == 409
        assert "périmètre" in far.json()["detail"]
        assert "Bouches-du-Rhône" in far.json()["detail"]

    def test_unknown_call_organisation_and_malformed_body(
        self, client: TestClient, session: Session
    ) -> None:
        org = make_organisation(session)
        call = make_call(session)
        assert (
            client.post(
                "/api/v1/calls/999999/interests", json={"organisation_id": org.id}
            ).status_code
            == 404
        )
        assert (
            client.post(
                f"/api/v1/calls/{call.id}/interests", json={"organisation_id": 999999}
            ).status_code
            == 404
        )
        for body in ({}, {"organisation_id": "1"}, {"organisation_id": org.id, "x": 1}, []):
            assert client.post(f"/api/v1/calls/{call.id}/interests", json=body).status_code == 422

    def test_a_member_of_several_organisations_names_one(
        self, client: TestClient, session: Session
    ) -> None:
        call = make_call(session)
        a, b = make_organisation(session, name="A"), make_organisation(session, name="B")
        both = member_client(client, session, a.id, b.id)
        response = both.get(f"/api/v1/calls/{call.id}/interests")
        assert response.status_code == 422
        assert "organisation_id" in response.json()["detail"]


class TestProposalErrors:
    def test_unknown_call_is_404_and_members_may_not_propose(
        self, client: TestClient, session: Session
    ) -> None:
        assert client.post("/api/v1/calls/999999/consortia", json={}).status_code == 404
        org = make_organisation(session)
        call = make_call(session)
        refused = member_client(client, session, org.id).post(
            f"/api/v1/calls/{call.id}/consortia", json={}
        )
        assert refused.status_code == 403

    @pytest.mark.parametrize(
        "body",
        [{"min_size": 0}, {"min_size": "2"}, {"alternatives": 0}, {"include": "x"}, {"other": 1}],
    )
    def test_malformed_options_are_422(
        self, client: TestClient, session: Session, body: dict[str, object]
    ) -> None:
        call = make_call(session)
        assert client.post(f"/api/v1/calls/{call.id}/consortia", json=body).status_code == 422


@pytest.mark.slow
class TestOnTheDemo(OnDemoNetwork):
    GARDENS_CALL = "demo-aap-021"

    def call_of(self, session: Session, external_id: str) -> Call:
        call = session.scalar(select(Call).where(Call.external_id == external_id))
        assert call is not None
        return call

    def test_shared_gardens_in_qpv_13_gets_alternative_consortia_led_by_landlords_in_13(
        self, client: TestClient, session: Session
    ) -> None:
        """The issue's acceptance line."""
        call = self.call_of(session, self.GARDENS_CALL)
        gardens = next(r for r in call.requirements if "jardins partagés" in r.text)
        response = client.post(f"/api/v1/calls/{call.id}/consortia", json={})
        assert response.status_code == 201, response.text
        consortia = response.json()
        assert len(consortia) >= 2
        assert len(
            {frozenset(m["organisation"]["id"] for m in c["members"]) for c in consortia}
        ) == len(consortia)
        leads = set()
        for c in consortia:
            lead = next(m for m in c["members"] if m["role"] == "lead")
            assert lead["organisation"]["id"] == c["lead_id"]
            assert lead["organisation"]["kind"] == "landlord"
            leads.add(c["lead_id"])
            for m in c["members"]:
                assert works_in_13(session, m["organisation"]["id"]), m["organisation"]["name"]
            row = next(r for r in c["coverage_table"] if r["requirement_id"] == gardens.id)
            assert row["covered"]
            assert row["organisation_id"] is not None
            assert "jardin" in row["statement"]["text"].lower()
            assert gardens.id in next(
                m["covers"]
                for m in c["members"]
                if m["organisation"]["id"] == row["organisation_id"]
            )
            assert c["status"] == "proposed"
            assert c["version"] == 1
        assert len(leads) == len(consortia)  # each carried by another landlord
        stored = session.scalars(select(Consortium).where(Consortium.call_id == call.id)).all()
        assert len(stored) == len(consortia)
        assert all(s.status == ConsortiumStatus.proposed for s in stored)
        assert all(s.scores["table"] for s in stored)

    def test_eligible_organisations_ranked_by_coverage(
        self, client: TestClient, session: Session
    ) -> None:
        call = self.call_of(session, self.GARDENS_CALL)
        response = client.get(f"/api/v1/calls/{call.id}/organisations", params={"limit": 5})
        assert response.status_code == 200, response.text
        page = response.json()
        assert [r["id"] for r in page["requirements"]] == [r.id for r in call.requirements]
        assert page["items"][0]["organisation"]["id"] == org_id(session, "terres-partagees")
        scores = [i["score"] for i in page["items"]]
        assert scores == sorted(scores, reverse=True)
        assert len(page["items"]) == 5
        everyone = client.get(
            f"/api/v1/calls/{call.id}/organisations", params={"limit": 100}
        ).json()["items"]
        assert len(everyone) == page["total"]
        for item in everyone:
            assert item["organisation"]["kind"] in ("landlord", "association")
            assert works_in_13(session, item["organisation"]["id"])
            assert len(item["coverage"]) == len(call.requirements)
        second = client.get(
            f"/api/v1/calls/{call.id}/organisations", params={"limit": 5, "offset": 5}
        ).json()["items"]
        assert [i["organisation"]["id"] for i in second] == [
            i["organisation"]["id"] for i in everyone[5:10]
        ]

    def test_hlm_legal_forms_choose_the_landlords(
        self, client: TestClient, session: Session
    ) -> None:
        """The Corsican renovation call is open to OPH, ESH and SEM landlords only."""
        call = self.call_of(session, "demo-aap-007")
        response = client.get(f"/api/v1/calls/{call.id}/organisations", params={"limit": 100})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert items
        for item in items:
            org = item["organisation"]
            assert org["kind"] == "landlord"
            assert org["legal_form"] in ("OPH", "ESH", "SEM")
            stored = session.get(Organisation, org["id"])
            assert stored is not None
            assert any(t.region_code == "94" or t.code == "94" for t in stored.territories)
        corsican = session.scalars(
            select(Organisation.id).where(
                Organisation.slug.in_(
                    ["gravona-habitat", "sem-marana-habitat", "habitat-du-valinco"]
                )
            )
        ).all()
        assert set(corsican) <= {i["organisation"]["id"] for i in items}

    def test_open_calls_for_a_landlord_with_days_left(
        self, client: TestClient, session: Session
    ) -> None:
        landlord = org_id(session, "arc-touloubre-habitat")
        response = client.get(f"/api/v1/organisations/{landlord}/calls")
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        by_call = {i["call"]["id"]: i for i in items}
        gardens = self.call_of(session, self.GARDENS_CALL)
        assert gardens.id in by_call
        assert by_call[gardens.id]["days_left"] in (49, 50)
        assert any(c["covered"] and c["statement"] for c in by_call[gardens.id]["coverage"])
        # Closed (deadline passed), Corsican, associations-only calls are not offered.
        for external_id in ("demo-aap-011", "demo-aap-007", "demo-aap-009"):
            assert self.call_of(session, external_id).id not in by_call
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True)
        today = date.today()
        assert all(
            i["call"]["deadline"] is None
            or date.fromisoformat(i["call"]["deadline"]) >= today - timedelta(days=1)
            for i in items
        )

    def test_the_review_recomputes_with_the_ranking_and_refuses_ineligible_members(
        self, client: TestClient, session: Session
    ) -> None:
        """PATCH /consortia/{id} (the review) reads eligibility and coverage from here."""
        call = self.call_of(session, self.GARDENS_CALL)
        proposed = client.post(f"/api/v1/calls/{call.id}/consortia", json={"alternatives": 1})
        assert proposed.status_code == 201, proposed.text
        first = proposed.json()[0]
        members = [m["organisation"]["id"] for m in first["members"]]
        far = org_id(session, "truelles-du-ventoux")
        refused = client.patch(
            f"/api/v1/consortia/{first['id']}",
            json={"version": first["version"], "member_ids": [*members[:2], far]},
        )
        assert refused.status_code == 409, refused.text
        assert "périmètre" in refused.json()["detail"]
        kept = client.patch(
            f"/api/v1/consortia/{first['id']}",
            json={"version": first["version"], "member_ids": members[:2]},
        )
        assert kept.status_code == 200, kept.text
        stored = session.get(Consortium, first["id"])
        assert stored is not None
        assert stored.coverage is not None
        assert 0 < stored.coverage <= first["coverage"]

    def test_imposing_an_ineligible_member_is_409_in_french(
        self, client: TestClient, session: Session
    ) -> None:
        call = self.call_of(session, self.GARDENS_CALL)
        far = org_id(session, "truelles-du-ventoux")
        response = client.post(f"/api/v1/calls/{call.id}/consortia", json={"include": [far]})
        assert response.status_code == 409, response.text
        assert "non éligibles" in response.json()["detail"]
        bad = client.post(f"/api/v1/calls/{call.id}/consortia", json={"min_size": 4, "max_size": 2})
        assert bad.status_code == 422
        assert "taille minimale" in bad.json()["detail"]
        assert session.scalars(select(Consortium).where(Consortium.call_id == call.id)).all() == []


def works_in_13(session: Session, organisation_id: int) -> bool:
    """One of its territories lies in, contains or overlaps the département 13."""
    org = session.get(Organisation, organisation_id)
    assert org is not None
    return any(
        t.departement_code == "13"
        or (t.level.value == "departement" and t.code == "13")
        or (t.level.value == "region" and t.code == "93")
        for t in org.territories
    )
