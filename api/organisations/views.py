"""Organisations and statements as the API shows them (rows to response models)."""

from __future__ import annotations

from api.accounts.principal import Principal
from api.organisations.schemas import ContactOut, OrganisationOut, OrganisationSummary, StatementOut
from api.territories import service as territory_service
from models import Organisation, Statement
from models.enums import Visibility


def summary(org: Organisation) -> OrganisationSummary:
    return OrganisationSummary(
        id=org.id,
        name=org.name,
        kind=org.kind,
        legal_form=org.legal_form,
        territories=[territory_service.brief(t) for t in org.territories],
    )


def statement_out(statement: Statement) -> StatementOut:
    return StatementOut(
        id=statement.id,
        organisation_id=statement.organisation_id,
        kind=statement.kind,
        text=statement.text,
        themes=list(statement.themes or []),
        visibility=statement.visibility,
    )


def detail(org: Organisation, viewer: Principal) -> OrganisationOut:
    """The organisation as the viewer may see it: contacts and statements of visibility
    coordinator only for those acting for it."""
    insider = viewer.acts_for(org.id)
    return OrganisationOut(
        **summary(org).model_dump(),
        siren=org.siren,
        website=org.website,
        description=org.description,
        contacts=[
            ContactOut(name=c.name, role=c.role, email=c.email, phone=c.phone) for c in org.contacts
        ]
        if insider
        else None,
        statements=[
            statement_out(s)
            for s in org.statements
            if insider or s.visibility == Visibility.network
        ],
        created_at=org.created_at,
        updated_at=org.updated_at,
    )
