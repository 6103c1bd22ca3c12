"""The `maillage` command line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table
from sqlalchemy import Engine

from api.accounts.commands import tokens_app
from api.digest.commands import digest_app
from api.imports.commands import export_app, import_app
from api.kit.commands import console, database, err_console, unit_of_work
from api.kit.errors import AppError
from api.kit.settings import Settings, get_settings
from api.tools.bench_commands import bench_app
from models import Territory, migrate

if TYPE_CHECKING:
    from api.matching.engine import MatchingEngine
    from api.territories.schemas import FormerCommune
    from api.tools.demo import DemoToken

app = typer.Typer(
    help="Maillage : mise en relation des organismes Hlm et de leurs partenaires.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Base de données : migrations.", no_args_is_help=True)
territories_app = typer.Typer(help="Référentiel des territoires.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(territories_app, name="territories")
app.add_typer(tokens_app, name="tokens")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(digest_app, name="digest")
app.add_typer(bench_app, name="bench")

T = TypeVar("T")


_engine = database
_unit_of_work = unit_of_work


def _timed(label: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    with console.status(label):
        result = work()
    console.print(f"{label} [dim]({time.perf_counter() - start:.1f} s)[/dim]")
    return result


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Révision cible.")] = "head") -> None:
    """Apply the migrations up to REVISION (head by default)."""
    settings = get_settings()
    engine = _engine(settings)
    migrate.upgrade(engine, revision)
    if revision == "head" and engine.dialect.name == "postgresql":
        _create_vector_indexes(_matching(settings), engine)
    console.print(f"Base à jour ({migrate.current_revision(engine)}).")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Révision cible.")]) -> None:
    """Revert the migrations down to REVISION ('base' empties the database)."""
    settings = get_settings()
    migrate.downgrade(_engine(settings), revision)
    console.print(f"Base ramenée à {migrate.current_revision(_engine(settings)) or 'base'}.")


@territories_app.command("load")
def territories_load(
    if_empty: Annotated[
        bool,
        typer.Option(
            "--if-empty",
            help="Ne rien faire si le référentiel est déjà chargé dans sa version livrée "
            "(une version antérieure est mise à jour).",
        ),
    ] = False,
) -> None:
    """Load (or refresh) the French territory referential, geography 2026."""
    from api.territories.referential import (
        REFERENTIAL_FILE,
        load_territories,
        referential_is_current,
    )

    settings = get_settings()
    engine = _engine(settings)
    migrate.upgrade(engine)
    path = settings.fixtures_dir / REFERENTIAL_FILE
    with _unit_of_work(engine) as session:
        if if_empty and referential_is_current(session, path):
            console.print("Référentiel des territoires déjà chargé.")
            return
        report = _timed("Chargement des territoires", lambda: load_territories(session, path))
    console.print(
        f"{report.inserted} territoires ajoutés, {report.updated} mis à jour, "
        f"{report.postal_codes} codes postaux, {report.former_communes} communes anciennes "
        "(déléguées, associées, fusionnées)."
    )


@territories_app.command("lookup")
def territories_lookup(
    query: Annotated[
        str, typer.Argument(help="Nom, code postal, code INSEE ou référence (epci:…).")
    ],
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Find territories by name, postal code, INSEE code, SIREN or reference."""
    from api.territories import service
    from api.territories.referential import count_territories

    settings = get_settings()
    with _unit_of_work(_engine(settings)) as session:
        if count_territories(session) == 0:
            err_console.print(
                "[red]Erreur :[/red] le référentiel des territoires n'est pas chargé : "
                "lancez « maillage territories load »."
            )
            raise typer.Exit(1)
        text = query.strip()
        found: list[Territory] = []
        formerly: dict[int, FormerCommune] = {}
        notes: list[str] = []
        compact = text.replace(" ", "")
        if compact.isdigit() and len(compact) in (4, 5):
            result = service.search_territories(
                session, q=None, postal_code=text, levels=None, limit=limit
            )
            found, notes = result.territories, result.notes
        if ":" in text or (compact.isalnum() and any(c.isdigit() for c in compact)):
            for candidate in _lookup_candidates(text):
                try:
                    exact, former = service.find_ref(session, candidate)
                except AppError:
                    continue
                found = [exact, *[t for t in found if t.id != exact.id]]
                if former is not None:
                    formerly[exact.id] = former
        # A name may hold digits ("Marseille 1er Arrondissement", "Paris 8e"): whatever no
        # code found is searched by name when it has letters.
        if not found and ":" not in text and any(c.isalpha() for c in text):
            result = service.search_territories(
                session, q=text, postal_code=None, levels=None, limit=limit
            )
            found, formerly = result.territories, result.formerly
        for note in notes:
            err_console.print(note)
        if not found:
            err_console.print(
                f"Aucun territoire ne correspond à « {query} ». Le référentiel couvre les communes, "
                "arrondissements municipaux, EPCI, départements et régions, pas les quartiers ni les "
                "lieux-dits : cherchez la commune (par exemple « Aix-en-Provence »)."
            )
            raise typer.Exit(1)
        for former in formerly.values():
            err_console.print(former.note)
        table = Table("nom", "EPCI", "département", "région", "codes postaux")
        table.add_column("référence", no_wrap=True)
        for t in service.describe(session, found, formerly):
            table.add_row(
                t.name,
                t.epci.name if t.epci else "",
                t.departement.name if t.departement else "",
                t.region.name if t.region else "",
                " ".join(t.postal_codes[:6]) + (" …" if len(t.postal_codes) > 6 else ""),
                t.ref,
            )
        console.print(table)


