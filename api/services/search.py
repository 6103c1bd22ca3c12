"""Search, partner suggestions and dismissals: database rows in, matcher, schemas out."""

from __future__ import annotations

import numpy as np
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from api.errors import InvalidInput, NotFound
from api.schemas.matching import (
    DismissalOut,
    MatchedStatementOut,
    PartnerMode,
    PartnerPage,
    PartnerSuggestionOut,
    ReasonOut,
    SearchHitOut,
    SearchPage,
    SharedTerritory,
    StatementRef,
    Within,
)
from api.schemas.organisations import OrganisationSummary
from api.schemas.territories import TerritoryBrief
from api.services import territories as territory_service
from api.services.matching import Loaded, MatchingEngine
from api.services.organisations import summary
from matcher.encoders import QUERY, FloatMatrix
from matcher.index import PROFILE, BoolArray, DenseScorer
from matcher.partners import (
    PartnerWeights,
    ProfileSignals,
    candidate_organisations,
    suggest_partners,
)
from matcher.search import search_organisations
from models import Dismissal, Organisation, Territory, organisation_territories


def _summaries(session: Session, ids: list[int]) -> dict[int, OrganisationSummary]:
    """The organisations to show, with their territories: one query, no ORM object."""
    if not ids:
        return {}
    out: dict[int, OrganisationSummary] = {}
    for org_id, name, kind, legal_form, level, code, territory in session.execute(
        select(
            Organisation.id,
            Organisation.name,
            Organisation.kind,
            Organisation.legal_form,
            Territory.level,
            Territory.code,
            Territory.name,
        )
        .outerjoin(
            organisation_territories, organisation_territories.c.organisation_id == Organisation.id
        )
        .outerjoin(Territory, Territory.id == organisation_territories.c.territory_id)
        .where(Organisation.id.in_(ids))
        .order_by(Organisation.id, Territory.id)
    ):
        if org_id not in out:
            out[org_id] = OrganisationSummary(
                id=org_id, name=name, kind=kind, legal_form=legal_form, territories=[]
            )
        if level is not None:
            out[org_id].territories.append(
                TerritoryBrief(
                    ref=f"{level.value}:{code}", level=level.value, code=code, name=territory
                )
            )
    return out


def search(
    session: Session, engine: MatchingEngine, q: str, territory: str | None, limit: int
) -> SearchPage:
    query = " ".join(q.split())
    if len(query) < 2:
        raise InvalidInput("La recherche est vide : écrivez ce que vous cherchez (q).")
    target = territory_service.resolve_ref(session, territory) if territory else None
    loaded = engine.loaded(session)
    index = loaded.index
    mask = (
        loaded.territory_mask(territory_service.places_of(session, [target])[target.id])
        if target
        else None
    )
    expanded = engine.expand(query)
    vector = engine.encode([expanded], role=QUERY, expanded=True)
    scorer = engine.scorer(session, loaded)
    hits = search_organisations(
        index,
        vector,
        expanded,
        scorer.statements(vector, "competency", mask),
        scorer.profiles(vector, mask),
        loaded.calibration,
        org_mask=mask,
        limit=limit,
        # Searching with the text of a declared need asks who answers it: never its author.
        exclude=loaded.need_owners(query),
        profile_words=index.profile_word_similarity(expanded),
        min_score=engine.settings.search_min_score,
        relative_cut=engine.settings.search_relative_cut,
    )
    orgs = _summaries(session, [h.organisation_id for h in hits])
    return SearchPage(
        query=query,
        territory=territory_service.brief(target) if target else None,
        items=[
            SearchHitOut(
                organisation=orgs[h.organisation_id],
                score=round(h.score, 4),
                statements=[
                    MatchedStatementOut(
                        id=s.statement_id,
                        text=s.text,
                        score=round(s.score, 4),
                        similarity=round(s.similarity, 4),
                    )
                    for s in h.statements
                ],
            )
            for h in hits
            if h.organisation_id in orgs
        ],
    )


def _require_organisation(session: Session, organisation_id: int) -> None:
    """NotFound unless the organisation exists (a primary-key look-up, nothing loaded)."""
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"Aucune organisation n° {organisation_id}.")


def dismissed_ids(session: Session, organisation_id: int) -> set[int]:
    return set(
        session.scalars(
            select(Dismissal.dismissed_id).where(Dismissal.organisation_id == organisation_id)
        )
    )


