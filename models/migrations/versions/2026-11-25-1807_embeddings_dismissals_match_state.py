"""embeddings dismissals match state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:07:37.046100
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _require_pgvector() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")


def upgrade() -> None:
    _require_pgvector()
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("vector", models.types.VectorType(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.UniqueConstraint(
            "model", "role", "content_hash", name=op.f("uq_embeddings_model_role_content_hash")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        # A 512-float vector (2 KB) would be TOASTed: every distance computed outside the
        # HNSW index would first decompress it. Stored inline, it is read as is.
        op.execute("ALTER TABLE embeddings ALTER COLUMN vector SET STORAGE PLAIN")
    op.create_table(
        "match_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_state")),
    )
    op.bulk_insert(
        sa.table("match_state", sa.column("id", sa.Integer), sa.column("version", sa.Integer)),
        [{"id": 1, "version": 0}],
    )
    op.create_table(
        "dismissals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("dismissed_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("organisation_id <> dismissed_id", name=op.f("ck_dismissals_not_self")),
        sa.ForeignKeyConstraint(
            ["dismissed_id"],
            ["organisations.id"],
            name=op.f("fk_dismissals_dismissed_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_dismissals_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dismissals")),
        sa.UniqueConstraint(
            "organisation_id",
            "dismissed_id",
            name=op.f("uq_dismissals_organisation_id_dismissed_id"),
        ),
    )
    with op.batch_alter_table("dismissals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dismissals_organisation_id"), ["organisation_id"], unique=False
        )

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_organisations_profile_hash"), ["profile_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisations_profile_hash"))
        batch_op.drop_column("profile_hash")

    with op.batch_alter_table("dismissals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dismissals_organisation_id"))

    op.drop_table("dismissals")
    op.drop_table("match_state")
    op.drop_table("embeddings")
