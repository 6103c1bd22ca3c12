"""French words for the domain's enumerations, in running text (messages, e-mails)."""

from __future__ import annotations

from models.enums import OrganisationKind

KIND_FR: dict[OrganisationKind, str] = {
    OrganisationKind.landlord: "bailleur",
    OrganisationKind.association: "association",
    OrganisationKind.public_body: "organisme public",
    OrganisationKind.company: "entreprise",
    OrganisationKind.research: "recherche",
    OrganisationKind.other: "autre",
}
