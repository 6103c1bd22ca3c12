"""Feed addresses of an organisation (API), the feeds themselves and the web view of a
digest (public, behind their secret or signed URLs, or a token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.digest import feeds, view
from api.digest.feeds import FeedKind
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, SessionDep, SettingsDep, ViewerDep
from api.kit.errors import problem_responses
from api.kit.routing import Route

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/organisations/{organisation_id}/feeds",
    tags=["digest"],
    responses=problem_responses(401, 403, 404, 422),
)
public = APIRouter(route_class=Route, tags=["digest"])

OrganisationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Secret = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class FeedOut(BaseModel):
    kind: FeedKind
    url: str | None = Field(
        description="The feed's secret address (null: none yet; POST …/feeds/{kind} makes one)."
    )


class FeedList(BaseModel):
    items: list[FeedOut]


@router.get("", response_model=FeedList, openapi_extra=access(Access.organisation))
def list_feeds(
    session: SessionDep, settings: SettingsDep, organisation_id: OrganisationId
) -> FeedList:
    """The organisation's Atom and iCalendar feed addresses of matching calls."""
    view.require_organisation(session, organisation_id)
    keys = feeds.feed_keys(session, organisation_id)
    return FeedList(
        items=[
            FeedOut(kind=kind, url=feeds.feed_url(settings, keys[kind]) if kind in keys else None)
            for kind in FeedKind
        ]
    )


@router.post(
    "/{kind}",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedOut,
    openapi_extra=access(Access.organisation),
)
def rotate_feed(
    session: SessionDep, settings: SettingsDep, organisation_id: OrganisationId, kind: FeedKind
) -> FeedOut:
    """Make the feed's secret address, or a new one: the previous address stops working."""
    view.require_organisation(session, organisation_id)
    key = feeds.rotate(session, organisation_id, kind)
    return FeedOut(kind=kind, url=feeds.feed_url(settings, key))


@public.get(
    "/feeds/{secret}.atom",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}, **problem_responses(404, 422)},
    openapi_extra=access(Access.public),
)
def atom_feed(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    matching: MatchingDep,
    secret: Secret,
) -> Response:
    """Atom feed of the organisation's matching open calls (no token: the URL is secret)."""
    organisation_id = feeds.organisation_of(session, secret, FeedKind.atom)
    name, entries = view.feed_entries(session, settings, matching, organisation_id)
    body = feeds.atom(settings, name, str(request.url), entries)
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@public.get(
    "/feeds/{secret}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **problem_responses(404, 422)},
    openapi_extra=access(Access.public),
)
def ics_feed(
    session: SessionDep, settings: SettingsDep, matching: MatchingDep, secret: Secret
) -> Response:
    """iCalendar feed of the deadlines of the organisation's matching open calls."""
    organisation_id = feeds.organisation_of(session, secret, FeedKind.ics)
    name, entries = view.feed_entries(session, settings, matching, organisation_id)
    return Response(feeds.ics(settings, name, entries), media_type="text/calendar; charset=utf-8")


@public.get(
    "/digests/{organisation_id}/{week}",
    response_class=HTMLResponse,
    include_in_schema=False,
    openapi_extra=access(Access.public),
)
def digest_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    organisation_id: int,
    week: str,
    token: str = "",
) -> HTMLResponse:
    """The web view of a digest: through the signed link of its e-mail, or with a token
    of someone acting for the organisation. French pages for every refusal."""
    return view.digest_page(
        request, session, settings, matching, viewer, organisation_id, week, token
    )
