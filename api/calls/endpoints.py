"""Calls for projects: the catalogue every member reads and the coordination writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from api.calls import service
from api.calls.schemas import (
    PERIMETER_PATTERN,
    CallIn,
    CallOut,
    CallPage,
    CallPatch,
    CallSort,
    CallState,
    IsoDate,
)
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, ReaderDep, SessionDep, TodayDep, ViewerDep
from api.kit.errors import problem_responses
from api.kit.idempotency import IdempotencyDep
from api.kit.routing import Route
from models.enums import OrganisationKind

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/calls",
    tags=["appels à projets"],
    responses=problem_responses(401, 403),
)

CallId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# No NUL character: PostgreSQL cannot compare text holding one.
NO_NUL = r"^[^\x00]*$"
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
        description="The next_cursor of the previous page (same filters, sort and day): the "
        "page that follows it, with no duplicate and no miss while calls are added.",
    ),
]
QueryDate = Annotated[IsoDate | None, Query()]
# The pattern is documented, not enforced: the reader forgives case and spaces.
PerimeterText = Annotated[
    str, Field(max_length=40, json_schema_extra={"pattern": PERIMETER_PATTERN})
]


@router.get(
    "",
    response_model=CallPage,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def list_calls(
    session: SessionDep,
    viewer: ViewerDep,
    today: TodayDep,
    status_: Annotated[
        CallState,
        Query(
            alias="status",
            description="open (the default: open, deadline today or later or none), closed "
            "(closed by hand, or past its deadline: kept, but in no other listing), draft "
            "(the coordination's only), archived (in no other listing), or any (all but "
            "archived ones; drafts for the coordination only).",
        ),
    ] = CallState.open,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="Words that must each appear in the title, funders, description, "
            "themes or aid types (accents, case and apostrophe style ignored).",
        ),
    ] = None,
    territory: Annotated[
        PerimeterText | None,
        Query(
            description="Territory reference (or 'France'); keeps calls whose perimeter "
            "contains it, lies inside it or overlaps it (an EPCI across départements "
            "overlaps each), and the calls open to all of France.",
        ),
    ] = None,
    theme: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="A theme of the call (accents, case and punctuation ignored).",
        ),
    ] = None,
    kind: Annotated[
        OrganisationKind | None,
        Query(
            description="Keeps calls organisations of this kind may answer: open to every "
            "organisation, to the kind, or (landlord) to an Hlm legal form."
        ),
    ] = None,
    legal_form: Annotated[
        str | None,
        Query(
            max_length=80,
            pattern=NO_NUL,
            description="Keeps calls an organisation of this legal form may answer: open to "
            "every organisation, to the form (Hlm forms however spelt: 'SA d'HLM' is ESH), "
            "or, for an Hlm form, to landlords.",
        ),
    ] = None,
    deadline_before: Annotated[
        QueryDate,
        Query(
            description="Deadline on or before this day (AAAA-MM-JJ); leaves permanent calls out."
        ),
    ] = None,
    deadline_after: Annotated[
        QueryDate,
        Query(description="Deadline on or after this day (AAAA-MM-JJ); keeps permanent calls."),
    ] = None,
    sort: Annotated[
        CallSort,
        Query(
            description="deadline (the default: soonest first, permanent calls last), "
            "-deadline, title, -title (the French way: accents, case and punctuation "
            "ignored), created_at or -created_at; ties broken by id. Ranking by fit to an "
            "organisation is GET /api/v1/organisations/{id}/calls."
        ),
    ] = CallSort.deadline,
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> CallPage:
    """List calls for projects (by default the open ones), filtered, sorted, one page at a
    time, with the total."""
    return service.list_calls(
        session,
        viewer,
        today=today,
        status=status_,
        q=q,
        territory=territory,
        theme=theme,
        kind=kind,
        legal_form=legal_form,
        deadline_before=deadline_before,
        deadline_after=deadline_after,
        sort=sort,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )


@router.post(
    "",
    response_model=CallOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 422),
    openapi_extra=access(Access.coordinator),
)
def create_call(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    today: TodayDep,
    body: CallIn,
    response: Response,
    _idempotency: IdempotencyDep,
) -> CallOut:
    """Create a call for projects; its requirements are embedded at once (409 when its
    source and external id are another call's)."""
    call = service.create_call(session, reader, matching, body)
    response.headers["Location"] = f"/api/v1/calls/{call.id}"
    return service.detail(call, today)


@router.get(
    "/{call_id}",
    response_model=CallOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.signed_in),
)
def get_call(session: SessionDep, viewer: ViewerDep, today: TodayDep, call_id: CallId) -> CallOut:
    """One call, closed and archived ones included (a draft only for the coordination)."""
    return service.detail(service.get_call(session, viewer, call_id), today)


@router.patch(
    "/{call_id}",
    response_model=CallOut,
    responses=problem_responses(404, 409, 422),
    openapi_extra=access(Access.coordinator),
)
def update_call(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    today: TodayDep,
    call_id: CallId,
    body: CallPatch,
) -> CallOut:
    """Change some fields of a call (JSON merge: absent fields stay, null clears); each
    change is logged field by field for the digest."""
    call, _changed = service.update_call(session, reader, matching, call_id, body)
    return service.detail(call, today)


@router.delete(
    "/{call_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.coordinator),
)
def archive_call(session: SessionDep, call_id: CallId) -> Response:
    """Archive a call: it leaves every listing (but status=archived) and stays readable."""
    service.archive_call(session, call_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