def _matching(settings: Settings) -> MatchingEngine:
    from api.matching.engine import MatchingEngine

    return MatchingEngine(settings)


def _create_vector_indexes(matching: MatchingEngine, engine: Engine) -> None:
    """PostgreSQL's HNSW indexes of the configured space, outside any other transaction."""
    if engine.dialect.name != "postgresql":
        return
    created = _timed("Index vectoriels", lambda: matching.create_vector_indexes(engine))
    if created:
        console.print(f"{created} index HNSW créés ({matching.space}).")


@app.command()
def reindex() -> None:
    """Embed every statement, profile and call requirement the current model lacks."""
    from rich.progress import Progress

    from api.matching.texts import reindex as run_reindex

    settings = get_settings()
    engine = _engine(settings)
    migrate.upgrade(engine)
    matching = _matching(settings)
    start = time.perf_counter()
    with _unit_of_work(engine) as session, Progress(console=console) as progress:
        task = progress.add_task(f"Encodage ({matching.space})", total=None)
        total, done = run_reindex(
            session,
            matching,
            progress=lambda n: progress.advance(task, n),
            on_total=lambda n: progress.update(task, total=max(n, 1)),
        )
        progress.update(task, total=max(done, 1), completed=max(done, 1))
    elapsed = time.perf_counter() - start
    rate = f", {done / elapsed:.0f} textes/s" if done else ""
    console.print(
        f"{total} textes, {done} encodés ({elapsed:.1f} s{rate}) ; les autres étaient en cache."
    )
    # Once the vectors are stored: an index built after a bulk load is built faster.
    _create_vector_indexes(matching, engine)


