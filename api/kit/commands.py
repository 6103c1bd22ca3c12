"""What every `maillage` command shares: consoles, the database, one transaction per command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.errors import AppError
from api.kit.settings import Settings
from models.db import make_engine, make_session_factory
from models.enums import AccountRole

# Commands act as the whole network's administrator; the audit trail names them so.
COMMAND_LINE = Principal(account_id=None, role=AccountRole.admin, name="ligne de commande")
console = Console()
err_console = Console(stderr=True)


def database(settings: Settings) -> Engine:
    """The SQLAlchemy engine of the database the settings name."""
    return make_engine(settings.effective_database_url, echo=settings.sql_echo)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction per command; a French message instead of a traceback on AppError
    (and exit status 1), nothing written."""
    factory = make_session_factory(engine)
    try:
        with factory() as session, session.begin():
            session.info["principal"] = COMMAND_LINE  # who acts, for the audit trail
            yield session
    except AppError as exc:
        err_console.print(f"[red]Erreur :[/red] {exc.message}")
        raise typer.Exit(1) from exc
