"""Putting dense and lexical similarities on one scale.

Each raw cosine is standardised against the similarities of random statement pairs of
the network (z-scores), the two are mixed with a weight, and a logistic turns the mix
into a score in (0, 1) that reads as "how well this answers that". Fitted from the
network itself, so the same numbers come out on either database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from matcher.scoring import FloatArray


@dataclass(frozen=True)
class Calibration:
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


def _standardise(values: npt.ArrayLike, mean: float, std: float) -> FloatArray:
    return np.asarray((np.asarray(values, dtype=np.float64) - mean) / std, dtype=np.float64)
