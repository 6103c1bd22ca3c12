"""The consortium composer: for a call for projects, which eligible organisations to put
together, and who among them covers which requirement.

The value of a consortium S led by the landlord ℓ is

    Φ(S, ℓ) = Σ_r max_{o ∈ S} sim[o, r]                 facility location: each requirement
                                                        counts at its best member
            + interested_bonus · |S ∩ interested|       who said « intéressé » is preferred
            + novelty_bonus · (new pairs touching the core)

where the core is the lead and the imposed members (`include`), and a pair is new when
its two organisations have never been in a consortium together (the club wants new
partnerships). Counting only pairs that touch the core keeps the bonus modular once the
lead is chosen; a bonus on *every* new pair would reward two members only together
(supermodular), for which greedy has no guarantee.

Search. For each candidate lead ℓ (every allowed landlord, or the one imposed), greedy
with lazy evaluation (Minoux 1978: a gain computed at an earlier step bounds the gain
now, so most candidates need no new evaluation) fills the free slots from the core
K = {ℓ} ∪ include; the best of these runs wins. The facility-location term is monotone
submodular (Cornuéjols, Fisher & Nemhauser 1977) and, for a fixed lead, the bonuses are
modular and non-negative, so g(T) = Φ(K ∪ T, ℓ) − Φ(K, ℓ) is monotone submodular with
g(∅) = 0 and greedy over the k − |K| free slots gives (Nemhauser, Wolsey & Fisher 1978)

    Φ(G) ≥ Φ(K) + (1 − 1/e) · (OPT_ℓ − Φ(K)) ≥ (1 − 1/e) · OPT_ℓ,

OPT_ℓ being the best consortium led by ℓ. The best run over the leads is therefore within
(1 − 1/e) of the best consortium with any landlord lead. The "at least one landlord, as
lead" constraint is met by enumerating the lead rather than by reserving a greedy slot
for a landlord: filling the other slots first and a landlord last only guarantees 1/2
(two slots, the best free member worthless beside the only landlord). With many
landlords, `seed_budget` stops the enumeration (leads by decreasing value of their own)
only once the best run reaches (1 − 1/e) of an upper bound on every consortium
(`consortium_search.upper_bound`), so the guarantee holds there too; it also stops once
the best reaches that bound (it is then optimal).

Alternatives. The first consortium is the best found. Each next one is composed again
without the leads of the earlier ones (so each is carried by another landlord and never
holds an earlier lead); when the lead cannot change (imposed, or no other landlord), it
is composed again without each free member of the previous one in turn, keeping the best
result not already returned. Every consortium returned differs in membership from the
others; they come best first, and fewer than `alternatives` come back when no other one
exists.

Cost: per lead, each step computes gains by vectorised blocks, at worst n × r
subtractions; runs the alternatives' exclusions did not touch are reused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from matcher.consortium_errors import (
    IncludeExcludeConflict,
    InvalidInput,
    InvalidOption,
    InvalidSize,
    LeadNotLandlord,
    LeadNotMember,
    NoLandlord,
    NoRequirement,
    NotCandidate,
    TooFewCandidates,
    TooManyImposed,
)
from matcher.consortium_search import (
    FloatArray,
    Found,
    IntArray,
    LeadSearch,
    Objective,
    exhaustive,
)

# A requirement whose best member is below this similarity is flagged as uncovered. It is
# the partner ranking's calibrated "strong reason" cut (MAILLAGE_PARTNER_STRONG_REASON):
# on the evaluation set, (need, organisation) pairs below 0.1 are relevant 1.6 % of the
# time, against 12 % above it. It applies when the similarities are those calibrated
# probabilities (a requirement read as a need against competencies, as the call ranking
# scores them); the API should pass its setting (Settings.partner_strong_reason).
UNCOVERED_BELOW = 0.1


@dataclass(frozen=True)
class Candidate:
    """An organisation eligible to the call."""

    id: int
    is_landlord: bool  # its kind is OrganisationKind.landlord (a social landlord)
    interested: bool = False  # it marked the call « intéressé »


@dataclass(frozen=True, eq=False)
class ConsortiumProblem:
    """A call's candidates and how well each covers each requirement.

    candidates : n_cand eligible organisations, distinct ids.
    similarity : (n_cand, n_req) float (float32 expected), the best similarity of any of
        the candidate's statements to each requirement, in [0, 1] (the calibrated
        probability the call ranking computes). NaN (not computed) and negative entries
        count as 0: no cover. Infinite entries are refused.
    statements : (n_cand, n_req) int64, the id of the statement that gave each similarity,
        −1 for none; None when unknown. Only read to name statements in coverage tables.
    past_pairs : pairs of organisation ids that have already been in a consortium
        together (either order; ids outside the candidates are ignored).

    Raises InvalidInput when the shapes do not match the candidates, ids repeat or a
    similarity is infinite.
    """

    candidates: Sequence[Candidate]
    similarity: npt.ArrayLike
    statements: npt.ArrayLike | None = None
    past_pairs: Collection[tuple[int, int]] = ()
    _sims: FloatArray = field(init=False, repr=False, compare=False)
    _statements: IntArray | None = field(init=False, repr=False, compare=False)
    _position: dict[int, int] = field(init=False, repr=False, compare=False)
    _partners: tuple[IntArray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.candidates)
        sims = np.asarray(self.similarity, dtype=np.float64)
        if sims.ndim != 2 or sims.shape[0] != n:
            raise InvalidInput(
                f"La matrice de similarité doit compter une ligne par candidat ({n}), "
                f"reçu la forme {sims.shape}."
            )
        if np.isinf(sims).any():
            raise InvalidInput("La matrice de similarité contient des valeurs infinies.")
        sims = np.ascontiguousarray(np.where(np.isnan(sims) | (sims < 0), 0.0, sims))
        statements = None
        if self.statements is not None:
            statements = np.asarray(self.statements, dtype=np.int64)
            if statements.shape != sims.shape:
                raise InvalidInput(
                    f"La matrice des énoncés doit avoir la forme {sims.shape}, "
                    f"reçu {statements.shape}."
                )
        position = {c.id: i for i, c in enumerate(self.candidates)}
        if len(position) != n:
            counts = Counter(c.id for c in self.candidates)
            repeated = sorted(i for i, k in counts.items() if k > 1)
            raise InvalidInput(f"Candidats en double : {repeated}.", repeated)
        partners: list[set[int]] = [set() for _ in range(n)]
        for a, b in self.past_pairs:
            pa, pb = position.get(a), position.get(b)
            if pa is not None and pb is not None and pa != pb:
                partners[pa].add(pb)
                partners[pb].add(pa)
        object.__setattr__(self, "_sims", sims)
        object.__setattr__(self, "_statements", statements)
        object.__setattr__(self, "_position", position)
        object.__setattr__(
            self, "_partners", tuple(np.array(sorted(p), dtype=np.int64) for p in partners)
        )

    @property
    def n_requirements(self) -> int:
        return int(self._sims.shape[1])

    def positions(self, ids: Iterable[int]) -> list[int]:
        """Positions of candidate ids; NotCandidate for the ids that are not candidates."""
        ids = list(dict.fromkeys(ids))
        unknown = [i for i in ids if i not in self._position]
        if unknown:
            raise NotCandidate(unknown)
        return [self._position[i] for i in ids]

    def known_positions(self, ids: Iterable[int]) -> list[int]:
        """Positions of the ids that are candidates; the others are skipped."""
        return [self._position[i] for i in dict.fromkeys(ids) if i in self._position]

    def objective(self, options: ConsortiumOptions) -> Objective:
        interested = np.array([c.interested for c in self.candidates], dtype=np.float64)
        return Objective(
            sims=self._sims,
            interest=options.interested_bonus * interested,
            landlord=np.array([c.is_landlord for c in self.candidates], dtype=bool),
            partners=self._partners,
            novelty=options.novelty_bonus,
        )


@dataclass(frozen=True)
class ConsortiumOptions:
    """Constraints and preferences of a composition.

    min_size, max_size : members, lead included; 1 ≤ min_size ≤ max_size (defaults 2–5).
    include : ids that must be members. exclude : ids that must not (ids that are not
        candidates are ignored). lead : the id of the landlord who must lead, or None.
    alternatives : how many consortia to return (≥ 1), differing in membership.
    interested_bonus : added to Φ per member that marked the call « intéressé »,
        in similarity units (1 = a requirement fully covered); ≥ 0. The default (0.05)
        is a preference, not a fitted weight: it decides between members of near-equal
        cover, never against a clearly better one.
    novelty_bonus : added per new pair touching the core (lead and imposed members), in
        the same units; ≥ 0. Default 0.02: a member new to the lead gains what 0.02 of
        better cover would bring.
    uncovered_below : a requirement whose best member's similarity is below this (in
        [0, 1]) is flagged as uncovered (see UNCOVERED_BELOW).
    min_gain : once `min_size` members are in, a member joins only if it adds more than
        this to Φ (≥ 0). 0 adds every member that adds anything, up to `max_size`; a
        positive value gives smaller consortia and loosens the guarantee by at most
        `max_size · min_gain`.
    seed_budget : leads tried before the search may stop at the guarantee (see module
        docstring); None tries every landlord.
    """

    min_size: int = 2
    max_size: int = 5
    include: Collection[int] = ()
    exclude: Collection[int] = ()
    lead: int | None = None
    alternatives: int = 3
    interested_bonus: float = 0.05
    novelty_bonus: float = 0.02
    uncovered_below: float = UNCOVERED_BELOW
    min_gain: float = 0.0
    seed_budget: int | None = 64

    def check(self) -> None:
        """Raise InvalidSize, InvalidOption or IncludeExcludeConflict when the options
        contradict themselves, whatever the candidates."""
        if self.min_size < 1 or self.min_size > self.max_size:
            raise InvalidSize(self.min_size, self.max_size)
        if self.alternatives < 1:
            raise InvalidOption("alternatives", self.alternatives, "au moins 1")
        for name in ("interested_bonus", "novelty_bonus", "min_gain"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InvalidOption(name, value, "un nombre positif ou nul")
        if not 0 <= self.uncovered_below <= 1:
            raise InvalidOption("uncovered_below", self.uncovered_below, "entre 0 et 1")
        if self.seed_budget is not None and self.seed_budget < 1:
            raise InvalidOption("seed_budget", self.seed_budget, "au moins 1, ou aucun")
        imposed = set(self.include) | ({self.lead} if self.lead is not None else set())
        both = imposed & set(self.exclude)
        if both:
            raise IncludeExcludeConflict(both)


@dataclass(frozen=True)
class RequirementCover:
    """Who covers one requirement: the member with the best similarity (the earliest in
    `ConsortiumProposal.member_ids` on a tie), through which statement.
    `organisation_id` and `statement_id` are None when no member covers it at all."""

    requirement: int  # index in the call's requirements
    organisation_id: int | None
    statement_id: int | None
    similarity: float  # in [0, 1]
    covered: bool  # similarity > 0 and ≥ uncovered_below


@dataclass(frozen=True)
class ConsortiumProposal:
    """A consortium the composer proposes (or evaluates).

    member_ids : the lead first, then the imposed members, then the others in the order
        they joined. coverage_table : one entry per requirement, in order. uncovered :
        indices of the requirements flagged. coverage : mean best similarity over the
        requirements, in [0, 1]. score : Φ (see module docstring), ≥ 0. scores : Φ's
        parts, "coverage" (Σ), "interest" and "novelty" (bonuses). new_pairs,
        repeated_pairs : over every pair of members (not only the core's), for the
        record of partnerships formed.
    """

    lead_id: int
    member_ids: tuple[int, ...]
    coverage_table: tuple[RequirementCover, ...]
    uncovered: tuple[int, ...]
    coverage: float
    score: float
    scores: dict[str, float]
    new_pairs: int
    repeated_pairs: int

    def covers(self, organisation_id: int) -> tuple[int, ...]:
        """The requirements this member is the cover of."""
        return tuple(
            c.requirement
            for c in self.coverage_table
            if c.organisation_id == organisation_id and c.covered
        )


@dataclass(frozen=True)
class _Prepared:
    """A checked composition: the objective and the constraints as positions."""

    objective: Objective
    include: tuple[int, ...]  # imposed members other than the lead
    lead: int | None
    excluded: frozenset[int]
    leads: tuple[int, ...]  # the lead, or every landlord allowed

    @property
    def required(self) -> frozenset[int]:
        return frozenset(self.include) | ({self.lead} if self.lead is not None else set())


def _prepare(problem: ConsortiumProblem, options: ConsortiumOptions) -> _Prepared:
    """Check the options against the candidates, in the order the errors are listed in
    `compose_consortia`."""
    options.check()
    include = problem.positions(options.include)
    lead = problem.positions([options.lead])[0] if options.lead is not None else None
    objective = problem.objective(options)
    if lead is not None and not objective.landlord[lead]:
        raise LeadNotLandlord(problem.candidates[lead].id)
    if problem.n_requirements == 0:
        raise NoRequirement()
    excluded = frozenset(problem.known_positions(options.exclude))
    available = objective.size - len(excluded)
    if available < options.min_size:
        raise TooFewCandidates(available, options.min_size)
    allowed = np.ones(objective.size, dtype=bool)
    allowed[list(excluded)] = False
    landlords = np.flatnonzero(objective.landlord & allowed).tolist()
    if lead is None and not landlords:
        raise NoLandlord()
    imposed = list(dict.fromkeys(([] if lead is None else [lead]) + include))
    imposed_ids = [problem.candidates[p].id for p in imposed]
    if len(imposed) > options.max_size:
        raise TooManyImposed(imposed_ids, options.max_size, landlord_missing=False)
    if len(imposed) == options.max_size and not objective.landlord[imposed].any():
        raise TooManyImposed(imposed_ids, options.max_size, landlord_missing=True)
    leads = (lead,) if lead is not None else tuple(landlords)
    if lead is None and len(include) == options.max_size:
        # No free slot: the lead is one of the imposed members.
        leads = tuple(p for p in include if objective.landlord[p])
    return _Prepared(
        objective,
        include=tuple(p for p in include if p != lead),
        lead=lead,
        excluded=excluded,
        leads=leads,
    )


def compose_consortia(
    problem: ConsortiumProblem, options: ConsortiumOptions = ConsortiumOptions()
) -> list[ConsortiumProposal]:
    """Propose up to `options.alternatives` consortia for a call, best first.

    Every consortium has between `min_size` and `max_size` members drawn from the
    candidates, holds `include`, none of `exclude`, and is led by a social landlord (the
    `lead` if given). See the module docstring for the value, the search and its
    guarantee, and how alternatives differ.

    Raises
    ------
    InvalidComposition (422) : InvalidSize, InvalidOption, IncludeExcludeConflict.
    ImpossibleConsortium (409) : NotCandidate (`include` or `lead` not eligible);
        LeadNotLandlord; NoRequirement (the call has none); TooFewCandidates (fewer
        than `min_size` once excluded); NoLandlord (none once excluded);
        TooManyImposed (`include` and `lead` exceed `max_size`, or fill it without a
        landlord).
    """
    prepared = _prepare(problem, options)
    search = LeadSearch(
        prepared.objective,
        include=prepared.include,
        min_size=options.min_size,
        max_size=options.max_size,
        min_gain=options.min_gain,
        seed_budget=options.seed_budget,
    )
    required = prepared.required

    def solve(without: frozenset[int]) -> Found | None:
        return search.best(prepared.leads, prepared.excluded | without)

    first = solve(frozenset())
    found = [] if first is None else [first]
    without_leads: frozenset[int] = frozenset()
    while found and len(found) < options.alternatives:
        seen = [set(f.members) for f in found]
        previous = found[-1]
        candidate = None
        if previous.lead not in required:
            candidate = solve(without_leads | {previous.lead})
            if candidate is not None:
                without_leads = without_leads | {previous.lead}
        if candidate is None:  # the lead cannot change: drop each free member in turn
            for member in previous.members:
                if member in required or member == previous.lead:
                    continue
                other = solve(without_leads | {member})
                if other is None or set(other.members) in seen:
                    continue
                if candidate is None or other.value > candidate.value:
                    candidate = other
        if candidate is None or set(candidate.members) in seen:
            break
        found.append(candidate)
    # Greedy under more exclusions may do better than greedy without them: best first.
    found.sort(key=lambda f: -f.value)
    return [_describe(problem, prepared.objective, f, options) for f in found]


def evaluate_consortium(
    problem: ConsortiumProblem,
    member_ids: Sequence[int],
    lead_id: int,
    options: ConsortiumOptions = ConsortiumOptions(),
) -> ConsortiumProposal:
    """Describe a consortium chosen by hand (its coverage table, flags and score), e.g.
    after a coordinator changed its members or lead. The core is the lead and the
    members of `options.include` it holds; sizes and exclusions are not checked.

    Raises NotCandidate (a member is not eligible), LeadNotMember, LeadNotLandlord,
    NoRequirement, and the InvalidComposition errors of `ConsortiumOptions.check`.
    """
    options.check()
    if lead_id not in member_ids:
        raise LeadNotMember(lead_id)
    members = problem.positions(member_ids)
    lead = problem.positions([lead_id])[0]
    objective = problem.objective(options)
    if not objective.landlord[lead]:
        raise LeadNotLandlord(lead_id)
    if problem.n_requirements == 0:
        raise NoRequirement()
    core = [lead, *(p for p in problem.known_positions(options.include) if p in members)]
    ordered = tuple(dict.fromkeys([*core, *members]))
    coverage, interest, new = objective.value(ordered, core)
    found = Found(ordered, lead, coverage + interest + objective.novelty * new)
    return _describe(problem, objective, found, options, core=core)


def exhaustive_consortium(
    problem: ConsortiumProblem, options: ConsortiumOptions = ConsortiumOptions()
) -> ConsortiumProposal | None:
    """The optimal consortium under the same constraints and value, by enumerating every
    member set and lead — exponential: a reference for tests and the bench (ValueError
    beyond two million sets). Same errors as `compose_consortia`; None when no
    consortium is feasible."""
    prepared = _prepare(problem, options)
    allowed = np.ones(prepared.objective.size, dtype=bool)
    allowed[list(prepared.excluded)] = False
    found = exhaustive(
        prepared.objective,
        allowed,
        ([] if prepared.lead is None else [prepared.lead]) + list(prepared.include),
        prepared.leads,
        min_size=options.min_size,
        max_size=options.max_size,
    )
    return None if found is None else _describe(problem, prepared.objective, found, options)


def _describe(
    problem: ConsortiumProblem,
    objective: Objective,
    found: Found,
    options: ConsortiumOptions,
    *,
    core: Sequence[int] | None = None,
) -> ConsortiumProposal:
    ids = [problem.candidates[p].id for p in found.members]
    if core is None:
        core = [found.lead, *problem.known_positions(options.include)]
    coverage, interest, new_core = objective.value(found.members, core)
    sims = objective.sims[list(found.members)]  # (members, n_req)
    best = sims.argmax(axis=0)  # first maximum: the earliest member
    table = []
    for r in range(problem.n_requirements):
        m = int(best[r])
        similarity = float(sims[m, r])
        statement = None
        if similarity > 0 and problem._statements is not None:
            s = int(problem._statements[found.members[m], r])
            statement = s if s >= 0 else None
        table.append(
            RequirementCover(
                requirement=r,
                organisation_id=ids[m] if similarity > 0 else None,
                statement_id=statement,
                similarity=similarity,
                covered=similarity > 0 and similarity >= options.uncovered_below,
            )
        )
    pairs = [(a, b) for i, a in enumerate(found.members) for b in found.members[i + 1 :]]
    repeated = sum(objective.worked_together(a, b) for a, b in pairs)
    novelty = objective.novelty * new_core
    return ConsortiumProposal(
        lead_id=problem.candidates[found.lead].id,
        member_ids=tuple(ids),
        coverage_table=tuple(table),
        uncovered=tuple(c.requirement for c in table if not c.covered),
        coverage=coverage / problem.n_requirements,
        score=coverage + interest + novelty,
        scores={"coverage": coverage, "interest": interest, "novelty": novelty},
        new_pairs=len(pairs) - repeated,
        repeated_pairs=repeated,
    )


__all__ = [
    "UNCOVERED_BELOW",
    "Candidate",
    "ConsortiumOptions",
    "ConsortiumProblem",
    "ConsortiumProposal",
    "RequirementCover",
    "compose_consortia",
    "evaluate_consortium",
    "exhaustive_consortium",
]
