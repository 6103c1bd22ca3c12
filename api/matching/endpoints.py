"""Search, partner suggestions and dismissals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep
from api.kit.errors import problem_responses
from api.kit.idempotency import IdempotencyDep
from api.kit.routing import Route
from api.matching import service
from api.matching.schemas import (
    DismissalIn,
    DismissalOut,
    PartnerMode,
    PartnerPage,
    SearchPage,
    Within,
)
from api.territories.schemas import TerritoryRefText

router = APIRouter(
    route_class=Route, tags=["mise en relation"], responses=problem_responses(401, 403)
)
OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/api/v1/search/organisations",
    response_model=SearchPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in, costly=True),
)
def search_organisations(
    session: SessionDep,
    matching: MatchingDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=2000,
            json_schema_extra={"pattern": service.SEARCH_TEXT_PATTERN},
            description="What you look for, in French (not only spaces).",
        ),
    ],
    territory: Annotated[
        TerritoryRefText | None,
        Query(
            description="Territory reference (commune:13001, epci:…, departement:13, region:93, "
            "or a bare INSEE/SIREN code): keeps organisations working inside it or on a "
            "territory that contains it.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    as_typed: Annotated[
        bool,
        Query(
            description="Search the text as typed: its typing mistakes are not corrected "
            "(by default a word that is neither French nor the network's, one slip from a "
            "network word, is read as that word; `read_as` says so)."
        ),
    ] = False,
) -> SearchPage:
    """Organisations whose competencies best answer a French text, with the statements that do."""
    return service.search(session, matching, q, territory, limit, as_typed=as_typed)


@router.get(
    "/api/v1/organisations/{organisation_id}/partners",
    openapi_extra=access(Access.organisation, costly=True),
    response_model=PartnerPage,
    responses=problem_responses(404, 422),
)
def partners(
    session: SessionDep,
    matching: MatchingDep,
    organisation_id: OrganisationId,
    mode: Annotated[
        PartnerMode,
        Query(
            description="complementary: who covers my needs and whose needs I cover; "
            "peer: who shares my needs and competencies, to pool expertise."
        ),
    ] = PartnerMode.complementary,
    within: Annotated[
        Within, Query(description="Keep partners sharing at least this territory level.")
    ] = Within.any,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> PartnerPage:
    """Suggested partners for an organisation, with scores, shared territory and reasons."""
    return service.partners(session, matching, organisation_id, mode, within, limit)


@router.post(
    "/api/v1/organisations/{organisation_id}/dismissals",
    openapi_extra=access(Access.organisation),
    response_model=DismissalOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": DismissalOut,
            "description": "Already dismissed: the existing dismissal, unchanged.",
        },
        **problem_responses(404, 409, 422),
    },
)
def dismiss(
    session: SessionDep,
    organisation_id: OrganisationId,
    body: DismissalIn,
    response: Response,
    _idempotency: IdempotencyDep,
) -> DismissalOut:
    """Dismiss a suggested partner: it is not suggested to this organisation again."""
    out, created = service.dismiss(session, organisation_id, body.organisation_id, body.reason)
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get(
    "/api/v1/organisations/{organisation_id}/dismissals",
    openapi_extra=access(Access.organisation),
    response_model=list[DismissalOut],
    responses=problem_responses(404, 422),
)
def list_dismissals(session: SessionDep, organisation_id: OrganisationId) -> list[DismissalOut]:
    """Partners this organisation has dismissed."""
    return service.list_dismissals(session, organisation_id)


@router.delete(
    "/api/v1/organisations/{organisation_id}/dismissals/{dismissed_id}",
    openapi_extra=access(Access.organisation),
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422),
)
def undo_dismissal(
    session: SessionDep, organisation_id: OrganisationId, dismissed_id: OrganisationId
) -> Response:
    """Undo a dismissal: the partner may be suggested again."""
    service.undo_dismissal(session, organisation_id, dismissed_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
