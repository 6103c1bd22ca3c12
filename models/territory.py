"""The French territory referential: régions, départements, EPCI, communes and
arrondissements municipaux, with denormalised parent codes for containment tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.enums import TerritoryLevel, str_enum


class Territory(Base):
    __tablename__ = "territories"
    __table_args__ = (
        UniqueConstraint("level", "code"),
        Index("ix_territories_search_name", "search_name"),
        Index("ix_territories_epci_code", "epci_code"),
        Index("ix_territories_departement_code", "departement_code"),
        Index("ix_territories_region_code", "region_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[TerritoryLevel] = mapped_column(str_enum(TerritoryLevel, "territory_level"))
    # INSEE code (commune, arrondissement, département, région) or SIREN (EPCI).
    code: Mapped[str] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(String(200))
    # Lower-case, accent-free, punctuation as spaces: what name search compares.
    search_name: Mapped[str] = mapped_column(String(200))
    population: Mapped[int | None] = mapped_column(Integer)
    # EPCI nature (CC, CA, CU, METRO, MET69); null for other levels.
    subtype: Mapped[str | None] = mapped_column(String(10))
    # Parents, by code. An EPCI spanning several départements has no departement_code.
    commune_code: Mapped[str | None] = mapped_column(String(5))
    epci_code: Mapped[str | None] = mapped_column(String(9))
    departement_code: Mapped[str | None] = mapped_column(String(3))
    region_code: Mapped[str | None] = mapped_column(String(3))

    postal_codes: Mapped[list[TerritoryPostalCode]] = relationship(
        back_populates="territory",
        cascade="all, delete-orphan",
        order_by="TerritoryPostalCode.postal_code",
    )

    @property
    def ref(self) -> str:
        return f"{self.level.value}:{self.code}"


class TerritoryPostalCode(Base):
    __tablename__ = "territory_postal_codes"

    postal_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    territory_id: Mapped[int] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), primary_key=True
    )
    territory: Mapped[Territory] = relationship(back_populates="postal_codes")


class FormerCommune(Base):
    """A commune of the past that lives on in people's files, and the current commune it is
    part of: a commune déléguée or associée (its code and name), or a commune merged without
    délégation (its code only). A déléguée may share its code with the current commune
    (the chef-lieu's), then only its name is an alias."""

    __tablename__ = "former_communes"
    __table_args__ = (
        Index("ix_former_communes_code", "code"),
        Index("ix_former_communes_search_name", "search_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(5))
    name: Mapped[str | None] = mapped_column(String(200))
    search_name: Mapped[str | None] = mapped_column(String(200))
    # deleguee | associee | ancienne (merged, no délégation)
    status: Mapped[str] = mapped_column(String(10))
    territory_id: Mapped[int] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), index=True
    )
    territory: Mapped[Territory] = relationship()


class ReferentialVersion(Base):
    """Which revision of a shipped referential the database holds, so that a newer one
    reloads it ('territories': '6.0.0/2')."""

    __tablename__ = "referential_versions"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
