"""Weekly digest subscriptions and one delivery row per (subscription, ISO week)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, utcnow
from models.enums import DeliveryStatus, DigestFrequency, MatchLevel, str_enum
from models.organisation import Organisation


class DigestSubscription(TimestampMixin, Base):
    __tablename__ = "digest_subscriptions"
    __table_args__ = (UniqueConstraint("organisation_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    frequency: Mapped[DigestFrequency] = mapped_column(
        str_enum(DigestFrequency, "digest_frequency"), default=DigestFrequency.weekly
    )
    themes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    min_level: Mapped[MatchLevel] = mapped_column(
        str_enum(MatchLevel, "match_level"), default=MatchLevel.medium
    )
    # Double opt-in: nothing is sent to an address before it is confirmed by its link.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    organisation: Mapped[Organisation] = relationship()
    deliveries: Mapped[list[DigestDelivery]] = relationship(
        back_populates="subscription", cascade="all, delete-orphan"
    )


class DigestDelivery(Base):
    __tablename__ = "digest_deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "iso_week"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("digest_subscriptions.id", ondelete="CASCADE")
    )
    iso_week: Mapped[str] = mapped_column(String(8))  # e.g. 2026-W48
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.pending
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    # Claimed before sending (committed), completed after: a run killed in between leaves
    # it pending, and the next run sends it again under the same Message-ID.
    message_id: Mapped[str | None] = mapped_column(String(250))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # What the digest held: [{"call_id", "status": new|changed|reminder|interested}], so the
    # next weeks know what was already sent.
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)

    subscription: Mapped[DigestSubscription] = relationship(back_populates="deliveries")


class CallDismissal(Base):
    """A call an organisation marked « pas pertinent » (from its digest, or the API): kept
    out of its next digests and of its ranked calls."""

    __tablename__ = "call_dismissals"
    __table_args__ = (UniqueConstraint("organisation_id", "call_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    # The subscription whose digest link did it (None: through the API).
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("digest_subscriptions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedKey(Base):
    """The secret of an organisation's feed URL (Atom or iCalendar): whoever has the URL
    reads the feed, without a token (feed readers and calendars cannot send one);
    rotating it replaces the secret, and the old URL stops working at once."""

    __tablename__ = "feed_keys"
    __table_args__ = (UniqueConstraint("organisation_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # atom | ics
    secret: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
