"""Partner suggestions over a NetworkIndex: who answers my needs, whose needs I answer,
who shares my needs or competencies — plain arrays in, frozen records out."""

from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from matcher.calibration import Calibration
from matcher.encoders import FloatMatrix
from matcher.index import BoolArray, NetworkIndex, StatementTable
from matcher.scoring import (
    FloatArray,
    best_per_group,
    coverage,
    fill_missing,
    group_rows,
    group_starts,
    harmonic_mean,
    sparse_row_dot,
)
from matcher.territory import Key, Place, level_at_least_as_fine, shared_territory

# How much a shared territory weighs when the caller ranks by it instead of filtering.
TERRITORY_WEIGHTS: dict[str | None, float] = {
    "arrondissement": 1.0,
    "commune": 1.0,
    "epci": 0.97,
    "departement": 0.93,
    "region": 0.88,
    None: 0.8,
}
# The same, in z units, for rankings made before the logistic (complementary partners):
# shifts that reorder close candidates by territory without overriding a clearer answer.
TERRITORY_SHIFTS: dict[str | None, float] = {
    "arrondissement": 0.0,
    "commune": 0.0,
    "epci": -0.1,
    "departement": -0.25,
    "region": -0.5,
    None: -0.75,
}


@dataclass(frozen=True)
class Reason:
    """A pair of statements that made a suggestion: theirs answers mine, or mine theirs."""

    direction: str  # "they_cover_me" | "i_cover_them" | "shared_need" | "shared_competency"
    mine_id: int
    mine: str
    theirs_id: int
    theirs: str
    similarity: float  # the two statements' blended similarity, in (0, 1)
    # How well this pair's need is answered, in (0, 1): for "they_cover_me", by the whole
    # organisation as a search for my need would score it (best statement, profile,
    # words); otherwise the pair's similarity.
    strength: float


@dataclass(frozen=True)
class Suggestion:
    organisation_id: int
    score: float
    scores: dict[str, float]
    shared_territory: Key | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class _Side:
    rows: np.ndarray  # positions in the table
    texts: list[str]
    ids: list[int]


def _side(table: StatementTable, org_position: int) -> _Side:
    rows = table.rows_of(org_position)
    return _Side(rows, [table.texts[i] for i in rows], [int(table.ids[i]) for i in rows])


@dataclass(frozen=True)
class ProfileSignals:
    """How well some of my statements (rows) read against every organisation's whole
    profile (its description and competencies): the signals search adds to the best
    statement. Used for "they cover me": a need is answered by an organisation's statement
    and by what its whole profile says.

    dense : (rows × n_organisations) float32 cosines to the profile embeddings, NaN where
        not computed (no profile, or beyond a top-k).
    words : (rows × n_organisations) float64 word-stem cosines (see `NetworkIndex.
        profile_word_similarity`), or None.
    """

    dense: FloatMatrix
    words: FloatArray | None = None


@dataclass(frozen=True)
class _Block:
    """My statements × the statements of the candidate organisations (columns of the
    table, grouped by organisation): blended z-scores and their probabilities."""

    cols: np.ndarray  # positions in their table
    org_pos: np.ndarray  # organisation position of each column (sorted)
    groups: np.ndarray
    starts: np.ndarray
    z: FloatArray
    p: FloatArray

    def columns_of(self, org_position: int) -> np.ndarray:
        return group_rows(self.org_pos, org_position)


def candidate_organisations(
    index: NetworkIndex, dense_by_kind: dict[tuple[str, str], FloatMatrix]
) -> BoolArray | None:
    """Organisations with at least one statement the dense scorer computed in
    `dense_by_kind` (as `suggest_partners` takes it): the only ones a suggestion scores.
    None when it computed every entry (a small network scored exactly: everyone is a
    candidate). Returns an (n_organisations,) bool mask."""
    if all(np.isfinite(d).all() for d in dense_by_kind.values()):
        return None
    out = np.zeros(index.size, dtype=bool)
    for (_, their_kind), dense in dense_by_kind.items():
        if dense.size:
            table = index.tables[their_kind]
            out[table.org_pos[np.isfinite(dense).any(axis=0)]] = True
    return out


