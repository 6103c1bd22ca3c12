"""`/api/v1/consortia`: the coordinator's review of consortia, and what came of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.consortia import service
from api.consortia.fit import CallFit, get_call_fit
from api.consortia.impact import ImpactOut
from api.consortia.impact import impact as impact_report
from api.consortia.present import consortium_out, summary_out
from api.consortia.schemas import (
    ConsortiumChange,
    ConsortiumOut,
    ConsortiumPage,
    OutcomeIn,
    ReasonOut,
    ReviewIn,
    StatusIn,
)
from api.consortia.states import REASON_LABELS
from api.kit.auth import Access, access
from api.kit.deps import SessionDep, ViewerDep
from api.kit.errors import problem_responses
from api.kit.fields import IsoDate
from api.kit.idempotency import IdempotencyDep
from api.kit.routing import Route
from models.enums import ConsortiumStatus

router = APIRouter(
    route_class=Route,
    prefix="/api/v1/consortia",
    tags=["consortiums"],
    responses=problem_responses(401, 403, 422),
)
CallFitDep = Annotated[CallFit, Depends(get_call_fit)]
# `:int` in the paths: /consortia/reasons is another address, never a consortium id (a
# PATCH there is a 405, not a 422 on the id).
ConsortiumId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=ConsortiumPage, openapi_extra=access(Access.signed_in))
def list_consortia(
    session: SessionDep,
    viewer: ViewerDep,
    status: Annotated[list[ConsortiumStatus] | None, Query()] = None,
    call_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ConsortiumPage:
    """Consortiums, les plus récents d'abord : tous pour la coordination, ceux de ses
    organisations pour un membre."""
    page = service.list_consortia(
        session, viewer, status=status or (), call_id=call_id, limit=limit, offset=offset
    )
    return ConsortiumPage(
        items=[summary_out(session, c) for c in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.get("/reasons", response_model=list[ReasonOut], openapi_extra=access(Access.signed_in))
def reasons() -> list[ReasonOut]:
    """Les motifs de décision possibles (reason_code) et leur libellé."""
    return [ReasonOut(code=code, label=label) for code, label in REASON_LABELS.items()]


@router.get(
    "/{consortium_id:int}",
    response_model=ConsortiumOut,
    responses=problem_responses(404),
    openapi_extra=access(Access.signed_in),
)
def get_consortium(
    session: SessionDep, viewer: ViewerDep, consortium_id: ConsortiumId
) -> ConsortiumOut:
    """Un consortium : membres, chef de file, couverture des exigences, revues, statut,
    version et statuts suivants possibles."""
    consortium = service.get_consortium(session, consortium_id, viewer)
    return consortium_out(session, consortium, viewer)


@router.patch(
    "/{consortium_id:int}",
    response_model=ConsortiumOut,
    responses=problem_responses(404, 409),
    openapi_extra=access(Access.coordinator),
)
def change_consortium(
    session: SessionDep,
    viewer: ViewerDep,
    fit: CallFitDep,
    consortium_id: ConsortiumId,
    change: ConsortiumChange,
) -> ConsortiumOut:
    """Changer les membres ou le chef de file (couverture recalculée ; version exigée)."""
    consortium = service.change_consortium(session, consortium_id, change, viewer, fit=fit)
    return consortium_out(session, consortium, viewer)


@router.post(
    "/{consortium_id:int}/reviews",
    response_model=ConsortiumOut,
    status_code=201,
    responses=problem_responses(404, 409),
    openapi_extra=access(Access.coordinator),
)
def review_consortium(
    session: SessionDep,
    viewer: ViewerDep,
    consortium_id: ConsortiumId,
    review: ReviewIn,
    _idempotency: IdempotencyDep,
) -> ConsortiumOut:
    """Approuver, rejeter ou demander des modifications (motif, commentaire, version)."""
    consortium = service.review_consortium(session, consortium_id, review, viewer)
    return consortium_out(session, consortium, viewer)


@router.post(
    "/{consortium_id:int}/status",
    response_model=ConsortiumOut,
    responses=problem_responses(404, 409),
    openapi_extra=access(Access.coordinator),
)
def change_status(
    session: SessionDep, viewer: ViewerDep, consortium_id: ConsortiumId, data: StatusIn
) -> ConsortiumOut:
    """Partenaires contactés (depuis approved) ou retour en revue (depuis changes_requested)."""
    consortium = service.change_status(session, consortium_id, data, viewer)
    return consortium_out(session, consortium, viewer)


@router.post(
    "/{consortium_id:int}/outcome",
    response_model=ConsortiumOut,
    responses=problem_responses(404, 409),
    openapi_extra=access(Access.coordinator),
)
def record_outcome(
    session: SessionDep, viewer: ViewerDep, consortium_id: ConsortiumId, data: OutcomeIn
) -> ConsortiumOut:
    """Candidature déposée, lauréate (montant en euros) ou non retenue, avec sa date."""
    consortium = service.record_outcome(session, consortium_id, data, viewer)
    return consortium_out(session, consortium, viewer)


impact_router = APIRouter(
    route_class=Route,
    prefix="/api/v1/impact",
    tags=["consortiums"],
    responses=problem_responses(401, 403, 422),
)


@impact_router.get("", response_model=ImpactOut, openapi_extra=access(Access.coordinator))
def impact(
    session: SessionDep,
    start: Annotated[IsoDate | None, Query(alias="from")] = None,
    end: Annotated[IsoDate | None, Query(alias="to")] = None,
) -> ImpactOut:
    """La mesure de l'impact : consortiums par statut, inter-bailleurs, appels auxquels on a
    répondu, montants obtenus, paires de partenaires (nouvelles ou déjà réunies), par
    département (du chef de file) et par trimestre. « from » après « to » : une période
    vide, un rapport à zéro."""
    return impact_report(session, start=start, end=end)
