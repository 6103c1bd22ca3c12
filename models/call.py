"""Calls for projects (appels à projets, AMI) with their requirements and perimeter, and
the log of what changed in each call (for the digest's « modifié »)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from matcher.text import name_key
from models.base import Base, TimestampMixin, utcnow
from models.enums import CallStatus, HlmLegalForm, OrganisationKind, str_enum
from models.territory import Territory

call_territories = Table(
    "call_territories",
    Base.metadata,
    Column("call_id", ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territories.id", ondelete="RESTRICT"), primary_key=True),
    Index("ix_call_territories_territory_id", "territory_id"),
)

# Byte order on PostgreSQL too, as for organisations' name_key: sorted as SQLite sorts.
TITLE_KEY_TYPE = String(300).with_variant(String(300, collation="C"), "postgresql")

# A call whose eligibility lists nothing is open to every kind of organisation.
OPEN_TO_ALL = "all"


class Call(TimestampMixin, Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_calls_title_key_id", "title_key", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unicode NFC, whatever form it was sent in.
    title: Mapped[str] = mapped_column(String(300))
    funders: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    # OrganisationKind values; with `eligible_legal_forms`, who may answer: an organisation
    # of a listed kind or of a listed legal form; both empty: everyone.
    eligible_kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # HlmLegalForm values (OPH, ESH, Coopérative Hlm, SEM) as spelt there, or other forms.
    eligible_legal_forms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    themes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Subvention, Prêt, Ingénierie technique…
    aid_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    opens_on: Mapped[date | None] = mapped_column(Date)
    # None: a permanent call.
    deadline: Mapped[date | None] = mapped_column(Date, index=True)
    url: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(60), default="manual")
    external_id: Mapped[str | None] = mapped_column(String(120))
    # What the coordinator (or the import) set; a call `open` whose deadline has passed
    # reads as closed (`api.calls`), without a write.
    status: Mapped[CallStatus] = mapped_column(
        str_enum(CallStatus, "call_status"), default=CallStatus.open
    )
    # The perimeter is all of France ("France" in the API); `perimeter` is then empty.
    nationwide: Mapped[bool] = mapped_column(Boolean, default=False)

    # Derived on every write (`_derive_keys`), for filters and sorting alike on both
    # databases: the title folded (accents, case, punctuation aside); the folded words of
    # title, funders, description, themes and aid types (what `q` searches); and the facets
    # of themes and eligibility, "|theme:jardins partages|kind:landlord|form:oph|" ("all"
    # for a call open to everyone).
    title_key: Mapped[str] = mapped_column(TITLE_KEY_TYPE, default="")
    search_key: Mapped[str] = mapped_column(Text, default="")
    facets: Mapped[str] = mapped_column(Text, default="")

    perimeter: Mapped[list[Territory]] = relationship(
        secondary=call_territories, order_by=Territory.id
    )
    requirements: Mapped[list[CallRequirement]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallRequirement.position"
    )

    @validates("title")
    def _set_title(self, _key: str, value: str) -> str:
        value = unicodedata.normalize("NFC", value)
        self.title_key = name_key(value)[:300]
        return value


class CallRequirement(Base):
    """A short statement of what answering the call takes, embedded as a passage (role
    `requirement`) in the embedding cache, keyed by its content hash."""

    __tablename__ = "call_requirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)

    call: Mapped[Call] = relationship(back_populates="requirements")


class CallChange(Base):
    """One field of a call changed by an update (API or import): its value before and
    after, JSON-ready (dates as ISO strings, the perimeter as references)."""

    __tablename__ = "call_changes"
    __table_args__ = (Index("ix_call_changes_call_id_changed_at", "call_id", "changed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    field: Mapped[str] = mapped_column(String(40))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)


LANDLORD_FORMS = frozenset(name_key(form.value) for form in HlmLegalForm)


def call_facets(themes: Iterable[str], kinds: Iterable[str], legal_forms: Iterable[str]) -> str:
    """The facets of a call as `Call.facets` stores them (see there)."""
    kinds, legal_forms = list(kinds), list(legal_forms)
    parts = [f"theme:{name_key(t)}" for t in themes]
    parts += [f"kind:{OrganisationKind(k).value}" for k in kinds]
    parts += [f"form:{name_key(f)}" for f in legal_forms]
    if not kinds and not legal_forms:
        parts.append(OPEN_TO_ALL)
    return "|" + "|".join(parts) + "|"


def call_search_key(call: Call) -> str:
    """The folded words `q` searches: title, funders, description, themes, aid types."""
    texts = [call.title or "", *(call.funders or []), call.description or ""]
    texts += [*(call.themes or []), *(call.aid_types or [])]
    return " ".join(name_key(t) for t in texts if t)


def _derive_keys(_mapper: Any, _connection: Any, call: Call) -> None:
    call.search_key = call_search_key(call)
    call.facets = call_facets(
        call.themes or [], call.eligible_kinds or [], call.eligible_legal_forms or []
    )


event.listen(Call, "before_insert", _derive_keys)
event.listen(Call, "before_update", _derive_keys)