def _block(
    index: NetworkIndex,
    calibration: Calibration,
    mine: _Side,
    my_kind: str,
    dense_rows: FloatMatrix,
    their_kind: str,
    candidates: BoolArray | None,
) -> _Block:
    """Scores of (my statements of my_kind) × (candidates' statements of their_kind).

    Only the candidates' columns are scored: beyond them, a large network scored by top-k
    has nothing but the mean similarity to offer.
    """
    theirs = index.tables[their_kind]
    if candidates is None:
        cols = np.arange(len(theirs))
        org_pos, groups, starts = theirs.org_pos, theirs.groups, theirs.starts
    else:
        cols = np.flatnonzero(candidates[theirs.org_pos])
        org_pos = theirs.org_pos[cols]
        groups, starts = group_starts(org_pos)
    if len(mine.rows) == 0 or len(cols) == 0:
        z = np.zeros((len(mine.rows), len(cols)))
    else:
        mine_lexical = index.tables[my_kind].lexical[mine.rows]
        dense = dense_rows[:, cols]
        if candidates is None:
            lexical = theirs.lexical_dot(mine_lexical)
        else:
            # Words are compared where the dense scorer computed a similarity; elsewhere
            # both stay at the network's mean.
            lexical = np.full(dense.shape, calibration.lexical_mean)
            computed = np.flatnonzero(np.isfinite(dense).any(axis=0))
            lexical[:, computed] = sparse_row_dot(mine_lexical, theirs.lexical[cols[computed]])
        z = calibration.statement_z(fill_missing(dense, calibration.dense_mean), lexical)
    return _Block(cols, org_pos, groups, starts, z, calibration.probability(z))


def _per_org(values: FloatArray, groups: np.ndarray, n_orgs: int, fill: float = 0.0) -> FloatArray:
    out = np.full(n_orgs, fill)
    out[groups] = values
    return out


def _best_per_column_group(z: FloatArray, starts: np.ndarray) -> FloatArray:
    """For each group of columns, the best entry over its columns and all rows."""
    if z.shape[0] == 0 or z.shape[1] == 0:
        return np.full(starts.size, -np.inf)
    return np.asarray(np.maximum.reduceat(z.max(axis=0), starts), dtype=np.float64)


@dataclass(frozen=True)
class PartnerWeights:
    """How the partner ranking mixes its signals (chosen on the evaluation set, see
    `maillage eval`; documented in the README).

    reciprocity : z units added at most for reciprocity (the harmonic mean of the two
        directions, 0–1): enough to separate near-ties, too little to bury a clear one-way
        answer (RECON, Pizzato et al. 2010).
    strong_reason : a suggestion whose best statement pair scores below this (the blended
        probability of the pair, 0–1) is shown after every suggestion whose best pair
        reaches it.
    interleave : with several needs, each need ranks its own answers and the lists are
        merged, so that every need gets its best answers near the top.
    rank_step : in that merge, what each rank down a need's own list costs, in units of
        that need's spread (see `need_spread_floor`).
    need_spread_floor : the answers to each need are standardised over the candidate
        organisations (minus their mean, over their standard deviation) before the lists
        are merged: needs differ in scale (a need worded with words many profiles share
        lifts every answer's words and profile signals), and a distant second answer to
        one need must not outrank a near-tie for the best answer to another. The spread
        is taken as at least this many calibrated z units, so that a need whose answers
        hardly differ (or a handful of candidates) does not magnify small gaps.
    """

    reciprocity: float = 0.1
    strong_reason: float = 0.1
    interleave: bool = True
    rank_step: float = 1.0
    need_spread_floor: float = 1.0


