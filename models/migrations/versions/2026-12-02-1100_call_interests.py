"""call interests: organisations that marked a call « intéressé »

Revision ID: 0014_call_interests
Revises: 0013_calls_catalogue
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_call_interests"
down_revision: str | None = "0013_calls_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_interests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_call_interests_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_interests_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_call_interests_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_interests")),
        sa.UniqueConstraint(
            "call_id", "organisation_id", name=op.f("uq_call_interests_call_id_organisation_id")
        ),
    )
    op.create_index(op.f("ix_call_interests_call_id"), "call_interests", ["call_id"])
    op.create_index(
        op.f("ix_call_interests_organisation_id"), "call_interests", ["organisation_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_call_interests_organisation_id"), table_name="call_interests")
    op.drop_index(op.f("ix_call_interests_call_id"), table_name="call_interests")
    op.drop_table("call_interests")
