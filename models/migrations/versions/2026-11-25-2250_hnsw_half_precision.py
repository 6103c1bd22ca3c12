"""HNSW indexes in half precision

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 22:50:00

The per-space HNSW indexes are created at run time, when a space first gets vectors. This
revision replaces each full-precision index an earlier version created by a half-precision
one (half the index pages; the similarities returned stay full precision). The DDL is
written out here, not imported, so that later changes to the run-time DDL leave this
revision as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FULL = ("ix_embeddings_hnsw_", "vector", "vector_cosine_ops")
HALF = ("ix_embeddings_hnsw_half_", "halfvec", "halfvec_cosine_ops")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _name(prefix: str, space: str, role: str) -> str:
    return prefix + hashlib.sha256(f"{space}|{role}".encode()).hexdigest()[:12]


def _move(source: tuple[str, str, str], target: tuple[str, str, str]) -> None:
    """Replace every `source` index of an existing space and role by a `target` one."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    existing = set(
        bind.scalars(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings'"))
    )
    spaces = bind.execute(sa.text("SELECT DISTINCT model, role, dimension FROM embeddings"))
    for space, role, dimension in spaces.all():
        old = _name(source[0], space, role)
        if old not in existing:
            continue
        prefix, cast, opclass = target
        ddl = (
            f"CREATE INDEX IF NOT EXISTS {_name(prefix, space, role)} ON embeddings "
            f"USING hnsw ((vector::{cast}({int(dimension)})) {opclass}) "
            f"WHERE model = {_literal(space)} AND role = {_literal(role)}"
        )
        op.execute(f"DROP INDEX IF EXISTS {old}")
        op.execute(sa.text(ddl.replace(":", r"\:")))


def upgrade() -> None:
    _move(FULL, HALF)


def downgrade() -> None:
    _move(HALF, FULL)
