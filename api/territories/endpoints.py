"""Territory referential endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.errors import InvalidInput, problem_responses
from api.territories import service
from api.territories.schemas import TerritoryOut, TerritoryPage
from models.enums import TerritoryLevel

router = APIRouter(
    prefix="/api/v1/territories", tags=["territoires"], responses=problem_responses(401)
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
            description="Name, accent- and case-insensitive ('aix en provence', 'St-Tropez'). "
            "Names only: a postal code goes in postal_code, an INSEE code in /territories/{code}.",
        ),
    ] = None,
    postal_code: Annotated[
        str | None,
        Query(
            pattern=r"^\d{5}$",
            description="La Poste postal code (13001 is Marseille 1er, not Aix).",
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
    if q is not None and q.strip().isdigit():
        raise InvalidInput(
            f"q cherche par nom ; « {q.strip()} » est un nombre : pour un code postal utilisez "
            f"postal_code={q.strip()}, pour un code INSEE ou un SIREN /api/v1/territories/{q.strip()}."
        )
    found, total = service.search_territories(
        session, q=q, postal_code=postal_code, levels=level, limit=limit
    )
    return TerritoryPage(items=service.describe(session, found), total=total)


@router.get(
    "/{code}",
    response_model=TerritoryOut,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.public),
)
def get_territory(session: SessionDep, code: str) -> TerritoryOut:
    """One territory by reference: commune:13001, epci:200054807, departement:13, region:93, 13001."""
    territory = service.get_territory(session, code)
    return service.describe(session, [territory])[0]
