"""Consortia proposed for a call, their members and the coordinator's reviews."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, utcnow
from models.enums import ConsortiumStatus, MemberRole, ReviewDecision, str_enum
from models.organisation import Organisation


class Consortium(TimestampMixin, Base):
    __tablename__ = "consortia"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    status: Mapped[ConsortiumStatus] = mapped_column(
        str_enum(ConsortiumStatus, "consortium_status"), default=ConsortiumStatus.proposed
    )
    coverage: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # When a review approved or rejected it (the impact's quarter of a decision).
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The dates the coordinator gives: the answer filed, the funder's decision.
    submitted_on: Mapped[date | None] = mapped_column(Date)
    outcome_on: Mapped[date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # Optimistic locking: a stale review is refused instead of overwriting a newer one.
    version: Mapped[int] = mapped_column(Integer, default=1)

    members: Mapped[list[ConsortiumMember]] = relationship(
        back_populates="consortium", cascade="all, delete-orphan", order_by="ConsortiumMember.id"
    )
    reviews: Mapped[list[ConsortiumReview]] = relationship(
        back_populates="consortium", cascade="all, delete-orphan", order_by="ConsortiumReview.id"
    )

    __mapper_args__ = {"version_id_col": version}


class ConsortiumMember(Base):
    __tablename__ = "consortium_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consortium_id: Mapped[int] = mapped_column(
        ForeignKey("consortia.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[MemberRole] = mapped_column(
        str_enum(MemberRole, "member_role"), default=MemberRole.member
    )
    # Ids of the call requirements this member covers.
    covers: Mapped[list[Any]] = mapped_column(JSON, default=list)

    consortium: Mapped[Consortium] = relationship(back_populates="members")
    organisation: Mapped[Organisation] = relationship()


class ConsortiumReview(Base):
    __tablename__ = "consortium_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consortium_id: Mapped[int] = mapped_column(
        ForeignKey("consortia.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    decision: Mapped[ReviewDecision] = mapped_column(str_enum(ReviewDecision, "review_decision"))
    reason_code: Mapped[str | None] = mapped_column(String(60))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    consortium: Mapped[Consortium] = relationship(back_populates="reviews")
