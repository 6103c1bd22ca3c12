"""Organisations, the territories they work on, their contacts and statements."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from matcher.text import name_key
from models.base import Base, TimestampMixin
from models.enums import OrganisationKind, StatementKind, Visibility, str_enum
from models.territory import Territory

organisation_territories = Table(
    "organisation_territories",
    Base.metadata,
    Column(
        "organisation_id",
        ForeignKey("organisations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("territory_id", ForeignKey("territories.id", ondelete="RESTRICT"), primary_key=True),
    Index("ix_organisation_territories_territory_id", "territory_id"),
)


# Byte order on PostgreSQL too: a linguistic collation would skip spaces and sort the key
# otherwise than SQLite does.
NAME_KEY_TYPE = String(200).with_variant(String(200, collation="C"), "postgresql")


class Organisation(TimestampMixin, Base):
    __tablename__ = "organisations"
    __table_args__ = (Index("ix_organisations_name_key_id", "name_key", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unicode NFC, whatever form it was sent in (NFD from some keyboards and PDFs).
    name: Mapped[str] = mapped_column(String(200))
    # `matcher.text.name_key(name)`, kept by `_set_name` on every write: what `q` searches
    # and `sort=name` orders by, on both databases alike (accents, case, apostrophes aside).
    name_key: Mapped[str] = mapped_column(NAME_KEY_TYPE, default="")
    kind: Mapped[OrganisationKind] = mapped_column(str_enum(OrganisationKind, "organisation_kind"))
    legal_form: Mapped[str | None] = mapped_column(String(80))
    siren: Mapped[str | None] = mapped_column(String(9), unique=True)
    website: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    # Stable key of fixture data (demo, evaluation), so loading twice updates rather than duplicates.
    slug: Mapped[str | None] = mapped_column(String(120), unique=True)
    # Content hash of the organisation's profile text (description and competencies),
    # embedded as a whole beside each statement.
    profile_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # When the organisation was archived (DELETE): it left matching and listings, its rows
    # and its history in consortia stay, its SIREN stays taken.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    territories: Mapped[list[Territory]] = relationship(
        secondary=organisation_territories, order_by=Territory.id
    )

    @validates("name")
    def _set_name(self, _key: str, value: str) -> str:
        value = unicodedata.normalize("NFC", value)
        self.name_key = name_key(value)
        return value

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", order_by="Contact.id"
    )
    statements: Mapped[list[Statement]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", order_by="Statement.id"
    )


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))

    organisation: Mapped[Organisation] = relationship(back_populates="contacts")


class Statement(TimestampMixin, Base):
    __tablename__ = "statements"
    __table_args__ = (Index("ix_statements_organisation_id_kind", "organisation_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    kind: Mapped[StatementKind] = mapped_column(str_enum(StatementKind, "statement_kind"))
    text: Mapped[str] = mapped_column(Text)
    themes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    visibility: Mapped[Visibility] = mapped_column(
        str_enum(Visibility, "visibility"), default=Visibility.network
    )
    # sha256 of the normalised text: the key of the embedding cache.
    content_hash: Mapped[str] = mapped_column(String(64), index=True)

    organisation: Mapped[Organisation] = relationship(back_populates="statements")
