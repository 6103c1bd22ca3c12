"""The `maillage` command line, as a user types it."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.accounts.service import authenticate
from api.cli import app
from api.kit.errors import Unauthorized
from api.kit.settings import get_settings
from api.matching import engine as matching_service
from matcher.encoders import PASSAGE, QUERY
from matcher.text import NORMALISATION_VERSION, fold
from models import Embedding, migrate
from models.db import make_engine
from models.enums import AccountRole
from tests.factories import make_organisation
from tests.fakes import FakeEncoder

runner = CliRunner()
DEMO_TOKEN = re.compile(r"membre de [^:\n]+ : (mlg_\S+)")
DEMO_RUNS_ON_SQLITE = "the demo runs on the embedded SQLite database; covered by the SQLite run"


@pytest.fixture
def cli_env(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the CLI at the test database (migrated, territories loaded)."""
    monkeypatch.setenv("MAILLAGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
class TestTerritoryLookup:
    def test_unknown_place_gets_a_clear_message_not_a_traceback(self) -> None:
        result = runner.invoke(app, ["territories", "lookup", "Encagnane"])
        assert result.exit_code == 1
        assert "Aucun territoire ne correspond à « Encagnane »" in result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)

    def test_insee_code_and_name(self) -> None:
        result = runner.invoke(app, ["territories", "lookup", "13001"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert "commune:13001" in result.output
        assert "Aix-en-Provence" in result.output
        result = runner.invoke(app, ["territories", "lookup", "ajaccio"], env={"COLUMNS": "200"})
        assert "commune:2A004" in result.output

    @pytest.mark.parametrize(
        ("typed", "ref"),
        [
            ("Marseille 1er Arrondissement", "arrondissement:13201"),
            ("Paris 8e Arrondissement", "arrondissement:75108"),
            ("Lyon 3ème", "arrondissement:69383"),
            ("Marseille 13e", "arrondissement:13213"),
        ],
    )
    def test_names_with_digits_are_searched_by_name(self, typed: str, ref: str) -> None:
        result = runner.invoke(app, ["territories", "lookup", typed], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert ref in result.output

    @pytest.mark.parametrize(
        ("typed", "ref", "said"),
        [
            ("85307", "commune:85001", "La Faute-sur-Mer (85307)"),
            ("La Faute-sur-Mer", "commune:85001", "commune déléguée"),
            ("Cordieux", "commune:01262", "commune associée"),
        ],
    )
    def test_former_communes_give_the_current_one(self, typed: str, ref: str, said: str) -> None:
        result = runner.invoke(app, ["territories", "lookup", typed], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert ref in result.output
        assert said in result.output

    def test_postal_code_whose_zero_was_lost(self) -> None:
        result = runner.invoke(app, ["territories", "lookup", "1500"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "commune:01004" in result.output  # Ambérieu-en-Bugey
        assert "lu comme 01500" in result.output

    def test_bare_93_shows_both_departement_and_region(self) -> None:
        result = runner.invoke(app, ["territories", "lookup", "93"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert "departement:93" in result.output
        assert "region:93" in result.output


class TestReindex:
    """`maillage reindex` after MAILLAGE_MODEL changed, on a database of its own."""

    def test_a_new_model_gets_every_text_encoded_and_the_old_vectors_stay_apart(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = f"sqlite:///{tmp_path / 'reindex.sqlite3'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        shared = "Animation de jardins partagés avec les locataires"
        with Session(engine) as session, session.begin():
            make_organisation(session, territories=[], competencies=[shared], needs=[shared])
        encoders: dict[str, FakeEncoder] = {}
        monkeypatch.setattr(
            matching_service,
            "dense_encoder",
            lambda model: encoders.setdefault(
                model, FakeEncoder(model, 8, role_aware=model == "retrieval-model")
            ),
        )
        monkeypatch.setenv("MAILLAGE_DATABASE_URL", url)
        monkeypatch.setenv("MAILLAGE_THESAURUS", "")

        def reindex(model: str) -> str:
            monkeypatch.setenv("MAILLAGE_MODEL", model)
            get_settings.cache_clear()
            result = runner.invoke(app, ["reindex"], env={"COLUMNS": "200"})
            get_settings.cache_clear()
            assert result.exit_code == 0, result.output
            return result.output

        # competency, need and profile: one text, encoded once by a role-blind model
        assert "3 textes, 3 encodés" in reindex("plain-model")
        # The encoder reads texts normalised for matching (case, apostrophes...).
        assert [
            (role, [fold(t) for t in texts]) for role, texts in encoders["plain-model"].calls
        ] == [(PASSAGE, [fold(shared)])]
        assert "3 textes, 0 encodés" in reindex("plain-model")
        assert "3 textes, 3 encodés" in reindex("retrieval-model")
        assert sorted(role for role, _ in encoders["retrieval-model"].calls) == [PASSAGE, QUERY]
        with Session(engine) as session:
            counts = dict(
                session.execute(
                    select(Embedding.model, func.count()).group_by(Embedding.model)
                ).all()
            )
        suffix = f"+norm{NORMALISATION_VERSION}"  # the space also names the normalisation
        assert counts == {"plain-model" + suffix: 3, "retrieval-model" + suffix: 3}
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
class TestDemo:
    """`maillage demo` on a fresh embedded database, as the README's quick start runs it."""

    def test_demo_serves_the_demo_organisations_and_territories(
        self, tmp_path: Path, on_postgres: bool
    ) -> None:
        if on_postgres:
            pytest.skip(reason=DEMO_RUNS_ON_SQLITE)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILLAGE_")}
        env["MAILLAGE_DATA_DIR"] = str(tmp_path)
        maillage = Path(sys.executable).parent / "maillage"
        # The server's log goes to a file: a pipe nobody reads would fill up and block it.
        log = (tmp_path / "server.log").open("w")
        proc = subprocess.Popen(
            [str(maillage), "demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            body = None
            headers: dict[str, str] = {}
            # Bounded wait for the server, 600 s at most: the demo embeds its 50 organisations
            # first (about 30 s with e5+USE on two idle cores, over 2 minutes on a busy machine).
            for _ in range(1200):
                if proc.poll() is not None:
                    break
                try:
                    printed = DEMO_TOKEN.search((tmp_path / "server.log").read_text())
                    if printed is None:  # the guide is printed before the server starts
                        time.sleep(0.5)
                        continue
                    headers = {"Authorization": f"Bearer {printed.group(1)}"}
                    anonymous = httpx.get(f"{base}/api/v1/organisations")
                    assert anonymous.status_code == 401
                    assert anonymous.headers["content-type"] == "application/problem+json"
                    assert "jeton" in anonymous.json()["detail"]
                    response = httpx.get(
                        f"{base}/api/v1/organisations", params={"limit": 200}, headers=headers
                    )
                    body = response.json()
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            assert body is not None, (tmp_path / "server.log").read_text()
            assert body["total"] >= 40
            aix = httpx.get(f"{base}/api/v1/territories/13001").json()
            assert aix["name"] == "Aix-en-Provence"
            assert aix["epci"]["name"] == "Métropole d'Aix-Marseille-Provence"
            assert (aix["departement"]["code"], aix["region"]["code"]) == ("13", "93")
            assert httpx.get(f"{base}/openapi.json").status_code == 200
            # Through the real HTTP server, a 100,000-character query is a clear problem.
            # (httpx will not build so long a URL: http.client sends it as a user's tool would.)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/v1/search/organisations?q=" + "x" * 100_000, headers=headers)
            long = conn.getresponse()
            assert long.status == 422
            assert long.getheader("content-type", "").startswith("application/problem+json")
            assert "2000" in json.loads(long.read())["detail"]
            conn.close()
            found = httpx.get(
                f"{base}/api/v1/search/organisations",
                params={"q": "auto-réhabilitation accompagnée", "territory": "departement:13"},
                headers=headers,
                timeout=120,
            ).json()
            assert "items" in found, found
            assert found["items"][0]["organisation"]["name"] == "Association L'Établi des Habitants"
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
        # A second run reuses the database instead of failing or duplicating.
        rerun = subprocess.run(
            [str(maillage), "demo", "--no-serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "déjà chargé" in rerun.stdout


class TestBench:
    def test_small_bench_prints_every_figure_as_json(self) -> None:
        """Not a timing test: the command runs end to end and reports each figure."""
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "--organisations",
                "20",
                "--statements",
                "60",
                "--queries",
                "5",
                "--calls",
                "12",
                "--backend",
                "sqlite",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        *_, line, composer_line, digest_line = result.output.strip().splitlines()
        figures = json.loads(line)
        assert figures["backend"] == "sqlite"
        for key in (
            "search_p95_ms",
            "partners_p95_ms",
            "indexing_statements_per_s",
            "first_search_after_write_seconds",
            "peak_memory_mb",
            "floor_p95_ms",
        ):
            assert figures[key] > 0, key
        composer = json.loads(composer_line)
        assert composer["candidates"] == 20
        for key in ("calibrated_p50_ms", "uniform_p50_ms", "small_optimal_share"):
            assert composer[key] > 0, key
        assert composer["small_worst_ratio"] >= 1 - 1 / 2.718281828
        digest = json.loads(digest_line)
        assert (digest["organisations"], digest["calls"]) == (20, 12)
        assert digest["sent"] == digest["received"] > 0
        assert digest["sent"] + digest["empty"] == digest["subscriptions"] == 20
        for key in ("build_seconds", "send_seconds", "total_seconds"):
            assert digest[key] > 0, key

    def test_the_composer_section_runs_alone(self) -> None:
        result = CliRunner().invoke(
            app, ["bench", "--only", "composer", "--organisations", "30", "--json"]
        )
        assert result.exit_code == 0, result.output
        figures = json.loads(result.output.strip().splitlines()[-1])
        assert figures["candidates"] == 30
        assert "backend" not in figures

    def test_an_unknown_section_is_refused(self) -> None:
        result = CliRunner().invoke(app, ["bench", "--only", "tout"])
        assert result.exit_code == 2

    @pytest.mark.slow
    def test_small_load_bench_reports_every_kind(self) -> None:
        """Not a timing test: a server process starts, takes writers and readers, and every
        kind of request is counted; nothing lost."""
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "load",
                "--writers",
                "6",
                "--readers",
                "3",
                "--rounds",
                "1",
                "--backend",
                "sqlite",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.output.strip().splitlines()[-1])
        assert report["backend"] == "sqlite"
        kinds = {k["kind"]: k for k in report["kinds"]}
        for kind in ("organisation", "statement", "dismissal", "retry", "search", "partners"):
            assert kinds[kind]["requests"] > 0, kind
        assert report["lost_writes"] == []
        assert report["server_errors"] == 0


@pytest.mark.usefixtures("cli_env")
class TestTokens:
    def test_create_list_and_revoke(self, engine: Engine) -> None:
        created = runner.invoke(
            app,
            [
                "tokens",
                "create",
                "--role",
                "coordinator",
                "--name",
                "Poste de la coordination",
                "--expires",
                "2099-12-31",
            ],
        )
        assert created.exit_code == 0, created.output
        secret = created.output.strip().splitlines()[-1]
        assert secret.startswith("mlg_")
        with Session(engine) as session:
            principal = authenticate(session, secret)
        assert principal.role == AccountRole.coordinator
        prefix = secret.split("_")[1]
        listed = runner.invoke(app, ["tokens", "list"], env={"COLUMNS": "200"})
        assert prefix in listed.output
        assert secret.split("_", 2)[2] not in listed.output
        assert runner.invoke(app, ["tokens", "revoke", prefix]).exit_code == 0
        with Session(engine) as session, pytest.raises(Unauthorized):
            authenticate(session, secret)

    def test_mistakes_get_french_messages(self) -> None:
        for args, message in (
            (["tokens", "create"], "--role"),
            (["tokens", "create", "--role", "member"], "admin ou coordinator"),
            (["tokens", "create", "--organisation", "999999"], "Aucune organisation n° 999999"),
            (["tokens", "create", "--role", "admin", "--expires", "demain"], "illisible"),
            (["tokens", "create", "--role", "admin", "--expires", "2001-01-01"], "déjà passée"),
            (["tokens", "revoke", "inconnu"], "Aucun jeton"),
        ):
            result = runner.invoke(app, args)
            assert result.exit_code != 0, args
            assert message in result.output, (args, result.output)
            assert "Traceback" not in result.output
