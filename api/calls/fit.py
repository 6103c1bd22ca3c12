"""Who fits a call and which calls fit an organisation: database rows in, matcher
(eligibility, requirement fit) and schemas out. Interests: `interests.py`; consortia
proposed for a call: `proposals.py`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.calls.fit_schemas import (
    CallBrief,
    CallOrganisationsPage,
    EligibleOrganisationOut,
    OrganisationCallOut,
    OrganisationCallsPage,
    RequirementCoverageOut,
    RequirementOut,
    StatementBrief,
)
from api.calls.requirement_queries import requirement_vectors
from api.consortia.fit import Similarities
from api.kit.errors import NotFound
from api.matching import repository
from api.matching.engine import MatchingEngine
from api.territories import service as territory_service
from matcher.call_fit import RequirementFit, call_score, rank, requirement_fit
from matcher.eligibility import CallRules, eligible_mask, refusals
from matcher.encoders import FloatMatrix
from matcher.index import NetworkIndex
from matcher.snapshot import NetworkSnapshot
from models import Call, CallInterest, Organisation
from models.enums import CallStatus

# --- loading ---------------------------------------------------------------------------


def get_call(session: Session, call_id: int) -> Call:
    """The call with its perimeter and requirements; NotFound (French) otherwise."""
    call = session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .options(selectinload(Call.perimeter), selectinload(Call.requirements))
    )
    if call is None:
        raise NotFound(f"Aucun appel à projets n° {call_id}.")
    return call


def organisation_row(session: Session, organisation_id: int) -> Organisation:
    org = session.get(Organisation, organisation_id)
    if org is None or org.archived_at is not None:
        raise NotFound(f"Aucune organisation n° {organisation_id}.")
    return org


def call_rules(session: Session, call: Call) -> CallRules:
    """What the call accepts (`matcher.eligibility`). A nationwide call ("France", the
    `nationwide` flag where the model has it) or one without perimeter is open everywhere."""
    places = territory_service.places_of(session, call.perimeter)
    return CallRules(
        perimeter=tuple(places[t.id] for t in call.perimeter),
        nationwide=bool(getattr(call, "nationwide", False)),
        kinds=frozenset(str(k) for k in call.eligible_kinds or ()),
        legal_forms=tuple(str(f) for f in call.eligible_legal_forms or ()),
        perimeter_names=tuple(t.name for t in call.perimeter),
    )


def _legal_forms(session: Session) -> dict[int, str | None]:
    rows = session.execute(
        select(Organisation.id, Organisation.legal_form).where(
            Organisation.archived_at.is_(None), Organisation.legal_form.is_not(None)
        )
    )
    return {organisation_id: form for organisation_id, form in rows.all()}  # noqa: C416


def eligible_positions(session: Session, index: NetworkIndex, rules: CallRules) -> np.ndarray:
    """(n_organisations,) bool over the index: who may answer (legal forms read only when
    the call names some)."""
    forms = _legal_forms(session) if rules.legal_forms else {}
    orgs = index.organisations
    return eligible_mask(
        rules,
        [o.kind for o in orgs],
        [forms.get(o.id) for o in orgs],
        [o.places for o in orgs],
    )


def exact_cosines(queries: FloatMatrix, vectors: FloatMatrix) -> FloatMatrix:
    """(n_queries × n_vectors) float32 dot products of unit rows, summed in float64: the
    same figure whatever other rows are computed with it (a float32 product's last bits
    depend on the shapes BLAS sees), so one organisation alone and every organisation at
    once (`api.calls.fit_batch`) round alike."""
    out: FloatMatrix = (queries.astype(np.float64) @ vectors.astype(np.float64).T).astype(
        np.float32
    )
    return out


@dataclass
class CallFit:
    call: Call
    snapshot: NetworkSnapshot
    eligible: np.ndarray  # bool over the index
    fit: RequirementFit


def fit_call(session: Session, matching: MatchingEngine, call: Call) -> CallFit:
    """Score every eligible organisation against the call's requirements (see
    `matcher.call_fit`): one scorer round trip for the competencies, one for profiles."""
    snapshot = matching.snapshot(session)
    index = snapshot.index
    mask = eligible_positions(session, index, call_rules(session, call))
    texts = [r.text for r in call.requirements]
    expanded = [matching.expand(t) for t in texts]
    if expanded and mask.any():
        vectors = requirement_vectors(matching, expanded, session=session, texts=texts)
        scorer = matching.scorer(session, snapshot)
        dense = scorer.statements(vectors, "competency", mask)
        profiles = scorer.profiles(vectors, mask)
    else:
        dense = np.zeros((len(expanded), len(index.tables["competency"])), dtype=np.float32)
        profiles = np.zeros((len(expanded), index.size), dtype=np.float32)
    fit = requirement_fit(index, snapshot.calibration, expanded, dense, profiles, mask)
    return CallFit(call, snapshot, mask, fit)


def statement_briefs(index: NetworkIndex, ids: np.ndarray) -> dict[int, StatementBrief]:
    """The competencies of the index with these ids (−1: none), by id, in one look-up."""
    wanted = np.unique(ids[ids >= 0])
    table = index.tables["competency"]
    rows = table.positions(wanted)
    return {
        int(i): StatementBrief(id=int(i), text=table.texts[int(r)])
        for i, r in zip(wanted.tolist(), rows.tolist(), strict=True)
        if r >= 0
    }


def statement_brief(index: NetworkIndex, statement_id: int) -> StatementBrief | None:
    return statement_briefs(index, np.array([statement_id], dtype=np.int64)).get(statement_id)


def requirement_coverage(
    matching: MatchingEngine,
    fit: RequirementFit,
    row: int,
    requirement_ids: Sequence[int],
    statements: dict[int, StatementBrief],
) -> list[RequirementCoverageOut]:
    """How row `row` of `fit` covers each requirement (`statements`: `statement_briefs` of
    the ids it names); covered from the strong-reason threshold up."""
    threshold = matching.settings.partner_strong_reason
    return [
        RequirementCoverageOut(
            requirement_id=rid,
            statement=statements.get(int(fit.statements[row, r])),
            similarity=round(float(fit.similarity[row, r]), 4),
            statement_similarity=round(float(fit.statement_similarity[row, r]), 4),
            covered=bool(fit.similarity[row, r] >= threshold and fit.similarity[row, r] > 0),
        )
        for r, rid in enumerate(requirement_ids)
    ]


# --- GET /calls/{id}/organisations -------------------------------------------------------


def call_organisations(
    session: Session, matching: MatchingEngine, call_id: int, limit: int, offset: int
) -> CallOrganisationsPage:
    """Eligible organisations, best fit first, with their per-requirement coverage.
    Raises NotFound (an unknown call)."""
    call = get_call(session, call_id)
    cf = fit_call(session, matching, call)
    requirements = [
        RequirementOut(id=r.id, position=r.position, text=r.text) for r in call.requirements
    ]
    return organisations_page(
        session, matching, cf.snapshot.index, cf.fit, call.id, requirements, limit, offset
    )


def organisations_page(
    session: Session,
    matching: MatchingEngine,
    index: NetworkIndex,
    fit: RequirementFit,
    call_id: int,
    requirements: list[RequirementOut],
    limit: int,
    offset: int,
) -> CallOrganisationsPage:
    """A page of the organisations `fit` scored on the call, best fit first
    (`matcher.call_fit.rank`); those deleted since `index` was built are left out."""
    order = rank(fit)
    page = order[offset : offset + limit]
    ids = [index.organisations[int(fit.positions[i])].id for i in page]
    orgs = repository.organisations_to_show(session, ids)
    requirement_ids = [r.id for r in requirements]
    statements = statement_briefs(index, fit.statements[page])
    items = []
    for i, org_id in zip(page.tolist(), ids, strict=True):
        if org_id not in orgs:  # deleted since the snapshot was built
            continue
        coverage = requirement_coverage(matching, fit, i, requirement_ids, statements)
        items.append(
            EligibleOrganisationOut(
                organisation=orgs[org_id],
                score=round(float(fit.score[i]), 4),
                covered=sum(c.covered for c in coverage),
                coverage=coverage,
            )
        )
    return CallOrganisationsPage(
        call_id=call_id,
        total=len(order),
        limit=limit,
        offset=offset,
        requirements=requirements,
        items=items,
    )


# --- GET /organisations/{id}/calls -------------------------------------------------------


def is_open(call: Call, today: date) -> bool:
    """Open: status open and a deadline today or later, or none (a permanent call)."""
    return call.status == CallStatus.open and (call.deadline is None or call.deadline >= today)


def organisation_calls(
    session: Session,
    matching: MatchingEngine,
    organisation_id: int,
    limit: int,
    today: date | None = None,
) -> OrganisationCallsPage:
    """Open calls the organisation may answer, best fit first, with the statements that
    make each fit and the days left. Raises NotFound (an unknown organisation)."""
    today = today or date.today()
    org = organisation_row(session, organisation_id)
    calls = [
        c
        for c in session.scalars(
            select(Call)
            .where(Call.status == CallStatus.open)
            .options(selectinload(Call.perimeter), selectinload(Call.requirements))
            .order_by(Call.id)
        )
        if is_open(c, today)
    ]
    snapshot = matching.snapshot(session)
    index = snapshot.index
    position = index.org_pos.get(organisation_id)
    own_places = (
        index.organisations[position].places
        if position is not None
        else tuple(territory_service.places_of(session, org.territories).values())
    )
    eligible = [
        c
        for c in calls
        if not refusals(call_rules(session, c), org.kind.value, org.legal_form, own_places)
    ]
    interested = set(
        session.scalars(
            select(CallInterest.call_id).where(CallInterest.organisation_id == organisation_id)
        )
    )
    mask = np.zeros(index.size, dtype=bool)
    if position is not None:
        mask[position] = True
    texts = [r.text for c in eligible for r in c.requirements]
    expanded = [matching.expand(t) for t in texts]
    fit = None
    if expanded and position is not None:
        vectors = requirement_vectors(matching, expanded, session=session, texts=texts)
        scorer = matching.scorer(session, snapshot)
        table = index.tables["competency"]
        rows = table.rows_of(position)
        dense = np.full((len(expanded), len(table)), np.nan, dtype=np.float32)
        if len(rows):
            own = scorer.statement_vectors(table.ids[rows].tolist())
            dense[:, rows] = exact_cosines(vectors, own)
        profiles = np.full((len(expanded), index.size), np.nan, dtype=np.float32)
        profile = scorer.profile_vectors([organisation_id])
        if np.any(profile):
            profiles[:, position] = exact_cosines(vectors, profile)[:, 0]
        fit = requirement_fit(index, snapshot.calibration, expanded, dense, profiles, mask)
    cf_items = []
    start = 0
    threshold = matching.settings.partner_strong_reason
    for call in eligible:
        n = len(call.requirements)
        cover = []
        score = 0.0
        if fit is not None and n:
            sims = fit.similarity[0, start : start + n]
            score = float(call_score(sims[None, :])[0])
            for k, requirement in enumerate(call.requirements):
                s = float(sims[k])
                cover.append(
                    RequirementCoverageOut(
                        requirement_id=requirement.id,
                        statement=statement_brief(index, int(fit.statements[0, start + k])),
                        similarity=round(s, 4),
                        statement_similarity=round(
                            float(fit.statement_similarity[0, start + k]), 4
                        ),
                        covered=bool(s >= threshold and s > 0),
                    )
                )
        start += n
        cf_items.append(
            OrganisationCallOut(
                call=CallBrief(id=call.id, title=call.title, deadline=call.deadline, url=call.url),
                score=round(score, 4),
                days_left=(call.deadline - today).days if call.deadline else None,
                interested=call.id in interested,
                coverage=cover,
            )
        )
    cf_items.sort(key=lambda item: (-item.score, item.days_left is None, item.days_left or 0))
    return OrganisationCallsPage(
        organisation_id=organisation_id, total=len(cf_items), items=cf_items[:limit]
    )


# --- the review's seam (api.consortia.fit.CallFit) ----------------------------------------


class RankingFit:
    """`api.consortia.fit.CallFit` from this module: eligibility by `matcher.eligibility`
    (kinds, Hlm legal forms, territory overlap) and similarities by the call ranking.
    `matching` returns the app's engine (read at each use: tools may replace it)."""

    def __init__(self, matching: Callable[[], MatchingEngine]) -> None:
        self.matching = matching

    def ineligibility(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> dict[int, str]:
        """Organisation id → why it may not answer the call (French), ineligible only."""
        rules = call_rules(session, call)
        places = territory_service.places_of(
            session, {t.id: t for o in organisations for t in o.territories}.values()
        )
        out: dict[int, str] = {}
        for org in organisations:
            label = f"{org.name} (n° {org.id})"
            if org.archived_at is not None:
                out[org.id] = f"{label} est archivée."
                continue
            reasons = refusals(
                rules, org.kind.value, org.legal_form, [places[t.id] for t in org.territories]
            )
            if reasons:
                out[org.id] = f"{label} : " + " ".join(reasons)
        return out

    def similarities(
        self, session: Session, call: Call, organisations: Sequence[Organisation]
    ) -> Similarities:
        """Rows in the given order; an organisation the ranking did not score (ineligible,
        or created after the index's version) reads as covering nothing."""
        cf = fit_call(session, self.matching(), call)
        index = cf.snapshot.index
        row_of = {index.organisations[p].id: i for i, p in enumerate(cf.fit.positions.tolist())}
        n_req = len(call.requirements)
        values = np.zeros((len(organisations), n_req))
        statements = np.full((len(organisations), n_req), -1, dtype=np.int64)
        for k, org in enumerate(organisations):
            row = row_of.get(org.id)
            if row is not None:
                values[k] = cf.fit.similarity[row]
                statements[k] = cf.fit.statements[row]
        return Similarities(values, statements)
