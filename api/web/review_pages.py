"""The coordinator's review of consortia: the queue with each consortium's coverage table
(requirement × member), approve / reject / request changes with a reason and a comment,
the next steps (partners contacted, back to review) and the outcome (submitted, won with an
amount, lost). Every write sends the version the page was read at: a stale one is a French
message on the page, not a 500. A member sees its own organisations' consortia, read only."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.consortia import service
from api.consortia.present import consortium_out
from api.consortia.schemas import ConsortiumOut, OutcomeIn, ReviewIn, StatusIn
from api.consortia.states import LABELS, REASON_LABELS, ReasonCode
from api.kit.auth import Access, access
from api.kit.deps import SessionDep
from api.kit.errors import NotFound
from api.kit.pagination import UnknownCursor, decode_cursor, encode_cursor, key_id, scope_of
from api.kit.routing import Route
from api.organisations import service as organisations
from api.web.call_pages import require_coordinator
from api.web.forms import RowId, Text, attempt, row_id
from api.web.render import field_errors, redirect, render
from api.web.session import Member
from models.enums import ConsortiumStatus as S
from models.enums import ReviewDecision

router = APIRouter(route_class=Route, include_in_schema=False)
PAGE = access(Access.public)  # each page checks the session and who may see it
QUEUE = 20

# The queue's tabs: which statuses each shows.
TABS: dict[str, tuple[str, tuple[S, ...]]] = {
    "a-revoir": ("À revoir", (S.proposed,)),
    "modifications": ("Modifications demandées", (S.changes_requested,)),
    "approuves": ("Approuvés", (S.approved, S.contacted)),
    "candidatures": ("Candidatures", (S.submitted, S.won, S.lost)),
    "rejetes": ("Rejetés", (S.rejected,)),
}
DECISION_LABELS = {
    ReviewDecision.approve: "Approuver",
    ReviewDecision.request_changes: "Demander des modifications",
    ReviewDecision.reject: "Rejeter",
}
OUTCOME_LABELS = {
    S.submitted: "Candidature déposée",
    S.won: "Lauréat",
    S.lost: "Non retenu",
}


def consortium_url(consortium_id: int) -> str:
    return f"/espace/consortiums/{consortium_id}"


def _statement_texts(session: Session, viewer: Principal, out: ConsortiumOut) -> dict[int, str]:
    """The covering statements' texts, by id (one the viewer may not read is left out)."""
    texts: dict[int, str] = {}
    for cover in out.coverage_table:
        if cover.statement_id is None or cover.statement_id in texts:
            continue
        try:
            texts[cover.statement_id] = organisations.get_statement(
                session, viewer, cover.statement_id
            ).text
        except NotFound:
            continue
    return texts


def card(session: Session, viewer: Principal, consortium_id: int) -> dict[str, Any]:
    """What a consortium's card shows: the consortium and its covering statements."""
    consortium = service.get_consortium(session, consortium_id, viewer)
    out = consortium_out(session, consortium, viewer)
    return {"c": out, "texts": _statement_texts(session, viewer, out)}


def labels() -> dict[str, Any]:
    return {
        "reason_labels": REASON_LABELS,
        "decision_labels": DECISION_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "status_labels": LABELS,
    }


