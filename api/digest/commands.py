"""`maillage digest send`: the weekly digest, from cron (never inside the web process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.calls.requirement_queries import store_requirement_queries
from api.digest.lock import run_lock
from api.digest.selection import DigestBuilder, as_of
from api.digest.sending import Run, send_week
from api.digest.weeks import IsoWeek, current_week
from api.kit.commands import console, database, err_console
from api.kit.errors import AppError
from api.kit.mail import mailer_for
from api.kit.settings import get_settings
from api.matching.engine import MatchingEngine
from models.db import for_writes, make_session_factory

digest_app = typer.Typer(help="Digest hebdomadaire des appels à projets.", no_args_is_help=True)


@digest_app.command("send")
def send(
    week: Annotated[
        str | None,
        typer.Option(help="Semaine ISO, par exemple 2026-W48 (défaut : la semaine en cours)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="N'envoie rien, n'enregistre rien : écrit les .eml.")
    ] = False,
    outbox: Annotated[Path | None, typer.Option(help="Dossier des .eml d'un --dry-run.")] = None,
) -> None:
    """Send each confirmed weekly subscription its digest of the week, once."""
    settings = get_settings()
    try:
        target = IsoWeek.parse(week) if week else current_week()
    except AppError as exc:
        err_console.print(f"[red]Erreur :[/red] {exc.message}")
        raise typer.Exit(2) from exc
    engine = database(settings)
    reads = make_session_factory(engine)
    writes = make_session_factory(for_writes(engine))
    matching = MatchingEngine(settings)
    # One SMTP connection for the whole run (closed below).
    mailer = mailer_for(settings, keep_open=True)
    run = Run(
        factory=writes,
        read_factory=reads,
        settings=settings,
        mailer=mailer,
        week=target,
        build=DigestBuilder(settings, matching, batched=True),
        dry_run_outbox=(outbox or settings.outbox / f"dry-run-{target}") if dry_run else None,
    )
    columns = (
        TextColumn("Digest {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        with run_lock(engine):
            if not dry_run:  # a dry run records nothing, not even vectors
                with err_console.status("Encodage des exigences des nouveaux appels…"):
                    store_requirement_queries(reads, writes, matching, as_of(target))
            with Progress(*columns, console=err_console) as progress:
                task = progress.add_task(str(target), total=None)
                summary = send_week(
                    run,
                    lambda done, total: progress.update(task, completed=done, total=total),
                    prepare_ahead=2,
                )
    except AppError as exc:
        err_console.print(f"[red]Erreur :[/red] {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        mailer.close()
        engine.dispose()
    verb = "écrits" if dry_run else "envoyés"
    console.print(
        f"Semaine {target} : {summary.sent} {verb}, {summary.skipped} sans envoi "
        f"({summary.empty} sans appel à signaler, {summary.already} déjà envoyés), "
        f"{summary.failed} en échec."
    )
    if dry_run:
        console.print(f"Fichiers .eml : {run.dry_run_outbox}")
    for address, error in summary.failures:
        err_console.print(f"[red]Échec[/red] {address} : {error} (nouvel essai au prochain envoi)")
    if summary.failed:
        raise typer.Exit(1)
