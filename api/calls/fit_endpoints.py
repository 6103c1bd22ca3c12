"""Who fits a call and which calls fit an organisation; interest; consortium proposals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.calls import fit as service
from api.calls import interests, proposals
from api.calls.fit_schemas import (
    CallOrganisationsPage,
    ConsortiumRequest,
    InterestIn,
    InterestOut,
    InterestPage,
    OrganisationCallsPage,
    ProposedConsortiumOut,
)
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep, ViewerDep
from api.kit.errors import problem_responses
from api.kit.idempotency import IdempotencyDep
from api.kit.routing import Route

router = APIRouter(
    route_class=Route, tags=["appels à projets"], responses=problem_responses(401, 403)
)
CallId = Annotated[int, Path(ge=1, le=2**31 - 1)]
OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
OrganisationParam = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="The organisation you act for."),
]


@router.get(
    "/api/v1/calls/{call_id}/organisations",
    response_model=CallOrganisationsPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in, costly=True),
)
def call_organisations(
    session: SessionDep,
    matching: MatchingDep,
    call_id: CallId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CallOrganisationsPage:
    """Eligible organisations ranked by how well they cover the call's requirements."""
    return service.call_organisations(session, matching, call_id, limit, offset)


@router.get(
    "/api/v1/organisations/{organisation_id}/calls",
    response_model=OrganisationCallsPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.organisation, costly=True),
)
def organisation_calls(
    session: SessionDep,
    matching: MatchingDep,
    organisation_id: OrganisationId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrganisationCallsPage:
    """Open calls the organisation is eligible for, best fit first, with days left."""
    return service.organisation_calls(session, matching, organisation_id, limit)


@router.post(
    "/api/v1/calls/{call_id}/interests",
    response_model=InterestOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": InterestOut, "description": "Déjà marqué."},
        **problem_responses(404, 409, 422),
    },
    openapi_extra=access(Access.signed_in),
)
def mark_interest(
    session: SessionDep,
    viewer: ViewerDep,
    call_id: CallId,
    body: InterestIn,
    response: Response,
    _idempotency: IdempotencyDep,
) -> InterestOut:
    """Mark the call « intéressé » for an organisation you act for."""
    out, created = interests.mark_interest(session, viewer, call_id, body.organisation_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.delete(
    "/api/v1/calls/{call_id}/interests",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def withdraw_interest(
    session: SessionDep,
    viewer: ViewerDep,
    call_id: CallId,
    organisation_id: Annotated[
        int, Query(ge=1, le=2**31 - 1, description="The organisation you act for.")
    ],
) -> Response:
    """Withdraw an organisation's interest in the call."""
    interests.withdraw_interest(session, viewer, call_id, organisation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/v1/calls/{call_id}/interests",
    response_model=InterestPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def list_interests(
    session: SessionDep,
    viewer: ViewerDep,
    call_id: CallId,
    organisation_id: OrganisationParam = None,
) -> InterestPage:
    """Interested organisations: mutual reveal for members, all for the coordinator."""
    return interests.list_interests(session, viewer, call_id, organisation_id)


@router.post(
    "/api/v1/calls/{call_id}/consortia",
    response_model=list[ProposedConsortiumOut],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 422),
    openapi_extra=access(Access.coordinator, costly=True),
)
def propose_consortia(
    session: SessionDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    call_id: CallId,
    body: ConsortiumRequest,
    _idempotency: IdempotencyDep,
) -> list[ProposedConsortiumOut]:
    """Compose and store alternative consortia for the call, with their coverage tables."""
    return proposals.propose_consortia(session, matching, viewer, call_id, body)
