"""Organisation and statement endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, ReaderDep, SessionDep, ViewerDep
from api.kit.errors import problem_responses
from api.kit.idempotency import IdempotencyDep
from api.kit.routing import Route
from api.organisations import service, views
from api.organisations.schemas import (
    OrganisationIn,
    OrganisationOut,
    OrganisationPage,
    OrganisationPatch,
    OrganisationSort,
    StatementIn,
    StatementOut,
    StatementPage,
    StatementPatch,
)
from api.territories.schemas import TerritoryRefText
from models.enums import OrganisationKind, StatementKind

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/organisations",
    tags=["organisations"],
    responses=problem_responses(401, 403),
)
statements_router = APIRouter(
    route_class=Route,
    prefix="/api/v1/statements",
    tags=["organisations"],
    responses=problem_responses(401, 403),
)

OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
StatementId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# No NUL character: PostgreSQL cannot compare text holding one.
NO_NUL = r"^[^\x00]*$"
AllowDuplicateName = Annotated[
    bool,
    Query(
        description="true to create (or rename) an organisation although one of the same "
        "kind has the same name (accents, case and punctuation aside) and no SIREN tells "
        "them apart: two organisations that really share a name. Without it such a request "
        "is a 409 naming the existing organisation."
    ),
]
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page, 1 to 200.")]
Offset = Annotated[
    int,
    Query(ge=0, le=1_000_000, description="Items to skip; ignored when a cursor is given."),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=2000,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="The next_cursor of the previous page (same filters and sort): the page "
        "that follows it, with no duplicate and no miss while organisations are added.",
    ),
]


@router.get(
    "",
    response_model=OrganisationPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def list_organisations(
    session: SessionDep,
    viewer: ViewerDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="Words that must each appear in the name (accents, case and "
            "apostrophe style ignored: 'cooperative hlm' finds « Coopérative Hlm … », "
            "'etabli' « L’Établi ») or in the description (case-insensitive).",
        ),
    ] = None,
    kind: Annotated[OrganisationKind | None, Query()] = None,
    legal_form: Annotated[
        str | None,
        Query(
            max_length=80,
            pattern=NO_NUL,
            description="Legal form, case-insensitive: OPH, ESH, Coopérative Hlm, SEM…",
        ),
    ] = None,
    territory: Annotated[
        TerritoryRefText | None,
        Query(
            description="Territory reference; keeps organisations working inside it "
            "or on a territory that contains it.",
        ),
    ] = None,
    sort: Annotated[
        OrganisationSort,
        Query(
            description="name, -name, created_at or -created_at; ties broken by id. By name "
            "the French way: accents, case and punctuation ignored (« Association Âges » "
            "before « Association Terres », « École » among the E)."
        ),
    ] = OrganisationSort.name,
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> OrganisationPage:
    """List organisations (archived ones left out), filtered, sorted, one page at a time."""
    return service.list_organisations(
        session,
        viewer,
        q=q,
        kind=kind,
        legal_form=legal_form,
        territory=territory,
        sort=sort,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )


@router.post(
    "",
    response_model=OrganisationOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 422),
    openapi_extra=access(Access.coordinator),
)
def create_organisation(
    session: SessionDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    body: OrganisationIn,
    response: Response,
    _idempotency: IdempotencyDep,
    allow_duplicate_name: AllowDuplicateName = False,
) -> OrganisationOut:
    """Create an organisation with its territories, contacts and statements (409 when its
    SIREN is taken, by an archived organisation too, or when one of the same kind and name
    exists, accents, case and punctuation aside, and no SIREN tells them apart)."""
    org = service.create_organisation(
        session,
        body,
        matching=matching,
        viewer=viewer,
        allow_duplicate_name=allow_duplicate_name,
    )
    response.headers["Location"] = f"/api/v1/organisations/{org.id}"
    return views.detail(org, viewer)


@router.get(
    "/{organisation_id}",
    response_model=OrganisationOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def get_organisation(
    session: SessionDep, viewer: ViewerDep, organisation_id: OrganisationId
) -> OrganisationOut:
    """One organisation (404 once archived); contacts and coordinator-only statements only
    for its members and the coordinator."""
    return views.detail(service.get_organisation(session, organisation_id), viewer)


@router.patch(
    "/{organisation_id}",
    response_model=OrganisationOut,
    responses=problem_responses(403, 404, 409, 422),
    openapi_extra=access(Access.organisation),
)
def update_organisation(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    organisation_id: OrganisationId,
    body: OrganisationPatch,
    allow_duplicate_name: AllowDuplicateName = False,
) -> OrganisationOut:
    """Change some fields of an organisation (JSON merge: absent fields stay, null clears;
    409 when the new name or kind makes it a duplicate, as on creation)."""
    org = service.update_organisation(
        session,
        reader,
        matching,
        viewer,
        organisation_id,
        body,
        allow_duplicate_name=allow_duplicate_name,
    )
    return views.detail(org, viewer)


@router.delete(
    "/{organisation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 422),
    openapi_extra=access(Access.organisation),
)
def archive_organisation(
    session: SessionDep, matching: MatchingDep, viewer: ViewerDep, organisation_id: OrganisationId
) -> Response:
    """Archive an organisation: it leaves matching and listings at once; its history stays."""
    service.archive_organisation(session, matching, viewer, organisation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{organisation_id}/statements",
    response_model=StatementPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def list_statements(
    session: SessionDep,
    viewer: ViewerDep,
    organisation_id: OrganisationId,
    kind: Annotated[StatementKind | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> StatementPage:
    """An organisation's statements by id, one page at a time; coordinator-only ones only for
    its members and the coordinator."""
    return service.list_statements(
        session, viewer, organisation_id, kind=kind, limit=limit, offset=offset, cursor=cursor
    )


@router.post(
    "/{organisation_id}/statements",
    response_model=StatementOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 422),
    openapi_extra=access(Access.organisation),
)
def create_statement(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    organisation_id: OrganisationId,
    body: StatementIn,
    response: Response,
    _idempotency: IdempotencyDep,
) -> StatementOut:
    """Add a competency or a need to an organisation; matching reads it at once."""
    statement = service.create_statement(session, reader, matching, viewer, organisation_id, body)
    response.headers["Location"] = f"/api/v1/statements/{statement.id}"
    return views.statement_out(statement)


@statements_router.get(
    "/{statement_id}",
    response_model=StatementOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def get_statement(
    session: SessionDep, viewer: ViewerDep, statement_id: StatementId
) -> StatementOut:
    """One statement (404 when coordinator-only and not the viewer's organisation)."""
    return views.statement_out(service.get_statement(session, viewer, statement_id))


@statements_router.patch(
    "/{statement_id}",
    response_model=StatementOut,
    responses=problem_responses(403, 404, 422),
    openapi_extra=access(Access.organisation),
)
def update_statement(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    statement_id: StatementId,
    body: StatementPatch,
) -> StatementOut:
    """Change a statement's text, kind, themes or visibility; matching reads it at once."""
    statement = service.update_statement(session, reader, matching, viewer, statement_id, body)
    return views.statement_out(statement)


@statements_router.delete(
    "/{statement_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 422),
    openapi_extra=access(Access.organisation),
)
def delete_statement(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    statement_id: StatementId,
) -> Response:
    """Delete a statement; matching forgets it at once."""
    service.delete_statement(session, reader, matching, viewer, statement_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
