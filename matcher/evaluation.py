"""Ranking metrics for graded relevance (nDCG@k, Recall@k, MRR), and the hurried form of a
query the evaluation also scores."""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from matcher.text import strip_accents


def dcg(gains: Sequence[float], *, linear: bool = False) -> float:
    """Discounted cumulative gain of grades in rank order: gain 2^grade − 1, or the grade
    itself when `linear`."""
    return float(
        sum((g if linear else 2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(gains))
    )


def ndcg_at_k(
    ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10, *, linear: bool = False
) -> float:
    """nDCG@k with exponential gain (2^grade − 1), or linear gain (the grade) when
    `linear`."""
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k], linear=linear)
    if ideal == 0:
        return 0.0
    return dcg([relevant.get(item, 0) for item in ranking[:k]], linear=linear) / ideal


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
    recall10: float = 0.0


def evaluate(
    rankings: Sequence[Sequence[str]],
    judgements: Sequence[Mapping[str, int]],
    *,
    linear: bool = False,
) -> Scores:
    """Mean metrics over queries; `rankings[i]` answers the query judged by `judgements[i]`.
    nDCG@10 uses exponential gains, or linear ones when `linear`."""
    if len(rankings) != len(judgements):
        raise ValueError("one ranking per judged query")
    n = len(rankings)
    if n == 0:
        return Scores(0.0, 0.0, 0.0, 0)
    return Scores(
        ndcg10=sum(
            ndcg_at_k(r, j, linear=linear) for r, j in zip(rankings, judgements, strict=True)
        )
        / n,
        recall5=sum(recall_at_k(r, j) for r, j in zip(rankings, judgements, strict=True)) / n,
        mrr=sum(reciprocal_rank(r, j) for r, j in zip(rankings, judgements, strict=True)) / n,
        queries=n,
        recall10=sum(recall_at_k(r, j, 10) for r, j in zip(rankings, judgements, strict=True)) / n,
    )


def partner_judgements(
    queries: Sequence[Mapping[str, object]],
) -> dict[str, dict[str, int]]:
    """Gold partners of each organisation that asked: those that answer any of its needs,
    graded by the best grade over its needs (queries whose `asker` is set are needs)."""
    gold: dict[str, dict[str, int]] = {}
    for query in queries:
        asker = query.get("asker")
        relevant = query.get("relevant")
        if not isinstance(asker, str) or not isinstance(relevant, Mapping):
            continue
        grades = gold.setdefault(asker, {})
        for slug, grade in relevant.items():
            grades[slug] = max(grades.get(slug, 0), int(grade))
    return gold


def merge_rankings(scored: Sequence[Sequence[tuple[str, float]]], k: int = 10) -> list[str]:
    """One ranking from several scored lists (each need's search results): every item by
    its best score over the lists, best first, the first k."""
    best: dict[str, float] = {}
    for ranking in scored:
        for item, score in ranking:
            best[item] = max(best.get(item, float("-inf")), score)
    return sorted(best, key=lambda item: (-best[item], item))[:k]


_LONG_WORD = re.compile(r"[a-z]{7,}")


def hurried(
    text: str,
    acronyms: Mapping[str, str] | None = None,
    *,
    typo_rate: float = 0.2,
    seed: int = 0,
) -> str:
    """`text` as typed in a hurry into a form, for measuring how matching stands up to it.

    In order: lower case and no accents (`strip_accents`); each spelled-out form of
    `acronyms` (acronym → its expansion, as in the thesaurus; only acronyms of two capitals
    or more) replaced by the acronym in lower case, longest expansions first; the final
    full stop dropped; then, in each word of seven letters or more with probability
    `typo_rate`, one typo at an inner position: two neighbouring letters swapped, one
    letter dropped or one doubled.

    Deterministic: the draw is seeded by the CRC-32 of `text` and `seed`, so a query gets
    the same hurried form on every run and machine. Typing mistakes of this kind (swaps,
    omissions, doublings) are the ones Damerau (1964) counted in misspellings."""
    out = strip_accents(text).lower().replace("\u2019", "'")
    contractions = sorted(
        (
            (strip_accents(expansion).lower(), acronym.lower())
            for acronym, expansion in (acronyms or {}).items()
            if len(acronym) >= 2 and acronym.isupper()
        ),
        key=lambda pair: -len(pair[0]),
    )
    for expansion, acronym in contractions:
        out = re.sub(rf"(?<![\w-]){re.escape(expansion)}(?![\w-])", acronym, out)
    out = out.rstrip().rstrip(".").rstrip()
    rng = random.Random(zlib.crc32(text.encode("utf-8")) ^ seed)

    def typo(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() >= typo_rate:
            return word
        i = rng.randrange(1, len(word) - 2)
        kind = rng.randrange(3)
        if kind == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:
            return word[:i] + word[i + 1 :]
        return word[:i] + word[i] + word[i:]

    return _LONG_WORD.sub(typo, out)
