"""`GET /api/v1/audit`: the audit trail, for the coordinator and admins."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.audit import service
from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.errors import problem_responses
from api.kit.fields import UtcDatetime
from api.kit.routing import Route

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/audit",
    tags=["journal"],
    responses=problem_responses(401, 403),
)

ObjectType = Literal["organisation", "statement", "account", "token", "review"]


class AuditEventOut(BaseModel):
    id: int
    at: UtcDatetime
    account_id: int | None = Field(description="Le compte qui a agi ; aucun : une commande.")
    action: str = Field(description="create, update, delete, archive, restore, revoke.")
    object_type: str
    object_id: int | None
    details: dict[str, Any] = Field(
        description="changes : champ → [avant, après] (une création : ses valeurs) ; by : qui."
    )


class AuditPageOut(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


@router.get(
    "",
    response_model=AuditPageOut,
    responses=problem_responses(422),
    openapi_extra=access(Access.coordinator),
)
def audit(
    session: SessionDep,
    object_type: Annotated[ObjectType | None, Query()] = None,
    object_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    account_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPageOut:
    """Who created, changed or deleted what, newest first."""
    page = service.list_events(
        session,
        object_type=object_type,
        object_id=object_id,
        account_id=account_id,
        limit=limit,
        offset=offset,
    )
    return AuditPageOut(
        items=[AuditEventOut.model_validate(e, from_attributes=True) for e in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )
