"""call dismissals: calls an organisation marked « pas pertinent »

Revision ID: 0010_call_dismissals
Revises: 0009_subscription_opt_in
Create Date: 2026-12-01 10:10:00

A digest's « pas pertinent » link (or the API) records that an organisation does not want
a call: it stays out of the organisation's next digests. Downgrading forgets them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_call_dismissals"
down_revision: str | None = "0009_subscription_opt_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_dismissals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_call_dismissals_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_dismissals_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["digest_subscriptions.id"],
            name=op.f("fk_call_dismissals_subscription_id_digest_subscriptions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_dismissals")),
        sa.UniqueConstraint(
            "organisation_id", "call_id", name=op.f("uq_call_dismissals_organisation_id_call_id")
        ),
    )
    with op.batch_alter_table("call_dismissals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_dismissals_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_call_dismissals_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    op.drop_table("call_dismissals")
