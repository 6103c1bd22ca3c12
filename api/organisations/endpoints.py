"""Organisation endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep
from api.kit.errors import problem_responses
from api.organisations import service
from api.organisations.schemas import OrganisationIn, OrganisationOut, OrganisationPage
from models.enums import OrganisationKind

router = APIRouter(prefix="/api/v1/organisations", tags=["organisations"])


@router.get(
    "",
    response_model=OrganisationPage,
    responses=problem_responses(422),
    openapi_extra=access(Access.signed_in),
)
def list_organisations(
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200, description="Words of the name.")] = None,
    kind: Annotated[OrganisationKind | None, Query()] = None,
    territory: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Territory reference; keeps organisations working inside it "
            "or on a territory that contains it.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> OrganisationPage:
    """List organisations, by name."""
    return service.list_organisations(
        session, q=q, kind=kind, territory=territory, limit=limit, offset=offset
    )


@router.post(
    "",
    response_model=OrganisationOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
    openapi_extra=access(Access.coordinator),
)
def create_organisation(
    session: SessionDep, matching: MatchingDep, body: OrganisationIn, response: Response
) -> OrganisationOut:
    """Create an organisation with its territories, contacts and statements."""
    org = service.create_organisation(session, body, matching=matching)
    response.headers["Location"] = f"/api/v1/organisations/{org.id}"
    return service.detail(org)


@router.get(
    "/{organisation_id}",
    response_model=OrganisationOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def get_organisation(
    session: SessionDep, organisation_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> OrganisationOut:
    """One organisation with its territories, contacts and statements."""
    return service.detail(service.get_organisation(session, organisation_id))
