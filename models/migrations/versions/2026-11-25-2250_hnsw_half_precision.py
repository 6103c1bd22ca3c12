"""HNSW indexes in half precision

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 22:50:00

The per-space HNSW indexes are created at run time, when a space first gets vectors. This
revision replaces the full-precision ones an earlier version created by half-precision ones
(half the index pages; the similarities returned stay full precision).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.matching import HNSW_INDEX_PREFIX, hnsw_index_ddl

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PREFIX = "ix_embeddings_hnsw_"


def _spaces() -> list[tuple[str, str, int]]:
    return [
        (model, role, int(dimension))
        for model, role, dimension in op.get_bind().execute(
            sa.text("SELECT DISTINCT model, role, dimension FROM embeddings")
        )
    ]


def _indexes(like: str) -> list[str]:
    return list(
        op.get_bind().scalars(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' "
                "AND indexname LIKE :like"
            ),
            {"like": like.replace("_", r"\_") + "%"},
        )
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _indexes(OLD_PREFIX):
        if not name.startswith(HNSW_INDEX_PREFIX):
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for space, role, dimension in _spaces():
        _, ddl = hnsw_index_ddl(space, role, dimension)
        op.execute(sa.text(ddl.replace(":", r"\:")))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _indexes(HNSW_INDEX_PREFIX):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for space, role, dimension in _spaces():
        name = OLD_PREFIX + hashlib.sha256(f"{space}|{role}".encode()).hexdigest()[:12]
        ddl = (
            f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
            f"((vector::vector({dimension})) vector_cosine_ops) "
            f"WHERE model = {_literal(space)} AND role = {_literal(role)}"
        )
        op.execute(sa.text(ddl.replace(":", r"\:")))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
