"""match changes: what each index version changed

Revision ID: 0007
Revises: 0006_archived_at
Create Date: 2026-11-30 13:00:00

Each bump of `match_state.version` names the organisations it changed (or, with a NULL
organisation, the whole network), so that a process updates its index by a delta.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006_archived_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "match_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_changes")),
    )
    with op.batch_alter_table("match_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_changes_version"), ["version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("match_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_changes_version"))
    op.drop_table("match_changes")
