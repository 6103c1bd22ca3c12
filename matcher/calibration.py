"""Putting dense and lexical similarities on one scale.

Each raw cosine is standardised against the similarities of random statement pairs of
the network (z-scores), the two are mixed with a weight, and a logistic turns the mix
into a score in (0, 1) that reads as "how well this answers that". Fitted from the
network itself, so the same numbers come out on either database.

Pairs of different types are standardised apart: a need read against a competency (a
query against a passage, as search and complementary partners read them) is not
distributed like two needs or two competencies (peer mode), least of all with a
retrieval-trained encoder that embeds the two roles differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy import sparse

from matcher.scoring import FloatArray

# The statement kinds whose pairs are standardised apart.
NEED, COMPETENCY = "need", "competency"


@dataclass(frozen=True)
class PairStats:
    """Mean and standard deviation of the dense and lexical cosines of random pairs of
    one type (cosines in [-1, 1], lexical in [0, 1])."""

    dense_mean: float
    dense_std: float
    lexical_mean: float
    lexical_std: float


@dataclass(frozen=True)
class Calibration:
    """How raw similarities become z-scores and probabilities.

    The dense and lexical statistics below are those of need → competency pairs (what a
    search and complementary partners read); `like_pairs` holds, per statement kind,
    those of pairs of that kind with itself (peer mode), when fitted apart.
    """

    dense_mean: float = 0.17
    dense_std: float = 0.12
    lexical_mean: float = 0.05
    lexical_std: float = 0.06
    profile_mean: float = 0.37
    profile_std: float = 0.13
    dense_weight: float = 0.5
    profile_weight: float = 0.75
    words_mean: float = 0.05
    words_std: float = 0.05
    words_weight: float = 0.4
    centre: float = 2.5
    slope: float = 1.5
    like_pairs: Mapping[str, PairStats] = field(default_factory=dict)

    def for_pair(self, my_kind: str, their_kind: str) -> Calibration:
        """The calibration that standardises (my_kind, their_kind) statement pairs: this
        one, or for two statements of one kind the statistics of such pairs."""
        stats = self.like_pairs.get(my_kind) if my_kind == their_kind else None
        if stats is None:
            return self
        return replace(
            self,
            dense_mean=stats.dense_mean,
            dense_std=stats.dense_std,
            lexical_mean=stats.lexical_mean,
            lexical_std=stats.lexical_std,
            like_pairs={},
        )

    def statement_z(self, dense: npt.ArrayLike, lexical: npt.ArrayLike) -> FloatArray:
        d = (np.asarray(dense, dtype=np.float64) - self.dense_mean) / self.dense_std
        lex = (np.asarray(lexical, dtype=np.float64) - self.lexical_mean) / self.lexical_std
        return np.asarray(self.dense_weight * d + (1.0 - self.dense_weight) * lex, dtype=np.float64)

    def profile_z(self, dense: npt.ArrayLike) -> FloatArray:
        return _standardise(dense, self.profile_mean, self.profile_std)

    def words_z(self, similarity: npt.ArrayLike) -> FloatArray:
        """Word-stem similarity of a text to whole profiles, standardised."""
        return _standardise(similarity, self.words_mean, self.words_std)

    def probability(self, z: npt.ArrayLike, *, centre_shift: float = 0.0) -> FloatArray:
        z = np.asarray(z, dtype=np.float64)
        return np.asarray(
            1.0 / (1.0 + np.exp(-self.slope * (z - self.centre - centre_shift))), dtype=np.float64
        )


def fit_calibration(
    dense_pairs: npt.ArrayLike,
    lexical_pairs: npt.ArrayLike,
    profile_pairs: npt.ArrayLike,
    word_pairs: npt.ArrayLike = (),
    *,
    base: Calibration | None = None,
) -> Calibration:
    """Means and spreads from similarities of random pairs; weights kept from `base`.

    With too few pairs to estimate (a network of a handful of statements), the defaults
    of `base` stand, which were measured on the evaluation set.
    """
    base = base or Calibration()
    d = np.asarray(dense_pairs, dtype=np.float64)
    lex = np.asarray(lexical_pairs, dtype=np.float64)
    prof = np.asarray(profile_pairs, dtype=np.float64)

    def stats(values: FloatArray, mean: float, std: float) -> tuple[float, float]:
        if values.size < 50 or float(values.std()) < 1e-6:
            return mean, std
        return float(values.mean()), float(values.std())

    dm, ds = stats(d, base.dense_mean, base.dense_std)
    lm, ls = stats(lex, base.lexical_mean, base.lexical_std)
    pm, ps = stats(prof, base.profile_mean, base.profile_std)
    wm, ws = stats(np.asarray(word_pairs, dtype=np.float64), base.words_mean, base.words_std)
    return replace(
        base,
        dense_mean=dm,
        dense_std=ds,
        lexical_mean=lm,
        lexical_std=ls,
        profile_mean=pm,
        profile_std=ps,
        words_mean=wm,
        words_std=ws,
    )


def fit_from_sample(
    vectors: npt.ArrayLike,
    lexical: sparse.csr_matrix,
    kinds: Sequence[str],
    profiles: npt.ArrayLike,
    words: npt.ArrayLike | None = None,
    *,
    base: Calibration | None = None,
    by_pair_type: bool = True,
) -> Calibration:
    """Fit a calibration on a random sample of the network's statements.

    Parameters
    ----------
    vectors : (n × d) float, the sampled statements' dense vectors, L2-normalised (each
        embedded in its role: needs as queries, competencies as passages).
    lexical : (n × features) CSR, their L2-normalised character n-gram rows.
    kinds : n statement kinds, "need" or "competency".
    profiles : (m × d) float, some organisations' profile vectors (zero rows: no profile).
    words : (n × m) float, the word-stem similarity of each sampled statement to those
        profiles, or None.
    by_pair_type : standardise need → competency pairs, need → need and competency →
        competency pairs each on their own pairs (profiles and words on the needs'
        rows: a query reads them); False pools every pair of the sample, as before. A
        type with too few pairs falls back on the pooled statistics.
    """
    base = base or Calibration()
    v = np.asarray(vectors, dtype=np.float64)
    kind = np.asarray(kinds)
    dense = v @ v.T
    lex = np.asarray((lexical @ lexical.T).toarray(), dtype=np.float64)
    prof = v @ np.asarray(profiles, dtype=np.float64).T
    w = None if words is None else np.asarray(words, dtype=np.float64)
    upper = np.triu(np.ones(dense.shape, dtype=bool), k=1)
    pooled = fit_calibration(
        dense[upper],
        lex[upper],
        _nonzero(prof),
        () if w is None else w.ravel(),
        base=base,
    )
    if not by_pair_type:
        return pooled
    need, comp = kind == NEED, kind == COMPETENCY
    cross = np.outer(need, comp)
    query_rows = need if need.sum() >= 10 else np.ones_like(need)
    fitted = fit_calibration(
        dense[cross],
        lex[cross],
        _nonzero(prof[query_rows]),
        () if w is None else w[query_rows].ravel(),
        base=pooled,
    )
    like = {}
    for name, rows in ((NEED, need), (COMPETENCY, comp)):
        same = upper & np.outer(rows, rows)
        own = fit_calibration(dense[same], lex[same], (), base=pooled)
        like[name] = PairStats(own.dense_mean, own.dense_std, own.lexical_mean, own.lexical_std)
    return replace(fitted, like_pairs=like)


def _nonzero(values: FloatArray) -> FloatArray:
    """The entries that are not exactly 0 (0: a profile row that does not exist)."""
    flat = values.ravel()
    return np.asarray(flat[np.abs(flat) > 0], dtype=np.float64)


def _standardise(values: npt.ArrayLike, mean: float, std: float) -> FloatArray:
    return np.asarray((np.asarray(values, dtype=np.float64) - mean) / std, dtype=np.float64)


def calibration_sample(n: int, size: int = 400) -> npt.NDArray[np.int64]:
    """Sorted positions of `size` rows out of `n` (all of them when fewer), drawn with a
    fixed seed: the statements calibration reads, the same on every build of a network."""
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)
