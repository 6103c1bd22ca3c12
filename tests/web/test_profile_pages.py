"""« Modifier le profil » through TestClient: members and the coordinator change the
profile with the API's service; odd input is a French message next to its field; a stale
form is a 409, the same form sent twice is not; other organisations' profiles are closed."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching import engine as matching_engine
from models import Organisation
from models.enums import AccountRole
from tests.factories import make_organisation
from tests.fakes import FakeEncoder
from tests.web.pages import make_person, sign_in


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        matching_engine, "dense_encoder", lambda model: FakeEncoder("fake-web", 16, role_aware=True)
    )


@pytest.fixture
def landlord(session: Session) -> Organisation:
    return make_organisation(session, name="Habitat des Calanques", territories=["commune:13001"])


@pytest.fixture
def other(session: Session) -> Organisation:
    return make_organisation(session, name="Jardins du Midi", kind="association")


def _client(app: FastAPI, session: Session, settings: Settings, email: str, **kw: object) -> Any:
    person = make_person(session, email, **kw)  # type: ignore[arg-type]
    client = TestClient(app, raise_server_exceptions=False)
    sign_in(client, session, settings, person)
    return client


@pytest.fixture
def member(
    app: FastAPI, session: Session, settings: Settings, landlord: Organisation
) -> Iterator[TestClient]:
    with _client(
        app, session, settings, "membre@calanques.fr", organisation_ids=[landlord.id]
    ) as client:
        yield client


@pytest.fixture
def coordinator(app: FastAPI, session: Session, settings: Settings) -> Iterator[TestClient]:
    with _client(
        app, session, settings, "coordination@arhlm.fr", role=AccountRole.coordinator
    ) as client:
        yield client


def url(org: Organisation) -> str:
    return f"/espace/organisations/{org.id}/modifier"


def form_of(html: str) -> dict[str, object]:
    """The form's fields as the page fills them (text inputs, selects, textareas)."""
    import re

    fields: dict[str, object] = {}
    for name, value in re.findall(
        r'<input type="(?:text|url|email|tel|hidden)"[^>]*?'
        r'name="([^"]+)" value="([^"]*)"',
        html,
    ):
        fields.setdefault(name, [])
        fields[name].append(unescape(value))  # type: ignore[union-attr]
    for name, value in re.findall(r'name="([^"]+)"[^>]*>([^<]*)</textarea>', html):
        fields[name] = [unescape(value)]
    kind = re.search(r'<option value="([^"]+)" selected>', html)
    fields["kind"] = [kind.group(1) if kind else ""]
    return {
        k: v[0]
        if len(v) == 1 and k not in ("territoire",) and not k.startswith("contact_")  # type: ignore[arg-type, index]
        else v
        for k, v in fields.items()
    }


def send(client: TestClient, org: Organisation, **changes: object) -> object:
    page = client.get(url(org))
    assert page.status_code == 200, page.text
    data = form_of(page.text)
    data.update(changes)
    return client.post(url(org), data=data, follow_redirects=False)


