"""`maillage import organisations FILE`, `maillage import calls FILE|-` and `maillage export
organisations`."""

from __future__ import annotations

import re
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable
from sqlalchemy.orm import Session

from api.imports import service
from api.imports.formats import FileFormat
from api.imports.rows import ImportRefused
from api.imports.schemas import ExportFormat
from api.kit.commands import COMMAND_LINE, console, database, err_console, unit_of_work
from api.kit.settings import get_settings
from models.db import make_session_factory, transaction

import_app = typer.Typer(help="Import de fichiers (CSV, XLSX, JSON).", no_args_is_help=True)
export_app = typer.Typer(help="Export de fichiers (CSV, XLSX).", no_args_is_help=True)


def _print_problems(exc: ImportRefused) -> None:
    table = RichTable(title="Fichier refusé : rien n'a été importé", title_justify="left")
    records = any(p.unit == "record" for p in exc.problems)
    table.add_column("Enregistrement" if records else "Ligne", justify="right")
    table.add_column("Champ" if records else "Colonne")
    table.add_column("Problème", overflow="fold")
    for problem in exc.problems:
        table.add_row(
            "" if problem.row is None else str(problem.row), problem.column or "", problem.msg
        )
    err_console.print(table)


@import_app.command("organisations")
def import_organisations(
    file: Annotated[
        Path,
        typer.Argument(
            help="Fichier .csv ou .xlsx, en-tête en ligne 1 (voir le README).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Vérifier le fichier sans rien enregistrer.")
    ] = False,
) -> None:
    """Import organisations, statements and contacts: all or nothing, again without change."""
    from api.matching.engine import MatchingEngine

    settings = get_settings()
    engine = database(settings)
    factory = make_session_factory(engine)

    def reader() -> AbstractContextManager[Session]:
        return transaction(factory)

    data = file.read_bytes()
    with unit_of_work(engine) as session:
        try:
            report = service.import_file(
                session, reader, MatchingEngine(settings), COMMAND_LINE, data, dry_run=dry_run
            )
        except ImportRefused as exc:
            _print_problems(exc)
            raise
    changed = (
        f", {report.statements_changed} énoncé(s) modifié(s)" if report.statements_changed else ""
    )
    console.print(
        ("Vérification seule (--dry-run), rien n'est enregistré. " if report.dry_run else "")
        + f"Organisations : {report.created} créée(s), {report.updated} modifiée(s), "
        f"{report.unchanged} inchangée(s) ; {report.statements_added} énoncé(s) et "
        f"{report.contacts_added} contact(s) ajouté(s){changed}."
    )


@import_app.command("calls")
def import_calls(
    file: Annotated[
        str,
        typer.Argument(
            help="Fichier JSON (forme des aides d'Aides-territoires), .csv ou .xlsx (un appel "
            "par ligne, voir le README) ; « - » : l'entrée standard.",
            metavar="FILE|-",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Vérifier le fichier sans rien enregistrer.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Source des appels qui n'en nomment pas (par défaut : aides-territoires pour "
            "le JSON, import pour un tableur).",
        ),
    ] = None,
) -> None:
    """Import calls for projects: all or nothing, again without duplicate, changes logged."""
    from api.imports.call_import import import_calls as run_import
    from api.matching.engine import MatchingEngine

    if file == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(file)
        if not path.is_file():
            err_console.print(f"[red]Erreur :[/red] fichier introuvable : {file}")
            raise typer.Exit(2)
        data = path.read_bytes()
    if source is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,59}", source):
        err_console.print(
            "[red]Erreur :[/red] --source : lettres minuscules, chiffres, « . », « _ » ou « - »."
        )
        raise typer.Exit(2)
    settings = get_settings()
    engine = database(settings)
    factory = make_session_factory(engine)

    def reader() -> AbstractContextManager[Session]:
        return transaction(factory)

    with unit_of_work(engine) as session:
        try:
            report = run_import(
                session,
                reader,
                MatchingEngine(settings),
                COMMAND_LINE,
                data,
                source=source,
                dry_run=dry_run,
            )
        except ImportRefused as exc:
            _print_problems(exc)
            raise
    for call in report.calls:
        if call.outcome == "updated":
            console.print(f"Modifié : « {call.title} » ({', '.join(call.changes)})")
        elif call.outcome == "skipped":
            console.print(f"Écarté : « {call.title} » : {call.note}")
    console.print(
        ("Vérification seule (--dry-run), rien n'est enregistré. " if report.dry_run else "")
        + f"Appels à projets ({report.format}) : {report.created} créé(s), "
        f"{report.updated} modifié(s), {report.unchanged} inchangé(s), "
        f"{report.skipped} écarté(s)."
    )


@export_app.command("organisations")
def export_organisations(
    file_format: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="csv ou xlsx (par défaut : l'extension de -o, sinon csv)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Fichier à écrire (par défaut : la sortie standard, en CSV)."
        ),
    ] = None,
) -> None:
    """Write every organisation not archived in the import's format (contacts and
    coordinator-only statements included: the command line acts as an admin)."""
    if file_format is None:
        suffix = output.suffix.lower().lstrip(".") if output else ""
        file_format = ExportFormat.xlsx if suffix == FileFormat.xlsx else ExportFormat.csv
    if file_format == ExportFormat.xlsx and output is None:
        err_console.print(
            "[red]Erreur :[/red] l'export XLSX demande un fichier : -o organisations.xlsx"
        )
        raise typer.Exit(2)
    with unit_of_work(database(get_settings())) as session:
        content, _ = service.export_file(session, COMMAND_LINE, file_format)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(content)
    console.print(f"{output} écrit ({len(content)} octets).")