def suggest_partners(
    index: NetworkIndex,
    organisation_id: int,
    dense_by_kind: dict[tuple[str, str], FloatMatrix],
    calibration: Calibration,
    *,
    mode: str = "complementary",
    profiles: ProfileSignals | None = None,
    org_mask: BoolArray | None = None,
    within: str | None = None,
    territory_weight: bool = True,
    exclude: Collection[int] = (),
    limit: int = 10,
    reasons_per_direction: int = 3,
    weights: PartnerWeights = PartnerWeights(),
) -> list[Suggestion]:
    """Rank partners for one organisation.

    Parameters
    ----------
    dense_by_kind : for each (my_kind, their_kind), (my statements of my_kind, in table
        order) × (every statement of their_kind) float32 dense cosines, NaN where the
        scorer did not compute them (beyond a top-k).
    mode : "complementary" — they answer my needs, I answer theirs; each direction is
        scored like a search with the need as the query (best statement, plus the whole
        profile when `profiles` is given for my needs), the strongest direction ranks, and
        the reciprocal (harmonic) mean of the two lifts near-ties. "peer" — we share needs
        or competencies (pooling expertise): mean of the two coverages.
    profiles : my needs (rows, table order) against every organisation's profile; only
        the `candidate_organisations` are read.

    Returns
    -------
    Up to `limit` suggestions, strongest first, in two tiers: those whose best statement
    pair reaches `weights.strong_reason`, then the others. `score` is in (0, 1): the
    ranking strength times the territory weight (`TERRITORY_WEIGHTS`).
    """
    me = index.org_pos[organisation_id]
    n = index.size
    comps, needs = index.tables["competency"], index.tables["need"]
    my_needs, my_comps = _side(needs, me), _side(comps, me)
    if mode == "complementary":
        pairs = {
            "they_cover_me": ("need", "competency", my_needs, comps),
            "i_cover_them": ("competency", "need", my_comps, needs),
        }
    else:
        pairs = {
            "shared_need": ("need", "need", my_needs, needs),
            "shared_competency": ("competency", "competency", my_comps, comps),
        }
    candidates = candidate_organisations(
        index, {(mk, tk): dense_by_kind[(mk, tk)] for mk, tk, _, _ in pairs.values()}
    )
    blocks: dict[str, _Block] = {}
    for direction, (my_kind, their_kind, mine, _) in pairs.items():
        blocks[direction] = _block(
            index,
            calibration.for_pair(my_kind, their_kind),  # peer pairs have their own scale
            mine,
            my_kind,
            dense_by_kind[(my_kind, their_kind)],
            their_kind,
            candidates,
        )
    direction_scores: dict[str, FloatArray] = {}
    # Strength of each organisation's best reason, on the scale of its score: how well it
    # answers the need it answers best (or I answer its best need; peer: the best pair).
    strength = np.zeros(n)
    need_answers: FloatArray | None = None  # my needs × organisations, in probability
    need_z = np.zeros((0, n))  # the same in z units
    mutual = np.zeros(n)
    if mode == "complementary":
        tc, ic = blocks["they_cover_me"], blocks["i_cover_them"]
        # Ranked in z units (before the logistic), where the strongest answers, close to
        # probability 1, still differ.
        per_need_z = _answers_per_need(tc, calibration, profiles)
        need_answers = np.zeros((per_need_z.shape[0], n))
        need_answers[:, tc.groups] = calibration.probability(per_need_z)
        need_z = np.full((per_need_z.shape[0], n), -np.inf)
        need_z[:, tc.groups] = per_need_z
        they_z = _per_org(
            per_need_z.max(axis=0) if per_need_z.shape[0] else np.full(tc.groups.size, -np.inf),
            tc.groups,
            n,
            -np.inf,
        )
        # For each of their needs, my best competency; an organisation by its best need.
        i_cover_z = _per_org(_best_per_column_group(ic.z, ic.starts), ic.groups, n, -np.inf)
        they, i_cover = calibration.probability(they_z), calibration.probability(i_cover_z)
        direction_scores = {"they_cover_me": they, "i_cover_them": i_cover}
        mutual = harmonic_mean(they, i_cover)
        if len(my_needs.rows):
            # Who answers my needs ranks; what I could answer for them only lifts near-ties.
            total = they_z + weights.reciprocity * mutual
            strength = need_answers.max(axis=0)
        else:  # nothing asked: whose needs I answer
            total, strength = i_cover_z, i_cover
    else:
        for direction, block in blocks.items():
            direction_scores[direction] = _per_org(
                coverage(best_per_group(block.p, block.starts), power=2.0), block.groups, n
            )
            strength = np.maximum(
                strength,
                _per_org(
                    calibration.probability(_best_per_column_group(block.z, block.starts)),
                    block.groups,
                    n,
                ),
            )
        have = [d for d, (_, _, mine, _) in pairs.items() if len(mine.rows) > 0]
        total = np.mean([direction_scores[d] for d in have], axis=0) if have else np.zeros(n)
    allowed = np.ones(n, dtype=bool) if org_mask is None else org_mask.copy()
    allowed[me] = False
    for other in exclude:
        if other in index.org_pos:
            allowed[index.org_pos[other]] = False
    zscale = mode == "complementary"  # `total` in z units, else in (0, 1)
    my_places = index.organisations[me].places

    def top(
        key: FloatArray, strong: BoolArray, shift_scale: float = 1.0
    ) -> list[tuple[bool, float, int, Key | None]]:
        return _top(
            key,
            strong,
            allowed,
            limit,
            zscale=zscale,
            shift_scale=shift_scale,
            territory=territory_weight,
            within=within,
            my_places=my_places,
            index=index,
        )

    if need_answers is not None and len(my_needs.rows) > 1 and weights.interleave:
        # Each of my needs gets its best answers: the first suggestions are the best
        # answer to each need, then the second best, and so on (strong reasons first),
        # each need's answers compared on that need's own scale.
        best: dict[int, tuple[bool, float, Key | None]] = {}
        for row in range(len(my_needs.rows)):
            centre, spread = need_scale(need_z[row], allowed, weights.need_spread_floor)
            key = (need_z[row] + weights.reciprocity * mutual - centre) / spread
            for rank, (tier, weighted, pos, shared) in enumerate(
                top(key, need_answers[row] >= weights.strong_reason, 1.0 / spread)
            ):
                entry = (tier, weighted - weights.rank_step * rank, shared)
                if pos not in best or entry[:2] > best[pos][:2]:  # strong first, then key
                    best[pos] = entry
        ranked = sorted(
            ((t, k, p, sh) for p, (t, k, sh) in best.items()),
            key=lambda e: (not e[0], -e[1], e[2]),
        )
    else:
        ranked = top(total, strength >= weights.strong_reason)
    suggestions = []
    for _, key, pos, shared in ranked[:limit]:
        if zscale:
            # What the suggestion is worth, not where the merge of my needs put it: how
            # well it answers my best-answered need, reciprocity and territory included.
            level = shared[0] if shared else None
            shift = TERRITORY_SHIFTS[level] if territory_weight else 0.0
            score = float(calibration.probability(total[pos] + shift))
        else:
            score = key
        reasons = []
        for direction, (_, _, mine, theirs) in pairs.items():
            row_strength = (
                need_answers[:, pos]
                if direction == "they_cover_me" and need_answers is not None
                else None
            )
            reasons.extend(
                _reasons(
                    direction,
                    blocks[direction],
                    mine,
                    theirs,
                    pos,
                    reasons_per_direction,
                    row_strength,
                )
            )
        suggestions.append(
            Suggestion(
                organisation_id=index.organisations[pos].id,
                score=round(score, 4),
                scores={d: round(float(v[pos]), 4) for d, v in direction_scores.items()}
                | ({"reciprocal": round(float(mutual[pos]), 4)} if mode == "complementary" else {}),
                shared_territory=shared,
                reasons=tuple(reasons),
            )
        )
    return suggestions


