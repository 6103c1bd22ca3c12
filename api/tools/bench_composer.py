"""`maillage bench --only composer`: the consortium composer on a synthetic call.

Time: 10,000 candidates × 5 requirements (the issue's figure), one landlord in six (as in
the bench network), one in twenty interested, two past partners each on average; the
problem built and three alternatives composed, with the default options. Two families of
similarities: calibrated-like (a logistic of z-scores, most pairs far below 0.1, a few
strong answers — what the call ranking produces) and uniform on [0, 1] (the worst case for
lazy evaluation: every candidate stays a contender). Certified ratio: the best
consortium's value over an upper bound on the optimum (`consortium_search.upper_bound`),
a lower bound on how close to optimal it is at that scale.

Share of optimal: greedy against exhaustive search on small calls (12 candidates,
5 requirements, calibrated-like similarities, default options).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from matcher.consortium import (
    Candidate,
    ConsortiumOptions,
    ConsortiumProblem,
    compose_consortia,
    exhaustive_consortium,
)
from matcher.consortium_search import upper_bound


@dataclass(frozen=True)
class ComposerBench:
    candidates: int
    requirements: int
    runs: int
    calibrated_p50_ms: float
    calibrated_max_ms: float
    uniform_p50_ms: float
    uniform_max_ms: float
    certified_ratio: float  # worst over runs: best value / upper bound on the optimum
    small_instances: int
    small_optimal_share: float
    small_mean_ratio: float
    small_worst_ratio: float


def synthetic_call(
    rng: np.random.Generator, candidates: int, requirements: int, *, uniform: bool = False
) -> tuple[list[Candidate], np.ndarray, list[tuple[int, int]]]:
    """Candidates (ids 1…n, every sixth a landlord, 5 % interested), their (n × r) float32
    similarities, and n random past pairs."""
    people = [
        Candidate(i + 1, is_landlord=i % 6 == 0, interested=bool(rng.random() < 0.05))
        for i in range(candidates)
    ]
    if uniform:
        sims = rng.random((candidates, requirements))
    else:
        z = rng.normal(size=(candidates, requirements))
        z += 3.0 * (rng.random((candidates, requirements)) < 0.05)  # a few real answers
        sims = 1.0 / (1.0 + np.exp(-1.5 * (z - 2.5)))  # Calibration's default logistic
    pairs = rng.integers(1, candidates + 1, size=(candidates, 2))
    past = [(int(a), int(b)) for a, b in pairs if a != b]
    return people, sims.astype(np.float32), past


def _time_compose(
    rng: np.random.Generator, candidates: int, requirements: int, *, uniform: bool
) -> tuple[float, float]:
    """Milliseconds to build the problem and compose, and the certified ratio."""
    people, sims, past = synthetic_call(rng, candidates, requirements, uniform=uniform)
    options = ConsortiumOptions()
    t0 = time.perf_counter()
    problem = ConsortiumProblem(people, sims, past_pairs=past)
    proposals = compose_consortia(problem, options)
    elapsed = (time.perf_counter() - t0) * 1000
    objective = problem.objective(options)
    bound = upper_bound(objective, np.ones(candidates, dtype=bool), 1, options.max_size)
    return elapsed, proposals[0].score / bound


def run_composer_bench(
    *,
    candidates: int = 10_000,
    requirements: int = 5,
    runs: int = 5,
    small_instances: int = 300,
    seed: int = 0,
) -> ComposerBench:
    rng = np.random.default_rng(seed)
    _time_compose(rng, 200, requirements, uniform=False)  # warm-up: imports, caches
    timings: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for _ in range(runs):
        for uniform in (False, True):
            ms, ratio = _time_compose(rng, candidates, requirements, uniform=uniform)
            timings[uniform].append(ms)
            ratios.append(ratio)
    small = []
    for _ in range(small_instances):
        people, sims, past = synthetic_call(rng, 12, requirements)  # two landlords
        problem = ConsortiumProblem(people, sims, past_pairs=past)
        options = ConsortiumOptions(alternatives=1)
        greedy = compose_consortia(problem, options)[0].score
        best = exhaustive_consortium(problem, options)
        assert best is not None
        small.append(greedy / best.score if best.score > 0 else 1.0)
    return ComposerBench(
        candidates=candidates,
        requirements=requirements,
        runs=runs,
        calibrated_p50_ms=round(float(np.median(timings[False])), 1),
        calibrated_max_ms=round(max(timings[False]), 1),
        uniform_p50_ms=round(float(np.median(timings[True])), 1),
        uniform_max_ms=round(max(timings[True]), 1),
        certified_ratio=round(min(ratios), 4),
        small_instances=small_instances,
        small_optimal_share=round(sum(r >= 1 - 1e-9 for r in small) / len(small), 4),
        small_mean_ratio=round(float(np.mean(small)), 4),
        small_worst_ratio=round(min(small), 4),
    )


def composer_dict(result: ComposerBench) -> dict[str, Any]:
    return asdict(result)