@router.get("/espace/consortiums", openapi_extra=PAGE)
def queue_page(
    request: Request,
    viewer: Member,
    session: SessionDep,
    onglet: Annotated[str, Query(max_length=40)] = "a-revoir",
    appel: Annotated[str, Query(max_length=20)] = "",
    suite: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """The review queue (proposed consortia by default), each with its coverage table and
    the review's buttons; other tabs for the consortia further on. `QUEUE` consortia a
    page, newest first; `suite` is the opaque cursor of the next page (keyset: a consortium
    reviewed meanwhile leaves the tab without shifting the next page)."""
    require_coordinator(viewer, "La file de revue des consortiums")
    tab = onglet if onglet in TABS else "a-revoir"
    call_id = row_id(appel)
    scope = scope_of(tab=tab, call=call_id)
    below_id = None
    lost = False
    if suite:
        try:
            (below_id,) = decode_cursor(suite, scope, [key_id])
        except UnknownCursor:
            lost = True  # an old or altered link: the first page, with a word about it
    page = service.list_consortia(
        session, viewer, status=TABS[tab][1], call_id=call_id, limit=QUEUE + 1, below_id=below_id
    )
    items = page.items[:QUEUE]
    more = len(page.items) > QUEUE
    cards = [card(session, viewer, c.id) for c in items]
    next_query = None
    if more:
        params = {"onglet": tab, "suite": encode_cursor(scope, [items[-1].id])}
        if call_id:
            params["appel"] = str(call_id)
        next_query = urlencode(params)
    context = {
        "tab": tab,
        "tabs": TABS,
        "cards": cards,
        "total": page.total,
        "call_id": call_id,
        "next_query": next_query,
        "first_page": below_id is None,
        "lost": lost,
        **labels(),
    }
    return render(request, "consortia.html", context)


def detail_page(
    request: Request,
    session: Session,
    viewer: Principal,
    consortium_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """A consortium's page, with the errors of a refused form next to their fields."""
    context = {
        **card(session, viewer, consortium_id),
        "form": form or {},
        "errors": errors or {},
        "coordinator": viewer.sees_everything,
        **labels(),
    }
    return render(request, "consortium.html", context, status_code=status_code)


@router.get("/espace/consortiums/{consortium_id}", openapi_extra=PAGE)
def consortium_page(
    request: Request, viewer: Member, session: SessionDep, consortium_id: RowId
) -> Response:
    """A consortium: call, members, coverage table, reviews; the coordinator's forms."""
    return detail_page(request, session, viewer, consortium_id)


def _back(consortium_id: int, retour: str, notice: str) -> Response:
    if retour in TABS:
        return redirect(f"/espace/consortiums?onglet={retour}&fait={notice}")
    return redirect(f"{consortium_url(consortium_id)}?fait={notice}")


def _version(raw: str) -> int | None:
    return row_id(raw)


STALE_FORM = "Ce formulaire ne dit pas quelle version du consortium il modifie : rechargez la page."


@router.post("/espace/consortiums/{consortium_id}/revue", openapi_extra=PAGE)
def review(
    request: Request,
    viewer: Member,
    session: SessionDep,
    consortium_id: RowId,
    version: Text = "",
    decision: Text = "",
    reason_code: Text = "",
    comment: Text = "",
    retour: Text = "",
) -> Response:
    """Approve, reject or request changes, with a reason and a comment (the API's review)."""
    require_coordinator(viewer, "La revue des consortiums")
    form = {"decision": decision, "reason_code": reason_code, "comment": comment}
    errors: dict[str, str] = {}
    number = _version(version)
    if number is None:
        errors["revue"] = STALE_FORM
    if decision not in {d.value for d in ReviewDecision}:
        errors["decision"] = "Choisissez : approuver, demander des modifications ou rejeter."
    elif decision != ReviewDecision.approve and not reason_code:
        errors["reason_code"] = "Choisissez un motif pour rejeter ou demander des modifications."
    if reason_code and reason_code not in {r.value for r in ReasonCode}:
        errors["reason_code"] = "Choisissez un motif de la liste."
    elif reason_code == ReasonCode.other and not comment.strip():
        errors["comment"] = "Avec le motif « autre raison », dites laquelle en commentaire."
    if len(comment) > 2000:
        errors["comment"] = "Commentaire trop long : 2 000 caractères au plus."
    data: ReviewIn | None = None
    if not errors:
        body: dict[str, Any] = {"version": number, "decision": decision}
        if reason_code:
            body["reason_code"] = reason_code
        if comment.strip():
            body["comment"] = comment.strip()
        try:
            data = ReviewIn.model_validate(body)
        except ValidationError as exc:
            errors = field_errors(exc)
            errors.setdefault("revue", next(iter(errors.values())))
    if data is None:
        return detail_page(
            request, session, viewer, consortium_id, form=form, errors=errors, status_code=422
        )
    checked = data
    _, refused = attempt(
        session, lambda: service.review_consortium(session, consortium_id, checked, viewer)
    )
    if refused is not None:
        return detail_page(
            request, session, viewer, consortium_id,
            form=form, errors={"revue": refused.message}, status_code=refused.status_code,
        )  # fmt: skip
    return _back(consortium_id, retour, "revu")


@router.post("/espace/consortiums/{consortium_id}/statut", openapi_extra=PAGE)
def move(
    request: Request,
    viewer: Member,
    session: SessionDep,
    consortium_id: RowId,
    version: Text = "",
    status: Text = "",
) -> Response:
    """Partners contacted (from approved), or back to review (from changes requested)."""
    require_coordinator(viewer, "Le suivi des consortiums")
    number = _version(version)
    if number is None or status not in ("contacted", "proposed"):
        message = STALE_FORM if number is None else "Choisissez une étape de la liste."
        return detail_page(
            request, session, viewer, consortium_id, errors={"statut": message}, status_code=422
        )
    data = StatusIn.model_validate({"version": number, "status": status})
    _, refused = attempt(
        session, lambda: service.change_status(session, consortium_id, data, viewer)
    )
    if refused is not None:
        return detail_page(
            request, session, viewer, consortium_id,
            errors={"statut": refused.message}, status_code=refused.status_code,
        )  # fmt: skip
    return _back(consortium_id, "", "statut")


def amount_of(raw: str) -> str:
    """« 45 000,50 € » → « 45000.50 »: the way people write euros, as the API reads them."""
    return (
        raw.replace("\u202f", "").replace("\u00a0", "").replace(" ", "").replace("€", "")
    ).replace(",", ".")


@router.post("/espace/consortiums/{consortium_id}/resultat", openapi_extra=PAGE)
def outcome(
    request: Request,
    viewer: Member,
    session: SessionDep,
    consortium_id: RowId,
    version: Text = "",
    status: Text = "",
    on: Text = "",
    amount: Text = "",
) -> Response:
    """The answer filed, or the funder's decision (won with an amount, or lost)."""
    require_coordinator(viewer, "Le suivi des consortiums")
    form = {"status": status, "on": on, "amount": amount}
    errors: dict[str, str] = {}
    number = _version(version)
    if number is None:
        errors["resultat"] = STALE_FORM
    if status not in {s.value for s in OUTCOME_LABELS}:
        errors["status"] = "Choisissez : candidature déposée, lauréat ou non retenu."
    if not on.strip():
        errors["on"] = "Donnez la date (AAAA-MM-JJ)."
    written = amount_of(amount)
    if written and status != S.won:
        errors["amount"] = "Un montant ne se donne que pour une candidature lauréate."
    data: OutcomeIn | None = None
    if not errors:
        body: dict[str, Any] = {"version": number, "status": status, "on": on.strip()}
        if written:
            body["amount"] = written
        try:
            data = OutcomeIn.model_validate(body)
        except ValidationError as exc:
            errors = field_errors(exc)
            if "on" in errors:
                errors["on"] = "Date illisible : choisissez-la dans le calendrier (AAAA-MM-JJ)."
            if "amount" in errors:
                errors["amount"] = "Montant illisible : écrivez-le en euros, par exemple 45 000,50."
    if data is None:
        return detail_page(
            request, session, viewer, consortium_id, form=form, errors=errors, status_code=422
        )
    checked = data
    _, refused = attempt(
        session, lambda: service.record_outcome(session, consortium_id, checked, viewer)
    )
    if refused is not None:
        field = "on" if refused.errors else "resultat"
        return detail_page(
            request, session, viewer, consortium_id,
            form=form, errors={field: refused.message}, status_code=refused.status_code,
        )  # fmt: skip
    return _back(consortium_id, "", "resultat")
