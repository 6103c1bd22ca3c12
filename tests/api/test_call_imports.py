"""Importing calls for projects: the Aides-territoires feed of the Drôme (a real one), its
record shape, the shipped CSV example; all or nothing, again without duplicate, each change
logged; through the API and the command line."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.imports import commands as import_commands
from api.imports.call_records import CALL_COLUMNS
from api.imports.formats import XLSX_MEDIA_TYPE
from api.imports.html import plain_text
from api.kit import commands as kit_commands
from api.kit.deps import get_today
from api.kit.settings import REPO_ROOT, get_settings
from matcher.index import REQUIREMENT
from matcher.text import content_hash
from models import Call, CallChange, Embedding
from models.enums import AccountRole
from tests.conftest import FIXTURES, bearer
from tests.factories import make_organisation

IMPORTS = "/api/v1/imports/calls"
CALLS = "/api/v1/calls"
DROME = REPO_ROOT / "tests" / "data" / "aides-territoires" / "departement_drome_sample.json"
EXAMPLE = FIXTURES / "examples" / "calls.csv"
DROME_TITLES = {
    "Développement d’une alimentation de proximité",
    "L'alimentation dans la restauration collective publique",
    "Approvisionnement en produits locaux avec la plateforme Agrilocal",
}
TODAY = date(2027, 1, 10)


def drome() -> dict[str, Any]:
    feed: dict[str, Any] = json.loads(DROME.read_text(encoding="utf-8"))
    return feed


def as_bytes(feed: Any) -> bytes:
    return json.dumps(feed, ensure_ascii=False).encode("utf-8")


def post(
    client: TestClient, data: bytes, media_type: str = "application/json", **params: Any
) -> Any:
    return client.post(IMPORTS, content=data, headers={"Content-Type": media_type}, params=params)


def call_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Call)) or 0


def locs(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json().get("errors", [])]


def record(**fields: Any) -> dict[str, Any]:
    """An Aides-territoires record: the first of the Drôme feed, changed."""
    return {**drome()["results"][0], **fields}


def csv_of(rows: list[dict[str, str]], columns: tuple[str, ...] = CALL_COLUMNS) -> bytes:
    lines = [";".join(columns)]
    for row in rows:
        lines.append(";".join('"' + row.get(c, "").replace('"', '""') + '"' for c in columns))
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def coordinator(app: FastAPI, session: Session) -> Iterator[TestClient]:
    app.dependency_overrides[get_today] = lambda: TODAY
    headers = {"Authorization": bearer(session, AccountRole.coordinator)}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        yield c
    app.dependency_overrides.pop(get_today, None)


class TestTheDromeFeed:
    def test_drome_resolves_to_departement_26_and_three_calls_come_with_clean_text(
        self, coordinator: TestClient, session: Session
    ) -> None:
        response = post(coordinator, DROME.read_bytes())
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["created"], report["updated"], report["unchanged"]) == (3, 0, 0)
        assert report["format"] == "json"
        assert [c["record"] for c in report["calls"]] == [1, 2, 3]
        calls = session.scalars(
            select(Call)
            .where(Call.source == "aides-territoires")
            .options(selectinload(Call.perimeter))
            .order_by(Call.id)
        ).all()
        assert {c.title for c in calls} == DROME_TITLES
        assert [c.external_id for c in calls] == ["162", "338", "650"]
        for call in calls:
            assert [t.ref for t in call.perimeter] == ["departement:26"]
            assert call.perimeter[0].name == "Drôme"
            assert not call.nationwide
            assert call.deadline is None  # permanent aids
            text = call.description or ""
            assert text.startswith("OPÉRATIONS CONCERNÉES\n\n")
            for markup in ("<", ">", "&#", "&rsquo;", "&nbsp;", "\r"):
                assert markup not in text, (call.title, markup)
            assert "\n\n\n" not in text
            assert call.themes == ["Alimentation"]
            assert call.aid_types == ["Ingénierie technique"]
            assert call.url is not None
            assert call.url.startswith("https://collectivites.ladrome.fr/")
        first = calls[0]
        assert "  * Écoute, précision et retranscription des besoins" in (first.description or "")
        assert "(en partenariat avec le Département)." in (first.description or "")
        assert first.funders == ["Chambre d’agriculture de la Drôme"]
        # Communes, intercommunalités, associations and individuals: public bodies and
        # associations of the network; individuals are no organisation.
        assert first.eligible_kinds == ["public_body", "association"]
        assert first.eligible_legal_forms == []
        second = calls[1]
        assert "20% de bio minimum d’ici 2022." in (second.description or "")
        assert second.eligible_kinds == ["public_body"]

    def test_importing_it_twice_leaves_no_duplicate(
        self, coordinator: TestClient, session: Session
    ) -> None:
        assert post(coordinator, DROME.read_bytes()).json()["created"] == 3
        before = call_count(session)
        again = post(coordinator, DROME.read_bytes()).json()
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
        assert call_count(session) == before
        assert session.scalars(select(CallChange)).all() == []

    def test_a_changed_deadline_updates_exactly_that_call_and_is_logged(
        self, coordinator: TestClient, session: Session
    ) -> None:
        post(coordinator, DROME.read_bytes())
        changed = drome()
        changed["results"][1]["submission_deadline"] = "2027-03-31"
        report = post(coordinator, as_bytes(changed)).json()
        assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 2)
        updated = [c for c in report["calls"] if c["outcome"] == "updated"]
        assert [(u["record"], u["changes"]) for u in updated] == [(2, ["deadline"])]
        call = session.get(Call, updated[0]["id"])
        assert call is not None
        assert call.external_id == "338"
        assert call.deadline == date(2027, 3, 31)
        changes = session.scalars(select(CallChange)).all()
        assert [(c.call_id, c.field, c.old, c.new) for c in changes] == [
            (call.id, "deadline", None, "2027-03-31")
        ]
        # The call shows its deadline and days left at once.
        shown = coordinator.get(f"{CALLS}/{call.id}").json()
        assert shown["days_left"] == (date(2027, 3, 31) - TODAY).days

    def test_the_imported_calls_are_listed_and_filtered(self, coordinator: TestClient) -> None:
        post(coordinator, DROME.read_bytes())
        found = coordinator.get(CALLS, params={"territory": "commune:26362", "q": "agrilocal"})
        # In the title of one, the description of another.
        assert {c["title"] for c in found.json()["items"]} == {
            "Approvisionnement en produits locaux avec la plateforme Agrilocal",
            "Développement d’une alimentation de proximité",
        }
        elsewhere = coordinator.get(CALLS, params={"territory": "departement:13", "q": "agrilocal"})
        assert elsewhere.json()["total"] == 0


class TestRecordShape:
    def test_every_problem_is_listed_by_record_and_field_and_nothing_is_written(
        self, coordinator: TestClient, session: Session
    ) -> None:
        feed = drome()
        feed["results"][0]["perimeter"] = "Atlantide"
        feed["results"][1]["targeted_audiences"] = ["Communes", "Martiens"]
        feed["results"][1]["submission_deadline"] = "31/31/2027"
        feed["results"][2]["name"] = ""
        feed["results"][2]["financers"] = 12
        before = call_count(session)
        response = post(coordinator, as_bytes(feed))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert locs(response) == [
            ["record", 1, "perimeter"],
            ["record", 2, "targeted_audiences"],
            ["record", 2, "submission_deadline"],
            ["record", 3, "name"],
            ["record", 3, "financers"],
        ]
        assert "Atlantide" in response.json()["detail"]
        assert response.json()["detail"].startswith("Fichier refusé, rien n'a été importé")
        assert call_count(session) == before

    def test_a_perimeter_name_is_never_guessed(self, coordinator: TestClient) -> None:
        response = post(coordinator, as_bytes([record(perimeter="Saint-Denis")]))
        assert response.status_code == 422
        message = response.json()["errors"][0]["msg"]
        assert "commune:93066" in message
        assert "commune:97411" in message
        named = post(coordinator, as_bytes([record(perimeter="Saint-Denis (93)")]))
        assert named.status_code == 200, named.text

    @pytest.mark.parametrize(
        ("name", "refs", "nationwide"),
        [
            ("Provence-Alpes-Côte d'Azur", ["region:93"], False),
            ("Métropole d'Aix-Marseille-Provence", ["epci:200054807"], False),
            ("Guadeloupe", ["region:01"], False),
            ("France", [], True),
            ("Europe", [], True),
            ("departement:26", ["departement:26"], False),
        ],
    )
    def test_perimeter_names_of_every_level(
        self,
        coordinator: TestClient,
        session: Session,
        name: str,
        refs: list[str],
        nationwide: bool,
    ) -> None:
        response = post(coordinator, as_bytes([record(perimeter=name)]))
        assert response.status_code == 200, response.text
        call = session.get(Call, response.json()["calls"][0]["id"])
        assert call is not None
        assert [t.ref for t in call.perimeter] == refs
        assert call.nationwide is nationwide

    def test_a_record_for_individuals_only_is_skipped_with_a_note(
        self, coordinator: TestClient, session: Session
    ) -> None:
        feed = drome()
        feed["results"][0]["targeted_audiences"] = ["Particuliers", "Agriculteurs"]
        report = post(coordinator, as_bytes(feed)).json()
        assert (report["created"], report["skipped"]) == (2, 1)
        skipped = report["calls"][0]
        assert skipped["outcome"] == "skipped"
        assert skipped["id"] is None
        assert "Particuliers" in skipped["note"]

    def test_audiences_map_to_kinds_and_legal_forms(
        self, coordinator: TestClient, session: Session
    ) -> None:
        audiences = [
            "Entreprises publiques locales (Sem, Spl, SemOp)",
            "Établissements publics (écoles, bibliothèques…) / Services de l'État",
            "Recherche",
            "Entreprises privées",
        ]
        response = post(coordinator, as_bytes([record(targeted_audiences=audiences)]))
        call = session.get(Call, response.json()["calls"][0]["id"])
        assert call is not None
        assert call.eligible_kinds == ["public_body", "research", "company"]
        assert call.eligible_legal_forms == ["SEM", "SPL", "SEMOP"]

    def test_eligibility_html_dates_several_funders_and_categories(
        self, coordinator: TestClient, session: Session
    ) -> None:
        response = post(
            coordinator,
            as_bytes(
                {
                    "count": 1,
                    "next": "https://example.invalid/page2",
                    "results": [
                        record(
                            id="aap-77",
                            eligibility="<p>Être un <strong>bailleur social</strong>&nbsp;ou une association.</p>",
                            financers=["Banque des Territoires", "Région Sud"],
                            start_date="2027-01-01",
                            submission_deadline="2027-04-15T23:59:00+02:00",
                            categories=["Urbanisme / Logement / Aménagement|Logement et habitat"],
                            origin_url=None,
                            application_url="https://demarches.example/aap-77",
                        )
                    ],
                }
            ),
        )
        assert response.status_code == 200, response.text
        call = session.get(Call, response.json()["calls"][0]["id"])
        assert call is not None
        assert call.external_id == "aap-77"
        assert (call.description or "").endswith(
            "Conditions d'éligibilité :\nÊtre un bailleur social ou une association."
        )
        assert call.funders == ["Banque des Territoires", "Région Sud"]
        assert (call.opens_on, call.deadline) == (date(2027, 1, 1), date(2027, 4, 15))
        assert call.themes == ["Logement et habitat"]
        assert call.url == "https://demarches.example/aap-77"

    def test_records_without_ids_are_told_apart_by_title_funders_and_deadline(
        self, coordinator: TestClient, session: Session
    ) -> None:
        feed = [record(id=None), record(id=None, submission_deadline="2027-05-01")]
        assert post(coordinator, as_bytes(feed)).json()["created"] == 2
        again = post(coordinator, as_bytes(feed)).json()
        assert (again["created"], again["unchanged"]) == (0, 2)
        twice = post(coordinator, as_bytes([record(id=None), record(id=None)]))
        assert twice.status_code == 422
        assert locs(twice) == [["record", 2, "name"]]

    def test_the_networks_own_eligibility_survives_a_reimport(
        self, coordinator: TestClient, session: Session
    ) -> None:
        post(coordinator, DROME.read_bytes())
        call = session.scalar(select(Call).where(Call.external_id == "650"))
        assert call is not None
        patched = coordinator.patch(
            f"{CALLS}/{call.id}",
            json={"eligible_kinds": ["public_body", "landlord"], "eligible_legal_forms": ["OPH"]},
        )
        assert patched.status_code == 200
        report = post(coordinator, DROME.read_bytes()).json()
        assert report["unchanged"] == 3
        session.refresh(call)
        assert call.eligible_kinds == ["public_body", "landlord"]
        assert call.eligible_legal_forms == ["OPH"]

    def test_an_archived_call_stays_archived(
        self, coordinator: TestClient, session: Session
    ) -> None:
        post(coordinator, DROME.read_bytes())
        call = session.scalar(select(Call).where(Call.external_id == "162"))
        assert call is not None
        coordinator.delete(f"{CALLS}/{call.id}")
        changed = drome()
        changed["results"][0]["name"] = "Alimentation de proximité"
        report = post(coordinator, as_bytes(changed)).json()
        assert report["calls"][0]["changes"] == ["title"]
        assert coordinator.get(f"{CALLS}/{call.id}").json()["status"] == "archived"

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (b"{", "JSON invalide"),
            (b'{"count": 0}', "Forme inattendue"),
            (b'{"results": []}', "aucune aide"),
            (b"[1, 2]", "objet JSON"),
            ('[{"name": "é"}]'.encode("latin-1"), "UTF-8"),
        ],
    )
    def test_a_file_that_is_not_the_shape_is_a_422_in_french(
        self, coordinator: TestClient, data: bytes, words: str
    ) -> None:
        response = post(coordinator, data)
        assert response.status_code == 422, response.text
        assert words in response.json()["detail"]


class TestAccessAndTransport:
    def test_members_may_not_import(self, app: FastAPI, session: Session) -> None:
        org = make_organisation(session)
        headers = {"Authorization": bearer(session, AccountRole.member, [org.id])}
        with TestClient(app, raise_server_exceptions=False, headers=headers) as member:
            assert post(member, DROME.read_bytes()).status_code == 403

    def test_a_form_is_a_415(self, coordinator: TestClient) -> None:
        response = post(coordinator, b"a=1", "application/x-www-form-urlencoded")
        assert response.status_code == 415
        assert "application/json" in response.json()["detail"]

    def test_a_dry_run_reports_and_writes_nothing(
        self, coordinator: TestClient, session: Session
    ) -> None:
        before = call_count(session)
        report = post(coordinator, DROME.read_bytes(), dry_run="true").json()
        assert report["dry_run"] is True
        assert report["created"] == 3
        assert {c["id"] for c in report["calls"]} == {None}
        assert call_count(session) == before

    def test_a_source_of_ones_own(self, coordinator: TestClient, session: Session) -> None:
        post(coordinator, DROME.read_bytes(), source="drome")
        assert session.scalar(select(func.count()).where(Call.source == "drome")) == 3
        assert post(coordinator, DROME.read_bytes(), source="Drôme !").status_code == 422


class TestSpreadsheets:
    def test_the_shipped_example_creates_housing_calls_with_embedded_requirements(
        self, coordinator: TestClient, session: Session, app: FastAPI
    ) -> None:
        response = post(coordinator, EXAMPLE.read_bytes(), "text/csv")
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["format"], report["created"]) == ("csv", 6)
        assert [c["record"] for c in report["calls"]] == [2, 3, 4, 5, 6, 7]
        calls = {
            c.external_id: c
            for c in session.scalars(
                select(Call)
                .where(Call.source == "exemple")
                .options(selectinload(Call.perimeter), selectinload(Call.requirements))
            )
        }
        first = calls["EX-2027-01"]
        assert first.funders == ["Région Provence-Alpes-Côte d'Azur", "Banque des Territoires"]
        assert [t.ref for t in first.perimeter] == ["region:93"]
        assert len(first.requirements) == 4
        assert first.eligible_kinds == ["landlord", "association"]
        assert calls["EX-PERM-01"].nationwide
        assert calls["EX-PERM-01"].deadline is None
        assert calls["EX-PERM-01"].eligible_legal_forms == ["OPH", "ESH", "Coopérative Hlm", "SEM"]
        assert {t.ref for t in calls["EX-2027-05"].perimeter} == {
            "departement:84",
            "epci:248400251",
        }
        hashes = {r.content_hash for c in calls.values() for r in c.requirements}
        stored = set(
            session.scalars(
                select(Embedding.content_hash).where(
                    Embedding.model == app.state.matching.space,
                    Embedding.role == REQUIREMENT,
                    Embedding.content_hash.in_(hashes),
                )
            )
        )
        assert stored == hashes
        # An OPH of the Hautes-Alpes may answer the régional call open to landlords, the
        # Alpine one open to OPH and ESH, and the national one open to every Hlm form.
        titles = [
            c["title"]
            for c in coordinator.get(
                CALLS, params={"territory": "departement:05", "legal_form": "OPH"}
            ).json()["items"]
        ]
        assert titles == [
            "Appel à projets « Réhabiliter avec les habitants »",
            "Tiers-lieux et locaux communs résidentiels dans les Alpes du Sud",
            "Précarité énergétique : accompagner les locataires vers la sobriété",
        ]
        again = post(coordinator, EXAMPLE.read_bytes(), "text/csv").json()
        assert (again["created"], again["unchanged"]) == (0, 6)

    def test_an_empty_cell_leaves_the_value_a_given_one_replaces_it(
        self, coordinator: TestClient, session: Session
    ) -> None:
        row = {
            "titre": "Appel à projets Quartiers fertiles",
            "financeurs": "ANRU",
            "perimetre": "Bouches-du-Rhône",
            "exigences": "Un bailleur qui met le foncier à disposition | Une association d'agriculture urbaine",
            "date_limite": "30/06/2027",
            "identifiant": "QF-1",
        }
        assert post(coordinator, csv_of([row]), "text/csv").json()["created"] == 1
        update = {"titre": row["titre"], "identifiant": "QF-1", "url": "https://anru.example/qf"}
        report = post(coordinator, csv_of([update]), "text/csv").json()
        assert report["calls"][0]["changes"] == ["url"]
        call = session.scalar(select(Call).where(Call.external_id == "QF-1"))
        assert call is not None
        assert call.funders == ["ANRU"]
        assert call.deadline == date(2027, 6, 30)
        assert [r.text for r in call.requirements] == [
            "Un bailleur qui met le foncier à disposition",
            "Une association d'agriculture urbaine",
        ]

    def test_problems_by_row_and_column(self, coordinator: TestClient, session: Session) -> None:
        rows = [
            {
                "titre": "AAP un",
                "perimetre": "departement:13",
                "types_eligibles": "bailleurs, martiens",
            },
            {"titre": "AAP deux", "perimetre": "Atlantide", "date_limite": "2027-02-30"},
            {"titre": "AAP trois"},
            {"titre": "", "perimetre": "region:93"},
        ]
        before = call_count(session)
        response = post(coordinator, csv_of(rows), "text/csv")
        assert response.status_code == 422
        assert locs(response) == [
            ["row", 2, "types_eligibles"],
            ["row", 3, "perimetre"],
            ["row", 3, "date_limite"],
            ["row", 4, "perimetre"],
            ["row", 5, "titre"],
        ]
        assert call_count(session) == before

    def test_an_unknown_column_refuses_the_file(self, coordinator: TestClient) -> None:
        response = post(coordinator, b"titre;couleur\nAAP;rouge\n", "text/csv")
        assert response.status_code == 422
        assert "couleur" in response.json()["detail"]

    def test_xlsx_dates_are_read_as_dates(self, coordinator: TestClient, session: Session) -> None:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["Titre", "Périmètre", "Date limite", "Types éligibles"])
        sheet.append(["AAP en classeur", "Vaucluse", date(2027, 9, 1), "bailleur"])
        out = io.BytesIO()
        book.save(out)
        response = post(coordinator, out.getvalue(), XLSX_MEDIA_TYPE)
        assert response.status_code == 200, response.text
        call = session.get(Call, response.json()["calls"][0]["id"])
        assert call is not None
        assert call.deadline == date(2027, 9, 1)


class TestHtml:
    def test_plain_text_keeps_paragraphs_and_items_and_drops_markup(self) -> None:
        html = "<p>Un&nbsp;projet</p><ul><li>jardins</li><li><ul><li>eau</li></ul></li></ul><br><br><br>Fin &amp; suite"
        assert plain_text(html) == "Un projet\n\n  * jardins\n      + eau\n\nFin & suite"

    def test_text_without_markup_is_kept(self) -> None:
        assert plain_text("a < b et\nc > d ") == "a < b et\nc > d"


# --- the command line ---------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_in_test_transaction(
    connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The commands' transactions become savepoints of the test's: rolled back with it."""

    def factory(_bind: object) -> sessionmaker[Session]:
        return sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    monkeypatch.setattr(import_commands, "database", lambda _settings: connection)
    monkeypatch.setattr(import_commands, "make_session_factory", factory)
    monkeypatch.setattr(kit_commands, "make_session_factory", factory)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_in_test_transaction")
