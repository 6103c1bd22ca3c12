"""`maillage tokens …`: bearer tokens from the command line (the admin's first token too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from api.accounts import service
from api.kit.commands import console, database, err_console, unit_of_work
from api.kit.settings import get_settings
from models.enums import AccountRole

tokens_app = typer.Typer(help="Jetons d'accès à l'API.", no_args_is_help=True)


def _expiry(value: str | None) -> datetime | None:
    """A date (2027-06-30: the end of that day, UTC) or an ISO 8601 moment."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        err_console.print(
            f"[red]Erreur :[/red] date d'expiration illisible « {value} » "
            "(attendu : AAAA-MM-JJ ou AAAA-MM-JJTHH:MM)."
        )
        raise typer.Exit(2) from None
    if len(value) == 10:  # a bare date: valid through that day
        moment = moment.replace(hour=23, minute=59, second=59)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@tokens_app.command("create")
def create(
    role: Annotated[
        str | None, typer.Option(help="admin ou coordinator (sinon --organisation).")
    ] = None,
    organisation: Annotated[
        list[int] | None,
        typer.Option(help="Organisation dont le compte est membre (répétable).", min=1),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Nom du compte et du jeton.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expiration : AAAA-MM-JJ (fin de journée, UTC).")
    ] = None,
) -> None:
    """Create an account and its token; the token is printed once and never stored."""
    if (role is None) == (not organisation):
        err_console.print(
            "[red]Erreur :[/red] donnez soit --role admin|coordinator, soit --organisation N."
        )
        raise typer.Exit(2)
    if role is not None and role not in (AccountRole.admin, AccountRole.coordinator):
        err_console.print("[red]Erreur :[/red] --role vaut admin ou coordinator.")
        raise typer.Exit(2)
    account_role = AccountRole(role) if role else AccountRole.member
    expires_at = _expiry(expires)
    with unit_of_work(database(get_settings())) as session:
        account = service.create_account(
            session,
            name=name or f"Compte {account_role.value}",
            role=account_role,
            organisation_ids=organisation,
        )
        issued = service.issue_token(session, account, label=name, expires_at=expires_at)
        token_id = issued.token.id
    console.print(
        f"Jeton n° {token_id} ({account_role.value}) — copiez-le, il ne sera plus affiché :"
    )
    # Plain print: the token must survive copy-paste (no wrapping, no markup).
    print(issued.secret)  # noqa: T201


@tokens_app.command("list")
def list_() -> None:
    """Every token: id, prefix, account, role, organisations, expiry, revocation."""
    with unit_of_work(database(get_settings())) as session:
        tokens = service.list_tokens(session)
        table = Table("n°", "préfixe", "compte", "rôle", "organisations", "expire", "révoqué")
        for t in tokens:
            table.add_row(
                str(t.id),
                t.prefix,
                t.account.name,
                t.account.role.value,
                ", ".join(str(o.id) for o in t.account.organisations) or "—",
                t.expires_at.date().isoformat() if t.expires_at else "jamais",
                t.revoked_at.date().isoformat() if t.revoked_at else "non",
            )
    console.print(table if tokens else "Aucun jeton.")


@tokens_app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(help="Numéro ou préfixe du jeton.")],
) -> None:
    """Revoke a token at once."""
    with unit_of_work(database(get_settings())) as session:
        found = service.find_token(session, token)
        changed = service.revoke_token(session, found)
    console.print(
        f"Jeton n° {found.id} révoqué." if changed else f"Jeton n° {found.id} déjà révoqué."
    )
