"""Import reports and the vocabulary of the organisations spreadsheet."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from models.enums import OrganisationKind, StatementKind, Visibility


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


class ImportedOrganisation(BaseModel):
    row: int = Field(description="First row of the organisation in the file (header: row 1).")
    name: str
    id: int | None = Field(description="Its id; null in a dry run for one to be created.")
    outcome: Outcome


class ImportReport(BaseModel):
    dry_run: bool = Field(description="True when the file was only checked, nothing written.")
    created: int = Field(description="Organisations created.")
    updated: int = Field(description="Organisations changed (a field, a statement, a contact).")
    unchanged: int = Field(description="Organisations of the file already as it says.")
    statements_added: int
    statements_changed: int = Field(description="Statements whose visibility or themes changed.")
    contacts_added: int
    organisations: list[ImportedOrganisation]


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


# What users type in the cells (read accent-, case- and space-insensitively) and what an
# export writes: the first label of each value.
KIND_LABELS: dict[OrganisationKind, tuple[str, ...]] = {
    OrganisationKind.landlord: ("bailleur", "bailleur social", "organisme hlm", "hlm"),
    OrganisationKind.association: ("association", "asso"),
    OrganisationKind.public_body: (
        "organisme public",
        "public",
        "collectivite",
        "etablissement public",
    ),
    OrganisationKind.company: ("entreprise", "societe"),
    OrganisationKind.research: ("recherche", "universite", "laboratoire"),
    OrganisationKind.other: ("autre",),
}
STATEMENT_KIND_LABELS: dict[StatementKind, tuple[str, ...]] = {
    StatementKind.competency: ("compétence", "competences", "savoir-faire"),
    StatementKind.need: ("besoin", "besoins"),
}
VISIBILITY_LABELS: dict[Visibility, tuple[str, ...]] = {
    Visibility.network: ("réseau", "tous", "public"),
    Visibility.coordinator: ("coordination", "coordinateur", "privé", "privée", "confidentiel"),
}


class CallOutcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    skipped = "skipped"


class ImportedCall(BaseModel):
    record: int = Field(
        description="Where the call is in the file: its row in a spreadsheet (header: row 1), "
        "its position in a JSON file (the first record is 1)."
    )
    title: str
    id: int | None = Field(description="Its id; null in a dry run for one to be created.")
    outcome: CallOutcome = Field(
        description="created, updated, unchanged, or skipped (a record no organisation of "
        "the network may answer: for individuals or farmers only; `note` says so)."
    )
    changes: list[str] = Field(
        description="Fields an update changed (logged with their old and new values)."
    )
    note: str | None = Field(default=None, description="In French, why a record was skipped.")


class CallImportReport(BaseModel):
    dry_run: bool = Field(description="True when the file was only checked, nothing written.")
    format: str = Field(description="csv, xlsx or json (Aides-territoires' record shape).")
    created: int
    updated: int
    unchanged: int
    skipped: int
    calls: list[ImportedCall]