class TestCommandLine:
    def test_import_a_file_then_the_same_from_standard_input(self, session: Session) -> None:
        first = runner.invoke(cli_app, ["import", "calls", str(DROME)])
        assert first.exit_code == 0, first.output
        assert "3 créé(s), 0 modifié(s), 0 inchangé(s)" in first.output
        again = runner.invoke(cli_app, ["import", "calls", "-"], input=DROME.read_bytes())
        assert again.exit_code == 0, again.output
        assert "0 créé(s), 0 modifié(s), 3 inchangé(s)" in again.output

    def test_a_change_is_told(self, session: Session, tmp_path: Path) -> None:
        runner.invoke(cli_app, ["import", "calls", str(DROME)])
        feed = copy.deepcopy(drome())
        feed["results"][2]["submission_deadline"] = "2027-02-28"
        changed = tmp_path / "drome.json"
        changed.write_bytes(as_bytes(feed))
        result = runner.invoke(cli_app, ["import", "calls", str(changed)])
        assert result.exit_code == 0, result.output
        assert "Modifié : « Approvisionnement en produits locaux" in result.output
        assert "(deadline)" in result.output

    def test_a_refused_file_lists_its_problems_by_record(
        self, session: Session, tmp_path: Path
    ) -> None:
        bad = tmp_path / "aides.json"
        bad.write_bytes(as_bytes([record(perimeter="Atlantide")]))
        before = call_count(session)
        result = runner.invoke(cli_app, ["import", "calls", str(bad)], env={"COLUMNS": "200"})
        assert result.exit_code == 1
        assert "Enregistrement" in result.output
        assert "Atlantide" in result.output
        assert "Traceback" not in result.output
        assert call_count(session) == before

    def test_a_missing_file_and_a_bad_source(self, tmp_path: Path) -> None:
        missing = runner.invoke(cli_app, ["import", "calls", str(tmp_path / "absent.json")])
        assert missing.exit_code == 2
        assert "introuvable" in missing.output
        bad = runner.invoke(cli_app, ["import", "calls", "--source", "Drôme", str(DROME)])
        assert bad.exit_code == 2

    def test_dry_run(self, session: Session) -> None:
        before = call_count(session)
        result = runner.invoke(cli_app, ["import", "calls", "--dry-run", str(EXAMPLE)])
        assert result.exit_code == 0, result.output
        assert "rien n'est enregistré" in result.output
        assert "6 créé(s)" in result.output
        assert call_count(session) == before


def test_requirement_embeddings_are_keyed_by_content_hash() -> None:
    assert content_hash("Un  bailleur ") == content_hash("Un bailleur")