def _top(
    total: FloatArray,
    strong: BoolArray,
    allowed: BoolArray,
    limit: int,
    *,
    zscale: bool,
    shift_scale: float = 1.0,
    territory: bool,
    within: str | None,
    my_places: tuple[Place, ...],
    index: NetworkIndex,
) -> list[tuple[bool, float, int, Key | None]]:
    """The `limit` best organisations by `total` with the territory applied (a shift in z
    units times `shift_scale` when `zscale`, else a factor), strong reasons first:
    (strong, key, position, shared territory), best first."""
    ranked: list[tuple[bool, float, int, Key | None]] = []
    kept: dict[bool, list[float]] = {True: [], False: []}  # min-heaps of the best per tier
    # Best raw scores first; weights are at most 1, so once a raw score falls below the
    # limit-th weighted one of its tier (or of the strong tier), no later one can enter.
    eligible = np.flatnonzero(allowed & np.isfinite(total) & (zscale or total > 0))
    for pos in (int(p) for p in eligible[np.argsort(-total[eligible], kind="stable")]):
        tier = bool(strong[pos])
        if len(kept[True]) >= limit and (not tier or float(total[pos]) < kept[True][0]):
            if not tier:
                continue
            break
        if len(kept[tier]) >= limit and float(total[pos]) < kept[tier][0]:
            continue
        shared = shared_territory(my_places, index.organisations[pos].places)
        level = shared[0] if shared else None
        if within is not None and not level_at_least_as_fine(level, within):
            continue
        if not territory:
            weighted = float(total[pos])
        elif zscale:
            weighted = float(total[pos]) + shift_scale * TERRITORY_SHIFTS[level]
        else:
            weighted = float(total[pos]) * TERRITORY_WEIGHTS[level]
        ranked.append((tier, weighted, pos, shared))
        heap = kept[tier]
        if len(heap) < limit:
            heapq.heappush(heap, weighted)
        elif weighted > heap[0]:
            heapq.heapreplace(heap, weighted)
    ranked.sort(key=lambda t: (not t[0], -t[1], t[2]))
    return ranked[:limit]


