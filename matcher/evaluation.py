"""Ranking metrics for graded relevance: nDCG@k, Recall@k, MRR."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def dcg(gains: Sequence[float]) -> float:
    return float(sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(gains)))


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with exponential gain (2^grade − 1)."""
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([relevant.get(item, 0) for item in ranking[:k]]) / ideal


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 5) -> float:
    """Share of the relevant items (grade ≥ 1) found in the first k."""
    wanted = {item for item, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted & set(ranking[:k])) / len(wanted)


def reciprocal_rank(ranking: Sequence[str], relevant: Mapping[str, int]) -> float:
    for i, item in enumerate(ranking):
        if relevant.get(item, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


@dataclass(frozen=True)
class Scores:
    ndcg10: float
    recall5: float
    mrr: float
    queries: int


def evaluate(rankings: Sequence[Sequence[str]], judgements: Sequence[Mapping[str, int]]) -> Scores:
    """Mean metrics over queries; `rankings[i]` answers the query judged by `judgements[i]`."""
    if len(rankings) != len(judgements):
        raise ValueError("one ranking per judged query")
    n = len(rankings)
    if n == 0:
        return Scores(0.0, 0.0, 0.0, 0)
    return Scores(
        ndcg10=sum(ndcg_at_k(r, j) for r, j in zip(rankings, judgements, strict=True)) / n,
        recall5=sum(recall_at_k(r, j) for r, j in zip(rankings, judgements, strict=True)) / n,
        mrr=sum(reciprocal_rank(r, j) for r, j in zip(rankings, judgements, strict=True)) / n,
        queries=n,
    )