def partners(
    session: Session,
    engine: MatchingEngine,
    organisation_id: int,
    mode: PartnerMode,
    within: Within,
    limit: int,
) -> PartnerPage:
    loaded = engine.loaded(session)
    index = loaded.index
    if organisation_id not in index.org_pos:  # every organisation is in the index...
        _require_organisation(session, organisation_id)
        # ...unless it was created after this request read the index version.
        return PartnerPage(organisation_id=organisation_id, mode=mode, within=within, items=[])
    scorer = engine.scorer(session, loaded)
    me = index.org_pos[organisation_id]
    level = None if within == Within.any else within.value
    mask = loaded.sharing_mask(me, level) if level else None
    dense, profiles = partner_signals(loaded, scorer, me, mode, mask, engine.settings.partner_top_k)
    suggestions = suggest_partners(
        index,
        organisation_id,
        dense,
        loaded.calibration,
        mode=mode.value,
        profiles=profiles,
        org_mask=mask,
        within=level,
        territory_weight=True,
        exclude=dismissed_ids(session, organisation_id),
        limit=limit,
        weights=PartnerWeights(
            reciprocity=engine.settings.partner_reciprocity,
            strong_reason=engine.settings.partner_strong_reason,
        ),
    )
    orgs = _summaries(session, [s.organisation_id for s in suggestions])
    # A shared territory is often one the partner works on: its name is already here.
    names = {(t.level, t.code): t for o in orgs.values() for t in o.territories}
    keys = {s.shared_territory for s in suggestions if s.shared_territory} - names.keys()
    if keys:
        # OR of (level, code) pairs: both databases use the index (SQLite not with row values).
        names.update(
            ((lv.value, c), TerritoryBrief(ref=f"{lv.value}:{c}", level=lv.value, code=c, name=n))
            for lv, c, n in session.execute(
                select(Territory.level, Territory.code, Territory.name).where(
                    or_(*(and_(Territory.level == lv, Territory.code == c) for lv, c in keys))
                )
            )
        )
    items = []
    for s in suggestions:
        if s.organisation_id not in orgs:  # deleted since the index was built
            continue
        shared = names.get(s.shared_territory) if s.shared_territory else None
        reasons = [
            ReasonOut(
                direction=r.direction,
                mine=StatementRef(id=r.mine_id, text=r.mine),
                theirs=StatementRef(id=r.theirs_id, text=r.theirs),
                similarity=r.similarity,
                strength=r.strength,
            )
            for r in s.reasons
        ]
        items.append(
            PartnerSuggestionOut(
                organisation=orgs[s.organisation_id],
                score=s.score,
                scores=s.scores,
                shared_territory=SharedTerritory(**shared.model_dump()) if shared else None,
                answers_my_needs=[r for r in reasons if r.direction == "they_cover_me"],
                needs_i_answer=[r for r in reasons if r.direction == "i_cover_them"],
                reasons=reasons,
            )
        )
    return PartnerPage(organisation_id=organisation_id, mode=mode, within=within, items=items)


def partner_signals(
    loaded: Loaded,
    scorer: DenseScorer,
    me: int,
    mode: PartnerMode,
    mask: BoolArray | None,
    top_k: int | None,
) -> tuple[dict[tuple[str, str], FloatMatrix], ProfileSignals | None]:
    """What `suggest_partners` reads for the organisation at position `me`: dense
    similarities of its statements (the best `top_k` per statement on a large network)
    and, in complementary mode, of its needs to every profile, as a search would read
    each need."""
    index = loaded.index
    kinds = (
        [("need", "competency"), ("competency", "need")]
        if mode == PartnerMode.complementary
        else [("need", "need"), ("competency", "competency")]
    )
    mine = {
        kind: index.tables[kind].ids[index.tables[kind].rows_of(me)].tolist()
        for kind in {k for k, _ in kinds}
    }
    dense = scorer.pairs(mine, kinds, mask, top_k)
    if mode != PartnerMode.complementary or not mine["need"]:
        return dense, None
    # Each need is also read against whole profiles, as a search for it would be: only
    # those of the organisations a suggestion will score, exactly (no index scan).
    candidates = candidate_organisations(index, dense)  # inside `mask` already
    reached = index.size if candidates is None else int(np.count_nonzero(candidates))
    to_profiles = scorer.pairs(
        mine, [("need", PROFILE)], mask if candidates is None else candidates, reached
    )
    profiles = ProfileSignals(
        dense=to_profiles[("need", PROFILE)],
        words=index.need_profile_words(index.tables["need"].rows_of(me)),
    )
    return dense, profiles


def dismiss(
    session: Session, organisation_id: int, dismissed_id: int, reason: str | None
) -> tuple[DismissalOut, bool]:
    """Dismiss a suggestion for good; dismissing again only updates the reason."""
    _require_organisation(session, organisation_id)
    if dismissed_id == organisation_id:
        raise InvalidInput("Une organisation ne peut pas s'écarter elle-même.")
    other = session.get(Organisation, dismissed_id)
    if other is None:
        raise NotFound(f"Aucune organisation n° {dismissed_id} à écarter.")
    existing = session.scalar(
        select(Dismissal).where(
            Dismissal.organisation_id == organisation_id, Dismissal.dismissed_id == dismissed_id
        )
    )
    created = existing is None
    if existing is None:
        existing = Dismissal(organisation_id=organisation_id, dismissed_id=dismissed_id)
        session.add(existing)
    existing.reason = reason or None
    session.flush()
    return DismissalOut(
        organisation=summary(other), reason=existing.reason, created_at=existing.created_at
    ), created


def list_dismissals(session: Session, organisation_id: int) -> list[DismissalOut]:
    _require_organisation(session, organisation_id)
    rows = session.scalars(
        select(Dismissal).where(Dismissal.organisation_id == organisation_id).order_by(Dismissal.id)
    ).all()
    orgs = _summaries(session, [d.dismissed_id for d in rows])
    return [
        DismissalOut(organisation=orgs[d.dismissed_id], reason=d.reason, created_at=d.created_at)
        for d in rows
    ]


def undo_dismissal(session: Session, organisation_id: int, dismissed_id: int) -> None:
    _require_organisation(session, organisation_id)
    result = session.execute(
        delete(Dismissal).where(
            Dismissal.organisation_id == organisation_id, Dismissal.dismissed_id == dismissed_id
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"L'organisation n° {dismissed_id} n'est pas écartée.")
