"""A member's pages through TestClient: profile, statements, partners, search; French
errors next to the fields, and no 500 on odd input."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching import engine as matching_engine
from api.matching.texts import reindex
from models import Dismissal, Organisation, Statement
from models.enums import AccountRole, StatementKind
from tests.factories import make_organisation
from tests.fakes import FakeEncoder
from tests.web.pages import csrf_of, make_person, post_form, sign_in


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model: what is tested is the pages' mechanics, not the ranking."""
    monkeypatch.setattr(
        matching_engine, "dense_encoder", lambda model: FakeEncoder("fake-web", 16, role_aware=True)
    )


@pytest.fixture
def landlord(session: Session) -> Organisation:
    return make_organisation(
        session,
        name="Habitat des Calanques",
        competencies=["Accompagnement social des locataires en difficulté"],
        needs=["Trouver un partenaire pour animer un jardin partagé"],
    )


@pytest.fixture
def gardeners(app: FastAPI, session: Session, landlord: Organisation) -> Organisation:
    """An association answering the landlord's need; both embedded (PostgreSQL's scorer
    reads stored vectors only)."""
    org = make_organisation(
        session,
        name="Jardins du Midi",
        kind="association",
        competencies=["Nous animons des jardins partagés au pied des immeubles"],
        needs=["Trouver des terrains pour de nouveaux jardins"],
    )
    reindex(session, app.state.matching)
    return org


@pytest.fixture
def member(
    app: FastAPI, session: Session, settings: Settings, landlord: Organisation
) -> Iterator[TestClient]:
    """A client signed in as a member of the landlord."""
    person = make_person(session, "membre@calanques.fr", organisation_ids=[landlord.id])
    with TestClient(app, raise_server_exceptions=False) as client:
        sign_in(client, session, settings, person)
        yield client


def text(response: object) -> str:
    return unescape(response.text)  # type: ignore[attr-defined]


