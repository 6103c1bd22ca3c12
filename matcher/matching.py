"""Search and partner suggestions over a NetworkIndex: plain arrays in, frozen records out."""

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
    group_rows,
    group_starts,
    reciprocal,
    reverse_coverage,
    sparse_row_dot,
)
from matcher.territory import Key, level_at_least_as_fine, shared_territory

# How much a shared territory weighs when the caller ranks by it instead of filtering.
TERRITORY_WEIGHTS: dict[str | None, float] = {
    "arrondissement": 1.0,
    "commune": 1.0,
    "epci": 0.97,
    "departement": 0.93,
    "region": 0.88,
    None: 0.8,
}


@dataclass(frozen=True)
class MatchedStatement:
    """One statement of a result and how well it answers the query."""

    statement_id: int
    text: str
    score: float
    similarity: float  # dense cosine
    lexical: float  # character TF-IDF cosine


@dataclass(frozen=True)
class SearchHit:
    organisation_id: int
    score: float
    statements: tuple[MatchedStatement, ...]


@dataclass(frozen=True)
class Reason:
    """A pair of statements that made a suggestion: theirs answers mine, or mine theirs."""

    direction: str  # "they_cover_me" | "i_cover_them" | "shared_need" | "shared_competency"
    mine_id: int
    mine: str
    theirs_id: int
    theirs: str
    similarity: float  # blended, in (0, 1)


@dataclass(frozen=True)
class Suggestion:
    organisation_id: int
    score: float
    scores: dict[str, float]
    shared_territory: Key | None
    reasons: tuple[Reason, ...]


def _fill(sims: FloatMatrix, floor: float) -> FloatArray:
    out = np.asarray(sims, dtype=np.float64)
    return np.where(np.isnan(out), floor, out)


def _lexical(index: NetworkIndex, texts: list[str], table: StatementTable) -> FloatArray:
    if len(table) == 0:
        return np.zeros((len(texts), 0))
    return np.asarray(
        (index.lexical.transform(texts) @ table.lexical_t).toarray(), dtype=np.float64
    )


def search_organisations(
    index: NetworkIndex,
    dense: FloatMatrix,
    lexical_text: str,
    statement_dense: FloatMatrix,
    profile_dense: FloatMatrix,
    calibration: Calibration,
    *,
    org_mask: BoolArray | None = None,
    limit: int = 10,
    exclude: Collection[int] = (),
    min_score: float = 0.0,
    relative_cut: float = 0.0,
    reasons_per_hit: int = 3,
    profile_words: FloatArray | None = None,
) -> list[SearchHit]:
    """Organisations ranked by how well their competencies (and profile) answer a query.

    Parameters
    ----------
    dense : the query's dense vector (1 × d), used only for its shape here.
    lexical_text : the query text as the lexical index expects it (expanded).
    statement_dense : 1 × n_competencies dense similarities (NaN where not computed).
    profile_dense : 1 × n_organisations dense similarities to profiles (NaN: none).
    min_score : results scoring below it are left out (0 keeps everything).
    relative_cut : results scoring below this share of the best result are left out, so
        that a clear answer is not followed by organisations that only share a word.
    profile_words : word-stem similarities of the query to every organisation's whole
        profile (n_organisations), weighted by `calibration.words_weight`.
    """
    table = index.tables["competency"]
    if len(table) == 0:
        return []
    d = _fill(statement_dense[0], calibration.dense_mean)
    lex = _lexical(index, [lexical_text], table)[0]
    z = calibration.statement_z(d, lex)
    selected = np.ones(len(table), dtype=bool) if org_mask is None else org_mask[table.org_pos]
    if exclude:
        excluded_pos = [index.org_pos[o] for o in exclude if o in index.org_pos]
        selected &= ~np.isin(table.org_pos, excluded_pos)
    z_masked = np.where(selected, z, -np.inf)
    best = np.maximum.reduceat(z_masked, table.starts)  # one per group
    profile = calibration.profile_z(_fill(profile_dense[0], calibration.profile_mean))
    total = best + calibration.profile_weight * profile[table.groups]
    if profile_words is not None and calibration.words_weight:
        total = total + calibration.words_weight * calibration.words_z(profile_words)[table.groups]
    scores = calibration.probability(total)
    order = np.argsort(-total, kind="stable")
    finite = np.isfinite(best)
    top = float(scores[finite].max()) if finite.any() else 0.0
    floor = max(min_score, relative_cut * top)
    hits: list[SearchHit] = []
    for g in order:
        if not finite[g] or scores[g] < floor:
            continue
        start = table.starts[g]
        end = table.starts[g + 1] if g + 1 < len(table.starts) else len(table)
        local = np.argsort(-z[start:end], kind="stable")[:reasons_per_hit] + start
        matched = tuple(
            MatchedStatement(
                statement_id=int(table.ids[i]),
                text=table.texts[i],
                score=float(calibration.probability(z[i])),
                similarity=float(d[i]),
                lexical=float(lex[i]),
            )
            for i in local
        )
        hits.append(
            SearchHit(
                organisation_id=index.organisations[int(table.groups[g])].id,
                score=float(scores[g]),
                statements=matched,
            )
        )
        if len(hits) >= limit:
            break
    return hits


