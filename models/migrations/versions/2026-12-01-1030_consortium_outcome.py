"""consortia: decision time, submission and outcome dates

Revision ID: 0012_consortium_outcome
Revises: 0011_delivery_claims
Create Date: 2026-12-01 10:30:00

The coordinator's review records when a consortium was approved or rejected
(`decided_at`); its outcome records when the answer was filed (`submitted_on`) and when
the funder decided (`outcome_on`). The impact report counts them by quarter.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_consortium_outcome"
down_revision: str | None = "0011_delivery_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consortia", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("submitted_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("outcome_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consortia", schema=None) as batch_op:
        batch_op.drop_column("outcome_on")
        batch_op.drop_column("submitted_on")
        batch_op.drop_column("decided_at")
