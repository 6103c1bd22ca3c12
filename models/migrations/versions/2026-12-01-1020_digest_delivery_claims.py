"""digest deliveries: claims, Message-ID, attempts, what was sent

Revision ID: 0011_delivery_claims
Revises: 0010_call_dismissals
Create Date: 2026-12-01 10:20:00

`maillage digest send` claims a delivery row (committed) before sending and completes it
after; the row keeps the message's Message-ID (a re-send after a kill is the same message
to mail clients), its attempts, and which calls the digest held (the next weeks' « nouveau
/ modifié / rappel » are told from it). Downgrading drops them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_delivery_claims"
down_revision: str | None = "0010_call_dismissals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("digest_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("items", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("digest_deliveries", schema=None) as batch_op:
        batch_op.alter_column("attempts", server_default=None)
        batch_op.alter_column("items", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("digest_deliveries", schema=None) as batch_op:
        batch_op.drop_column("items")
        batch_op.drop_column("attempts")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("message_id")