def need_scale(z: FloatArray, allowed: BoolArray, floor: float = 1.0) -> tuple[float, float]:
    """Centre and spread of one need's answers, to compare them with another need's.

    Parameters
    ----------
    z : (n_organisations,) how well each organisation answers the need, in calibrated z
        units; -inf where it was not scored (not a candidate).
    allowed : (n_organisations,) bool, the organisations that may be suggested.
    floor : the smallest spread returned, in z units.

    Returns
    -------
    (mean, max(standard deviation, floor)) of the finite entries of `z` that are allowed;
    (0, 1) when there is none. `(z - mean) / spread` is then in standard units of the need.
    """
    values = z[allowed & np.isfinite(z)]
    if values.size == 0:
        return 0.0, 1.0
    return float(values.mean()), max(float(values.std()), floor)


def _reasons(
    direction: str,
    block: _Block,
    mine: _Side,
    theirs_table: StatementTable,
    their_pos: int,
    limit: int,
    row_strength: FloatArray | None = None,
) -> list[Reason]:
    """The best pairs between my statements and the candidate's, strongest first.

    `row_strength` (one per row of mine): how well each of my statements is answered as a
    whole; when given, it orders the pairs and is their strength.
    """
    local = block.columns_of(their_pos)
    if len(local) == 0 or block.p.shape[0] == 0:
        return []
    cols = block.cols[local]
    sub = block.p[:, local]
    if direction == "i_cover_them":
        # For each of their needs, my best competency.
        pairs = [(int(sub[:, j].argmax()), j) for j in range(len(cols))]
    else:
        pairs = [(i, int(sub[i].argmax())) for i in range(sub.shape[0])]

    def strength(i: int, j: int) -> float:
        return float(row_strength[i]) if row_strength is not None else float(sub[i, j])

    pairs.sort(key=lambda ij: (-strength(*ij), -sub[ij[0], ij[1]]))
    return [
        Reason(
            direction=direction,
            mine_id=mine.ids[i],
            mine=mine.texts[i],
            theirs_id=int(theirs_table.ids[cols[j]]),
            theirs=theirs_table.texts[cols[j]],
            similarity=round(float(sub[i, j]), 4),
            strength=round(strength(i, j), 4),
        )
        for i, j in pairs[:limit]
    ]


def _answers_per_need(
    block: _Block, calibration: Calibration, profiles: ProfileSignals | None
) -> FloatArray:
    """How well each candidate group of `block` (my needs × their competencies) answers
    each of my needs, scored as a search for that need scores it: best competency, plus
    the whole profile and its word stems when `profiles` is given. Returns (my needs ×
    groups) float64 z-scores (`Calibration.probability` maps them to (0, 1))."""
    if block.z.shape[0] == 0 or block.z.shape[1] == 0:
        return np.zeros((block.z.shape[0], block.groups.size))
    per_need = best_per_group(block.z, block.starts)
    if profiles is not None:
        dense = fill_missing(profiles.dense[:, block.groups], calibration.profile_mean)
        per_need = per_need + calibration.profile_weight * calibration.profile_z(dense)
        if profiles.words is not None and calibration.words_weight:
            per_need = per_need + calibration.words_weight * calibration.words_z(
                profiles.words[:, block.groups]
            )
    return per_need
