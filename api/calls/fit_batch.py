"""Every open call scored once against every organisation: what a digest run reads for a
thousand organisations, where `fit.organisation_calls` for each would score every call
again per organisation.

The figures are those of `fit.organisation_calls`: the same eligibility
(`matcher.eligibility`), and the same calibrated similarities — each requirement, encoded
as a query, against each organisation's own competencies and profile, computed exactly,
then `matcher.call_fit.requirement_fit` — for every organisation of the index at once,
some calls at a time (the score matrix calls × organisations), then read per organisation.
The suggested partners of a call are `fit.call_organisations`' first page on the same
figures (exact where a PostgreSQL top-k may be approximate on a large network).

An instance holds the network as it was when it was made (its index snapshot, the calls
open on its day, as plain records): one digest run reads one consistent network. An
organisation created since is not in it (`scores` returns None: ask
`fit.organisation_calls`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.calls import fit
from api.calls.fit_schemas import (
    CallOrganisationsPage,
    RequirementCoverageOut,
    RequirementOut,
)
from api.calls.requirement_queries import requirement_vectors
from api.matching.engine import MatchingEngine
from matcher.call_fit import RequirementFit, call_score, requirement_fit
from matcher.eligibility import eligible_mask
from matcher.encoders import FloatMatrix
from matcher.snapshot import NetworkSnapshot
from models import Call, Organisation
from models.enums import CallStatus

# Requirements scored at once: bounds the (requirements × competencies) arrays of
# `requirement_fit` (40 × 100,000 float64 is 32 MB a piece).
CHUNK_CELLS = 4_000_000
# Vectors read from the database at once.
READ_CHUNK = 5000


@dataclass(frozen=True)
class OpenCall:
    """What a digest shows of a call, read once for a run (plain values, no ORM object)."""

    id: int
    title: str
    funders: tuple[str, ...]
    deadline: date | None
    url: str | None
    themes: tuple[str, ...]
    perimeter: str  # in French: « France entière » or the territories' names
    requirements: tuple[RequirementOut, ...]


@dataclass(frozen=True)
class CallScore:
    """An open call one organisation may answer."""

    call_id: int
    score: float  # 0–1, `matcher.call_fit.call_score` of the requirements, 4 decimals
    days_left: int | None  # None: a permanent call


def perimeter_fr(call: Call) -> str:
    if getattr(call, "nationwide", False) or not call.perimeter:
        return "France entière"
    return ", ".join(t.name for t in call.perimeter)


def open_call(call: Call) -> OpenCall:
    """The plain record of a call loaded with its perimeter and requirements."""
    return OpenCall(
        id=call.id,
        title=call.title,
        funders=tuple(call.funders or ()),
        deadline=call.deadline,
        url=call.url,
        themes=tuple(call.themes or ()),
        perimeter=perimeter_fr(call),
        requirements=tuple(
            RequirementOut(id=r.id, position=r.position, text=r.text) for r in call.requirements
        ),
    )


def _in_chunks(
    read: Callable[[Sequence[int]], FloatMatrix], ids: Sequence[int], dimension: int
) -> FloatMatrix:
    parts = [read(ids[i : i + READ_CHUNK]) for i in range(0, len(ids), READ_CHUNK)]
    if not parts:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.vstack(parts).astype(np.float32)


class OpenCallsFit:
    """The open calls of `today`, each scored once against every organisation of the
    matching engine's current index (see the module). Reads the database when made only."""

    def __init__(self, session: Session, matching: MatchingEngine, today: date) -> None:
        self.matching = matching
        self.today = today
        self.snapshot: NetworkSnapshot = matching.snapshot(session)
        index = self.snapshot.index
        rows = [
            c
            for c in session.scalars(
                select(Call)
                .where(Call.status == CallStatus.open)
                .options(selectinload(Call.perimeter), selectinload(Call.requirements))
                .order_by(Call.id)
            )
            if fit.is_open(c, today)
        ]
        self.calls: dict[int, OpenCall] = {c.id: open_call(c) for c in rows}
        self._order = [c.id for c in rows]
        forms: dict[int, str | None] = dict(
            session.execute(
                select(Organisation.id, Organisation.legal_form).where(
                    Organisation.archived_at.is_(None)
                )
            ).all()
        )
        orgs = index.organisations
        kinds = [o.kind for o in orgs]
        own_forms = [forms.get(o.id) for o in orgs]
        places = [o.places for o in orgs]
        # (calls × organisations): who may answer each call, and its fit (0 elsewhere).
        self.eligible = np.zeros((len(rows), index.size), dtype=bool)
        self.score = np.zeros((len(rows), index.size))
        for k, call in enumerate(rows):
            self.eligible[k] = eligible_mask(
                fit.call_rules(session, call), kinds, own_forms, places
            )
        self._fits: dict[int, RequirementFit] = {}
        self._score_all(session, rows)

    def _score_all(self, session: Session, rows: list[Call]) -> None:
        """Score every call's requirements against every organisation, a chunk of calls at
        a time, and keep each call's rows of the organisations eligible on it."""
        snapshot, matching = self.snapshot, self.matching
        index = snapshot.index
        table = index.tables["competency"]
        everyone = np.ones(index.size, dtype=bool)
        if not rows or index.size == 0:
            return
        scorer = matching.scorer(session, snapshot, in_memory=True)
        dimension = int(snapshot.dimension)
        # Dense cosines computed exactly, as `fit.organisation_calls` computes each
        # organisation's own: every competency vector and every profile, read once.
        own = _in_chunks(scorer.statement_vectors, table.ids.tolist(), dimension)
        profiles = _in_chunks(scorer.profile_vectors, index.org_ids.tolist(), dimension)
        no_profile = ~profiles.any(axis=1)
        per_chunk = max(1, CHUNK_CELLS // max(1, len(table), index.size))
        start = 0
        while start < len(rows):
            chunk: list[int] = []
            n_req = 0
            while start < len(rows) and (
                not chunk or n_req + len(rows[start].requirements) <= per_chunk
            ):
                chunk.append(start)
                n_req += len(rows[start].requirements)
                start += 1
            texts = [r.text for k in chunk for r in rows[k].requirements]
            if not texts:
                continue
            expanded = [matching.expand(t) for t in texts]
            vectors = requirement_vectors(matching, expanded, session=session, texts=texts)
            dense = fit.exact_cosines(vectors, own)
            profile = fit.exact_cosines(vectors, profiles)
            profile[:, no_profile] = np.nan
            scored = requirement_fit(
                index, snapshot.calibration, expanded, dense, profile, everyone
            )
            column = 0
            for k in chunk:
                n = len(rows[k].requirements)
                if n == 0:
                    continue
                positions = np.flatnonzero(self.eligible[k]).astype(np.int64)
                part = slice(column, column + n)
                similarity = scored.similarity[positions, part]
                self._fits[rows[k].id] = RequirementFit(
                    positions=positions,
                    similarity=similarity,
                    statements=scored.statements[positions, part],
                    statement_similarity=scored.statement_similarity[positions, part],
                    score=call_score(similarity),
                )
                self.score[k, positions] = self._fits[rows[k].id].score
                column += n

    def scores(self, organisation_id: int) -> list[CallScore] | None:
        """The open calls the organisation may answer, best fit first, then the nearest
        deadline, then permanent calls (`fit.organisation_calls`' order); None for an
        organisation not in this network's index."""
        position = self.snapshot.index.org_pos.get(organisation_id)
        if position is None:
            return None
        out = []
        for k in np.flatnonzero(self.eligible[:, position]).tolist():
            call = self.calls[self._order[k]]
            out.append(
                CallScore(
                    call_id=call.id,
                    score=round(float(self.score[k, position]), 4),
                    days_left=(call.deadline - self.today).days if call.deadline else None,
                )
            )
        out.sort(key=lambda c: (-c.score, c.days_left is None, c.days_left or 0))
        return out

    def coverage(self, organisation_id: int, call_id: int) -> list[RequirementCoverageOut]:
        """How the organisation covers each requirement of the call (empty when the call
        has none, or the organisation may not answer it)."""
        scored = self._fits.get(call_id)
        position = self.snapshot.index.org_pos.get(organisation_id)
        if scored is None or position is None:
            return []
        row = int(np.searchsorted(scored.positions, position))
        if row >= len(scored.positions) or scored.positions[row] != position:
            return []
        statements = fit.statement_briefs(self.snapshot.index, scored.statements[row])
        ids = [r.id for r in self.calls[call_id].requirements]
        return fit.requirement_coverage(self.matching, scored, row, ids, statements)

    def organisations(
        self, session: Session, call_id: int, limit: int, offset: int = 0
    ) -> CallOrganisationsPage | None:
        """`fit.call_organisations` of an open call on these figures; None for a call
        this instance does not hold or without requirements (ask `fit.call_organisations`)."""
        scored = self._fits.get(call_id)
        if scored is None:
            return None
        return fit.organisations_page(
            session,
            self.matching,
            self.snapshot.index,
            scored,
            call_id,
            list(self.calls[call_id].requirements),
            limit,
            offset,
        )
