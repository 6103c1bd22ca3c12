"""Search: organisations whose competencies (and whole profile) answer a French text,
over a NetworkIndex — plain arrays in, frozen records out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from matcher.calibration import Calibration
from matcher.encoders import FloatMatrix
from matcher.index import BoolArray, NetworkIndex, StatementTable
from matcher.scoring import FloatArray, fill_missing


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


def _lexical(index: NetworkIndex, texts: list[str], table: StatementTable) -> FloatArray:
    if len(table) == 0:
        return np.zeros((len(texts), 0))
    return np.asarray(table.lexical_dot(index.lexical.transform(texts)), dtype=np.float64)


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
    d = fill_missing(statement_dense[0], calibration.dense_mean)
    lex = _lexical(index, [lexical_text], table)[0]
    z = calibration.statement_z(d, lex)
    selected = np.ones(len(table), dtype=bool) if org_mask is None else org_mask[table.org_pos]
    if exclude:
        excluded_pos = [index.org_pos[o] for o in exclude if o in index.org_pos]
        selected &= ~np.isin(table.org_pos, excluded_pos)
    z_masked = np.where(selected, z, -np.inf)
    best = np.maximum.reduceat(z_masked, table.starts)  # one per group
    profile = calibration.profile_z(fill_missing(profile_dense[0], calibration.profile_mean))
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