class TestProfile:
    def test_a_member_lands_on_the_profile_with_competencies_and_needs(
        self, member: TestClient, landlord: Organisation
    ) -> None:
        page = member.get("/espace")
        assert page.url.path == f"/espace/organisations/{landlord.id}"
        body = text(page)
        assert "<h1>Habitat des Calanques</h1>" in body
        assert "Compétences (1)" in body
        assert "Besoins (1)" in body
        assert "jardin partagé" in body
        assert 'href="#contenu"' in body  # the skip link

    def test_adding_a_need_shows_it_with_a_notice(
        self, member: TestClient, session: Session, landlord: Organisation
    ) -> None:
        url = f"/espace/organisations/{landlord.id}"
        answer = post_form(
            member,
            url,
            f"{url}/enonces",
            {"kind": "need", "text": "Former nos gardiens à la médiation", "visibility": "network"},
        )
        assert answer.status_code == 303
        page = member.get(answer.headers["location"])
        assert "l'énoncé a été ajouté" in text(page)
        assert "Former nos gardiens à la médiation" in text(page)
        assert session.scalar(
            select(Statement).where(Statement.text == "Former nos gardiens à la médiation")
        )

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"kind": "need", "text": "  "}, "text", "3 caractères"),
            ({"kind": "need", "text": "ab"}, "text", "caractères"),
            ({"kind": "besoin", "text": "Un texte correct"}, "kind", "compétence"),
            ({"text": "Un texte correct"}, "kind", "compétence"),
            (
                {"kind": "need", "text": "Un texte correct", "visibility": "tous"},
                "visibility",
                "qui peut voir",
            ),
            ({"kind": "need", "text": "x" * 2001}, "text", "2 000"),
        ],
    )
    def test_a_wrong_statement_is_said_next_to_its_field(
        self,
        member: TestClient,
        landlord: Organisation,
        data: dict[str, str],
        field: str,
        message: str,
    ) -> None:
        url = f"/espace/organisations/{landlord.id}"
        answer = post_form(member, url, f"{url}/enonces", data)
        assert answer.status_code == 422
        body = text(answer)
        assert f'id="{field}-erreur"' in body
        assert message.lower() in body.lower()

    def test_editing_then_deleting_a_need(
        self, member: TestClient, session: Session, landlord: Organisation
    ) -> None:
        need = next(s for s in landlord.statements if s.kind == StatementKind.need)
        edit = f"/espace/enonces/{need.id}"
        answer = post_form(
            member,
            edit,
            edit,
            {
                "kind": "need",
                "text": "Animer un potager avec les enfants",
                "visibility": "coordinator",
            },
        )
        assert answer.status_code == 303
        page = text(member.get(answer.headers["location"]))
        assert "Animer un potager avec les enfants" in page
        assert "Coordination seulement" in page
        answer = post_form(member, edit, f"{edit}/suppression", {})
        assert answer.status_code == 303
        assert "Animer un potager" not in text(member.get(answer.headers["location"]))
        assert session.get(Statement, need.id) is None

    def test_another_organisation_is_read_only(
        self, member: TestClient, gardeners: Organisation
    ) -> None:
        page = text(member.get(f"/espace/organisations/{gardeners.id}"))
        assert "Jardins du Midi" in page
        assert "Ajouter une compétence" not in page
        statement = gardeners.statements[0]
        refused = member.get(f"/espace/enonces/{statement.id}")
        assert refused.status_code == 403
        assert "Accès refusé" in text(refused)
        token = csrf_of(member.get(f"/espace/organisations/{gardeners.id}").text)
        post = member.post(
            f"/espace/organisations/{gardeners.id}/enonces",
            data={"csrftoken": token, "kind": "need", "text": "Intrusion"},
        )
        assert post.status_code == 403

    def test_a_coordinator_lists_the_organisations(
        self, app: FastAPI, session: Session, settings: Settings, landlord: Organisation
    ) -> None:
        person = make_person(session, "coord@region.fr", role=AccountRole.coordinator)
        with TestClient(app, raise_server_exceptions=False) as client:
            sign_in(client, session, settings, person)
            page = text(client.get("/espace?q=calanques"))
        assert "Organisations du réseau" in page
        assert "Habitat des Calanques" in page


