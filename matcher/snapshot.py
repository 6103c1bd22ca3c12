"""The network at one version, as every matching job reads it: a `NetworkIndex`, its
calibration and the caches derived from them, with one public entry per job —
`search()` and `partners()`. Plain arguments in (vectors, texts, places, ids), plain records
out; the caller (the API's matching service) reads the database and encodes texts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from matcher.calibration import Calibration
from matcher.delta import Delta
from matcher.dense import DenseScorer, NumpyDenseScorer
from matcher.encoders import FloatMatrix
from matcher.index import PROFILE, BoolArray, IntArray, NetworkIndex, OrganisationRecord
from matcher.partners import (
    PartnerWeights,
    ProfileSignals,
    Suggestion,
    candidate_organisations,
    suggest_partners,
)
from matcher.search import SearchHit, search_organisations
from matcher.territory import Key, Place, level_at_least_as_fine
from matcher.text import fold

COMPLEMENTARY = "complementary"
PEER = "peer"


@dataclass(frozen=True)
class SearchCuts:
    """Which hits a search keeps. `min_score`: hits scoring below it (a probability, 0–1)
    are left out; `relative_cut`: so are hits below this share of the best hit's score."""

    min_score: float = 0.0
    relative_cut: float = 0.0


@dataclass
class NetworkSnapshot:
    """The network index at `version` (the counter every write bumps), with what scores
    it: its calibration and, on the embedded SQLite backend, every vector in memory
    (`numpy_scorer`; None where PostgreSQL scores in SQL). `dimension`: the embedding
    space's vector length."""

    version: int
    index: NetworkIndex
    calibration: Calibration
    numpy_scorer: NumpyDenseScorer | None
    dimension: int
    _masks: dict[Key, tuple[Place, BoolArray]] = field(default_factory=dict)
    _postings: dict[Key, IntArray] | None = None
    _need_owners: dict[str, set[int]] | None = None

    # --- jobs ----------------------------------------------------------------------

    def search(
        self,
        scorer: DenseScorer,
        vector: FloatMatrix,
        expanded: str,
        *,
        query: str,
        territory: Place | None = None,
        limit: int = 10,
        cuts: SearchCuts = SearchCuts(),
    ) -> list[SearchHit]:
        """Organisations whose competencies best answer a query.

        vector : (1 × dimension) float32, the query encoded as a QUERY, L2-normalised.
        expanded : the query as every signal reads it (normalised, thesaurus-expanded).
        query : the text as typed: a search with the text of a declared need asks who
            answers it, so that need's authors are left out.
        territory : keep organisations working inside it or on a territory containing it.
        Returns at most `limit` hits, best first (scores in (0, 1), see `search_organisations`).
        """
        mask = self.territory_mask(territory) if territory else None
        return search_organisations(
            self.index,
            vector,
            expanded,
            scorer.statements(vector, "competency", mask),
            scorer.profiles(vector, mask),
            self.calibration,
            org_mask=mask,
            limit=limit,
            exclude=self.need_owners(query),
            profile_words=self.index.profile_word_similarity(expanded),
            min_score=cuts.min_score,
            relative_cut=cuts.relative_cut,
        )

    def partners(
        self,
        scorer: DenseScorer,
        organisation_id: int,
        *,
        mode: str = COMPLEMENTARY,
        within: str | None = None,
        exclude: Collection[int] = (),
        limit: int = 10,
        top_k: int | None = None,
        weights: PartnerWeights = PartnerWeights(),
    ) -> list[Suggestion] | None:
        """Suggested partners of an organisation (see `suggest_partners`); None when the
        organisation is not in this snapshot (unknown, or created after its version).

        mode : "complementary" (they answer my needs, I answer theirs) or "peer".
        within : a territory level (commune, epci, departement, region): keep partners
            sharing a territory of that level or finer with me; None ranks by territory.
        exclude : organisation ids never suggested (my dismissals).
        top_k : statements read per statement of mine on a large network (None: all).
        """
        me = self.index.org_pos.get(organisation_id)
        if me is None:
            return None
        mask = self.sharing_mask(me, within) if within else None
        dense, profiles = self.partner_signals(scorer, me, mode, mask, top_k)
        return suggest_partners(
            self.index,
            organisation_id,
            dense,
            self.calibration,
            mode=mode,
            profiles=profiles,
            org_mask=mask,
            within=within,
            territory_weight=True,
            exclude=exclude,
            limit=limit,
            weights=weights,
        )

    def partner_signals(
        self,
        scorer: DenseScorer,
        me: int,
        mode: str,
        mask: BoolArray | None,
        top_k: int | None,
    ) -> tuple[dict[tuple[str, str], FloatMatrix], ProfileSignals | None]:
        """What `suggest_partners` reads for the organisation at position `me`: dense
        similarities of its statements (the best `top_k` per statement on a large network)
        and, in complementary mode, of its needs to every profile, as a search would read
        each need. One scorer round trip, plus one for the profiles of the organisations
        the first reached (exactly, no index scan)."""
        index = self.index
        kinds = (
            [("need", "competency"), ("competency", "need")]
            if mode == COMPLEMENTARY
            else [("need", "need"), ("competency", "competency")]
        )
        mine = {
            kind: index.tables[kind].ids[index.tables[kind].rows_of(me)].tolist()
            for kind in {k for k, _ in kinds}
        }
        dense = scorer.pairs(mine, kinds, mask, top_k)
        if mode != COMPLEMENTARY or not mine["need"]:
            return dense, None
        candidates = candidate_organisations(index, dense)  # inside `mask` already
        reached = index.size if candidates is None else int(np.count_nonzero(candidates))
        to_profiles = scorer.pairs(
            mine, [("need", PROFILE)], mask if candidates is None else candidates, reached
        )
        profiles = ProfileSignals(
            dense=to_profiles[("need", PROFILE)],
            words=index.need_profile_words(index.tables["need"].rows_of(me)),
        )
        return dense, profiles

    # --- versions ------------------------------------------------------------------

    def after(
        self,
        version: int,
        delta: Delta,
        calibration: Calibration,
        numpy_scorer: NumpyDenseScorer | None,
    ) -> NetworkSnapshot:
        """The snapshot of a later version whose index `delta` made from this one's.
        Territory masks and need owners are carried over, patched for the changed
        organisations only; territory postings are built again on first use."""
        index = delta.index
        kept = np.flatnonzero(delta.old_to_new >= 0)
        changed = [index.organisations[p] for p in delta.changed_positions.tolist()]
        masks: dict[Key, tuple[Place, BoolArray]] = {}
        # Copied first: requests still answered by this snapshot may be adding masks.
        for key, (target, old_mask) in list(self._masks.items()):
            mask = np.zeros(index.size, dtype=bool)
            mask[delta.old_to_new[kept]] = old_mask[kept]
            mask[delta.changed_positions] = [works_on(o, target) for o in changed]
            masks[key] = (target, mask)
        owners = None
        if self._need_owners is not None:
            owners = dict(self._need_owners)
            old = self.index.tables["need"]
            gone = np.flatnonzero(np.isin(old.org_pos, np.flatnonzero(delta.old_to_new < 0)))
            for row in gone.tolist():
                folded = fold(old.texts[row])
                org_id = self.index.organisations[int(old.org_pos[row])].id
                owners[folded] = owners.get(folded, set()) - {org_id}
                if not owners[folded]:
                    del owners[folded]
            new = index.tables["need"]
            for row in np.flatnonzero(np.isin(new.org_pos, delta.changed_positions)).tolist():
                folded = fold(new.texts[row])
                owners[folded] = owners.get(folded, set()) | {
                    index.organisations[int(new.org_pos[row])].id
                }
        return NetworkSnapshot(
            version,
            index,
            calibration,
            numpy_scorer,
            self.dimension,
            _masks=masks,
            _need_owners=owners,
        )

    # --- caches --------------------------------------------------------------------

    def territory_mask(self, target: Place) -> BoolArray:
        """(n_organisations,) bool: organisations working inside the target or on a
        territory containing it; computed once per territory and snapshot."""
        if target.key not in self._masks:
            self._masks[target.key] = (target, territory_mask(self.index, target))
        return self._masks[target.key][1]

    def need_owners(self, text: str) -> set[int]:
        """Ids of the organisations that declared a need with this text, whatever its
        case, accents and punctuation."""
        if self._need_owners is None:
            owners: dict[str, set[int]] = {}
            table = self.index.tables["need"]
            for need, pos in zip(table.texts, table.org_pos.tolist(), strict=True):
                owners.setdefault(fold(need), set()).add(self.index.organisations[pos].id)
            self._need_owners = owners
        return self._need_owners.get(fold(text), set())

    def sharing_mask(self, position: int, level: str) -> BoolArray:
        """(n_organisations,) bool: organisations sharing with the one at `position` a
        territory of `level` or finer (the `within=` filter of suggestions), from
        territory → organisation postings built once per snapshot."""
        if self._postings is None:
            postings: dict[Key, list[int]] = {}
            for pos, org in enumerate(self.index.organisations):
                for key in {k for place in org.places for k in place.ancestors}:
                    postings.setdefault(key, []).append(pos)
            self._postings = {k: np.array(v, dtype=np.int64) for k, v in postings.items()}
        mask = np.zeros(self.index.size, dtype=bool)
        for place in self.index.organisations[position].places:
            for key in place.ancestors:
                if level_at_least_as_fine(key[0], level) and key in self._postings:
                    mask[self._postings[key]] = True
        return mask


def works_on(organisation: OrganisationRecord, target: Place) -> bool:
    """Whether the organisation works inside the target, or on a territory containing it."""
    return any(
        p.within(target.level, target.code) or target.within(p.level, p.code)
        for p in organisation.places
    )


def territory_mask(index: NetworkIndex, target: Place) -> BoolArray:
    """(n_organisations,) bool: organisations working inside the target, or on a territory
    that contains it."""
    return np.array([works_on(o, target) for o in index.organisations], dtype=bool)
