"""organisations archived at

Revision ID: 0006_archived_at
Revises: 0005
Create Date: 2026-11-30 13:00:00

DELETE /api/v1/organisations/{id} archives: the row stays (its consortia, dismissals and
audit history point at it), `archived_at` says since when it left matching and listings.
Downgrading drops the column: archived organisations come back into matching and listings.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_archived_at"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