@app.command("eval")
def eval_command(
    limit: Annotated[int, typer.Option(help="Résultats par requête (nDCG@10 en lit 10).")] = 10,
    stsb: Annotated[
        Path | None,
        typer.Option(
            help="Fichier CSV du STS-B français (phrase,phrase,score) : corrélation de "
            "Spearman du modèle dense, contrôle indépendant de l'encodeur."
        ),
    ] = None,
    calls_only: Annotated[
        bool,
        typer.Option(
            "--calls-only",
            help="Seulement la section des appels à projets (classement et consortiums).",
        ),
    ] = False,
) -> None:
    """Score each matching method on the labelled French set (nDCG@10, Recall@5, MRR), then
    the calls for projects through the API (nDCG@10, Recall@10, MRR; consortia checked)."""
    from api.tools.evaluation import (
        MethodResult,
        PartnerResult,
        all_methods,
        encoder_speed,
        run_evaluation,
        speed_encoders,
        stsb_spearman,
    )

    settings = get_settings()
    if calls_only:
        _eval_calls(settings)
        return
    if stsb is not None:
        if not stsb.exists():
            err_console.print(f"[red]Erreur :[/red] fichier introuvable : {stsb}")
            raise typer.Exit(1)
        rho, pairs = stsb_spearman(settings, stsb)
        console.print(
            f"STS-B français ({pairs} paires), {settings.model} : Spearman {rho * 100:.1f}"
        )
    table = Table("méthode", "description", "nDCG@10", "Recall@5", "MRR", "requêtes", "durée")
    hurried_table = Table("méthode", "nDCG@10", "Recall@5", "MRR", "requêtes", "durée")

    def search_row(result: MethodResult, into: Table, label: str, *described: str) -> None:
        """One method's search scores: a line as it comes, a row of `into` for the end."""
        s = result.scores
        console.print(
            f"{label}{result.method.name:<{34 - len(label)}} nDCG@10 {s.ndcg10:.3f}  "
            f"Recall@5 {s.recall5:.3f}  MRR {s.mrr:.3f}  ({s.queries} requêtes, "
            f"{result.seconds:.1f} s)",
            soft_wrap=True,
        )
        into.add_row(
            result.method.name,
            *described,
            f"{s.ndcg10:.3f}",
            f"{s.recall5:.3f}",
            f"{s.mrr:.3f}",
            str(s.queries),
            f"{result.seconds:.1f} s",
        )

    def show(result: MethodResult) -> None:
        search_row(result, table, "", result.method.description)

    def show_hurried(result: MethodResult) -> None:
        search_row(result, hurried_table, "saisie à la hâte ")

    partner_table = Table(
        "méthode", "classement", "nDCG@10", "Recall@10", "MRR", "organisations", "durée"
    )

    def show_partners(result: PartnerResult) -> None:
        for name, s, seconds in (
            ("suggestions (API)", result.endpoint, f"{result.seconds:.1f} s"),
            ("recherche par besoin, fusionnée", result.merged_search, ""),
        ):
            console.print(
                f"partenaires {result.method.name:<14} {name:<32} nDCG@10 {s.ndcg10:.3f}  "
                f"Recall@10 {s.recall10:.3f}  MRR {s.mrr:.3f}  ({s.queries} organisations)",
                soft_wrap=True,
            )
            partner_table.add_row(
                result.method.name,
                name,
                f"{s.ndcg10:.3f}",
                f"{s.recall10:.3f}",
                f"{s.mrr:.3f}",
                str(s.queries),
                seconds,
            )

    console.print(
        f"Modèle réglé : {settings.model} ; seuil de score : {settings.search_min_score} ; "
        f"méthodes sans préfixe : {settings.model} (« default » : ce que sert l'API)"
    )
    methods = all_methods(settings.model)
    run_evaluation(
        settings,
        methods=methods,
        limit=limit,
        on_method=show,
        on_partners=show_partners,
        on_hurried=show_hurried,
    )
    console.print(table)
    console.print("Suggestions de partenaires (complémentaires) contre la recherche fusionnée :")
    console.print(partner_table)
    console.print(
        "Recherche, les mêmes requêtes tapées à la hâte (minuscules sans accents, sigles, "
        "une faute de frappe dans un mot long sur cinq) :"
    )
    console.print(hurried_table)

    # What each encoder costs: loading its weights, one search, statements in batches
    # (its cache off). Wall-clock figures: the machine's load average is printed with them.
    speeds = Table(
        "encodeur", "chargement du modèle", "une recherche", "débit", "énoncés", "temps CPU"
    )
    for name in speed_encoders(methods, settings.model):
        speed = encoder_speed(settings, name)
        label = speed.encoder.split("@")[0] + (" (tout poids)" if "@" in speed.encoder else "")
        console.print(
            f"{label:<34} chargement {speed.load_seconds:.2f} s  "
            f"une recherche {speed.query_ms:.0f} ms  "
            f"débit {speed.statements_per_second:.0f} énoncés/s  "
            f"({speed.statements} énoncés en {speed.seconds:.1f} s, CPU {speed.cpu_seconds:.1f} s ; "
            f"charge de la machine {os.getloadavg()[0]:.1f})",
            soft_wrap=True,
        )
        speeds.add_row(
            label,
            f"{speed.load_seconds:.2f} s",
            f"{speed.query_ms:.0f} ms",
            f"{speed.statements_per_second:.0f} énoncés/s",
            str(speed.statements),
            f"{speed.cpu_seconds:.1f} s",
        )
    console.print(speeds)
    _eval_calls(settings)


def _eval_calls(settings: Settings) -> None:
    """The calls section of `maillage eval` (`api.tools.evaluation_calls`)."""
    from api.tools.evaluation_calls import calls_table, describe, run_calls_evaluation

    console.print(
        f"Appels à projets → organisations, par l'API ({settings.model}) : "
        "dev = numéros impairs, réservé = numéros pairs ; nDCG à gains linéaires."
    )
    result = run_calls_evaluation(settings)
    for line in describe(result):
        console.print(line, soft_wrap=True)
    console.print(calls_table(result))


