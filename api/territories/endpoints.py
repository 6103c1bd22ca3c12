"""Territory referential endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import Field

from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.errors import problem_responses
from api.kit.routing import Route
from api.territories import service
from api.territories.postal_codes import POSTAL_CODE_PATTERN
from api.territories.schemas import TERRITORY_REF_SCHEMA, TerritoryOut, TerritoryPage
from models.enums import TerritoryLevel

# The pattern is documented, not enforced: the reader forgives more (`read_postal_code`).
PostalCodeText = Annotated[
    str, Field(max_length=20, json_schema_extra={"pattern": POSTAL_CODE_PATTERN})
]

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
            "in /territories/{ref}; such a code finds nothing, and `notes` says where to "
            "look.",
        ),
    ] = None,
    postal_code: Annotated[
        PostalCodeText | None,
        Query(
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
    """Search territories by name or by postal code; with neither, every territory of the
    levels asked, the most populous first."""
    result = service.search_territories(
        session, q=q, postal_code=postal_code, levels=level, limit=limit
    )
    return TerritoryPage(
        items=service.describe(session, result.territories, result.formerly),
        total=result.total,
        notes=result.notes,
    )


@router.get(
    "/{ref}",
    response_model=TerritoryOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.public),
)
def get_territory(
    session: SessionDep,
    ref: Annotated[
        str,
        Path(
            max_length=40,
            json_schema_extra=TERRITORY_REF_SCHEMA,
            description="commune:13001, epci:200054807, departement:13, region:93, or a bare "
            "INSEE code (13001, 2A004) or EPCI SIREN; case, spaces and digits of other "
            "scripts are forgiven.",
        ),
    ],
) -> TerritoryOut:
    """One territory by reference: commune:13001, epci:200054807, departement:13, region:93,
    13001, 2A004; the code of a former commune (85307) gives the current one, `formerly` set."""
    return service.describe_ref(session, ref)
