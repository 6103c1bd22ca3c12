"""The impact page of the coordinator: what the consortia became (the API's impact
report), with figures, bar charts per département and per quarter drawn on the server as
SVG, and the same figures in tables."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.consortia.impact import ImpactOut, impact
from api.consortia.states import LABELS
from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.errors import InvalidInput, NotFound
from api.kit.routing import Route
from api.territories.service import resolve_ref
from api.web.call_pages import require_coordinator
from api.web.charts import bar_chart
from api.web.render import render
from api.web.session import Member

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)
DateText = Annotated[str, Query(max_length=40)]
SERIES = ["Consortiums proposés", "Consortiums formés (approuvés ou au-delà)"]


def _day(raw: str) -> date | None:
    """A form's date (AAAA-MM-JJ); ValueError when unreadable."""
    text = raw.strip()
    if not text:
        return None
    if len(text) != 10:
        raise ValueError(text)
    return date.fromisoformat(text)


def departement_names(session: Session, report: ImpactOut) -> dict[str | None, str]:
    names: dict[str | None, str] = {None: "Sans département"}
    for bucket in report.by_departement:
        if bucket.departement is None:
            continue
        try:
            territory = resolve_ref(session, f"departement:{bucket.departement}")
            names[bucket.departement] = f"{territory.name} ({bucket.departement})"
        except (InvalidInput, NotFound):
            names[bucket.departement] = bucket.departement
    return names


@router.get("/espace/impact", openapi_extra=PAGE)
def impact_page(
    request: Request, viewer: Member, session: SessionDep, du: DateText = "", au: DateText = ""
) -> Response:
    """Figures and charts of the consortia, per département (of the lead) and per quarter."""
    require_coordinator(viewer, "La mesure de l'impact")
    errors: dict[str, str] = {}
    start = end = None
    try:
        start = _day(du)
    except ValueError:
        errors["du"] = "Date illisible : choisissez-la dans le calendrier (AAAA-MM-JJ)."
    try:
        end = _day(au)
    except ValueError:
        errors["au"] = "Date illisible : choisissez-la dans le calendrier (AAAA-MM-JJ)."
    if start and end and start > end:
        errors["au"] = "La fin de la période précède son début."
    report = impact(session, start=None if errors else start, end=None if errors else end)
    names = departement_names(session, report)
    by_departement = bar_chart(
        "Consortiums par département",
        "Pour chaque département du chef de file, le nombre de consortiums proposés et "
        "formés ; les mêmes chiffres figurent dans le tableau qui suit.",
        [(names[b.departement], [b.consortia, b.formed]) for b in report.by_departement],
        SERIES,
    )
    by_quarter = bar_chart(
        "Consortiums par trimestre",
        "Pour chaque trimestre, le nombre de consortiums proposés et formés ; les mêmes "
        "chiffres figurent dans le tableau qui suit.",
        [(b.quarter.replace("-T", " T"), [b.consortia, b.formed]) for b in report.by_quarter],
        SERIES,
    )
    context = {
        "report": report,
        # Each consortium falls in one quarter: their formed ones add up to the total.
        "formed": sum(b.formed for b in report.by_quarter),
        "names": names,
        "charts": {"departement": by_departement, "trimestre": by_quarter},
        "form": {"du": du, "au": au},
        "errors": errors,
        "status_labels": LABELS,
    }
    return render(request, "impact.html", context, status_code=422 if errors else 200)