class TestPartners:
    @pytest.mark.parametrize("view", ["besoins", "offre", "pairs", "inconnue"])
    def test_each_view_answers(
        self, member: TestClient, landlord: Organisation, gardeners: Organisation, view: str
    ) -> None:
        page = member.get(f"/espace/organisations/{landlord.id}/partenaires?vue={view}")
        assert page.status_code == 200
        assert "Partenaires suggérés" in text(page)

    def test_a_suggestion_shows_its_reasons_and_can_be_dismissed(
        self,
        member: TestClient,
        session: Session,
        landlord: Organisation,
        gardeners: Organisation,
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/partenaires"
        page = text(member.get(url))
        assert "Jardins du Midi" in page
        assert "Votre besoin" in page
        assert "Leur compétence" in page
        answer = post_form(
            member,
            url,
            f"{url}/ecarter",
            {"partenaire": str(gardeners.id), "raison": "Déjà partenaires", "vue": "besoins"},
        )
        assert answer.status_code == 303
        after = text(member.get(answer.headers["location"]))
        assert "ne vous sera plus suggéré" in after
        assert "« Déjà partenaires »" in after
        assert session.scalar(select(Dismissal).where(Dismissal.dismissed_id == gardeners.id))

    @pytest.mark.parametrize("partenaire", ["", "abc", "99999999999", "-1", "0"])
    def test_dismissing_nonsense_is_a_french_page(
        self, member: TestClient, landlord: Organisation, partenaire: str
    ) -> None:
        url = f"/espace/organisations/{landlord.id}/partenaires"
        answer = post_form(member, url, f"{url}/ecarter", {"partenaire": partenaire})
        assert answer.status_code in (404, 409, 422)
        assert "text/html" in answer.headers["content-type"]

    def test_a_member_cannot_see_another_organisations_suggestions(
        self, member: TestClient, gardeners: Organisation
    ) -> None:
        answer = member.get(f"/espace/organisations/{gardeners.id}/partenaires")
        assert answer.status_code == 403


class TestSearch:
    def test_an_empty_search_page_says_what_to_do(self, member: TestClient) -> None:
        page = text(member.get("/espace/recherche"))
        assert "Qui sait faire" in page
        assert "autour de" in page

    def test_search_around_a_territory_by_name_or_code(
        self, member: TestClient, gardeners: Organisation
    ) -> None:
        for place in ("Marseille", "13", "Bouches-du-Rhône", "commune:13001", ""):
            page = member.get("/espace/recherche", params={"q": "jardins", "territoire": place})
            assert page.status_code == 200, (place, text(page))

    def test_a_misspelt_search_says_how_it_was_read(
        self, member: TestClient, gardeners: Organisation
    ) -> None:
        page = text(member.get("/espace/recherche", params={"q": "jradins"}))
        assert "Recherche lue comme « jardins »" in page
        assert "Rechercher plutôt « jradins », tel quel" in page
        assert "lue comme" not in text(member.get("/espace/recherche", params={"q": "jardins"}))
        as_typed = member.get("/espace/recherche", params={"q": "jradins", "tel_quel": "1"})
        assert as_typed.status_code == 200
        assert "lue comme" not in text(as_typed)
        corrected = member.get("/espace/recherche", params={"q": "jradins", "tel_quel": "0"})
        assert "Recherche lue comme « jardins »" in text(corrected)

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"q": "", "territoire": "13"}, "q"),
            ({"q": "jardins", "territoire": "Nullepart-sur-Mer"}, "territoire"),
            ({"q": "jardins", "territoire": "Saint-Denis"}, "territoire"),
            ({"q": "jardins", "territoire": "commune:99999"}, "territoire"),
            ({"q": "x" * 2500}, "q"),
        ],
    )
    def test_wrong_fields_are_said_next_to_them(
        self, member: TestClient, params: dict[str, str], field: str
    ) -> None:
        page = member.get("/espace/recherche", params=params)
        assert page.status_code == 422
        assert f'id="{field}-erreur"' in page.text


class TestOddInput:
    @pytest.mark.parametrize(
        "path",
        [
            "/espace/organisations/0",
            "/espace/organisations/abc",
            "/espace/organisations/99999999999",
            "/espace/organisations/999999",
            "/espace/enonces/999999",
            "/espace/organisations/1/partenaires?vue=%00&perimetre=%00",
            "/espace/recherche?q=%00&territoire=%00",
            "/espace/recherche?q=jardins&territoire=%00%00",
            "/espace/recherche?q=%F0%9F%8C%B1&territoire=%E2%80%8B",
            "/espace/nulle-part",
            "/connexion?suite=//ailleurs.example",
            "/deconnexion",
            "/espace/enonces/1/suppression",
        ],
    )
    def test_never_a_500_and_always_html(self, member: TestClient, path: str) -> None:
        answer = member.get(path)
        assert answer.status_code < 500, (path, answer.text)
        assert "text/html" in answer.headers["content-type"], path

    def test_a_malformed_address_is_a_page_that_does_not_exist(self, member: TestClient) -> None:
        answer = member.get("/espace/organisations/abc")
        assert answer.status_code == 404
        assert "Cette adresse ne mène à aucune page" in text(answer)

    def test_not_signed_in_goes_to_the_sign_in_page_and_back(self, app: FastAPI) -> None:
        with TestClient(app) as client:
            answer = client.get("/espace/recherche?q=jardins", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/connexion?suite=%2Fespace%2Frecherche%3Fq%3Djardins"

    def test_pages_forbid_framing_and_foreign_scripts(self, member: TestClient) -> None:
        answer = member.get("/espace/recherche")
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
