"""Bulk onboarding: the organisations spreadsheet imported (all or nothing, again without
change) and exported back, through the API and the command line."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.imports import commands as import_commands
from api.imports.formats import COLUMNS, XLSX_MEDIA_TYPE, read_table, write_csv
from api.imports.rows import group_rows, territory_tokens
from api.kit import commands as kit_commands
from api.kit.settings import get_settings
from models import Embedding, Organisation, Statement
from models.enums import AccountRole, Visibility
from tests.conftest import FIXTURES, bearer

IMPORTS = "/api/v1/imports/organisations"
EXPORTS = "/api/v1/exports/organisations"
EXAMPLE_CSV = FIXTURES / "examples" / "organisations.csv"
EXAMPLE_XLSX = FIXTURES / "examples" / "organisations.xlsx"
EXAMPLE_NAMES = {
    "Provence Azur Habitat",
    "Côte d'Azur Logement Solidaire",
    "Coopérative Hlm Les Oliviers du Var",
    "Habitat des Alpes du Sud",
    "Association Habiter Ensemble en Vaucluse",
    "Maison de l'habitat Durance-Bléone",
}
CSV = "text/csv"


def post(client: TestClient, data: bytes, media_type: str = CSV, **params: Any) -> Any:
    return client.post(IMPORTS, content=data, headers={"Content-Type": media_type}, params=params)


def organisation_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Organisation)) or 0


def example(kind: str) -> tuple[bytes, str]:
    if kind == "xlsx":
        return EXAMPLE_XLSX.read_bytes(), XLSX_MEDIA_TYPE
    return EXAMPLE_CSV.read_bytes(), CSV


def xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_of(rows: list[dict[str, str]]) -> bytes:
    return write_csv([[row.get(c, "") for c in COLUMNS] for row in rows])


def locs(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json().get("errors", [])]


@pytest.fixture
def coordinator(app: FastAPI, session: Session) -> Iterator[TestClient]:
    headers = {"Authorization": bearer(session, AccountRole.coordinator)}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        yield c


class TestShippedExample:
    @pytest.mark.parametrize("kind", ["csv", "xlsx"])
    def test_the_example_creates_its_organisations_embedded_and_searchable(
        self, coordinator: TestClient, session: Session, app: FastAPI, kind: str
    ) -> None:
        data, media_type = example(kind)
        response = post(coordinator, data, media_type)
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["created"], report["updated"], report["unchanged"]) == (6, 0, 0)
        assert report["statements_added"] == 12
        assert report["contacts_added"] == 4
        assert {o["name"] for o in report["organisations"]} == EXAMPLE_NAMES
        assert [o["row"] for o in report["organisations"]] == [2, 5, 7, 9, 11, 13]

        orgs = {
            o.name: o
            for o in session.scalars(
                select(Organisation).where(Organisation.name.in_(EXAMPLE_NAMES))
            )
        }
        provence = orgs["Provence Azur Habitat"]
        assert provence.siren == "913201455"
        assert {t.ref for t in provence.territories} == {"commune:13055", "epci:200054807"}
        assert [c.name for c in provence.contacts] == ["Sophie Marchetti"]
        private = [s for s in provence.statements if s.visibility == Visibility.coordinator]
        assert len(private) == 1
        assert "gestion de proximité" in private[0].text
        assert private[0].themes == ["gestion de proximité"]
        # Embedded in the same transaction: every statement and profile has its vector.
        space = app.state.matching.space
        hashes = {s.content_hash for o in orgs.values() for s in o.statements}
        hashes |= {o.profile_hash for o in orgs.values() if o.profile_hash}
        stored = set(
            session.scalars(
                select(Embedding.content_hash).where(
                    Embedding.model == space, Embedding.content_hash.in_(hashes)
                )
            )
        )
        assert stored == hashes
        # And the matching index follows: the next search finds them.
        found = coordinator.get(
            "/api/v1/search/organisations",
            params={"q": "adaptation des logements au vieillissement"},
        )
        assert found.status_code == 200, found.text
        assert "Côte d'Azur Logement Solidaire" in found.text

    def test_importing_twice_creates_nothing_new(
        self, coordinator: TestClient, session: Session
    ) -> None:
        data, media_type = example("xlsx")
        assert post(coordinator, data, media_type).json()["created"] == 6
        count = organisation_count(session)
        statements = session.scalar(select(func.count()).select_from(Statement))
        again = post(coordinator, data, media_type).json()
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 6)
        assert again["statements_added"] == again["contacts_added"] == 0
        # The CSV says the same as the XLSX: nothing changes either.
        csv_report = post(coordinator, EXAMPLE_CSV.read_bytes()).json()
        assert (csv_report["created"], csv_report["updated"], csv_report["unchanged"]) == (0, 0, 6)
        assert organisation_count(session) == count
        assert session.scalar(select(func.count()).select_from(Statement)) == statements

    def test_a_dry_run_tells_and_writes_nothing(
        self, coordinator: TestClient, session: Session
    ) -> None:
        before = organisation_count(session)
        report = post(coordinator, EXAMPLE_CSV.read_bytes(), dry_run="true").json()
        assert report["dry_run"] is True
        assert report["created"] == 6
        assert all(o["id"] is None for o in report["organisations"])
        assert organisation_count(session) == before

    def test_a_later_file_completes_without_erasing(
        self, coordinator: TestClient, session: Session
    ) -> None:
        post(coordinator, EXAMPLE_CSV.read_bytes())
        later = csv_of(
            [
                {
                    "nom": "provence  azur habitat",  # matched by name, whatever the case
                    "site_web": "https://www.provence-azur-habitat.example",
                    "type_enonce": "besoin",
                    "enonce": "Former les gardiens à l'accueil des nouveaux locataires.",
                },
                {
                    "nom": "Habitat des Alpes du Sud",
                    "type_enonce": "besoin",
                    "enonce": "Réduire les charges de chauffage des locataires : sensibilisation "
                    "aux écogestes et suivi des consommations.",
                    "visibilite": "coordination",
                },
            ]
        )
        report = post(coordinator, later).json()
        assert (report["created"], report["updated"], report["unchanged"]) == (0, 2, 0)
        assert report["statements_added"] == 1
        assert report["statements_changed"] == 1
        provence = session.scalar(select(Organisation).where(Organisation.siren == "913201455"))
        assert provence is not None
        assert provence.website == "https://www.provence-azur-habitat.example"
        assert provence.name == "provence azur habitat"
        assert len(provence.statements) == 4  # none erased
        assert (provence.description or "").startswith("Office public")


def example_with(old: str, new: str) -> bytes:
    text = EXAMPLE_CSV.read_bytes().decode("utf-8-sig")
    assert old in text
    return text.replace(old, new, 1).encode("utf-8-sig")


class TestRefusedFiles:
    def test_one_bad_insee_code_creates_nothing_and_names_row_and_column(
        self, coordinator: TestClient, session: Session
    ) -> None:
        before = organisation_count(session)
        response = post(coordinator, example_with("commune:05061", "commune:05999"))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["errors"] == [
            {"loc": ["row", 9, "territoires"], "msg": body["errors"][0]["msg"], "type": "import"}
        ]
        assert "05999" in body["errors"][0]["msg"]
        assert "Ligne 9, colonne territoires" in body["detail"]
        assert organisation_count(session) == before

    def test_the_same_in_an_xlsx_copy(self, coordinator: TestClient, session: Session) -> None:
        book = openpyxl.load_workbook(EXAMPLE_XLSX)
        sheet = book.active
        assert sheet is not None
        column = COLUMNS.index("territoires") + 1
        sheet.cell(row=11, column=column, value="84007, commune:84999")
        out = io.BytesIO()
        book.save(out)
        before = organisation_count(session)
        response = post(coordinator, out.getvalue(), XLSX_MEDIA_TYPE)
        assert response.status_code == 422, response.text
        assert locs(response) == [["row", 11, "territoires"]]
        assert organisation_count(session) == before

    def test_every_problem_is_listed_in_french_by_row_and_column(
        self, coordinator: TestClient, session: Session
    ) -> None:
        rows = [
            {"nom": "Habitat Un", "type": "bailleur", "siren": "732829321"},  # bad Luhn key
            {"nom": "", "type": "association"},
            {"nom": "Habitat Deux", "type": "château"},
            {"nom": "Habitat Trois", "type": "bailleur", "site_web": "habitat-trois.example"},
            {"nom": "Habitat Trois", "type": "bailleur"},  # adds nothing: a duplicate row
            {
                "nom": "Habitat Quatre",
                "type": "bailleur",
                "type_enonce": "besoin",
                "enonce": "Un local",
            },
            {"nom": "Habitat Quatre", "type_enonce": "besoin", "enonce": "un   LOCAL"},
            {"nom": "Habitat Cinq", "territoires": "93"},  # no type, ambiguous code
        ]
        before = organisation_count(session)
        response = post(coordinator, csv_of(rows))
        assert response.status_code == 422
        got = locs(response)
        assert ["row", 2, "siren"] in got
        assert ["row", 3, "nom"] in got
        assert ["row", 4, "type"] in got
        assert ["row", 5, "site_web"] in got
        assert ["row", 6, "nom"] in got
        assert ["row", 8, "enonce"] in got
        assert ["row", 9, "type"] in got
        assert ["row", 9, "territoires"] in got
        messages = " ".join(e["msg"] for e in response.json()["errors"])
        assert "clé de contrôle" in messages
        assert "double" in messages
        assert organisation_count(session) == before

    def test_a_siren_of_the_file_taken_by_another_name_is_refused(
        self, coordinator: TestClient
    ) -> None:
        post(coordinator, EXAMPLE_CSV.read_bytes())
        response = post(
            coordinator,
            csv_of([{"nom": "Habitat Dissident", "type": "bailleur", "siren": "918404625"}]),
        )
        # Matched by SIREN: the file renames the organisation, which is its right.
        assert response.status_code == 200, response.text
        assert response.json()["updated"] == 1
        clash = post(
            coordinator,
            csv_of([{"nom": "Provence Azur Habitat", "siren": "732829320", "type": "bailleur"}]),
        )
        assert clash.status_code == 422
        assert locs(clash) == [["row", 2, "siren"]]

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"   \n",
            b"\x00\x01\x02 garbage \xff\xfe",
            bytes(range(256)) * 20,
            b"PK\x03\x04 not a zip at all",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old xls",
            b"nom;type;siren\n",  # a header and nothing else
            b"name;kind\nA;landlord\n",  # English columns
            b'nom;description\n"never closed;x\n',
            b"nom;description\nA;" + b"x" * 200_000 + b"\n",  # a huge cell
            b"nom\xe9;type\n\xff\xfe;\x81\n",
        ],
    )
    def test_no_file_is_a_server_error(self, coordinator: TestClient, data: bytes) -> None:
        for media_type in (CSV, XLSX_MEDIA_TYPE, "application/octet-stream"):
            response = post(coordinator, data, media_type)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["errors"]

    def test_spreadsheet_cells_of_the_wrong_kind_are_named(self, coordinator: TestClient) -> None:
        data = xlsx(
            [
                ["nom", "type", "description", "enonce", "type_enonce"],
                ["Habitat Formule", "bailleur", '=CONCATENATE("a","b")', None, None],
                ["Habitat Date", "bailleur", datetime(2026, 1, 13), None, None],
                ["Habitat Vrai", "bailleur", True, None, None],
            ]
        )
        response = post(coordinator, data, XLSX_MEDIA_TYPE)
        assert response.status_code == 422
        errors = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
        assert "Formule" in errors[("row", 2, "description")]
        assert "date" in errors[("row", 3, "description")]
        assert "VRAI" in errors[("row", 4, "description")]

    def test_numbers_typed_in_a_spreadsheet_keep_their_codes(
        self, coordinator: TestClient, session: Session
    ) -> None:
        # Excel turns 01053 (Bourg-en-Bresse) into the number 1053, and a SIREN into a number.
        data = xlsx(
            [
                ["nom", "type", "siren", "territoires"],
                ["Habitat de l'Ain", "bailleur", 732829320, 1053],
            ]
        )
        response = post(coordinator, data, XLSX_MEDIA_TYPE)
        assert response.status_code == 200, response.text
        org = session.scalar(select(Organisation).where(Organisation.siren == "732829320"))
        assert org is not None
        assert [t.ref for t in org.territories] == ["commune:01053"]

    def test_a_windows_1252_file_with_commas_reads_as_excel_wrote_it(
        self, coordinator: TestClient, session: Session
    ) -> None:
        text = 'nom,type,territoires\r\n"Société Énergie, Bléone",entreprise,"04070, 1053"\r\n'
        response = post(coordinator, text.encode("cp1252"))
        assert response.status_code == 200, response.text
        org = session.scalar(
            select(Organisation).where(Organisation.name == "Société Énergie, Bléone")
        )
        assert org is not None
        assert sorted(t.ref for t in org.territories) == ["commune:01053", "commune:04070"]

    def test_json_or_forms_are_415_and_a_large_file_413(
        self, coordinator: TestClient, app: FastAPI
    ) -> None:
        assert coordinator.post(IMPORTS, json={}).status_code == 415
        form = coordinator.post(IMPORTS, files={"fichier": ("a.csv", b"nom\nA\n", "text/csv")})
        assert form.status_code == 415
        app.state.settings.import_max_bytes = 2048
        large = post(coordinator, b"nom\n" + b"Habitat\n" * 1000)
        assert large.status_code == 413
        assert large.headers["content-type"] == "application/problem+json"
        assert "trop volumineux" in large.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b"nom\n"
            for _ in range(100):
                yield b"Habitat\n" * 10

        streamed = coordinator.post(IMPORTS, content=chunks(), headers={"Content-Type": CSV})
        assert streamed.status_code == 413


def table_of(data: bytes) -> list[tuple[Any, ...]]:
    """What a file says, organisation by organisation, order aside."""
    out = []
    for group in group_rows(read_table(data)):
        assert group.data is not None
        out.append(
            (
                group.name,
                group.kind,
                group.siren,
                group.data.legal_form,
                group.data.website,
                group.data.description,
                sorted(group.data.territories),
                sorted(
                    (s.kind, s.text, s.visibility, tuple(s.themes)) for s in group.data.statements
                ),
                sorted((c.name, c.role, c.email, c.phone) for c in group.data.contacts),
            )
        )
    return sorted(out)


class TestExport:
    @pytest.mark.parametrize("kind", ["csv", "xlsx"])
    def test_export_then_import_round_trips(
        self, coordinator: TestClient, session: Session, kind: str
    ) -> None:
        post(coordinator, EXAMPLE_CSV.read_bytes())
        # Through the API too, with what a spreadsheet finds awkward.
        created = coordinator.post(
            "/api/v1/organisations",
            json={
                "name": "=Habitat Formule",
                "kind": "research",
                "territories": ["commune:01053", "departement:2A"],
                "statements": [
                    {"kind": "need", "text": "- Un texte qui commence par un tiret; et un ;"},
                    {"kind": "competency", "text": 'Des "guillemets"', "visibility": "coordinator"},
                ],
                "contacts": [{"name": "Zoé", "phone": "+33 4 00 00 00 00"}],
            },
        )
        assert created.status_code == 201, created.text
        exported = coordinator.get(EXPORTS, params={"format": kind})
        assert exported.status_code == 200
        assert f"organisations.{kind}" in exported.headers["content-disposition"]
        data = exported.content
        media_type = XLSX_MEDIA_TYPE if kind == "xlsx" else CSV
        again = post(coordinator, data, media_type).json()
        total = organisation_count_active(session)
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, total)
        assert coordinator.get(EXPORTS, params={"format": kind}).content == data or kind == "xlsx"
        # What the example says, the export says again.
        mine = [row for row in table_of(data) if row[0] in EXAMPLE_NAMES]
        assert mine == table_of(EXAMPLE_CSV.read_bytes())
        formula = next(row for row in table_of(data) if row[0] == "=Habitat Formule")
        assert formula[6] == ["commune:01053", "departement:2A"]
        assert formula[7][0][1] == 'Des "guillemets"'
        assert formula[7][0][2] == Visibility.coordinator

    def test_csv_opens_in_excel_as_is(self, coordinator: TestClient) -> None:
        post(coordinator, EXAMPLE_CSV.read_bytes())
        data = coordinator.get(EXPORTS).content
        assert data.startswith(b"\xef\xbb\xbfnom;type;")
        assert "Provence Azur Habitat" in data.decode("utf-8-sig")


def organisation_count_active(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.archived_at.is_(None))
        )
        or 0
    )


class TestPermissions:
    def test_a_member_may_neither_import_nor_export(
        self, app: FastAPI, session: Session, coordinator: TestClient
    ) -> None:
        post(coordinator, EXAMPLE_CSV.read_bytes())
        org_id = session.scalar(select(Organisation.id).where(Organisation.siren == "913201455"))
        assert org_id is not None
        headers = {"Authorization": bearer(session, AccountRole.member, [org_id])}
        with TestClient(app, raise_server_exceptions=False, headers=headers) as member:
            refused = post(member, EXAMPLE_CSV.read_bytes())
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            assert member.get(EXPORTS).status_code == 403


def test_territory_cells_read_as_people_type_them() -> None:
    assert territory_tokens("commune : 13001; 1053\n2A004, epci:200054807") == [
        "commune:13001",
        "01053",
        "2A004",
        "epci:200054807",
    ]
    assert territory_tokens("commune:1053") == ["commune:01053"]


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
    def test_import_twice_then_export(self, session: Session, tmp_path: Path) -> None:
        first = runner.invoke(cli_app, ["import", "organisations", str(EXAMPLE_XLSX)])
        assert first.exit_code == 0, first.output
        assert "6 créée(s), 0 modifiée(s), 0 inchangée(s)" in first.output
        second = runner.invoke(cli_app, ["import", "organisations", str(EXAMPLE_CSV)])
        assert second.exit_code == 0, second.output
        assert "0 créée(s), 0 modifiée(s), 6 inchangée(s)" in second.output
        names = set(session.scalars(select(Organisation.name)))
        assert names >= EXAMPLE_NAMES

        out = tmp_path / "export.xlsx"
        exported = runner.invoke(cli_app, ["export", "organisations", "-o", str(out)])
        assert exported.exit_code == 0, exported.output
        assert read_table(out.read_bytes()).format == "xlsx"
        text = runner.invoke(cli_app, ["export", "organisations", "--format", "csv"])
        assert text.exit_code == 0
        assert "Provence Azur Habitat" in text.output

    def test_a_refused_file_lists_its_problems_and_writes_nothing(
        self, session: Session, tmp_path: Path
    ) -> None:
        bad = tmp_path / "membres.csv"
        bad.write_bytes(example_with("commune:05061", "commune:05999"))
        before = organisation_count(session)
        result = runner.invoke(
            cli_app, ["import", "organisations", str(bad)], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 1
        assert "territoires" in result.output
        assert "05999" in result.output
        assert "Traceback" not in result.output
        assert organisation_count(session) == before

    def test_dry_run(self, session: Session) -> None:
        before = organisation_count(session)
        result = runner.invoke(cli_app, ["import", "organisations", "--dry-run", str(EXAMPLE_CSV)])
        assert result.exit_code == 0, result.output
        assert "rien n'est enregistré" in result.output
        assert organisation_count(session) == before
