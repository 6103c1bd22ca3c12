"""The calls catalogue: created, read, listed (open ones by default, as of an injected
today), filtered, sorted, paged, changed (each change logged) and archived."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.calls import service as call_service
from api.calls.schemas import CallIn
from api.calls.vocabulary import open_to
from api.kit.deps import get_today
from api.kit.settings import Settings
from api.matching import engine as matching_engine
from api.matching.engine import MatchingEngine
from matcher.encoders import PASSAGE, QUERY
from matcher.index import REQUIREMENT, REQUIREMENT_QUERY
from matcher.text import content_hash, fold
from models import Call, CallChange, Embedding
from models.enums import AccountRole
from tests.conftest import bearer
from tests.factories import make_organisation
from tests.fakes import FakeEncoder

CALLS = "/api/v1/calls"
TODAY = date(2027, 3, 15)


def payload(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Appel à projets « Jardins partagés en pied d'immeuble »",
        "funders": ["Région Sud"],
        "description": "Soutien aux jardins partagés conçus avec les habitants.",
        "requirements": [
            "Un bailleur qui met le foncier à disposition",
            "Une association qui anime le jardin avec les habitants",
        ],
        "perimeter": ["departement:13"],
        "eligible_kinds": ["landlord", "association"],
        "deadline": (TODAY + timedelta(days=30)).isoformat(),
        "themes": ["jardins partagés"],
        **fields,
    }


@pytest.fixture
def today(app: FastAPI) -> Iterator[list[date]]:
    """The day the app reads as today: TODAY, changed by assigning `today[0]`."""
    current = [TODAY]
    app.dependency_overrides[get_today] = lambda: current[0]
    yield current
    app.dependency_overrides.pop(get_today, None)


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post(CALLS, json=payload(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def listed(client: TestClient, **params: Any) -> list[str]:
    response = client.get(CALLS, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


@pytest.fixture
def member(app: FastAPI, session: Session) -> Iterator[TestClient]:
    org = make_organisation(session, name="Habitat du Pays d'Aix")
    headers = {"Authorization": bearer(session, AccountRole.member, [org.id])}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        yield c


class TestCreateAndRead:
    def test_a_call_is_created_with_every_field_and_read_back(
        self, client: TestClient, today: list[date]
    ) -> None:
        response = client.post(
            CALLS,
            json=payload(
                funders=["Région Sud", "Banque des Territoires"],
                eligible_legal_forms=["SA d'HLM", "office public de l'habitat", "SCIC"],
                opens_on="2027-03-01",
                url="https://region-sud.example/aap/jardins",
                aid_types=["Subvention"],
                source="region-sud",
                external_id="AAP-2027-04",
            ),
        )
        assert response.status_code == 201, response.text
        call = response.json()
        assert response.headers["location"] == f"{CALLS}/{call['id']}"
        assert call["funders"] == ["Région Sud", "Banque des Territoires"]
        assert call["eligible_legal_forms"] == ["ESH", "OPH", "SCIC"]
        assert [t["ref"] for t in call["perimeter"]] == ["departement:13"]
        assert call["perimeter"][0]["name"] == "Bouches-du-Rhône"
        assert [r["text"] for r in call["requirements"]] == payload()["requirements"]
        assert [r["position"] for r in call["requirements"]] == [0, 1]
        assert call["status"] == "open"
        assert call["days_left"] == 30
        assert call["source"] == "region-sud"
        assert client.get(f"{CALLS}/{call['id']}").json() == call

    def test_requirements_are_embedded_as_passages_keyed_by_content_hash(
        self, client: TestClient, session: Session, app: FastAPI, today: list[date]
    ) -> None:
        text = "Une régie de quartier pour l'entretien des parcelles"
        create(client, requirements=[text])
        space = app.state.matching.space
        assert isinstance(app.state.matching, MatchingEngine)
        row = session.scalar(
            select(Embedding).where(
                Embedding.model == space,
                Embedding.role == REQUIREMENT,
                Embedding.content_hash == content_hash(text),
            )
        )
        assert row is not None
        assert row.dimension == app.state.matching.encoder.dimension

    def test_france_means_everywhere(self, client: TestClient, today: list[date]) -> None:
        call = create(client, perimeter=["france", "departement:13"])
        assert call["perimeter"] == [
            {"ref": "France", "level": "pays", "code": "FR", "name": "France"}
        ]
        for territory in ("commune:2A004", "epci:200054807", "region:93", "France"):
            assert call["title"] in listed(client, territory=territory)

    def test_a_permanent_call_has_no_deadline_and_no_days_left(
        self, client: TestClient, today: list[date]
    ) -> None:
        call = create(client, deadline=None)
        assert call["deadline"] is None
        assert call["days_left"] is None
        assert call["status"] == "open"

    @pytest.mark.parametrize(
        ("fields", "where"),
        [
            ({"title": 12}, ["body", "title"]),
            ({"title": "  a "}, ["body", "title"]),
            ({"colour": "rouge"}, ["body", "colour"]),
            ({"deadline": 1800000000}, ["body", "deadline"]),
            ({"deadline": "31/03/2027"}, ["body", "deadline"]),
            ({"deadline": "1927-03-31"}, ["body", "deadline"]),
            ({"perimeter": []}, ["body", "perimeter"]),
            ({"eligible_kinds": ["bailleur"]}, ["body", "eligible_kinds", 0]),
            ({"url": "region-sud.example"}, ["body", "url"]),
            ({"source": "Région Sud"}, ["body", "source"]),
            ({"funders": "Région Sud"}, ["body", "funders"]),
        ],
    )
    def test_a_mistake_is_a_422_naming_the_field(
        self, client: TestClient, fields: dict[str, Any], where: list[Any]
    ) -> None:
        response = client.post(CALLS, json=payload(**fields))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert where in [e["loc"] for e in response.json()["errors"]]

    def test_a_deadline_before_the_opening_is_refused(self, client: TestClient) -> None:
        response = client.post(CALLS, json=payload(opens_on="2027-05-01", deadline="2027-04-01"))
        assert response.status_code == 409  # two well-formed dates that contradict each other
        assert "précède" in response.json()["detail"]

    def test_a_requirement_repeating_another_is_refused(self, client: TestClient) -> None:
        response = client.post(CALLS, json=payload(requirements=["Un jardin", "un  JARDIN"]))
        assert response.status_code == 409  # the document's uniqueItems sees two texts
        assert ["body", "requirements"] in [e["loc"] for e in response.json()["errors"]]

    def test_unknown_territories_are_all_listed(self, client: TestClient) -> None:
        response = client.post(CALLS, json=payload(perimeter=["departement:13", "99999", "13"]))
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["errors"]] == [
            ["body", "perimeter", 1],
            ["body", "perimeter", 2],
        ]

    def test_a_source_id_names_one_call(self, client: TestClient) -> None:
        create(client, source="aides-territoires", external_id="162")
        again = client.post(
            CALLS, json=payload(title="Autre titre", source="aides-territoires", external_id="162")
        )
        assert again.status_code == 409
        assert "162" in again.json()["detail"]

    def test_unknown_call_is_a_404_in_french(self, client: TestClient) -> None:
        response = client.get(f"{CALLS}/999999")
        assert response.status_code == 404
        assert response.json()["detail"] == "Aucun appel à projets n° 999999."


class TestAccess:
    def test_members_read_but_do_not_write(self, client: TestClient, member: TestClient) -> None:
        call = create(client)
        assert member.get(f"{CALLS}/{call['id']}").status_code == 200
        assert member.post(CALLS, json=payload()).status_code == 403
        assert member.patch(f"{CALLS}/{call['id']}", json={"title": "Autre"}).status_code == 403
        assert member.delete(f"{CALLS}/{call['id']}").status_code == 403

    def test_the_coordinator_writes(self, app: FastAPI, session: Session) -> None:
        headers = {"Authorization": bearer(session, AccountRole.coordinator)}
        with TestClient(app, raise_server_exceptions=False, headers=headers) as coordinator:
            assert coordinator.post(CALLS, json=payload()).status_code == 201

    def test_drafts_are_the_coordinations_only(
        self, client: TestClient, member: TestClient, today: list[date]
    ) -> None:
        draft = create(client, title="AMI en préparation", status="draft")
        assert member.get(f"{CALLS}/{draft['id']}").status_code == 404
        assert "AMI en préparation" not in listed(member, status="draft")
        assert "AMI en préparation" not in listed(member, status="any")
        assert "AMI en préparation" in listed(client, status="draft")
        assert "AMI en préparation" not in listed(client)


class TestOpenAndClosed:
    def test_a_call_past_its_deadline_leaves_the_default_listing_but_is_kept(
        self, client: TestClient, today: list[date]
    ) -> None:
        call = create(client, title="AAP bientôt clos", deadline=TODAY.isoformat())
        assert "AAP bientôt clos" in listed(client)
        assert client.get(f"{CALLS}/{call['id']}").json()["days_left"] == 0
        today[0] = TODAY + timedelta(days=1)
        assert "AAP bientôt clos" not in listed(client)
        assert "AAP bientôt clos" in listed(client, status="closed")
        assert "AAP bientôt clos" in listed(client, status="any")
        kept = client.get(f"{CALLS}/{call['id']}").json()
        assert kept["status"] == "closed"
        assert kept["days_left"] is None

    def test_extending_the_deadline_reopens_it(self, client: TestClient, today: list[date]) -> None:
        call = create(
            client, title="AAP prolongé", deadline=(TODAY - timedelta(days=3)).isoformat()
        )
        assert "AAP prolongé" in listed(client, status="closed")
        client.patch(f"{CALLS}/{call['id']}", json={"deadline": "2027-06-30"})
        assert "AAP prolongé" in listed(client)

    def test_a_call_closed_by_hand_is_closed_before_its_deadline(
        self, client: TestClient, today: list[date]
    ) -> None:
        create(client, title="AAP suspendu", status="closed")
        assert "AAP suspendu" not in listed(client)
        assert "AAP suspendu" in listed(client, status="closed")


@pytest.fixture
def catalogue(client: TestClient, today: list[date]) -> dict[str, dict[str, Any]]:
    """Five calls of various perimeters, eligibility, themes and deadlines."""
    calls = {
        "aix": create(
            client,
            title="Habitat inclusif à Aix",
            funders=["Département des Bouches-du-Rhône"],
            perimeter=["commune:13001"],
            eligible_kinds=["association"],
            themes=["Vieillissement et habitat inclusif"],
            deadline="2027-04-30",
        ),
        "paca": create(
            client,
            title="Rénovation énergétique en Provence",
            funders=["Région Sud"],
            perimeter=["region:93"],
            eligible_kinds=[],
            eligible_legal_forms=["OPH", "ESH"],
            themes=["précarité énergétique"],
            deadline="2027-06-30",
        ),
        "vaucluse": create(
            client,
            title="Économie circulaire en Vaucluse",
            funders=["Ademe"],
            perimeter=["departement:84"],
            eligible_kinds=["landlord"],
            themes=[],
            deadline="2027-04-01",
        ),
        "national": create(
            client,
            title="Tiers-lieux dans les quartiers",
            funders=["Agence nationale de la cohésion des territoires"],
            description="Fabriques de territoire en QPV, cofinancées avec la Banque des Territoires.",
            perimeter=["France"],
            eligible_kinds=[],
            themes=["tiers-lieux"],
            deadline=None,
        ),
        "grand_avignon": create(
            client,
            title="Mobilité solidaire du Grand Avignon",
            funders=["Grand Avignon"],
            perimeter=["epci:248400251"],
            eligible_kinds=["public_body", "association"],
            themes=["mobilité"],
            deadline="2027-05-15",
        ),
    }
    return calls


class TestFilters:
    @pytest.mark.parametrize(
        ("territory", "expected"),
        [
            # Aix is inside the Bouches-du-Rhône, in the région: its call, the région's, France's.
            ("commune:13001", {"aix", "paca", "national"}),
            # A département: calls on a commune inside it, on the région containing it.
            ("departement:13", {"aix", "paca", "national"}),
            # The Grand Avignon spans the Vaucluse and the Gard: it overlaps both.
            ("departement:30", {"grand_avignon", "national"}),
            ("epci:248400251", {"vaucluse", "paca", "grand_avignon", "national"}),
            ("departement:84", {"vaucluse", "paca", "grand_avignon", "national"}),
            ("region:94", {"national"}),
            ("France", {"aix", "paca", "vaucluse", "national", "grand_avignon"}),
        ],
    )
    def test_territory_keeps_calls_whose_perimeter_contains_lies_in_or_overlaps_it(
        self,
        client: TestClient,
        catalogue: dict[str, dict[str, Any]],
        territory: str,
        expected: set[str],
    ) -> None:
        titles = {catalogue[k]["title"] for k in expected}
        assert set(listed(client, territory=territory)) == titles

    def test_an_unknown_territory_is_a_404(self, client: TestClient) -> None:
        response = client.get(CALLS, params={"territory": "departement:99"})
        assert response.status_code == 404

    def test_theme_is_read_without_accents_or_case(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        assert listed(client, theme="PRECARITE ENERGETIQUE") == [catalogue["paca"]["title"]]
        assert listed(client, theme="tiers lieux") == [catalogue["national"]["title"]]
        assert listed(client, theme="énergie") == []

    def test_kind_keeps_calls_open_to_it_landlords_through_hlm_forms(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        for kind, expected in [
            ("landlord", {"paca", "vaucluse", "national"}),
            ("association", {"aix", "national", "grand_avignon"}),
            ("company", {"national"}),
        ]:
            assert set(listed(client, kind=kind)) == {catalogue[k]["title"] for k in expected}

    def test_legal_form_keeps_calls_open_to_it_however_spelt(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        esh = {catalogue[k]["title"] for k in ("paca", "vaucluse", "national")}
        assert set(listed(client, legal_form="SA d'HLM")) == esh
        coop = {catalogue[k]["title"] for k in ("vaucluse", "national")}
        assert set(listed(client, legal_form="coopérative HLM")) == coop
        assert set(listed(client, legal_form="Association loi 1901")) == {
            catalogue["national"]["title"]
        }

    def test_deadline_before_and_after(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        assert listed(client, deadline_before="2027-04-30") == [
            catalogue["vaucluse"]["title"],
            catalogue["aix"]["title"],
        ]
        assert listed(client, deadline_after="2027-05-15") == [
            catalogue["grand_avignon"]["title"],
            catalogue["paca"]["title"],
            catalogue["national"]["title"],
        ]

    def test_text_is_read_without_accents_or_case_in_every_field(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        assert listed(client, q="ECONOMIE circulaire") == [catalogue["vaucluse"]["title"]]
        assert listed(client, q="banque territoires") == [catalogue["national"]["title"]]
        assert listed(client, q="région sud") == [catalogue["paca"]["title"]]
        assert listed(client, q="inexistant") == []


class TestSortAndPages:
    def test_by_deadline_soonest_first_permanent_calls_last(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        order = ["vaucluse", "aix", "grand_avignon", "paca", "national"]
        assert listed(client) == [catalogue[k]["title"] for k in order]
        assert listed(client, sort="-deadline") == [catalogue[k]["title"] for k in reversed(order)]

    def test_by_title_the_french_way(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        titles = listed(client, sort="title")
        assert titles.index("Économie circulaire en Vaucluse") < titles.index(
            "Habitat inclusif à Aix"
        )

    @pytest.mark.parametrize("sort", ["deadline", "-deadline", "title", "-created_at"])
    def test_pages_by_cursor_and_offset_cover_all_once_with_the_total(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]], sort: str
    ) -> None:
        everything = listed(client, sort=sort)
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = client.get(CALLS, params=params).json()
            assert page["total"] == 5
            seen += [i["title"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == everything
        second = client.get(CALLS, params={"limit": 2, "offset": 2, "sort": sort}).json()
        assert [i["title"] for i in second["items"]] == everything[2:4]
        assert second["offset"] == 2

    def test_a_cursor_serves_only_its_own_list(
        self, client: TestClient, catalogue: dict[str, dict[str, Any]]
    ) -> None:
        cursor = client.get(CALLS, params={"limit": 2}).json()["next_cursor"]
        other = client.get(CALLS, params={"limit": 2, "cursor": cursor, "theme": "mobilité"})
        assert other.status_code == 404
        assert other.json()["errors"][0]["loc"] == ["query", "cursor"]


class TestUpdate:
    def test_each_change_is_logged_field_by_field(
        self, client: TestClient, session: Session, today: list[date]
    ) -> None:
        call = create(client)
        response = client.patch(
            f"{CALLS}/{call['id']}",
            json={"deadline": "2027-05-31", "funders": ["Région Sud", "Département 13"]},
        )
        assert response.status_code == 200, response.text
        assert response.json()["deadline"] == "2027-05-31"
        changes = session.scalars(
            select(CallChange).where(CallChange.call_id == call["id"]).order_by(CallChange.field)
        ).all()
        assert [(c.field, c.old, c.new) for c in changes] == [
            ("deadline", call["deadline"], "2027-05-31"),
            ("funders", ["Région Sud"], ["Région Sud", "Département 13"]),
        ]

    def test_an_unchanged_value_logs_nothing(
        self, client: TestClient, session: Session, today: list[date]
    ) -> None:
        call = create(client)
        client.patch(
            f"{CALLS}/{call['id']}", json={"title": call["title"], "themes": call["themes"]}
        )
        assert (
            session.scalars(select(CallChange).where(CallChange.call_id == call["id"])).all() == []
        )

    def test_requirements_that_stay_keep_their_id(
        self, client: TestClient, session: Session, today: list[date]
    ) -> None:
        call = create(client)
        first, second = call["requirements"]
        response = client.patch(
            f"{CALLS}/{call['id']}",
            json={"requirements": [second["text"], "Un suivi des usages du jardin"]},
        )
        requirements = response.json()["requirements"]
        assert requirements[0] == {**second, "position": 0}
        assert requirements[1]["text"] == "Un suivi des usages du jardin"
        assert first["id"] not in {r["id"] for r in requirements}
        change = session.scalar(
            select(CallChange).where(
                CallChange.call_id == call["id"], CallChange.field == "requirements"
            )
        )
        assert change is not None
        assert change.new == [second["text"], "Un suivi des usages du jardin"]

    def test_null_clears_an_optional_field_and_is_refused_for_others(
        self, client: TestClient, today: list[date]
    ) -> None:
        call = create(client)
        cleared = client.patch(
            f"{CALLS}/{call['id']}", json={"description": None, "deadline": None}
        )
        assert cleared.json()["description"] is None
        assert cleared.json()["deadline"] is None
        refused = client.patch(f"{CALLS}/{call['id']}", json={"title": None})
        assert refused.status_code == 422

    def test_the_perimeter_is_replaced_as_a_whole(
        self, client: TestClient, today: list[date]
    ) -> None:
        call = create(client)
        response = client.patch(
            f"{CALLS}/{call['id']}", json={"perimeter": ["departement:04", "departement:05"]}
        )
        assert [t["ref"] for t in response.json()["perimeter"]] == [
            "departement:04",
            "departement:05",
        ]

    def test_a_deadline_before_the_opening_is_refused_on_update(
        self, client: TestClient, today: list[date]
    ) -> None:
        call = create(client, opens_on="2027-03-01")
        response = client.patch(f"{CALLS}/{call['id']}", json={"deadline": "2027-02-01"})
        assert response.status_code == 409
        assert response.json()["errors"][0]["loc"] == ["body", "deadline"]

    def test_taking_another_calls_source_id_is_a_409(
        self, client: TestClient, today: list[date]
    ) -> None:
        create(client, source="aides-territoires", external_id="338")
        call = create(client, title="Autre appel")
        response = client.patch(
            f"{CALLS}/{call['id']}", json={"source": "aides-territoires", "external_id": "338"}
        )
        assert response.status_code == 409


class TestArchive:
    def test_an_archived_call_leaves_every_listing_and_stays_readable(
        self, client: TestClient, session: Session, today: list[date]
    ) -> None:
        call = create(client, title="AAP annulé")
        assert client.delete(f"{CALLS}/{call['id']}").status_code == 204
        assert "AAP annulé" not in listed(client)
        assert "AAP annulé" not in listed(client, status="closed")
        assert "AAP annulé" not in listed(client, status="any")
        assert "AAP annulé" in listed(client, status="archived")
        assert client.get(f"{CALLS}/{call['id']}").json()["status"] == "archived"
        assert client.delete(f"{CALLS}/{call['id']}").status_code == 204
        assert session.get(Call, call["id"]) is not None
        assert client.delete(f"{CALLS}/999999").status_code == 404


class TestRequirementEmbeddings:
    def test_requirements_are_read_both_ways_encoded_before_the_write_once_per_text(
        self, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fake = FakeEncoder("fake-aware", 16, role_aware=True)
        monkeypatch.setattr(matching_engine, "dense_encoder", lambda model: fake)
        engine = MatchingEngine(settings.model_copy(update={"thesaurus": ""}))
        texts = ["Un bailleur qui met le foncier à disposition", "Une association d'animation"]
        call = call_service.create_call(
            session,
            lambda: nullcontext(session),
            engine,
            CallIn.model_validate(payload(requirements=texts)),
        )
        # As passages (what a consortium must do) and as queries (what the call fit scores
        # organisations with): each once.
        assert sorted(role for role, _ in fake.calls) == sorted([PASSAGE, QUERY])
        for _, read in fake.calls:
            assert sorted(map(fold, read)) == sorted(map(fold, texts))
        for role in (REQUIREMENT, REQUIREMENT_QUERY):
            stored = session.scalars(
                select(Embedding.content_hash).where(
                    Embedding.model == engine.space, Embedding.role == role
                )
            ).all()
            assert set(stored) == {r.content_hash for r in call.requirements}, role
        # A second call sharing a requirement encodes only the new one.
        fake.calls.clear()
        call_service.create_call(
            session,
            lambda: nullcontext(session),
            engine,
            CallIn.model_validate(
                payload(title="Autre appel", requirements=[texts[0], "Un suivi"])
            ),
        )
        assert sorted((role, [fold(t) for t in read]) for role, read in fake.calls) == sorted(
            [(PASSAGE, ["un suivi"]), (QUERY, ["un suivi"])]
        )


class TestOpenTo:
    @pytest.mark.parametrize(
        ("kinds", "forms", "kind", "legal_form", "expected"),
        [
            ([], [], "company", None, True),
            (["association"], ["OPH", "ESH"], "association", "Association loi 1901", True),
            (["association"], ["OPH", "ESH"], "landlord", "SA d'HLM", True),
            (["association"], ["OPH", "ESH"], "landlord", "Coopérative Hlm", False),
            (["landlord"], [], "landlord", None, True),
            ([], ["SEM"], "company", "SAEM", True),
            ([], ["SEM"], "public_body", None, False),
        ],
    )
    def test_a_listed_kind_or_a_listed_legal_form(
        self, kinds: list[str], forms: list[str], kind: str, legal_form: str | None, expected: bool
    ) -> None:
        assert open_to(kinds, forms, kind, legal_form) is expected
