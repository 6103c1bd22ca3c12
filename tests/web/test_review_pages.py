"""The coordinator's review pages through TestClient: the queue with coverage tables,
decisions with reason and comment, a stale version, members and lead with eligibility,
outcome; permissions (a member sees neither the queue nor another's consortium)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.consortia.composition import store_consortium
from api.kit.settings import Settings
from models import Call, Consortium, ConsortiumReview, Organisation
from models.enums import AccountRole, ConsortiumStatus
from tests.api.test_call_fit import make_call
from tests.factories import make_organisation
from tests.web.pages import csrf_of, make_person, post_form, sign_in


@pytest.fixture
def landlord(session: Session) -> Organisation:
    return make_organisation(session, name="Habitat des Calanques", territories=["commune:13001"])


@pytest.fixture
def gardeners(session: Session) -> Organisation:
    return make_organisation(
        session, name="Jardins du Midi", kind="association", territories=["departement:13"]
    )


@pytest.fixture
def call(session: Session) -> Call:
    return make_call(
        session,
        title="Nature en pied d'immeuble",
        requirements=("Mettre le foncier à disposition", "Animer le jardin avec les habitants"),
    )


@pytest.fixture
def consortium(
    session: Session, call: Call, landlord: Organisation, gardeners: Organisation
) -> Consortium:
    return store_consortium(session, call, [landlord.id, gardeners.id], landlord.id, None)


def signed_in(
    app: FastAPI, session: Session, settings: Settings, email: str, **kwargs: object
) -> TestClient:
    person = make_person(session, email, **kwargs)  # type: ignore[arg-type]
    client = TestClient(app, raise_server_exceptions=False)
    sign_in(client, session, settings, person)
    return client


@pytest.fixture
def coordinator(app: FastAPI, session: Session, settings: Settings) -> Iterator[TestClient]:
    with signed_in(
        app, session, settings, "coordination@arhlm.fr", role=AccountRole.coordinator
    ) as client:
        yield client


@pytest.fixture
def member(
    app: FastAPI, session: Session, settings: Settings, landlord: Organisation
) -> Iterator[TestClient]:
    with signed_in(
        app, session, settings, "membre@calanques.fr", organisation_ids=[landlord.id]
    ) as client:
        yield client


def text(response: object) -> str:
    return unescape(response.text)  # type: ignore[attr-defined]


def send(client: TestClient, consortium: Consortium, action: str, data: dict[str, str]) -> object:
    page = f"/espace/consortiums/{consortium.id}"
    return post_form(client, page, f"{page}/{action}", data)


class TestQueue:
    def test_the_queue_shows_each_consortium_with_its_coverage_table(
        self, coordinator: TestClient, consortium: Consortium
    ) -> None:
        page = coordinator.get("/espace/consortiums")
        assert page.status_code == 200, page.text
        body = text(page)
        assert f"Consortium n° {consortium.id}" in body
        assert "Couverture des exigences par les membres" in body
        assert "Animer le jardin avec les habitants" in body
        assert "Jardins du Midi" in body

    def test_approving_from_the_queue_moves_the_consortium(
        self, coordinator: TestClient, session: Session, consortium: Consortium
    ) -> None:
        answer = post_form(
            coordinator,
            "/espace/consortiums",
            f"/espace/consortiums/{consortium.id}/revue",
            {"version": str(consortium.version), "decision": "approve", "retour": "a-revoir"},
        )
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        session.refresh(consortium)
        assert consortium.status == ConsortiumStatus.approved
        assert "Aucun consortium n'attend de revue" in text(coordinator.get("/espace/consortiums"))

    def test_a_member_cannot_see_the_queue(
        self, member: TestClient, consortium: Consortium
    ) -> None:
        page = member.get("/espace/consortiums")
        assert page.status_code == 403
        assert "réservé à la coordination" in text(page)

    def test_a_member_sees_its_own_consortium_read_only_but_not_anothers(
        self,
        member: TestClient,
        session: Session,
        call: Call,
        gardeners: Organisation,
        consortium: Consortium,
    ) -> None:
        own = member.get(f"/espace/consortiums/{consortium.id}")
        assert own.status_code == 200
        assert "Enregistrer la décision" not in own.text
        other_landlord = make_organisation(
            session, name="Autre bailleur", territories=["commune:13001"]
        )
        theirs = store_consortium(
            session, call, [other_landlord.id, gardeners.id], other_landlord.id, None
        )
        page = member.get(f"/espace/consortiums/{theirs.id}")
        assert page.status_code == 404
        assert "introuvable" in text(page)
        answer = member.post(
            f"/espace/consortiums/{consortium.id}/revue",
            data={"csrftoken": csrf_of(own.text), "version": "1", "decision": "approve"},
            follow_redirects=False,
        )
        assert answer.status_code == 403


class TestDecisions:
    def test_a_rejection_needs_a_reason_said_next_to_the_field(
        self, coordinator: TestClient, consortium: Consortium
    ) -> None:
        answer = send(coordinator, consortium, "revue", {"version": "1", "decision": "reject"})
        assert answer.status_code == 422  # type: ignore[attr-defined]
        assert "Choisissez un motif" in text(answer)
        assert 'id="reason_code-erreur"' in text(answer)
        other = send(
            coordinator,
            consortium,
            "revue",
            {"version": "1", "decision": "request_changes", "reason_code": "other"},
        )
        assert 'id="comment-erreur"' in text(other)

    def test_a_decision_with_reason_and_comment_is_recorded(
        self, coordinator: TestClient, session: Session, consortium: Consortium
    ) -> None:
        answer = send(
            coordinator,
            consortium,
            "revue",
            {
                "version": "1",
                "decision": "request_changes",
                "reason_code": "coverage_gap",
                "comment": "Il manque un partenaire pour le suivi.",
            },
        )
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        review = session.scalar(
            select(ConsortiumReview).where(ConsortiumReview.consortium_id == consortium.id)
        )
        assert review is not None
        assert review.comment == "Il manque un partenaire pour le suivi."
        page = text(coordinator.get(f"/espace/consortiums/{consortium.id}"))
        assert "Des exigences de l'appel restent mal couvertes" in page

    def test_a_stale_version_is_a_french_message_not_a_500(
        self, coordinator: TestClient, session: Session, consortium: Consortium
    ) -> None:
        answer = send(coordinator, consortium, "revue", {"version": "7", "decision": "approve"})
        assert answer.status_code == 409  # type: ignore[attr-defined]
        assert "a changé depuis votre lecture" in text(answer)
        session.refresh(consortium)
        assert consortium.status == ConsortiumStatus.proposed

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"version": "abc", "decision": "approve"},
            {"version": "1", "decision": "peut-être"},
            {"version": "1", "decision": "reject", "reason_code": "inconnu"},
            {"version": "1", "decision": "approve", "comment": "x" * 3000},
        ],
    )
    def test_odd_review_forms_are_french_errors(
        self, coordinator: TestClient, consortium: Consortium, data: dict[str, str]
    ) -> None:
        answer = send(coordinator, consortium, "revue", data)
        assert answer.status_code == 422  # type: ignore[attr-defined]
        assert 'class="erreur' in answer.text  # type: ignore[attr-defined]


class TestMembersAndOutcome:
    def test_an_ineligible_organisation_is_refused_with_its_reason_next_to_the_field(
        self, coordinator: TestClient, session: Session, consortium: Consortium
    ) -> None:
        make_organisation(session, name="Bailleur du Nord", territories=["departement:59"])
        answer = send(
            coordinator,
            consortium,
            "membres",
            {
                "version": "1",
                "membre": [str(m.organisation_id) for m in consortium.members],  # type: ignore[dict-item]
                "ajout": "Bailleur du Nord",
            },
        )
        assert answer.status_code == 409, answer.text  # type: ignore[attr-defined]
        body = text(answer)
        assert 'id="ajout-erreur"' in body
        assert "périmètre" in body

    def test_an_unknown_name_and_a_lone_member_are_said_in_french(
        self, coordinator: TestClient, landlord: Organisation, consortium: Consortium
    ) -> None:
        answer = send(
            coordinator,
            consortium,
            "membres",
            {"version": "1", "membre": str(landlord.id), "ajout": "Personne de ce nom"},
        )
        assert answer.status_code == 422  # type: ignore[attr-defined]
        assert "Aucune organisation ne s'appelle" in text(answer)
        alone = send(
            coordinator, consortium, "membres", {"version": "1", "membre": str(landlord.id)}
        )
        assert "cochez-en au moins 2" in text(alone)

    def test_the_members_change_and_the_lead_must_be_a_landlord(
        self,
        coordinator: TestClient,
        session: Session,
        consortium: Consortium,
        gardeners: Organisation,
    ) -> None:
        ids = [str(m.organisation_id) for m in consortium.members]
        refused = send(
            coordinator,
            consortium,
            "membres",
            {"version": "1", "membre": ids, "chef": str(gardeners.id)},  # type: ignore[dict-item]
        )
        assert refused.status_code == 409  # type: ignore[attr-defined]
        assert 'id="chef-erreur"' in text(refused)
        extra = make_organisation(
            session, name="Régie de quartier", kind="association", territories=["commune:13001"]
        )
        answer = send(
            coordinator,
            consortium,
            "membres",
            {"version": "1", "membre": ids, "ajout": str(extra.id)},  # type: ignore[dict-item]
        )
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        session.refresh(consortium)
        assert len(consortium.members) == 3

    def test_the_outcome_is_recorded_up_to_the_amount_won(
        self, coordinator: TestClient, session: Session, consortium: Consortium
    ) -> None:
        send(coordinator, consortium, "revue", {"version": "1", "decision": "approve"})
        send(coordinator, consortium, "statut", {"version": "2", "status": "contacted"})
        send(
            coordinator,
            consortium,
            "resultat",
            {"version": "3", "status": "submitted", "on": "2026-03-01"},
        )
        early = send(
            coordinator,
            consortium,
            "resultat",
            {"version": "4", "status": "won", "on": "2026-02-01", "amount": "45 000,50"},
        )
        assert early.status_code == 409  # type: ignore[attr-defined]
        assert 'id="on-erreur"' in text(early)
        bad = send(
            coordinator,
            consortium,
            "resultat",
            {"version": "4", "status": "won", "on": "2026-02-31", "amount": "beaucoup"},
        )
        assert bad.status_code == 422  # type: ignore[attr-defined]
        assert 'id="amount-erreur"' in text(bad) or 'id="on-erreur"' in text(bad)
        won = send(
            coordinator,
            consortium,
            "resultat",
            {"version": "4", "status": "won", "on": "2026-06-01", "amount": "45 000,50"},
        )
        assert won.status_code == 303, won.text  # type: ignore[attr-defined]
        session.refresh(consortium)
        assert consortium.status == ConsortiumStatus.won
        assert str(consortium.outcome_amount) == "45000.50"


class TestImpact:
    def test_the_impact_page_counts_an_approved_consortium_in_figures_charts_and_tables(
        self, coordinator: TestClient, consortium: Consortium
    ) -> None:
        before = coordinator.get("/espace/impact")
        assert before.status_code == 200, before.text
        assert "<strong>0</strong> consortiums formés" in text(before)
        send(coordinator, consortium, "revue", {"version": "1", "decision": "approve"})
        body = text(coordinator.get("/espace/impact"))
        assert "<strong>1</strong> consortiums formés" in body
        assert '<svg class="graphique" role="img"' in body
        assert '<title id="graphique-departement-titre">Consortiums par département</title>' in body
        assert "Bouches-du-Rhône (13)" in body
        assert "Consortiums par trimestre" in body

    @pytest.mark.parametrize(
        ("query", "field"),
        [("du=hier", "du"), ("au=2026-13-45", "au"), ("du=2026-05-01&au=2026-01-01", "au")],
    )
    def test_an_unreadable_period_is_said_next_to_the_field(
        self, coordinator: TestClient, query: str, field: str
    ) -> None:
        page = coordinator.get(f"/espace/impact?{query}")
        assert page.status_code == 422
        assert f'id="{field}-erreur"' in page.text

    def test_a_member_cannot_see_the_impact_page(self, member: TestClient) -> None:
        assert member.get("/espace/impact").status_code == 403


class TestQueuePages:
    def test_the_queue_pages_twenty_at_a_time_with_a_link_to_the_next(
        self,
        coordinator: TestClient,
        session: Session,
        call: Call,
        landlord: Organisation,
        gardeners: Organisation,
    ) -> None:
        made = [
            store_consortium(session, call, [landlord.id, gardeners.id], landlord.id, None)
            for _ in range(23)
        ]
        first = coordinator.get("/espace/consortiums")
        assert first.status_code == 200
        body = text(first)
        assert "À revoir (23)" in body
        assert body.count('<article class="carte"') == 20
        assert f"Consortium n° {made[-1].id}<" in body  # newest first
        link = re.search(r'href="\?(onglet=a-revoir&suite=[^"]+)" rel="next"', body)
        assert link, body
        second = text(coordinator.get(f"/espace/consortiums?{link.group(1)}"))
        assert second.count('<article class="carte"') == 3
        assert f"Consortium n° {made[0].id}<" in second
        assert 'rel="next"' not in second
        assert "Première page" in second

    @pytest.mark.parametrize(
        "suite", ["nimportequoi", "\x00", "x" * 1999, "eyJzIjoiIiwiayI6WzFdfQ"]
    )
    def test_an_odd_or_foreign_cursor_shows_the_first_page_with_a_word(
        self, coordinator: TestClient, consortium: Consortium, suite: str
    ) -> None:
        page = coordinator.get("/espace/consortiums", params={"suite": suite})
        assert page.status_code == 200
        assert "voici la première page" in text(page)
        assert f"Consortium n° {consortium.id}<" in text(page)
