"""How well organisations cover a call's requirements: plain arrays in, arrays out.

Each requirement is read as a need is (a query against the network's competencies), so
its similarity to an organisation is what a search for that requirement would score:
the organisation's best competency (dense and character n-gram cosines, standardised and
mixed by the calibration), plus its whole profile and the word stems of that profile,
turned into a probability in (0, 1) by the calibration's logistic. Requirements are
encoded as queries for this (the stored `requirement` vectors are passages): the
calibration's statistics are those of query → passage pairs, and two passages compared
with each other are not distributed like them.

An organisation's fit to the call is the mean over requirements of that probability (the
composer's `coverage`, in [0, 1]): each requirement counts once, so an organisation that
covers three of five requirements well comes before one that half covers everything
only if its three are strong enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matcher.calibration import Calibration
from matcher.encoders import FloatMatrix
from matcher.index import BoolArray, IntArray, NetworkIndex
from matcher.scoring import FloatArray, fill_missing


@dataclass(frozen=True)
class RequirementFit:
    """The selected organisations against a call's requirements.

    positions : (n,) int64, positions in the index of the organisations scored (the
        mask's, in index order).
    similarity : (n, n_req) float64 in [0, 1], the calibrated probability that the
        organisation answers each requirement (0 for an organisation without competency).
    statements : (n, n_req) int64, the id of its competency that answers best, −1 none.
    statement_similarity : (n, n_req) float64 in [0, 1], that competency's own
        probability (without the profile signals).
    score : (n,) float64 in [0, 1], mean of `similarity` over the requirements.
    """

    positions: IntArray
    similarity: FloatArray
    statements: IntArray
    statement_similarity: FloatArray
    score: FloatArray


def requirement_fit(
    index: NetworkIndex,
    calibration: Calibration,
    expanded: list[str],
    statement_dense: FloatMatrix,
    profile_dense: FloatMatrix,
    org_mask: BoolArray,
) -> RequirementFit:
    """Score the organisations of `org_mask` against the requirements.

    Parameters
    ----------
    expanded : the n_req requirement texts, normalised and thesaurus-expanded (what the
        character n-grams and word stems read).
    statement_dense : (n_req × n_competencies) dense cosines of the requirements, encoded
        as queries, to every competency of the index (NaN: not computed, read as the
        network's mean).
    profile_dense : (n_req × n_organisations) dense cosines to whole profiles (NaN: none).
    org_mask : (n_organisations,) bool, the organisations to score (the eligible ones).
    """
    n_req = len(expanded)
    positions = np.flatnonzero(org_mask).astype(np.int64)
    n = index.size
    sim_all = np.zeros((n, n_req))
    stmt_sim_all = np.zeros((n, n_req))
    stmt_all = np.full((n, n_req), -1, dtype=np.int64)
    table = index.tables["competency"]
    if n_req and len(table):
        d = fill_missing(statement_dense, calibration.dense_mean)
        lex = np.asarray(table.lexical_dot(index.lexical.transform(expanded)), dtype=np.float64)
        z = calibration.statement_z(d, lex)
        z = np.where(org_mask[table.org_pos][None, :], z, -np.inf)
        best = np.maximum.reduceat(z, table.starts, axis=1)  # (n_req, groups)
        ends = np.r_[table.starts[1:], len(table)]
        group_of_col = np.repeat(np.arange(len(table.starts)), ends - table.starts)
        columns = np.arange(len(table))
        first_best = np.minimum.reduceat(
            np.where(z == best[:, group_of_col], columns[None, :], len(table)),
            table.starts,
            axis=1,
        )
        groups = table.groups
        profile = calibration.profile_z(
            fill_missing(np.asarray(profile_dense)[:, groups], calibration.profile_mean)
        )
        total = best + calibration.profile_weight * profile
        if calibration.words_weight and index.words is not None:
            if index.profile_words_t is not None:
                rows = index.words.transform(expanded)
                words = np.asarray((rows @ index.profile_words_t).toarray())[:, groups]
                total = total + calibration.words_weight * calibration.words_z(words)
        finite = np.isfinite(best)
        sim_all[groups] = np.where(finite, calibration.probability(total), 0.0).T
        stmt_sim_all[groups] = np.where(finite, calibration.probability(best), 0.0).T
        ids = table.ids[np.minimum(first_best, len(table) - 1)]
        stmt_all[groups] = np.where(finite, ids, -1).T
    similarity = sim_all[positions]
    return RequirementFit(
        positions=positions,
        similarity=similarity,
        statements=stmt_all[positions],
        statement_similarity=stmt_sim_all[positions],
        score=similarity.mean(axis=1) if n_req else np.zeros(len(positions)),
    )


def rank(fit: RequirementFit) -> npt.NDArray[np.int64]:
    """Rows of `fit` best first: by score, then by the best single requirement's
    similarity, then by index position (stable)."""
    best = fit.similarity.max(axis=1) if fit.similarity.shape[1] else np.zeros(len(fit.score))
    return np.lexsort((fit.positions, -best, -fit.score)).astype(np.int64)


__all__ = ["RequirementFit", "rank", "requirement_fit"]
