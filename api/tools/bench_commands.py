"""`maillage bench`: search and suggestions timed on a synthetic network
(`api.tools.bench`), and `maillage bench load`, concurrent writers and readers against a
server process (`api.tools.load_bench`); on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from api.kit.commands import console, err_console
from api.kit.settings import get_settings

bench_app = typer.Typer(help="Mesures de performance, sur SQLite et PostgreSQL.")

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/maillage_bench"
PostgresUrl = Annotated[str, typer.Option(help="Base PostgreSQL jetable (son schéma est vidé).")]
Backend = Annotated[str, typer.Option(help="sqlite, postgresql ou both.")]


@bench_app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    organisations: Annotated[
        int | None,
        typer.Option(min=10, help="Défaut : 10 000 (api, composer), 1 000 (digest)."),
    ] = None,
    statements: Annotated[int, typer.Option(min=20)] = 100_000,
    queries: Annotated[
        int, typer.Option(min=5, help="Recherches et suggestions chronométrées.")
    ] = 200,
    calls: Annotated[int, typer.Option(min=1, help="Appels ouverts du digest.")] = 500,
    backend: Backend = "both",
    postgres_url: PostgresUrl = DEFAULT_POSTGRES,
    as_json: Annotated[bool, typer.Option("--json", help="Une ligne JSON par base.")] = False,
    only: Annotated[
        str | None,
        typer.Option(
            help="api (recherche et suggestions sur chaque base), composer (composition "
            "de consortiums, sans base) ou digest (digests construits et envoyés à un "
            "serveur SMTP local) ; tous par défaut."
        ),
    ] = None,
) -> None:
    """Time search and partner suggestions on a synthetic network, on each database, the
    consortium composer, and a weekly digest run (`maillage bench load`: concurrent
    writers and readers)."""
    if context.invoked_subcommand is not None:
        return

    from api.tools.bench import result_dict, run_bench

    if only not in (None, "api", "composer", "digest"):
        err_console.print(f"--only : « api », « composer » ou « digest », pas « {only} ».")
        raise typer.Exit(2)
    if only == "composer":
        _composer_bench(organisations or 10_000, as_json)
        return
    if only == "digest":
        _digest_bench(organisations or 1000, calls, backend, postgres_url, as_json)
        return
    n_orgs = organisations or 10_000
    backends = ["sqlite", "postgresql"] if backend == "both" else [backend]
    if len(backends) > 1:
        # One process per database, so that peak memory is each backend's own.
        rows = []
        for name in backends:
            if name == "postgresql" and not _postgres_reachable(postgres_url):
                err_console.print(f"PostgreSQL injoignable ({postgres_url}) : mesure sautée.")
                continue
            out = subprocess.run(
                [
                    sys.argv[0],
                    "bench",
                    "--backend",
                    name,
                    "--organisations",
                    str(n_orgs),
                    "--statements",
                    str(statements),
                    "--queries",
                    str(queries),
                    "--postgres-url",
                    postgres_url,
                    "--only",
                    "api",
                    "--json",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                err_console.print(out.stdout[-2000:] + out.stderr[-4000:])
                raise typer.Exit(1)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        _print_bench(rows)
        if only is None:
            _composer_bench(n_orgs, as_json)
            _digest_bench(organisations or 1000, calls, backend, postgres_url, as_json)
        return
    settings = get_settings()
    name = backends[0]
    if name == "postgresql":
        _ensure_database(postgres_url)
    result = run_bench(
        settings,
        backend=name,
        database_url=postgres_url if name == "postgresql" else None,
        organisations=n_orgs,
        statements=statements,
        queries=queries,
    )
    if as_json:
        print(json.dumps(result_dict(result)))  # noqa: T201
    else:
        _print_bench([result_dict(result)])
    if only is None:
        _composer_bench(n_orgs, as_json)
        _digest_bench(organisations or 1000, calls, backend, postgres_url, as_json)


def _digest_bench(
    organisations: int, calls: int, backend: str, postgres_url: str, as_json: bool
) -> None:
    """The digest section; with both databases, one process each (each loads the model
    and encodes the requirements afresh, as a cron run does)."""
    if backend != "both":
        from api.tools.bench_digest import digest_result_dict, run_digest_bench

        if backend == "postgresql":
            _ensure_database(postgres_url)
        row = digest_result_dict(
            run_digest_bench(
                get_settings(),
                backend=backend,
                database_url=postgres_url if backend == "postgresql" else None,
                organisations=organisations,
                calls=calls,
            )
        )
        if as_json:
            print(json.dumps(row))  # noqa: T201
        else:
            _print_digest_bench([row])
        return
    rows = []
    for name in ["sqlite", "postgresql"]:
        if name == "postgresql" and not _postgres_reachable(postgres_url):
            err_console.print(f"PostgreSQL injoignable ({postgres_url}) : mesure sautée.")
            continue
        command = [sys.executable, "-m", "api.cli", "bench", "--only", "digest", "--json"]
        command += ["--backend", name, "--postgres-url", postgres_url]
        command += ["--organisations", str(organisations), "--calls", str(calls)]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            err_console.print(out.stdout[-2000:] + out.stderr[-4000:])
            raise typer.Exit(1)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        if as_json:
            print(json.dumps(row))  # noqa: T201
        rows.append(row)
    if not as_json:
        _print_digest_bench(rows)


def _print_digest_bench(rows: list[dict[str, Any]]) -> None:
    table = Table(
        "base",
        "organisations × appels",
        "chargement",
        "construction",
        "envoi",
        "total",
        "envoyés",
        "sans appel",
        "échecs",
        "mémoire max",
    )
    for r in rows:
        table.add_row(
            str(r["backend"]),
            f"{r['organisations']} × {r['calls']}",
            f"{r['load_seconds']} s",
            f"{r['build_seconds']} s",
            f"{r['send_seconds']} s",
            f"{r['total_seconds']} s",
            f"{r['sent']} (reçus : {r['received']})",
            str(r["empty"]),
            str(r["failed"]),
            f"{r['peak_memory_mb']:.0f} Mo",
        )
        console.print(
            f"Digest {r['backend']} : {r['organisations']} organisations × {r['calls']} appels "
            f"ouverts, construction {r['build_seconds']} s, envoi {r['send_seconds']} s, "
            f"total {r['total_seconds']} s pour {r['sent']} digests envoyés "
            f"({r['received']} reçus par le serveur SMTP local, {r['empty']} sans appel, "
            f"{r['failed']} en échec) ; un premier envoi, sans vecteur d'exigence enregistré, "
            f"encoderait en plus ses {r['requirements']} exigences : "
            f"~{r['first_run_encoding_seconds']:.0f} s",
            soft_wrap=True,
        )
    console.print(table)


def _composer_bench(candidates: int, as_json: bool) -> None:
    """The consortium composer's section: no database, so one run whatever the backend."""

    from api.tools.bench_composer import composer_dict, run_composer_bench

    result = composer_dict(run_composer_bench(candidates=candidates))
    if as_json:
        print(json.dumps(result))  # noqa: T201
    else:
        _print_composer_bench(result)


