"""Calls for projects (appels à projets, AMI) with their requirements and perimeter."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin
from models.enums import CallStatus, str_enum
from models.territory import Territory

call_territories = Table(
    "call_territories",
    Base.metadata,
    Column("call_id", ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territories.id", ondelete="RESTRICT"), primary_key=True),
    Index("ix_call_territories_territory_id", "territory_id"),
)


class Call(TimestampMixin, Base):
    __tablename__ = "calls"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    funder: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    eligible_kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    eligible_legal_forms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    themes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    opens_on: Mapped[date | None] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date, index=True)
    url: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(60), default="manual")
    external_id: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[CallStatus] = mapped_column(
        str_enum(CallStatus, "call_status"), default=CallStatus.open
    )

    perimeter: Mapped[list[Territory]] = relationship(
        secondary=call_territories, order_by=Territory.id
    )
    requirements: Mapped[list[CallRequirement]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallRequirement.position"
    )


class CallRequirement(Base):
    __tablename__ = "call_requirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)

    call: Mapped[Call] = relationship(back_populates="requirements")
