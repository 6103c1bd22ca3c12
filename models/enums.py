"""Closed vocabularies stored as strings (with a CHECK constraint)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Enum


class TerritoryLevel(StrEnum):
    arrondissement = "arrondissement"  # arrondissement municipal (Paris, Lyon, Marseille)
    commune = "commune"
    epci = "epci"
    departement = "departement"
    region = "region"


class OrganisationKind(StrEnum):
    landlord = "landlord"
    association = "association"
    public_body = "public_body"
    company = "company"
    research = "research"
    other = "other"


class HlmLegalForm(StrEnum):
    """The legal forms of social-housing landlords (organismes Hlm), first-class in calls'
    eligibility where national catalogues only know "Entreprises publiques locales"."""

    oph = "OPH"  # office public de l'habitat
    esh = "ESH"  # entreprise sociale pour l'habitat (SA d'Hlm)
    cooperative_hlm = "Coopérative Hlm"  # société coopérative d'Hlm
    sem = "SEM"  # société d'économie mixte (immobilière)


class StatementKind(StrEnum):
    competency = "competency"
    need = "need"


class Visibility(StrEnum):
    network = "network"
    coordinator = "coordinator"


class CallStatus(StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"
    archived = "archived"


class ConsortiumStatus(StrEnum):
    proposed = "proposed"
    approved = "approved"
    rejected = "rejected"
    changes_requested = "changes_requested"
    contacted = "contacted"
    submitted = "submitted"
    won = "won"
    lost = "lost"


class MemberRole(StrEnum):
    lead = "lead"
    member = "member"


class ReviewDecision(StrEnum):
    approve = "approve"
    reject = "reject"
    request_changes = "request_changes"


class AccountKind(StrEnum):
    person = "person"
    machine = "machine"


class AccountRole(StrEnum):
    member = "member"
    coordinator = "coordinator"
    admin = "admin"


class DigestFrequency(StrEnum):
    weekly = "weekly"
    off = "off"


class MatchLevel(StrEnum):
    """The least fit a call must have to enter a digest (see api.digest for thresholds)."""

    weak = "weak"
    medium = "medium"
    strong = "strong"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


def str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A portable string column restricted to the enum's values."""
    values: Any = lambda e: [m.value for m in e]  # noqa: E731
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls) + 4,
        values_callable=values,
        validate_strings=True,
    )