def _ratio(value: object, floor: object) -> str:
    """How many floors a latency is, for reading a figure on a noisy machine."""
    try:
        return f"{float(value) / float(floor):.1f}"  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return "?"


def _print_bench(rows: list[dict[str, object]]) -> None:
    table = Table(
        "base",
        "organisations",
        "énoncés",
        "chargement",
        "index",
        "après écriture",
        "recherche p50/p95",
        "suggestions p50/p95",
        "plancher top-10 p50/p95",
        "indexation",
        "mémoire max",
    )
    for r in rows:
        table.add_row(
            str(r["backend"]),
            str(r["organisations"]),
            str(r["statements"]),
            f"{r['load_seconds']} s",
            f"{r['index_build_seconds']} s",
            f"{r['first_search_after_write_seconds']} s",
            f"{r['search_p50_ms']} / {r['search_p95_ms']} ms",
            f"{r['partners_p50_ms']} / {r['partners_p95_ms']} ms",
            f"{r['floor_p50_ms']} / {r['floor_p95_ms']} ms",
            f"{r['indexing_statements_per_s']:.0f} énoncés/s",
            f"{r['peak_memory_mb']:.0f} Mo",
        )
        console.print(
            f"{r['backend']} : recherche p50 {r['search_p50_ms']} ms, "
            f"p95 {r['search_p95_ms']} ms ; "
            f"suggestions p50 {r['partners_p50_ms']} ms, p95 {r['partners_p95_ms']} ms ; "
            f"plancher (top-10 nu) p50 {r['floor_p50_ms']} ms, p95 {r['floor_p95_ms']} ms, "
            f"soit recherche p95 × {_ratio(r['search_p95_ms'], r['floor_p95_ms'])}, "
            f"suggestions p95 × {_ratio(r['partners_p95_ms'], r['floor_p95_ms'])} ; "
            f"indexation {r['indexing_statements_per_s']:.0f} énoncés/s ; "
            f"index {r['index_build_seconds']} s (à froid), "
            f"{r['first_search_after_write_seconds']} s (1re recherche après une écriture) ; "
            f"mémoire max {r['peak_memory_mb']:.0f} Mo",
            soft_wrap=True,
        )
    console.print(table)


