"""Territory referential endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.errors import InvalidInput, problem_responses
from api.kit.routing import Route
from api.territories import service
from api.territories.schemas import TerritoryOut, TerritoryPage
from models.enums import TerritoryLevel

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/territories",
    tags=["territoires"],
    responses=problem_responses(401),
)


@router.get(
    "",
    response_model=TerritoryPage,
    responses=problem_responses(422),
    openapi_extra=access(Access.public),
)
def search_territories(
    session: SessionDep,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Name, accent- and case-insensitive ('aix en provence', 'St-Tropez', "
            "'Marseille 1ère arr.'), current or former: the name of a commune déléguée, "
            "associée or merged finds the current commune, with `formerly` set. Names only: "
            "a postal code goes in postal_code, an INSEE code (13001, 2A004) or a reference "
            "in /territories/{code} (422 saying so).",
        ),
    ] = None,
    postal_code: Annotated[
        str | None,
        Query(
            max_length=20,
            description="La Poste postal code (13001 is Marseille 1er, not Aix), read as "
            "people type it: spaces ignored ('01500 ', '13 001'), 4 digits are a code whose "
            "leading zero was lost ('1500' is 01500, said in `notes`), a 'CEDEX' mention "
            "dropped. A CEDEX code names no place: nothing is found and `notes` says why. "
            "Anything else that is not 5 digits is a 422 saying what is wrong.",
        ),
    ] = None,
    level: Annotated[
        list[TerritoryLevel] | None, Query(description="Keep only these levels.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TerritoryPage:
    """Search territories by name or by postal code."""
    if q is None and postal_code is None:
        raise InvalidInput("Indiquez q (un nom) ou postal_code (un code postal).")
    if q is not None:
        service.check_name_query(q)
    result = service.search_territories(
        session, q=q, postal_code=postal_code, levels=level, limit=limit
    )
    return TerritoryPage(
        items=service.describe(session, result.territories, result.formerly),
        total=result.total,
        notes=result.notes,
    )


@router.get(
    "/{code}",
    response_model=TerritoryOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.public),
)
def get_territory(session: SessionDep, code: str) -> TerritoryOut:
    """One territory by reference: commune:13001, epci:200054807, departement:13, region:93,
    13001, 2A004; the code of a former commune (85307) gives the current one, `formerly` set."""
    return service.describe_ref(session, code)