class TestEditProfile:
    def test_the_profile_links_to_the_form_filled_with_its_fields(
        self, member: TestClient, landlord: Organisation
    ) -> None:
        profile = member.get(f"/espace/organisations/{landlord.id}")
        assert f'href="{url(landlord)}">Modifier le profil' in profile.text
        page = member.get(url(landlord))
        assert page.status_code == 200
        assert 'value="Habitat des Calanques"' in page.text
        assert 'value="Marseille"' in unescape(page.text) or "commune:13001" in page.text

    def test_a_member_changes_every_field_and_sees_them_on_the_profile(
        self, member: TestClient, session: Session, landlord: Organisation
    ) -> None:
        answer = send(
            member,
            landlord,
            name="Habitat des Calanques et du Rhône",
            legal_form="OPH",
            siren="732 829 320",
            website="https://calanques.example.fr",
            description="Bailleur 🏠 <b>social</b>",
            territoire=["Bouches-du-Rhône", "", ""],
            contact_nom=["Léa Martin"],
            contact_fonction=["Chargée de projets"],
            contact_courriel=["lea.martin@calanques.fr"],
            contact_telephone=["04 91 00 00 00"],
        )
        assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
        assert answer.headers["location"].endswith("?fait=profil")  # type: ignore[attr-defined]
        session.expire_all()
        org = session.get(Organisation, landlord.id)
        assert org is not None
        assert org.name == "Habitat des Calanques et du Rhône"
        assert org.siren == "732829320"
        assert [t.ref for t in org.territories] == ["departement:13"]
        assert [c.email for c in org.contacts] == ["lea.martin@calanques.fr"]
        profile = member.get(f"/espace/organisations/{landlord.id}?fait=profil").text
        assert "le profil a été modifié" in unescape(profile)
        assert "&lt;b&gt;social&lt;/b&gt;" in profile  # escaped, never markup
        assert "Léa Martin" in profile

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": "x" * 20_000}, "name"),
            ({"name": "\x00"}, "name"),
            ({"kind": "dragon"}, "kind"),
            ({"siren": "123"}, "siren"),
            ({"siren": "111111111"}, "siren"),
            ({"website": "javascript:alert(1)"}, "website"),
            ({"legal_form": "x" * 81}, "legal_form"),
            ({"territoire": ["Atlantide"]}, "territoire-0"),
            ({"territoire": ["\x00"]}, None),
            ({"contact_nom": [""], "contact_courriel": ["pas-une-adresse"]}, "contact-0-name"),
            ({"contact_nom": ["Léa"], "contact_courriel": ["pas-une-adresse"]}, "contact-0-email"),
        ],
    )
    def test_odd_input_is_a_french_message_next_to_its_field(
        self,
        member: TestClient,
        landlord: Organisation,
        changes: dict[str, object],
        field: str | None,
    ) -> None:
        answer = send(member, landlord, **changes)
        status = answer.status_code  # type: ignore[attr-defined]
        assert status in (303, 422), answer.text  # type: ignore[attr-defined]
        if field is not None:
            assert status == 422
            assert f'id="{field}-erreur"' in answer.text  # type: ignore[attr-defined]
            assert "Field required" not in answer.text  # type: ignore[attr-defined]

    def test_a_form_sent_twice_is_no_conflict_but_a_stale_one_is(
        self, member: TestClient, coordinator: TestClient, landlord: Organisation
    ) -> None:
        page = member.get(url(landlord)).text
        data = form_of(page)
        first = member.post(url(landlord), data={**data, "name": "Nouveau nom"})
        assert first.status_code == 200
        again = member.post(
            url(landlord), data={**data, "name": "Nouveau nom"}, follow_redirects=False
        )
        assert again.status_code == 303
        # Someone else changes the profile; the old form would undo it.
        assert (
            send(coordinator, landlord, description="Changé par la coordination").status_code == 303
        )  # type: ignore[attr-defined]
        stale = member.post(
            url(landlord), data={**data, "name": "Troisième nom"}, follow_redirects=False
        )
        assert stale.status_code == 409
        assert "modifié par quelqu'un d'autre" in unescape(stale.text)
        # Sent again from that page (its new fingerprint), it is written.
        retry = member.post(url(landlord), data=form_of(stale.text), follow_redirects=False)
        assert retry.status_code == 303, retry.text

    def test_a_namesake_is_refused_in_french_then_confirmed_by_a_box(
        self, coordinator: TestClient, landlord: Organisation, session: Session
    ) -> None:
        make_organisation(session, name="Logis du Sud", allow_duplicate_name=True)
        refused = send(coordinator, landlord, name="Logis du sud")
        assert refused.status_code == 409  # type: ignore[attr-defined]
        body = unescape(refused.text)  # type: ignore[attr-defined]
        assert 'id="name-erreur"' in body
        assert "allow_duplicate_name" not in body
        assert 'name="confirme_homonyme"' in body
        confirmed = send(coordinator, landlord, name="Logis du sud", confirme_homonyme="oui")
        assert confirmed.status_code == 303  # type: ignore[attr-defined]

    def test_a_member_cannot_open_nor_send_another_organisations_form(
        self, member: TestClient, other: Organisation
    ) -> None:
        assert member.get(url(other)).status_code == 403
        page = member.get(url(other))
        assert "coordination" in unescape(page.text)
        assert member.get("/espace/organisations/99999999/modifier").status_code == 404

    @pytest.mark.parametrize(
        "path",
        [
            "/espace/organisations/0",
            "/espace/organisations/-1",
            "/espace/organisations/99999999999/modifier",
            "/espace/enonces/abc",
            "/espace/appels/1e308",
        ],
    )
    def test_a_number_no_row_can_have_in_the_address_is_a_french_404(
        self, member: TestClient, path: str
    ) -> None:
        page = member.get(path)
        assert page.status_code == 404
        body = unescape(page.text)
        assert "Cette adresse ne mène à aucune page" in body
        assert "2147483647" not in body

    @pytest.mark.parametrize("typed", ["🏠", "--", "<script>"])
    def test_a_territory_of_signs_only_is_named_back_in_the_message(
        self, member: TestClient, landlord: Organisation, typed: str
    ) -> None:
        answer = send(member, landlord, territoire=[typed])
        assert answer.status_code == 422  # type: ignore[attr-defined]
        body = unescape(answer.text)  # type: ignore[attr-defined]
        assert 'id="territoire-0-erreur"' in body
        assert "ne nomme aucun territoire" in body or "Aucun territoire" in body