def _print_composer_bench(r: dict[str, Any]) -> None:
    console.print(
        f"Composition de consortiums, {r['candidates']} candidats × {r['requirements']} "
        f"exigences, 3 alternatives ({r['runs']} appels) : "
        f"similarités calibrées p50 {r['calibrated_p50_ms']} ms (max {r['calibrated_max_ms']} ms), "
        f"uniformes p50 {r['uniform_p50_ms']} ms (max {r['uniform_max_ms']} ms) ; "
        f"au moins {float(r['certified_ratio']):.1%} de l'optimum (borne supérieure). "
        f"Sur {r['small_instances']} petits appels (12 candidats) : optimal dans "
        f"{float(r['small_optimal_share']):.1%} des cas, "
        f"rapport moyen {r['small_mean_ratio']}, pire {r['small_worst_ratio']} "
        f"(garantie : 0.632).",
        soft_wrap=True,
    )


def _postgres_reachable(url: str) -> bool:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    try:
        psycopg.connect(
            admin.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5
        ).close()
    except psycopg.Error:
        return False
    return True


def _ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(
        (base + "/postgres").replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


@bench_app.command("load")
def bench_load(
    writers: Annotated[int, typer.Option(min=1, max=500, help="Écrivains simultanés.")] = 50,
    readers: Annotated[int, typer.Option(min=0, max=500, help="Lecteurs simultanés.")] = 50,
    rounds: Annotated[
        int, typer.Option(min=1, max=100, help="Requêtes de chaque écrivain et lecteur.")
    ] = 3,
    timeout: Annotated[
        float,
        typer.Option(min=1, help="Attente maximale d'une réponse (s) : au-delà, un blocage."),
    ] = 60.0,
    backend: Backend = "both",
    postgres_url: PostgresUrl = DEFAULT_POSTGRES,
    as_json: Annotated[bool, typer.Option("--json", help="Une ligne JSON par base.")] = False,
) -> None:
    """Concurrent writers and readers against a server process on 127.0.0.1: latency per
    kind of request, answers by status, lost writes. Exit status 1 on a 5xx other than
    503, a request left unanswered, a lost write or a retried POST that created again."""
    from api.tools.load_bench import run_load_bench

    settings = get_settings()
    failed = False
    for name in ["sqlite", "postgresql"] if backend == "both" else [backend]:
        if name == "postgresql":
            if not _postgres_reachable(postgres_url):
                err_console.print(f"PostgreSQL injoignable ({postgres_url}) : mesure sautée.")
                continue
            _ensure_database(postgres_url)
        with console.status(f"Charge sur {name}…"):
            report = run_load_bench(
                settings,
                backend=name,
                database_url=postgres_url if name == "postgresql" else None,
                writers=writers,
                readers=readers,
                rounds=rounds,
                timeout=timeout,
            )
        if as_json:
            print(json.dumps(report.as_dict(), ensure_ascii=False))  # noqa: T201
        else:
            _print_load(report.as_dict())
        failed = failed or bool(
            report.server_errors or report.no_answer or report.lost_writes or report.duplicates
        )
    if failed:
        raise typer.Exit(1)


_KINDS_FR = {
    "organisation": "créer une organisation",
    "statement": "ajouter un énoncé",
    "dismissal": "écarter (à deux)",
    "retry": "renvoi, même clé",
    "search": "rechercher",
    "partners": "suggestions",
    "list": "lister",
}


def _print_load(r: dict[str, object]) -> None:
    table = Table("requête", "nombre", "p50", "p95", "max", "statuts")
    for k in r["kinds"]:  # type: ignore[attr-defined]
        table.add_row(
            _KINDS_FR.get(k["kind"], k["kind"]),
            str(k["requests"]),
            f"{k['p50_ms']:.0f} ms",
            f"{k['p95_ms']:.0f} ms",
            f"{k['max_ms']:.0f} ms",
            ", ".join(f"{s} × {n}" for s, n in k["statuses"].items()),
        )
    console.print(
        f"[bold]{r['backend']}[/bold] : {r['writers']} écrivains et {r['readers']} lecteurs, "
        f"{r['rounds']} requêtes chacun, en {r['seconds']} s",
        highlight=False,
    )
    console.print(table)
    lost = r["lost_writes"]
    duplicates = r["duplicates"]
    console.print(
        f"Erreurs 5xx hors 503 : {r['server_errors']} ; 503 (surcharge) : {r['unavailable']} ; "
        f"sans réponse : {r['no_answer']} ; écritures perdues : {len(lost)} ; "  # type: ignore[arg-type]
        f"doublons après renvoi : {len(duplicates)}",  # type: ignore[arg-type]
        highlight=False,
    )
    for line in [*lost, *duplicates, *r["errors"]][:10]:  # type: ignore[misc]
        err_console.print(f"  {line}", highlight=False)
