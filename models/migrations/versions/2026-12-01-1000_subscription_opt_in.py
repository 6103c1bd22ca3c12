"""digest subscriptions: frequency off, minimum match level, double opt-in

Revision ID: 0009_subscription_opt_in
Revises: 0008_name_key
Create Date: 2026-12-01 10:00:00

A subscription's address is confirmed by a link before anything is sent to it
(`confirmed_at`, `confirmation_sent_at`); its frequency may be `off` (paused, or
unsubscribed in one click: `unsubscribed_at`); `min_level` is the least fit a call must
have to enter its digest. Existing subscriptions were made before double opt-in: they
count as confirmed at their creation. Downgrading drops the columns and turns `off`
subscriptions back to weekly but inactive.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_subscription_opt_in"
down_revision: str | None = "0008_name_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _frequency(*values: str) -> sa.Enum:
    return sa.Enum(
        *values, name="digest_frequency", native_enum=False, create_constraint=True, length=10
    )


def upgrade() -> None:
    with op.batch_alter_table("digest_subscriptions", schema=None) as batch_op:
        batch_op.alter_column(
            "frequency",
            existing_type=_frequency("weekly"),
            type_=_frequency("weekly", "off"),
            existing_nullable=False,
        )
        batch_op.add_column(
            sa.Column(
                "min_level",
                sa.Enum(
                    "weak",
                    "medium",
                    "strong",
                    name="match_level",
                    native_enum=False,
                    create_constraint=True,
                    length=10,
                ),
                nullable=False,
                server_default="medium",
            )
        )
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("confirmation_sent_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE digest_subscriptions SET confirmed_at = created_at")
    with op.batch_alter_table("digest_subscriptions", schema=None) as batch_op:
        batch_op.alter_column("min_level", server_default=None)


def downgrade() -> None:
    op.execute(
        "UPDATE digest_subscriptions SET active = false, frequency = 'weekly' "
        "WHERE frequency = 'off'"
    )
    with op.batch_alter_table("digest_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("unsubscribed_at")
        batch_op.drop_column("confirmation_sent_at")
        batch_op.drop_column("confirmed_at")
        # Its CHECK first: SQLite's copy of the table would keep it, naming a lost column.
        batch_op.drop_constraint(op.f("ck_digest_subscriptions_match_level"), type_="check")
        batch_op.drop_column("min_level")
        batch_op.alter_column(
            "frequency",
            existing_type=_frequency("weekly", "off"),
            type_=_frequency("weekly"),
            existing_nullable=False,
        )
