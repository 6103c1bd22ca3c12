"""Accounts belong to any number of organisations

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30 12:00:00

A member account may act for several organisations (a group's staff, a shared service):
the single `accounts.organisation_id` becomes the `account_organisations` table. Token
prefixes (the public part of a token, used to find its row) become unique.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_organisations",
        sa.Column(
            "account_id",
            sa.Integer(),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "organisation_id",
            sa.Integer(),
            sa.ForeignKey("organisations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index(
        "ix_account_organisations_organisation_id", "account_organisations", ["organisation_id"]
    )
    op.execute(
        "INSERT INTO account_organisations (account_id, organisation_id) "
        "SELECT id, organisation_id FROM accounts WHERE organisation_id IS NOT NULL"
    )
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_organisation_id")
        batch.drop_column("organisation_id")
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["prefix"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_api_tokens_prefix", table_name="api_tokens")
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_accounts_organisation_id_organisations",
            "organisations",
            ["organisation_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_accounts_organisation_id", ["organisation_id"])
    op.execute(
        "UPDATE accounts SET organisation_id = (SELECT MIN(organisation_id) "
        "FROM account_organisations WHERE account_id = accounts.id)"
    )
    op.drop_index("ix_account_organisations_organisation_id", "account_organisations")
    op.drop_table("account_organisations")
