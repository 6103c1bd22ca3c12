"""The search behind the consortium composer: the set value, lazy greedy per lead, and an
exhaustive reference — over candidate positions (0…n_cand−1), no ids, no validation
(`matcher.consortium` does both).

The value of a set S with lead ℓ and core K = {ℓ} ∪ include:

    Φ(S, ℓ) = Σ_r max_{o ∈ S} sim[o, r]                          (facility location)
            + Σ_{o ∈ S} interest[o]                              (modular)
            + γ · #{ {a, b} ⊆ S : a ≠ b, {a, b} ∩ K ≠ ∅, a and b never together }

For a fixed core the third term adds, for each member o outside K, γ times the number of
core members o has not worked with — a modular term. So for each lead, S ↦ Φ(S, ℓ) is
monotone submodular with non-negative gains, and greedy over the free slots reaches
(1 − 1/e) of the best set with that lead (Nemhauser, Wolsey & Fisher 1978).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Below this, two values are equal (float64 sums of at most a few hundred terms in [0, 1]).
EPS = 1e-9
GUARANTEE = 1.0 - 1.0 / math.e
# Lazy evaluation scans the candidates in blocks of this many, doubling up to the cap.
FIRST_BLOCK, MAX_BLOCK = 32, 4096


@dataclass(frozen=True)
class Objective:
    """Φ's ingredients, by candidate position.

    sims : (n, r) float64, C-contiguous, ≥ 0, the best similarity of each candidate to
        each requirement.
    interest : (n,) float64 ≥ 0, the interest bonus each candidate brings as a member.
    landlord : (n,) bool.
    partners : for each position, the positions it has worked with (sorted int64).
    novelty : γ ≥ 0, the bonus per new pair touching the core.
    """

    sims: FloatArray
    interest: FloatArray
    landlord: BoolArray
    partners: tuple[IntArray, ...]
    novelty: float
    # Order of the lazy scan: position by decreasing singleton bound (coverage + interest),
    # ties by position; the bound itself in that order.
    order: IntArray = field(init=False)
    order_bound: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        singleton = self.sims.sum(axis=1) + self.interest
        order = np.lexsort((np.arange(singleton.size), -singleton)).astype(np.int64)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "order_bound", singleton[order])

    @property
    def size(self) -> int:
        return int(self.sims.shape[0])

    def new_with_core(self, core: Sequence[int]) -> IntArray:
        """(n,) int64: how many core members each candidate has never worked with (a core
        member is not counted against itself)."""
        out = np.full(self.size, len(core), dtype=np.int64)
        for c in core:
            out[self.partners[c]] -= 1
            out[c] -= 1
        return out

    def value(self, members: Sequence[int], core: Sequence[int]) -> tuple[float, float, int]:
        """(coverage, interest, new pairs touching the core) of a member set that holds the
        core; Φ = coverage + interest + γ · new pairs."""
        m = np.asarray(members, dtype=np.int64)
        coverage = float(self.sims[m].max(axis=0).sum()) if m.size else 0.0
        interest = float(self.interest[m].sum())
        core_set = set(core)
        new = 0
        for a, b in itertools.combinations(sorted(set(members)), 2):
            if (a in core_set or b in core_set) and not self.worked_together(a, b):
                new += 1
        return coverage, interest, new

    def worked_together(self, a: int, b: int) -> bool:
        p = self.partners[a]
        i = int(np.searchsorted(p, b))
        return i < p.size and int(p[i]) == b


@dataclass(frozen=True)
class Found:
    """A consortium found by a search: member positions (core first, then in the order
    greedy added them), its lead, and its value Φ."""

    members: tuple[int, ...]
    lead: int
    value: float


def greedy(
    objective: Objective,
    core: Sequence[int],
    allowed: BoolArray,
    *,
    min_size: int,
    max_size: int,
    min_gain: float = 0.0,
) -> Found | None:
    """Lazy greedy (Minoux 1978) from a core `core[0]` (the lead) + the imposed members.

    At each step the candidate of largest marginal gain joins; gains are computed in
    blocks along `objective.order`, skipping every candidate whose last computed gain (a
    valid upper bound, by submodularity) cannot beat the best found in the step, and
    stopping once the singleton bound of the next block cannot either. Ties go to the
    candidate first in that order. Greedy stops at `max_size`, or once `min_size` is
    reached and no gain exceeds `min_gain`. Returns None when `min_size` cannot be reached
    with the `allowed` (n,) bool candidates.
    """
    sims, n = objective.sims, objective.size
    core = list(dict.fromkeys(core))
    if len(core) > max_size:
        return None
    cov = sims[core].max(axis=0) if core else np.zeros(sims.shape[1])
    available = allowed.copy()
    available[core] = False
    extra = objective.interest + objective.novelty * objective.new_with_core(core)
    # The singleton bound in scan order, with the largest novelty a candidate can bring.
    shift = objective.novelty * len(core)
    bound = np.full(n, np.inf)  # last computed gain of each candidate
    order, order_bound = objective.order, objective.order_bound
    members = list(core)
    while len(members) < max_size:
        best_gain, best = -np.inf, -1
        start, block = 0, FIRST_BLOCK
        while start < n and (best < 0 or best_gain < order_bound[start] + shift):
            idx = order[start : start + block]
            start, block = start + block, min(2 * block, MAX_BLOCK)
            idx = idx[available[idx] & (bound[idx] > best_gain)]
            if idx.size == 0:
                continue
            gains = np.maximum(sims[idx] - cov, 0.0).sum(axis=1) + extra[idx]
            bound[idx] = gains
            j = int(np.argmax(gains))
            if gains[j] > best_gain:
                best_gain, best = float(gains[j]), int(idx[j])
        if best < 0 or (len(members) >= min_size and best_gain <= min_gain):
            break
        members.append(best)
        available[best] = False
        cov = np.maximum(cov, sims[best])
    if len(members) < min_size:
        return None
    coverage, interest, new = objective.value(members, core)
    return Found(tuple(members), core[0], coverage + interest + objective.novelty * new)


def upper_bound(objective: Objective, allowed: BoolArray, core_size: int, max_size: int) -> float:
    """A bound on Φ of any consortium drawn from `allowed` with a core of at most
    `core_size` members: every requirement at its best candidate, the `max_size` largest
    interest bonuses, every pair touching the core new."""
    if not allowed.any():
        return 0.0
    coverage = float(objective.sims[allowed].max(axis=0).sum())
    interest = float(np.sort(objective.interest[allowed])[::-1][:max_size].sum())
    c = min(core_size, max_size)
    pairs = c * (c - 1) // 2 + c * (max_size - c)
    return coverage + interest + objective.novelty * pairs


@dataclass
class LeadSearch:
    """Greedy from each possible lead, best kept; one per composition, so that the
    alternatives reuse the runs their exclusions did not touch.

    seed_budget : after this many leads (by decreasing singleton value), stop as soon as
        the best consortium reaches (1 − 1/e) of `upper_bound` — which every untried lead's
        best set is below, so the guarantee holds; None tries every lead. The search also
        stops when the best reaches the bound (it is then optimal).
    """

    objective: Objective
    include: tuple[int, ...]
    min_size: int
    max_size: int
    min_gain: float = 0.0
    seed_budget: int | None = None
    _runs: dict[int, tuple[frozenset[int], Found | None]] = field(default_factory=dict)
    leads_tried: int = 0

    def best(self, leads: Iterable[int], excluded: frozenset[int]) -> Found | None:
        """The best greedy consortium over `leads` (positions of landlords), none of whose
        members is `excluded` (positions)."""
        obj = self.objective
        allowed = np.ones(obj.size, dtype=bool)
        allowed[list(excluded)] = False
        leads = [p for p in leads if p not in excluded]
        singleton = obj.sims.sum(axis=1) + obj.interest
        leads.sort(key=lambda p: (-singleton[p], p))
        bound = upper_bound(obj, allowed, len(self.include) + 1, self.max_size)
        best: Found | None = None
        for i, lead in enumerate(leads):
            if best is not None and (
                best.value >= bound - EPS
                or (
                    self.seed_budget is not None
                    and i >= self.seed_budget
                    and best.value >= GUARANTEE * bound
                )
            ):
                break
            found = self._run(lead, allowed, excluded)
            if found is not None and (best is None or found.value > best.value + EPS):
                best = found
        return best

    def _run(self, lead: int, allowed: BoolArray, excluded: frozenset[int]) -> Found | None:
        cached = self._runs.get(lead)
        # Greedy from a lead under more exclusions picks the same members if it never
        # picked an excluded one: reuse the run.
        if cached is not None and cached[0] <= excluded:
            found = cached[1]
            if found is None or not excluded.intersection(found.members):
                return found
        self.leads_tried += 1
        found = greedy(
            self.objective,
            [lead, *self.include],
            allowed,
            min_size=self.min_size,
            max_size=self.max_size,
            min_gain=self.min_gain,
        )
        self._runs[lead] = (excluded, found)
        return found


def exhaustive(
    objective: Objective,
    allowed: BoolArray,
    include: Sequence[int],
    leads: Sequence[int],
    *,
    min_size: int,
    max_size: int,
    limit: int = 2_000_000,
) -> Found | None:
    """The best (set, lead) by enumeration — a reference for tests and the bench.

    Every set of `allowed` positions holding `include`, of size in [min_size, max_size],
    with every lead of `leads` it holds. Exponential: refuses (ValueError) beyond `limit`
    sets. Returns None when no set is feasible.
    """
    inc = list(dict.fromkeys(include))
    pool = [p for p in np.flatnonzero(allowed).tolist() if p not in set(inc)]
    lead_ok = np.zeros(objective.size, dtype=bool)
    lead_ok[list(leads)] = True
    total = sum(
        math.comb(len(pool), s - len(inc)) for s in range(max(min_size, len(inc)), max_size + 1)
    )
    if total > limit:
        raise ValueError(f"{total} sets to enumerate, more than {limit}")
    new = np.ones((objective.size, objective.size), dtype=bool)
    np.fill_diagonal(new, False)
    for a, partners in enumerate(objective.partners):
        new[a, partners] = False
    best: Found | None = None
    for size in range(max(min_size, len(inc), 1), max_size + 1):
        free = list(itertools.combinations(pool, size - len(inc)))
        if not free:
            continue
        sets = np.array([tuple(inc) + f for f in free], dtype=np.int64).reshape(len(free), size)
        base = objective.sims[sets].max(axis=1).sum(axis=1) + objective.interest[sets].sum(axis=1)
        # Pairs between imposed members, and each imposed member's new pairs in the set.
        inc_rows = sum((new[a][sets].sum(axis=1) for a in inc), np.zeros(len(sets), np.int64))
        inc_within = sum(int(new[a, b]) for a, b in itertools.combinations(inc, 2))
        for col in range(size):
            lead = sets[:, col]
            if col < len(inc):  # the lead is imposed: the core is `include`
                pairs = inc_rows - inc_within
            else:
                lead_rows = new[lead[:, None], sets].sum(axis=1)
                lead_inc = new[lead][:, inc].sum(axis=1) if inc else 0
                pairs = lead_rows + inc_rows - lead_inc - inc_within
            values = np.where(lead_ok[lead], base + objective.novelty * pairs, -np.inf)
            i = int(np.argmax(values))
            if np.isfinite(values[i]) and (best is None or values[i] > best.value + EPS):
                members = tuple(int(p) for p in sets[i])
                lead_i = int(lead[i])
                ordered = (lead_i, *(m for m in members if m != lead_i))
                best = Found(ordered, lead_i, float(values[i]))
    return best
