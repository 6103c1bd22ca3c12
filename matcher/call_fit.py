"""How well organisations cover a call's requirements: plain arrays in, arrays out.

Each requirement is read as a need is (a query against the network's competencies), so
its similarity to an organisation is what a search for that requirement would score:
the organisation's best competency (dense and character n-gram cosines, standardised and
mixed by the calibration), plus its whole profile and the word stems of that profile,
turned into a probability in (0, 1) by the calibration's logistic. Requirements are
encoded as queries for this (the stored `requirement` vectors are passages): the
calibration's statistics are those of query → passage pairs, and two passages compared
with each other are not distributed like them.

An organisation's fit to the call is the power mean of order k = `FIT_ORDER` (3) of those
probabilities, (mean_r s_r^k)^(1/k), in [0, 1]. It reads "how much would this
organisation add to a consortium answering the call": the composer values a consortium
by Σ_r max over its members of s_r (`matcher.consortium`), so the organisation's marginal
value to a consortium in which k − 1 other members compete for each requirement, with
coverages unknown (independent, uniform on [0, 1]: partners chosen for the call, of no
known quality), is

    E[Σ_r max(s_r, max of k − 1 uniforms) − Σ_r max of k − 1 uniforms] = Σ_r s_r^k / k,

an increasing function of the power mean. k is how many members really compete for the
requirements: the composer fills its consortia to 5 members (103 of the 108 it proposes
on the labelled calls), but only 1 to 3 of them (2 on average) are the best member on
some requirement, the others bringing the bonuses; k = 3 is the lead, this organisation
and one more partner. A requirement answered almost surely counts whole, one answered at
0.5 counts 0.5³ = 1/8: a specialist that answers one requirement very well comes before
an organisation that half-matches every requirement through its whole-profile signal,
which the mean (k = 1, a consortium of one) put first. The power mean lies between the
mean and the best requirement, equals s when every requirement is at s, and reads
t · n_req^(−1/k) when one requirement of n_req is at t and the others are at 0.

Measured on the labelled calls (fixtures/eval/calls.json, 36 calls; `maillage eval
--calls-only`; dev = odd call numbers, held-out = even), offline on the per-requirement
probabilities of one run, then the chosen formula through the API. nDCG@10 (linear
gains) / Recall@10 / MRR:

    aggregation over requirements      all                dev                held-out
    mean (before)                      0.913 0.893 1.000  0.947 0.940 1.000  0.879 0.846 1.000
    max                                0.910 0.893 0.986  0.921 0.914 1.000  0.899 0.872 0.972
    ½ max + ½ mean                     0.917 0.890 1.000  0.941 0.930 1.000  0.893 0.849 1.000
    mean of the best half              0.916 0.893 1.000  0.936 0.928 1.000  0.896 0.857 1.000
    noisy-OR 1 − Π(1 − s_r)            0.922 0.904 0.986  0.940 0.935 1.000  0.904 0.872 0.972
    Shapley value of the max game      0.898 0.889 0.986  0.913 0.935 0.972  0.883 0.842 1.000
    gain over 4 random eligible        0.909 0.886 1.000  0.934 0.917 1.000  0.885 0.855 1.000
    power mean k = 2                   0.918 0.891 1.000  0.946 0.935 1.000  0.891 0.846 1.000
    power mean k = 3 (chosen)          0.920 0.897 1.000  0.939 0.933 1.000  0.901 0.862 1.000
    power mean k = 4                   0.919 0.895 1.000  0.938 0.928 1.000  0.899 0.862 1.000
    power mean k = 5                   0.919 0.895 1.000  0.939 0.928 1.000  0.899 0.862 1.000
    power mean k = 6                   0.919 0.895 1.000  0.939 0.928 1.000  0.900 0.862 1.000
    k = 3, profile 0.25, words 0.2     0.921 0.893 1.000  0.931 0.916 1.000  0.911 0.869 1.000
    k = 3, profile 0, words 0          0.921 0.889 1.000  0.928 0.907 1.000  0.913 0.871 1.000
    k = 3, profile 0.5, words 0.4      0.918 0.895 0.986  0.942 0.928 1.000  0.894 0.862 0.972
    k = 5, profile 0.25, words 0.2     0.922 0.889 1.000  0.927 0.903 1.000  0.917 0.876 1.000

k = 3…6 is a plateau, and k = 3 is its best point on all and on the held-out half (at
k ≥ 4 the demo's shared-gardens call also puts a landlord lending ground-floor premises
before the gardens association). The noisy-OR and the max are as good on average but lose
up to 0.30 and 0.38 nDCG on single calls (a false positive on one requirement puts an
off-theme organisation first), and the noisy-OR saturates at 1 for most organisations of
a theme. Weighing the profile signals less than the calibration does (0.75 and 0.4; tried
0–0.75 and 0–0.4) only moves calls from one half to the other (all between 0.906 and
0.922 at k = 3), so the calibration is kept. Every difference with the mean is within the
noise of 36 calls (95 % bootstrap interval of the gain in all at k = 3: −0.007 to +0.020;
no call loses more than 0.13): the power mean gains 0.022 on the held-out half and loses
0.008 on the dev half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matcher.calibration import Calibration
from matcher.encoders import FloatMatrix
from matcher.index import BoolArray, IntArray, NetworkIndex
from matcher.scoring import FloatArray, fill_missing

# The order of the power mean over requirements: the members of a consortium that compete
# for its requirements (see the module docstring).
FIT_ORDER = 3


def call_score(similarity: npt.ArrayLike, order: int = FIT_ORDER) -> FloatArray:
    """Organisations' fit to a call from their per-requirement probabilities.

    similarity : (n, n_req) in [0, 1], the probability that each organisation answers each
        requirement (`RequirementFit.similarity`).
    order : the power mean's order k ≥ 1 (the members competing; 1 is the plain mean).

    Returns (n,) float64 in [0, 1]: (mean_r s_r^k)^(1/k), 0 for every row when n_req = 0.
    Raises ValueError for a similarity that is not 2-D or an order below 1.
    """
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"similarity must be (n, n_req), got shape {s.shape}")
    if order < 1:
        raise ValueError(f"the order must be at least 1, got {order}")
    if s.shape[1] == 0:
        return np.zeros(s.shape[0])
    s = np.clip(s, 0.0, 1.0)
    return np.asarray(np.mean(s**order, axis=1) ** (1.0 / order), dtype=np.float64)


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
    score : (n,) float64 in [0, 1], `call_score` of `similarity`: the power mean of order
        `FIT_ORDER` over the requirements (0 for a call without requirement).
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
        score=call_score(similarity),
    )


def rank(fit: RequirementFit) -> npt.NDArray[np.int64]:
    """Rows of `fit` best first: by score, then by the best single requirement's
    similarity, then by index position (stable)."""
    best = fit.similarity.max(axis=1) if fit.similarity.shape[1] else np.zeros(len(fit.score))
    return np.lexsort((fit.positions, -best, -fit.score)).astype(np.int64)


__all__ = ["FIT_ORDER", "RequirementFit", "call_score", "rank", "requirement_fit"]