def _lookup_candidates(text: str) -> list[str]:
    """A bare 2–3 character code is a lookup of both the département and the région."""
    compact = text.replace(" ", "")
    if ":" not in compact and 2 <= len(compact) <= 3:
        return [f"departement:{compact}", f"region:{compact}"]
    return [text]


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from api.app import create_app
    from api.kit.request_limits import server_limits

    console.print(f"Maillage sur http://{host}:{port}/ — documentation : http://{host}:{port}/docs")
    # The links the app e-mails (sign-in, digests) point where it listens, unless a public
    # address is set: the options win over the settings, as for the demo's printed links.
    served = settings.model_copy(update={"host": host, "port": port})
    uvicorn.run(
        create_app(served, warm_up=True),
        host=host,
        port=port,
        log_level="info",
        **server_limits(settings),
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Adresse d'écoute.")] = None,
    port: Annotated[int | None, typer.Option(help="Port d'écoute.", min=1, max=65535)] = None,
) -> None:
    """Serve the API on the database the settings name."""
    settings = get_settings()
    _serve(settings, host or settings.host, port or settings.port)


def _print_demo_guide(tokens: list[DemoToken], host: str, port: int) -> None:
    """What a newcomer needs to try everything: tokens, addresses, a first request."""
    base = f"http://{host}:{port}"
    links = [t for t in tokens if t.sign_in_url]
    if links:
        console.print(
            "\n[bold]Pages web[/bold] : ouvrez un lien pour vous connecter "
            "(valable 24 h, une seule fois ; `maillage demo` en imprime de nouveaux) :"
        )
        for token in links:
            console.print(f"  {token.who} : {token.sign_in_url}", soft_wrap=True, highlight=False)
    console.print("\n[bold]Jetons d'accès[/bold] (en-tête « Authorization: Bearer … ») :")
    for token in tokens:
        console.print(f"  {token.who} : {token.secret}", soft_wrap=True, highlight=False)
    console.print(
        f"\nDocumentation interactive : {base}/docs (bouton « Authorize », collez un jeton).",
        soft_wrap=True,
    )
    member = next((t for t in tokens if t.organisation_id is not None), None)
    if member is not None:
        console.print("Essayez, par exemple :", highlight=False)
        console.print(
            f'  curl -H "Authorization: Bearer {member.secret}" '
            f"{base}/api/v1/organisations/{member.organisation_id}/partners",
            soft_wrap=True,
            highlight=False,
        )
        console.print(
            f'  curl -H "Authorization: Bearer {member.secret}" '
            f'"{base}/api/v1/search/organisations?q=jardins+partag%C3%A9s&territory=departement:13"',
            soft_wrap=True,
            highlight=False,
        )
    console.print(
        "Nouveaux jetons : maillage tokens create --role coordinator | --organisation N\n",
        highlight=False,
    )
    console.file.flush()  # before the server's log: someone may be waiting for a token


@app.command()
def demo(
    serve_: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Servir l'API ensuite.")
    ] = True,
    host: Annotated[str | None, typer.Option(help="Adresse d'écoute.")] = None,
    port: Annotated[int | None, typer.Option(help="Port d'écoute.", min=1, max=65535)] = None,
) -> None:
    """Create (or reuse) the database, load territories and French demo data, then serve."""
    from api.tools.demo import demo_tokens, ensure_territories, load_demo

    settings = get_settings()
    engine = _engine(settings)
    console.print(f"Base : {engine.url.render_as_string(hide_password=True)}")
    _timed("Migrations", lambda: migrate.upgrade(engine))
    matching = _matching(settings)
    _create_vector_indexes(matching, engine)
    with _unit_of_work(engine) as session:
        loaded = _timed("Territoires", lambda: ensure_territories(session, settings.fixtures_dir))
        if loaded is None:
            console.print("Référentiel des territoires déjà chargé.")
        report = _timed(
            "Données de démonstration",
            lambda: load_demo(session, settings.fixtures_dir, matching=matching),
        )
        # The links point where the server will listen (the options win over the settings).
        served = settings.model_copy(
            update={"host": host or settings.host, "port": port or settings.port}
        )
        tokens = demo_tokens(session, served)
    console.print(
        f"{report.organisations} organisations ({report.statements} énoncés) et "
        f"{report.calls} appels à projets de démonstration."
    )
    _print_demo_guide(tokens, host or settings.host, port or settings.port)
    if serve_:
        _serve(settings, host or settings.host, port or settings.port)


if __name__ == "__main__":
    app()
