"""Search, partner suggestions and dismissals: database rows in, matcher, schemas out."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.kit.errors import Conflict, InvalidInput, NotFound
from api.matching import repository
from api.matching.engine import MatchingEngine
from api.matching.schemas import (
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
from api.organisations.views import summary
from api.territories import service as territory_service
from api.territories.schemas import TerritoryBrief
from matcher.encoders import QUERY
from matcher.partners import PartnerWeights
from matcher.snapshot import SearchCuts
from models import Dismissal, Organisation, Territory

# A search needs one character that is not a space, a tab or a line break (the OpenAPI
# document's pattern: explicit characters read the same by every regex engine).
SEARCH_TEXT_PATTERN = r"[^ \t\r\n]"


def search(
    session: Session,
    matching: MatchingEngine,
    q: str,
    territory: str | None,
    limit: int,
    *,
    as_typed: bool = False,
) -> SearchPage:
    """Organisations whose competencies best answer `q` (French free text, read in Unicode
    NFC, its typing mistakes corrected unless `as_typed`: see `MatchingEngine.
    correct_spelling`), inside `territory` (a reference, see
    `territories.service.resolve_ref`) when given.
    Raises InvalidInput (a query of spaces only, see SEARCH_TEXT_PATTERN; an unreadable
    territory), NotFound (an unknown territory)."""
    if not re.search(SEARCH_TEXT_PATTERN, q):
        raise InvalidInput("La recherche est vide : écrivez ce que vous cherchez (q).")
    query = unicodedata.normalize("NFC", " ".join(q.split()))
    target = territory_service.resolve_ref(session, territory) if territory is not None else None
    if not query:  # other blanks only (ideographic space...): nothing to look for
        return SearchPage(
            query=query,
            territory=territory_service.brief(target) if target else None,
            items=[],
        )
    place = territory_service.places_of(session, [target])[target.id] if target else None
    snapshot = matching.snapshot(session)
    read_as = query if as_typed else matching.correct_spelling(query, snapshot)
    expanded = matching.expand(read_as)
    vector = matching.encode([expanded], role=QUERY, expanded=True)
    hits = snapshot.search(
        matching.scorer(session, snapshot),
        vector,
        expanded,
        query=query,
        territory=place,
        limit=limit,
        cuts=SearchCuts(
            min_score=matching.settings.search_min_score,
            relative_cut=matching.settings.search_relative_cut,
            min_dense_z=matching.settings.search_min_dense_z,
        ),
    )
    orgs = repository.organisations_to_show(session, [h.organisation_id for h in hits])
    return SearchPage(
        query=query,
        read_as=read_as if read_as != query else None,
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
    """NotFound unless the organisation exists and is not archived (a primary-key look-up)."""
    org = session.get(Organisation, organisation_id)
    if org is None or org.archived_at is not None:
        raise NotFound(f"Aucune organisation n° {organisation_id}.")


def partners(
    session: Session,
    matching: MatchingEngine,
    organisation_id: int,
    mode: PartnerMode,
    within: Within,
    limit: int,
) -> PartnerPage:
    """Suggested partners of an organisation, with their reasons and shared territory.
    Raises NotFound (an unknown organisation)."""
    snapshot = matching.snapshot(session)
    settings = matching.settings
    suggestions = snapshot.partners(
        matching.scorer(session, snapshot, in_memory=True),
        organisation_id,
        mode=mode.value,
        within=None if within == Within.any else within.value,
        exclude=repository.dismissed_ids(session, organisation_id),
        limit=limit,
        top_k=settings.partner_top_k,
        weights=PartnerWeights(
            reciprocity=settings.partner_reciprocity, strong_reason=settings.partner_strong_reason
        ),
    )
    if suggestions is None:  # every organisation is in the snapshot...
        _require_organisation(session, organisation_id)
        # ...unless it was created after this request read the network's version.
        suggestions = []
    orgs = repository.organisations_to_show(session, [s.organisation_id for s in suggestions])
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
        if s.organisation_id not in orgs:  # deleted since the snapshot was built
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


def dismiss(
    session: Session, organisation_id: int, dismissed_id: int, reason: str | None
) -> tuple[DismissalOut, bool]:
    """Dismiss a suggestion for good; dismissing again only updates the reason. Returns the
    dismissal and whether this call created it: of two requests dismissing the same
    organisation at once, one creates it, the other finds it, as if it had come second.
    Raises NotFound (either organisation unknown or archived), Conflict (an organisation
    dismissing itself: the body is well formed, it names the organisation of the path)."""
    _require_organisation(session, organisation_id)
    if dismissed_id == organisation_id:
        raise Conflict("Une organisation ne peut pas s'écarter elle-même.")
    other = session.get(Organisation, dismissed_id)
    if other is None or other.archived_at is not None:
        raise NotFound(f"Aucune organisation n° {dismissed_id} à écarter.")
    existing = _dismissal(session, organisation_id, dismissed_id)
    created = existing is None
    if existing is None:
        try:
            with session.begin_nested():  # PostgreSQL: waits for a concurrent insert
                existing = Dismissal(
                    organisation_id=organisation_id,
                    dismissed_id=dismissed_id,
                    reason=reason or None,
                )
                session.add(existing)
        except IntegrityError:
            # The same dismissal, committed by a concurrent request meanwhile.
            existing = _dismissal(session, organisation_id, dismissed_id)
            if existing is None:
                raise
            created = False
    existing.reason = (reason or "").strip() or None
    session.flush()
    return DismissalOut(
        organisation=summary(other), reason=existing.reason, created_at=existing.created_at
    ), created


def _dismissal(session: Session, organisation_id: int, dismissed_id: int) -> Dismissal | None:
    return session.scalar(
        select(Dismissal).where(
            Dismissal.organisation_id == organisation_id, Dismissal.dismissed_id == dismissed_id
        )
    )


def list_dismissals(session: Session, organisation_id: int) -> list[DismissalOut]:
    _require_organisation(session, organisation_id)
    rows = session.scalars(
        select(Dismissal).where(Dismissal.organisation_id == organisation_id).order_by(Dismissal.id)
    ).all()
    orgs = repository.organisations_to_show(session, [d.dismissed_id for d in rows])
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
