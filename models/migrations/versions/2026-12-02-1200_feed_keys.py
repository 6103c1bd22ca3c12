"""feed keys: the secrets of organisations' Atom and iCalendar feed URLs

Revision ID: 0015_feed_keys
Revises: 0014_call_interests
Create Date: 2026-12-02 12:00:00

Downgrading drops them: every feed URL stops working.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_feed_keys"
down_revision: str | None = "0014_call_interests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_feed_keys_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_keys")),
        sa.UniqueConstraint(
            "organisation_id", "kind", name=op.f("uq_feed_keys_organisation_id_kind")
        ),
        sa.UniqueConstraint("secret", name=op.f("uq_feed_keys_secret")),
    )


def downgrade() -> None:
    op.drop_table("feed_keys")