@dataclass(frozen=True)
class _Side:
    rows: np.ndarray  # positions in the table
    texts: list[str]
    ids: list[int]


def _side(table: StatementTable, org_position: int) -> _Side:
    rows = table.rows_of(org_position)
    return _Side(rows, [table.texts[i] for i in rows], [int(table.ids[i]) for i in rows])


@dataclass(frozen=True)
class _Block:
    """My statements × the statements of the candidate organisations (columns of the
    table, grouped by organisation), as probabilities."""

    cols: np.ndarray  # positions in their table
    org_pos: np.ndarray  # organisation position of each column (sorted)
    groups: np.ndarray
    starts: np.ndarray
    p: FloatArray

    def columns_of(self, org_position: int) -> np.ndarray:
        return group_rows(self.org_pos, org_position)


def _candidate_orgs(
    dense_by_direction: list[tuple[FloatMatrix, StatementTable]], n_orgs: int
) -> BoolArray | None:
    """Organisations with at least one statement the dense scorer computed; None when it
    computed every entry (a small network scored exactly: everyone is a candidate)."""
    if all(np.isfinite(d).all() for d, _ in dense_by_direction):
        return None
    out = np.zeros(n_orgs, dtype=bool)
    for dense, table in dense_by_direction:
        if dense.size:
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
    """Probabilities of (my statements of my_kind) × (candidates' statements of their_kind).

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
        p = np.zeros((len(mine.rows), len(cols)))
    else:
        mine_lexical = index.tables[my_kind].lexical[mine.rows]
        dense = dense_rows[:, cols]
        if candidates is None:
            lexical = np.asarray((mine_lexical @ theirs.lexical_t).toarray(), dtype=np.float64)
        else:
            # Words are compared where the dense scorer computed a similarity; elsewhere
            # both stay at the network's mean.
            lexical = np.full(dense.shape, calibration.lexical_mean)
            computed = np.flatnonzero(np.isfinite(dense).any(axis=0))
            lexical[:, computed] = sparse_row_dot(mine_lexical, theirs.lexical[cols[computed]])
        p = calibration.probability(
            calibration.statement_z(_fill(dense, calibration.dense_mean), lexical)
        )
    return _Block(cols, org_pos, groups, starts, p)


def _per_org(values: FloatArray, groups: np.ndarray, n_orgs: int) -> FloatArray:
    out = np.zeros(n_orgs)
    out[groups] = values
    return out


def suggest_partners(
    index: NetworkIndex,
    organisation_id: int,
    dense_by_kind: dict[tuple[str, str], FloatMatrix],
    calibration: Calibration,
    *,
    mode: str = "complementary",
    org_mask: BoolArray | None = None,
    within: str | None = None,
    territory_weight: bool = True,
    exclude: Collection[int] = (),
    limit: int = 10,
    reasons_per_direction: int = 3,
    coverage_power: float = 2.0,
    reciprocity_weight: float = 0.5,
) -> list[Suggestion]:
    """Rank partners for one organisation.

    `dense_by_kind[(my_kind, their_kind)]` holds the dense similarities between my
    statements of my_kind (rows, in table order) and every statement of their_kind.
    complementary: they cover my needs / I cover theirs, reciprocal harmonic mean.
    peer: we share needs / competencies (pooling expertise).
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
    candidates = _candidate_orgs(
        [(dense_by_kind[(mk, tk)], theirs) for mk, tk, _, theirs in pairs.values()], n
    )
    blocks: dict[str, _Block] = {}
    direction_scores: dict[str, FloatArray] = {}
    for direction, (my_kind, their_kind, mine, _) in pairs.items():
        block = _block(
            index,
            calibration,
            mine,
            my_kind,
            dense_by_kind[(my_kind, their_kind)],
            their_kind,
            candidates,
        )
        blocks[direction] = block
        if direction == "i_cover_them":
            per_group = reverse_coverage(block.p, block.starts, power=coverage_power)
        else:
            per_group = coverage(best_per_group(block.p, block.starts), power=coverage_power)
        direction_scores[direction] = _per_org(per_group, block.groups, n)
    has_needs = np.zeros(n, dtype=bool)
    has_needs[needs.groups] = True
    mutual: FloatArray | None = None
    if mode == "complementary":
        mutual = reciprocal(
            direction_scores["they_cover_me"],
            direction_scores["i_cover_them"],
            i_have_needs=len(my_needs.rows) > 0,
            they_have_needs=has_needs,
        )
        # Reciprocity raises a partner; a strong one-way match still shows (a landlord's
        # statements rarely say what it can offer an association that answers its need).
        one_way = np.maximum(direction_scores["they_cover_me"], direction_scores["i_cover_them"])
        total = reciprocity_weight * mutual + (1.0 - reciprocity_weight) * one_way
    else:
        have = [d for d, (_, _, mine, _) in pairs.items() if len(mine.rows) > 0]
        total = np.mean([direction_scores[d] for d in have], axis=0) if have else np.zeros(n)
    allowed = np.ones(n, dtype=bool) if org_mask is None else org_mask.copy()
    allowed[me] = False
    for other in exclude:
        if other in index.org_pos:
            allowed[index.org_pos[other]] = False
    my_places = index.organisations[me].places
    ranked: list[tuple[float, int, Key | None]] = []
    kept: list[float] = []  # min-heap of the best `limit` weighted scores so far
    # Best raw scores first; weights are at most 1, so once a raw score falls below the
    # limit-th weighted one, no later candidate can enter.
    eligible = np.flatnonzero(allowed & (total > 0))
    for pos in (int(p) for p in eligible[np.argsort(-total[eligible], kind="stable")]):
        if len(kept) >= limit and float(total[pos]) < kept[0]:
            break
        shared = shared_territory(my_places, index.organisations[pos].places)
        level = shared[0] if shared else None
        if within is not None and not level_at_least_as_fine(level, within):
            continue
        weight = TERRITORY_WEIGHTS[level] if territory_weight else 1.0
        weighted = float(total[pos]) * weight
        ranked.append((weighted, pos, shared))
        if len(kept) < limit:
            heapq.heappush(kept, weighted)
        elif weighted > kept[0]:
            heapq.heapreplace(kept, weighted)
    ranked.sort(key=lambda t: (-t[0], t[1]))
    suggestions = []
    for score, pos, shared in ranked[:limit]:
        reasons = []
        for direction, (_, _, mine, theirs) in pairs.items():
            reasons.extend(
                _reasons(direction, blocks[direction], mine, theirs, pos, reasons_per_direction)
            )
        suggestions.append(
            Suggestion(
                organisation_id=index.organisations[pos].id,
                score=round(score, 4),
                scores={d: round(float(v[pos]), 4) for d, v in direction_scores.items()}
                | ({"reciprocal": round(float(mutual[pos]), 4)} if mutual is not None else {}),
                shared_territory=shared,
                reasons=tuple(reasons),
            )
        )
    return suggestions


def _reasons(
    direction: str,
    block: _Block,
    mine: _Side,
    theirs_table: StatementTable,
    their_pos: int,
    limit: int,
) -> list[Reason]:
    """The best pairs between my statements and the candidate's, strongest first."""
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
    pairs.sort(key=lambda ij: -sub[ij[0], ij[1]])
    return [
        Reason(
            direction=direction,
            mine_id=mine.ids[i],
            mine=mine.texts[i],
            theirs_id=int(theirs_table.ids[cols[j]]),
            theirs=theirs_table.texts[cols[j]],
            similarity=round(float(sub[i, j]), 4),
        )
        for i, j in pairs[:limit]
    ]
