"""Who fits a call, which calls fit an organisation, who is interested, and the consortia
proposed for a call: database rows in, matcher (eligibility, requirement fit, composer),
schemas out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import combinations

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from api.accounts.principal import Principal
from api.calls.fit_schemas import (
    CallBrief,
    CallOrganisationsPage,
    ConsortiumRequest,
    CoverOut,
    EligibleOrganisationOut,
    InterestOut,
    InterestPage,
    MemberOut,
    OrganisationCallOut,
    OrganisationCallsPage,
    ProposedConsortiumOut,
    RequirementCoverageOut,
    RequirementOut,
    StatementBrief,
)
from api.calls.requirement_queries import requirement_vectors
from api.consortia.composition import apply
from api.consortia.fit import Similarities
from api.consortia.states import FORMED
from api.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from api.matching import repository
from api.matching.engine import MatchingEngine
from api.territories import service as territory_service
from matcher.call_fit import RequirementFit, call_score, rank, requirement_fit
from matcher.consortium import (
    Candidate,
    ConsortiumOptions,
    ConsortiumProblem,
    ConsortiumProposal,
    compose_consortia,
)
from matcher.consortium_errors import ImpossibleConsortium, InvalidComposition
from matcher.eligibility import CallRules, eligible_mask, overlaps, refusals
from matcher.encoders import FloatMatrix
from matcher.index import NetworkIndex
from matcher.snapshot import NetworkSnapshot
from models import Call, CallInterest, Consortium, ConsortiumMember, Organisation
from models.enums import CallStatus, OrganisationKind

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


def _organisation(session: Session, organisation_id: int) -> Organisation:
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


def _statement(index: NetworkIndex, statement_id: int) -> StatementBrief | None:
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
    org = _organisation(session, organisation_id)
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
                        statement=_statement(index, int(fit.statements[0, start + k])),
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


# --- interests -----------------------------------------------------------------------------


def _acting_for(viewer: Principal, organisation_id: int) -> None:
    if not viewer.acts_for(organisation_id):
        raise Forbidden(f"Vous n'agissez pas pour l'organisation n° {organisation_id}.")


def mark_interest(
    session: Session, viewer: Principal, call_id: int, organisation_id: int
) -> tuple[InterestOut, bool]:
    """Mark the call « intéressé » for an organisation the viewer acts for; marking again
    changes nothing. Returns (the interest, created). Raises NotFound, Forbidden, and
    Conflict (the organisation is not eligible: the reasons, in French)."""
    _acting_for(viewer, organisation_id)
    call = get_call(session, call_id)
    org = _organisation(session, organisation_id)
    reasons = refusals(
        call_rules(session, call),
        org.kind.value,
        org.legal_form,
        list(territory_service.places_of(session, org.territories).values()),
    )
    if reasons:
        raise Conflict(f"{org.name} n'est pas éligible à cet appel : " + " ".join(reasons))
    existing = session.scalar(
        select(CallInterest).where(
            CallInterest.call_id == call_id, CallInterest.organisation_id == organisation_id
        )
    )
    created = existing is None
    if existing is None:
        existing = CallInterest(
            call_id=call_id, organisation_id=organisation_id, account_id=viewer.account_id
        )
        session.add(existing)
        session.flush()
    summary = repository.organisations_to_show(session, [organisation_id])[organisation_id]
    return InterestOut(organisation=summary, since=existing.created_at), created


def withdraw_interest(
    session: Session, viewer: Principal, call_id: int, organisation_id: int
) -> None:
    """Withdraw an organisation's interest. Raises Forbidden, NotFound (not marked)."""
    _acting_for(viewer, organisation_id)
    get_call(session, call_id)
    result = session.execute(
        delete(CallInterest).where(
            CallInterest.call_id == call_id, CallInterest.organisation_id == organisation_id
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"L'organisation n° {organisation_id} n'a pas marqué cet appel.")


def list_interests(
    session: Session, viewer: Principal, call_id: int, organisation_id: int | None
) -> InterestPage:
    """Interested organisations. The coordinator sees all (or, naming an organisation,
    that organisation's view). A member names the organisation it acts for (optional when
    it belongs to one only) and sees, once that organisation has marked the call, the
    others interested on a territory overlapping its own (mutual reveal). Raises
    NotFound, Forbidden, InvalidInput (a member of several organisations naming none).

    Overlapping: a territory of one lies in, contains or overlaps a territory of the
    other (as for eligibility); two communes of one EPCI do not overlap, an organisation
    working on the EPCI overlaps both."""
    get_call(session, call_id)
    rows = session.scalars(
        select(CallInterest)
        .where(CallInterest.call_id == call_id)
        .order_by(CallInterest.created_at, CallInterest.id)
    ).all()
    if organisation_id is None and not viewer.sees_everything:
        if len(viewer.organisation_ids) != 1:
            raise InvalidInput(
                "Précisez l'organisation pour laquelle vous agissez (organisation_id).",
                errors=[
                    {
                        "loc": ["query", "organisation_id"],
                        "msg": "Organisation requise.",
                        "type": "missing",
                    }
                ],
            )
        organisation_id = next(iter(viewer.organisation_ids))
    if organisation_id is None:  # the coordinator's view: everyone
        shown = list(rows)
        mine: bool | None = None
    else:
        _acting_for(viewer, organisation_id)
        own = _organisation(session, organisation_id)
        mine = any(r.organisation_id == organisation_id for r in rows)
        shown = []
        if mine:
            others = [r for r in rows if r.organisation_id != organisation_id]
            orgs = {
                o.id: o
                for o in session.scalars(
                    select(Organisation)
                    .where(
                        Organisation.id.in_([r.organisation_id for r in others]),
                        Organisation.archived_at.is_(None),
                    )
                    .options(selectinload(Organisation.territories))
                )
            }
            territories = {t.id: t for o in [own, *orgs.values()] for t in o.territories}
            places = territory_service.places_of(session, territories.values())
            own_places = [places[t.id] for t in own.territories]
            own_keys = frozenset(p.key for p in own_places)
            own_ancestors = frozenset(k for p in own_places for k in p.ancestors)
            shown = [
                r
                for r in others
                if r.organisation_id in orgs
                and overlaps(
                    [places[t.id] for t in orgs[r.organisation_id].territories],
                    own_keys,
                    own_ancestors,
                )
            ]
    summaries = repository.organisations_to_show(session, [r.organisation_id for r in shown])
    return InterestPage(
        call_id=call_id,
        organisation_id=organisation_id,
        interested=mine,
        items=[
            InterestOut(organisation=summaries[r.organisation_id], since=r.created_at)
            for r in shown
            if r.organisation_id in summaries
        ],
    )


# --- POST /calls/{id}/consortia ---------------------------------------------------------


def past_pairs(session: Session) -> set[tuple[int, int]]:
    """Pairs of organisations (smaller id first) that have been members of one formed
    consortium (`FORMED`: approved or later) together, whoever they are (the review's
    `composition.past_pairs` names its organisations: here they are every candidate)."""
    members: dict[int, list[int]] = {}
    for consortium_id, organisation_id in session.execute(
        select(ConsortiumMember.consortium_id, ConsortiumMember.organisation_id)
        .join(Consortium, Consortium.id == ConsortiumMember.consortium_id)
        .where(Consortium.status.in_(list(FORMED)))
    ):
        members.setdefault(consortium_id, []).append(organisation_id)
    return {
        (min(a, b), max(a, b))
        for ids in members.values()
        for a, b in combinations(sorted(set(ids)), 2)
    }


class CompositionRefused(Conflict):
    """The composer's ImpossibleConsortium (409)."""


def store_consortium(
    session: Session,
    call: Call,
    proposal: ConsortiumProposal,
    *,
    created_by: int | None,
) -> Consortium:
    """Store one composed proposal as a Consortium (status proposed, version 1): its
    members (the lead with role lead, each with the ids of the requirements it covers),
    coverage (mean, 0–1), score (Φ) and `scores` (Φ's parts, the coverage table by
    requirement id under "table", new/repeated pairs), as the review's
    `api.consortia.composition.apply` writes them; the composer already checked the
    members, so they are not evaluated again."""
    consortium = Consortium(call_id=call.id, created_by_id=created_by, scores={})
    apply(consortium, call, list(proposal.member_ids), proposal.lead_id, proposal)
    session.add(consortium)
    session.flush()
    return consortium


def propose_consortia(
    session: Session,
    matching: MatchingEngine,
    viewer: Principal,
    call_id: int,
    request: ConsortiumRequest,
) -> list[ProposedConsortiumOut]:
    """Compose consortia among the eligible organisations (`matcher.consortium`), store
    each alternative as a proposed Consortium and return them, best first. Raises
    NotFound and Conflict (409: options that contradict each other, or that these
    candidates cannot satisfy), with the composer's French message."""
    call = get_call(session, call_id)
    cf = fit_call(session, matching, call)
    index = cf.snapshot.index
    interested = set(
        session.scalars(select(CallInterest.organisation_id).where(CallInterest.call_id == call_id))
    )
    candidates = []
    for p in cf.fit.positions.tolist():
        record = index.organisations[p]
        candidates.append(
            Candidate(
                id=record.id,
                is_landlord=record.kind == OrganisationKind.landlord.value,
                interested=record.id in interested,
            )
        )
    options = ConsortiumOptions(
        min_size=request.min_size,
        max_size=request.max_size,
        include=request.include,
        exclude=request.exclude,
        lead=request.lead,
        alternatives=request.alternatives,
        uncovered_below=matching.settings.partner_strong_reason,
    )
    try:
        problem = ConsortiumProblem(
            candidates, cf.fit.similarity, cf.fit.statements, past_pairs(session)
        )
        proposals = compose_consortia(problem, options)
    except InvalidComposition as exc:  # well-formed options that contradict each other
        raise CompositionRefused(exc.message) from exc
    except ImpossibleConsortium as exc:
        raise CompositionRefused(exc.message) from exc
    stored = [store_consortium(session, call, p, created_by=viewer.account_id) for p in proposals]
    member_ids = sorted({m for p in proposals for m in p.member_ids})
    orgs = repository.organisations_to_show(session, member_ids)
    requirements = call.requirements
    out = []
    for consortium, proposal in zip(stored, proposals, strict=True):
        table = [
            CoverOut(
                requirement_id=requirements[c.requirement].id,
                position=requirements[c.requirement].position,
                text=requirements[c.requirement].text,
                organisation_id=c.organisation_id,
                statement=_statement(index, c.statement_id) if c.statement_id else None,
                similarity=round(c.similarity, 4),
                covered=c.covered,
            )
            for c in proposal.coverage_table
        ]
        out.append(
            ProposedConsortiumOut(
                id=consortium.id,
                call_id=call.id,
                status=consortium.status.value,
                version=consortium.version,
                lead_id=proposal.lead_id,
                score=round(proposal.score, 4),
                coverage=round(proposal.coverage, 4),
                scores={k: round(v, 4) for k, v in proposal.scores.items()},
                members=[
                    MemberOut(
                        organisation=orgs[m.organisation_id],
                        role=m.role.value,
                        covers=list(m.covers),
                    )
                    for m in consortium.members
                ],
                coverage_table=table,
                uncovered=[requirements[r].id for r in proposal.uncovered],
                new_pairs=proposal.new_pairs,
                repeated_pairs=proposal.repeated_pairs,
            )
        )
    return out


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
