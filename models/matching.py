"""Embeddings (a cache keyed by model and content hash), dismissals, index version and the
log of what each version changed."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.types import VectorType


class Embedding(Base):
    """One text's vector in one embedding space (model + thesaurus) and one role
    (competency, need, profile, requirement), shared by every row of that role with the
    same content hash. Roles are apart so that PostgreSQL keeps one HNSW index per space
    and role, and a top-k never walks rows of another role."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("model", "role", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[int] = mapped_column(Integer)
    vector: Mapped[Any] = mapped_column(VectorType())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dismissal(Base):
    """A suggestion an organisation does not want to see again."""

    __tablename__ = "dismissals"
    __table_args__ = (
        UniqueConstraint("organisation_id", "dismissed_id"),
        CheckConstraint("organisation_id <> dismissed_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    dismissed_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchState(Base):
    """A counter bumped by every write that changes what matching sees, so each process
    knows when its in-memory index is stale."""

    __tablename__ = "match_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class MatchChange(Base):
    """What one version of `MatchState` changed: an organisation whose record, territories
    or statements were written (created, edited or deleted), or, with no organisation, the
    whole network (a reindex, a bulk load), which makes every process rebuild its index.

    Written in the transaction that bumps the version, so that a process holding the index
    of an older version reads only the organisations that changed since. No foreign key:
    a deleted organisation must stay named here.
    """

    __tablename__ = "match_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, index=True)
    organisation_id: Mapped[int | None] = mapped_column(Integer)


HNSW_INDEX_PREFIX = "ix_embeddings_hnsw_half_"


def hnsw_index_name(space: str, role: str) -> str:
    """Name of the PostgreSQL HNSW index of one embedding space and role."""
    return HNSW_INDEX_PREFIX + hashlib.sha256(f"{space}|{role}".encode()).hexdigest()[:12]


def hnsw_index_ddl(space: str, role: str, dimension: int) -> str:
    """CREATE INDEX of the PostgreSQL HNSW index of one embedding space and role.

    Vectors are stored in full precision; the index holds them in half precision (half
    the pages to read on each search) and only orders the candidates.
    """
    name = hnsw_index_name(space, role)

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    return (
        f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
        f"((vector::halfvec({int(dimension)})) halfvec_cosine_ops) "
        f"WHERE model = {literal(space)} AND role = {literal(role)}"
    )
