"""Search and partner suggestions on a tiny hand-built network whose similarities we set.

Each statement gets a hand-made unit vector, so the dense cosine between two statements is
known; the calibration used here looks at the dense side only (dense_weight 1) and ignores
profiles, so lexical overlap between the placeholder texts cannot move a score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from matcher.calibration import Calibration
from matcher.dense import NumpyDenseScorer
from matcher.encoders import FloatMatrix
from matcher.index import NetworkIndex, OrganisationRecord, StatementRecord
from matcher.partners import Suggestion, suggest_partners
from matcher.search import search_organisations
from matcher.territory import Place, make_place

DIMENSION = 4
# Cosine 0 → z 0 → p ≈ 0.0003; cosine 0.5 → p 0.5; cosine 1 → p ≈ 0.9997.
CALIBRATION = Calibration(
    dense_mean=0.0, dense_std=0.25, dense_weight=1.0, profile_weight=0.0, centre=2.0, slope=4.0
)

AIX = make_place("commune", "13001", epci="200054807", departement="13", region="93")
MARSEILLE = make_place("commune", "13055", epci="200054807", departement="13", region="93")
ARLES = make_place("commune", "13004", epci="241300417", departement="13", region="93")
NICE = make_place("commune", "06088", epci="200030195", departement="06", region="93")
AJACCIO = make_place("commune", "2A004", epci="242010056", departement="2A", region="94")


def unit(*components: float) -> FloatMatrix:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[: len(components)] = components
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


def at_cosine(cosine: float) -> FloatMatrix:
    """A unit vector whose cosine with GARDENS is `cosine`."""
    return unit(cosine, math.sqrt(1.0 - cosine**2))


GARDENS = unit(1.0)  # animating shared gardens
PREMISES = unit(0.0, 1.0)  # premises for associations
DEBT = unit(0.0, 0.0, 1.0)  # tenants in arrears
IMPACT = unit(0.0, 0.0, 0.0, 1.0)  # measuring social impact


@dataclass
class Org:
    id: int
    name: str
    kind: str = "association"
    places: tuple[Place, ...] = (AIX,)
    competencies: Sequence[FloatMatrix] = ()
    needs: Sequence[FloatMatrix] = ()


@dataclass
class Network:
    index: NetworkIndex
    scorer: NumpyDenseScorer
    texts: dict[int, str] = field(default_factory=dict)  # statement id -> text

    def statement_id(self, text: str) -> int:
        return next(i for i, t in self.texts.items() if t == text)


def build_network(orgs: Sequence[Org]) -> Network:
    records = [OrganisationRecord(o.id, o.name, o.kind, o.places) for o in orgs]
    statements: list[StatementRecord] = []
    vectors: dict[int, FloatMatrix] = {}
    for org in orgs:
        for kind, items in (("competency", org.competencies), ("need", org.needs)):
            for n, vector in enumerate(items, start=1):
                statement_id = len(statements) + 1
                text = f"{org.name} {kind} {n}"
                statements.append(StatementRecord(statement_id, org.id, kind, text))
                vectors[statement_id] = vector
    index = NetworkIndex.build("test-space", records, statements)
    scorer = NumpyDenseScorer(index, vectors, {}, DIMENSION)
    return Network(index, scorer, {s.id: s.text for s in statements})


def suggest(network: Network, organisation_id: int, **options: Any) -> list[Suggestion]:
    """What the API does: my statements' vectors against every statement of the other kind."""
    mode = str(options.get("mode", "complementary"))
    kinds = (
        [("need", "competency"), ("competency", "need")]
        if mode == "complementary"
        else [("need", "need"), ("competency", "competency")]
    )
    me = network.index.org_pos[organisation_id]
    dense = {}
    for my_kind, their_kind in kinds:
        table = network.index.tables[my_kind]
        mine = [int(i) for i, pos in zip(table.ids, table.org_pos, strict=True) if pos == me]
        vectors = network.scorer.statement_vectors(mine)
        dense[(my_kind, their_kind)] = network.scorer.statements(vectors, their_kind, None)
    return suggest_partners(
        network.index,
        organisation_id,
        dense,
        CALIBRATION,
        **options,
    )


def ids(suggestions: Sequence[Suggestion]) -> list[int]:
    return [s.organisation_id for s in suggestions]


LANDLORD = Org(1, "Bailleur", kind="landlord", competencies=[PREMISES], needs=[GARDENS])
GARDENERS = Org(2, "Jardiniers", competencies=[GARDENS], needs=[PREMISES])
HALF_GARDENERS = Org(3, "Potagers", competencies=[at_cosine(0.6)], needs=[IMPACT])
COUNSELLORS = Org(4, "Conseil budget", competencies=[DEBT], needs=[IMPACT])


class TestPartnerSuggestions:
    def test_best_partner_covers_my_need_and_i_cover_theirs(self) -> None:
        network = build_network([LANDLORD, GARDENERS, HALF_GARDENERS, COUNSELLORS])
        suggestions = suggest(network, LANDLORD.id)
        assert ids(suggestions)[0] == GARDENERS.id
        best = suggestions[0]
        assert best.scores["they_cover_me"] > 0.99
        assert best.scores["i_cover_them"] > 0.99
        assert best.scores["reciprocal"] > 0.99
        assert ids(suggestions).index(HALF_GARDENERS.id) < ids(suggestions).index(COUNSELLORS.id)

    def test_top_k_scoring_ranks_only_the_organisations_it_reached(self) -> None:
        """A large network is scored by top-k: entries left NaN belong to organisations no
        statement of mine came close to; they are not suggested, and the others keep the
        scores the exact computation gives them."""
        network = build_network([LANDLORD, GARDENERS, HALF_GARDENERS, COUNSELLORS])
        exact = suggest(network, LANDLORD.id)
        me = network.index.org_pos[LANDLORD.id]
        dense = {}
        for my_kind, their_kind in (("need", "competency"), ("competency", "need")):
            table = network.index.tables[my_kind]
            mine = [int(i) for i, pos in zip(table.ids, table.org_pos, strict=True) if pos == me]
            sims = network.scorer.statements(
                network.scorer.statement_vectors(mine), their_kind, None
            ).copy()
            theirs = network.index.tables[their_kind]
            sims[:, theirs.org_pos == network.index.org_pos[COUNSELLORS.id]] = np.nan
            dense[(my_kind, their_kind)] = sims
        partial = suggest_partners(network.index, LANDLORD.id, dense, CALIBRATION)
        assert COUNSELLORS.id not in ids(partial)
        assert ids(partial) == [i for i in ids(exact) if i != COUNSELLORS.id]
        by_id = {s.organisation_id: s.score for s in exact}
        for suggestion in partial:
            assert suggestion.score == pytest.approx(by_id[suggestion.organisation_id])

    def test_organisation_is_never_suggested_to_itself(self) -> None:
        # Its own competency answers its own need exactly: the perfect match is itself.
        self_sufficient = Org(
            1, "Autonome", kind="landlord", competencies=[GARDENS], needs=[GARDENS]
        )
        network = build_network([self_sufficient, GARDENERS, HALF_GARDENERS])
        suggestions = suggest(network, self_sufficient.id)
        assert self_sufficient.id not in ids(suggestions)
        assert ids(suggestions)[0] == GARDENERS.id

    def test_dismissed_organisations_never_come_back(self) -> None:
        network = build_network([LANDLORD, GARDENERS, HALF_GARDENERS, COUNSELLORS])
        suggestions = suggest(network, LANDLORD.id, exclude={GARDENERS.id, 999})
        assert GARDENERS.id not in ids(suggestions)
        assert HALF_GARDENERS.id in ids(suggestions)
        for limit in (1, 10):
            assert GARDENERS.id not in ids(
                suggest(network, LANDLORD.id, exclude=[GARDENERS.id], limit=limit)
            )

    def test_landlord_without_needs_still_gets_suggestions(self) -> None:
        landlord = Org(1, "Bailleur sans besoin", kind="landlord", competencies=[PREMISES])
        wants_premises = Org(2, "Cherche un local", competencies=[IMPACT], needs=[PREMISES])
        network = build_network([landlord, wants_premises])
        suggestions = suggest(network, landlord.id)
        assert ids(suggestions) == [wants_premises.id]
        only = suggestions[0]
        assert only.scores["they_cover_me"] == 0.0
        assert only.scores["i_cover_them"] > 0.99
        assert only.score > 0.99
        assert {r.direction for r in only.reasons} == {"i_cover_them"}

    def test_partner_without_needs_is_suggested_for_the_need_it_covers(self) -> None:
        no_needs = Org(2, "Jardiniers sans besoin", competencies=[GARDENS])
        network = build_network([LANDLORD, no_needs])
        suggestions = suggest(network, LANDLORD.id)
        assert ids(suggestions) == [no_needs.id]
        assert suggestions[0].score > 0.99

    def test_nothing_in_common_suggests_nobody_relevant(self) -> None:
        network = build_network([LANDLORD, COUNSELLORS])
        for suggestion in suggest(network, LANDLORD.id):
            assert suggestion.score < 0.01

    def test_reasons_carry_the_statement_pairs_in_both_directions(self) -> None:
        network = build_network([LANDLORD, GARDENERS])
        (suggestion,) = suggest(network, LANDLORD.id)
        by_direction = {r.direction: r for r in suggestion.reasons}
        assert set(by_direction) == {"they_cover_me", "i_cover_them"}
        they_cover_me = by_direction["they_cover_me"]
        assert they_cover_me.mine == "Bailleur need 1"
        assert they_cover_me.theirs == "Jardiniers competency 1"
        assert they_cover_me.mine_id == network.statement_id("Bailleur need 1")
        assert they_cover_me.theirs_id == network.statement_id("Jardiniers competency 1")
        i_cover_them = by_direction["i_cover_them"]
        assert i_cover_them.mine == "Bailleur competency 1"
        assert i_cover_them.theirs == "Jardiniers need 1"
        assert they_cover_me.similarity > 0.99
        assert i_cover_them.similarity > 0.99

    def test_near_tie_for_one_need_comes_before_a_distant_answer_to_another(self) -> None:
        """Needs differ in scale: when many organisations half-answer my gardens need, its
        second answer, far behind the best, must not outrank the one answering my impact
        need almost as well as the best answer to it (each need on its own scale)."""
        near_impact = unit(0.0, 0.0, math.sqrt(1.0 - 0.78**2), 0.78)  # cosine 0.78 to IMPACT
        landlord = Org(1, "Bailleur", kind="landlord", needs=[GARDENS, IMPACT])
        gardeners = Org(2, "Jardiniers", competencies=[GARDENS])
        second_gardeners = Org(3, "Jardins pédagogiques", competencies=[at_cosine(0.8)])
        half = [Org(10 + n, f"Nature {n}", competencies=[at_cosine(0.7)]) for n in range(4)]
        impact = Org(4, "Mesure d'impact", competencies=[IMPACT])
        impact_lab = Org(5, "Laboratoire", competencies=[near_impact])
        network = build_network([landlord, gardeners, second_gardeners, *half, impact, impact_lab])
        suggestions = suggest(network, landlord.id)
        ranked = ids(suggestions)
        assert set(ranked[:3]) == {gardeners.id, impact.id, impact_lab.id}, ranked
        assert ranked.index(impact_lab.id) < ranked.index(second_gardeners.id)
        # The score says how well each answers, not where the merge of my needs put it.
        by_id = {s.organisation_id: s.score for s in suggestions}
        assert by_id[gardeners.id] == pytest.approx(by_id[impact.id])
        assert by_id[second_gardeners.id] > by_id[impact_lab.id]

    def test_reasons_come_strongest_first(self) -> None:
        landlord = Org(1, "Bailleur", kind="landlord", needs=[GARDENS, DEBT])
        partner = Org(2, "Partenaire", competencies=[at_cosine(0.6), DEBT])
        network = build_network([landlord, partner])
        (suggestion,) = suggest(network, landlord.id)
        # Each of my needs paired with the competency answering it best, the best pair first.
        assert [(r.mine, r.theirs) for r in suggestion.reasons] == [
            ("Bailleur need 2", "Partenaire competency 2"),
            ("Bailleur need 1", "Partenaire competency 1"),
        ]
        assert suggestion.reasons[0].similarity > 0.99
        assert 0.5 < suggestion.reasons[1].similarity < 0.9

    def test_peer_mode_scores_shared_needs_and_competencies(self) -> None:
        landlord = Org(1, "Bailleur", kind="landlord", competencies=[DEBT], needs=[GARDENS])
        peer = Org(2, "Autre bailleur", kind="landlord", competencies=[DEBT], needs=[GARDENS])
        network = build_network([landlord, peer, GARDENERS])
        suggestions = suggest(network, landlord.id, mode="peer")
        assert ids(suggestions)[0] == peer.id
        assert set(suggestions[0].scores) == {"shared_need", "shared_competency"}
        assert {r.direction for r in suggestions[0].reasons} == {
            "shared_need",
            "shared_competency",
        }


class TestTerritory:
    def _network(self) -> Network:
        def gardeners(org_id: int, name: str, place: Place) -> Org:
            return Org(org_id, name, places=(place,), competencies=[GARDENS], needs=[PREMISES])

        return build_network(
            [
                LANDLORD,  # Aix
                gardeners(2, "Jardiniers de Marseille", MARSEILLE),  # same EPCI
                gardeners(3, "Jardiniers d'Arles", ARLES),  # same département
                gardeners(4, "Jardiniers de Nice", NICE),  # same région only
                gardeners(5, "Jardiniers d'Ajaccio", AJACCIO),  # nothing shared
                gardeners(6, "Jardiniers d'Aix", AIX),  # same commune
            ]
        )

    def test_within_departement_drops_partners_sharing_only_the_region(self) -> None:
        suggestions = suggest(self._network(), LANDLORD.id, within="departement")
        assert set(ids(suggestions)) == {2, 3, 6}
        assert {s.shared_territory for s in suggestions} == {
            ("commune", "13001"),
            ("epci", "200054807"),
            ("departement", "13"),
        }

    def test_within_commune_keeps_only_partners_on_the_same_commune(self) -> None:
        suggestions = suggest(self._network(), LANDLORD.id, within="commune")
        assert ids(suggestions) == [6]
        assert suggestions[0].shared_territory == ("commune", "13001")

    def test_without_filter_everyone_comes_closest_first(self) -> None:
        suggestions = suggest(self._network(), LANDLORD.id)
        # Equal matches: the shared territory decides, and sharing nothing comes last.
        assert ids(suggestions) == [6, 2, 3, 4, 5]
        assert suggestions[3].shared_territory == ("region", "93")
        assert suggestions[4].shared_territory is None

    def test_territory_weight_can_be_turned_off(self) -> None:
        suggestions = suggest(self._network(), LANDLORD.id, territory_weight=False)
        assert len({s.score for s in suggestions}) == 1
        # Ties break on the organisation's position, whatever the territory.
        assert ids(suggestions) == [2, 3, 4, 5, 6]

    def test_organisation_mask_restricts_candidates(self) -> None:
        network = self._network()
        mask = np.array([o.id in {1, 3, 4} for o in network.index.organisations])
        assert ids(suggest(network, LANDLORD.id, org_mask=mask)) == [3, 4]


def search(network: Network, query: FloatMatrix, **options: Any) -> list[tuple[int, float]]:
    queries = query.reshape(1, -1)
    hits = search_organisations(
        network.index,
        queries,
        "requête",
        network.scorer.statements(queries, "competency", None),
        network.scorer.profiles(queries, None),
        CALIBRATION,
        **options,
    )
    return [(h.organisation_id, h.score) for h in hits]


class TestSearch:
    def _network(self) -> Network:
        return build_network(
            [
                Org(1, "Jardiniers", competencies=[DEBT, GARDENS]),
                Org(2, "Potagers", competencies=[at_cosine(0.45)]),
                Org(3, "Vaguement", competencies=[at_cosine(0.3), at_cosine(0.2)]),
                Org(4, "Rien à voir", competencies=[IMPACT], needs=[GARDENS]),
            ]
        )

    def test_organisations_come_by_their_best_competency(self) -> None:
        hits = search(self._network(), GARDENS)
        assert [org for org, _ in hits] == [1, 2, 3, 4]
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] > 0.99

    def test_needs_are_not_searched(self) -> None:
        hits = dict(search(self._network(), GARDENS))
        assert hits[4] < 0.01

    def test_matched_statements_come_best_first(self) -> None:
        network = self._network()
        queries = GARDENS.reshape(1, -1)
        hits = search_organisations(
            network.index,
            queries,
            "requête",
            network.scorer.statements(queries, "competency", None),
            network.scorer.profiles(queries, None),
            CALIBRATION,
        )
        first = hits[0].statements
        assert [s.text for s in first] == ["Jardiniers competency 2", "Jardiniers competency 1"]
        assert first[0].similarity == pytest.approx(1.0, abs=1e-6)
        assert first[1].similarity == pytest.approx(0.0, abs=1e-6)

    def test_relative_cut_drops_weak_hits_after_a_strong_one(self) -> None:
        network = self._network()
        everything = dict(search(network, GARDENS))
        assert 0.1 * everything[1] < everything[2]  # Potagers: half-way there
        assert everything[3] < 0.1 * everything[1]  # Vaguement: only a hint
        assert [org for org, _ in search(network, GARDENS, relative_cut=0.1)] == [1, 2]

    def test_relative_cut_keeps_everything_when_no_hit_is_strong(self) -> None:
        network = build_network(
            [
                Org(1, "Potagers", competencies=[at_cosine(0.45)], needs=[IMPACT]),
                Org(2, "Vaguement", competencies=[at_cosine(0.3)]),
            ]
        )
        assert [org for org, _ in search(network, GARDENS, relative_cut=0.1)] == [1, 2]

    def test_min_score_drops_hits_below_it(self) -> None:
        hits = search(self._network(), GARDENS, min_score=0.2)
        assert [org for org, _ in hits] == [1, 2]

    def test_limit_and_exclude(self) -> None:
        network = self._network()
        assert [org for org, _ in search(network, GARDENS, limit=2)] == [1, 2]
        assert [org for org, _ in search(network, GARDENS, exclude={1}, limit=2)] == [2, 3]

    def test_organisation_mask_keeps_only_those_organisations(self) -> None:
        network = self._network()
        mask = np.array([o.id in {2, 3} for o in network.index.organisations])
        assert [org for org, _ in search(network, GARDENS, org_mask=mask)] == [2, 3]


# A kind with no statement at all (nobody declared a need yet) must not break the index.
class TestSparseNetworks:
    def test_network_where_nobody_declared_a_need_can_be_searched(self) -> None:
        network = build_network([Org(1, "Jardiniers", competencies=[GARDENS])])
        assert [org for org, _ in search(network, GARDENS)] == [1]

    def test_network_without_competencies_finds_nothing(self) -> None:
        network = build_network([Org(1, "Que des besoins", needs=[GARDENS])])
        assert search(network, GARDENS) == []

    def test_empty_network_finds_nothing(self) -> None:
        network = build_network([])
        assert search(network, GARDENS) == []

    def test_first_organisation_without_needs_gets_no_suggestion(self) -> None:
        network = build_network([Org(1, "Seul", competencies=[GARDENS])])
        assert suggest(network, 1) == []


class TestRebuild:
    """After a write the index is rebuilt from the previous one, reusing the n-gram counts
    of unchanged texts: the result must be the index a fresh build gives."""

    ORGS = [OrganisationRecord(i, f"Organisation {i}", "association", (AIX,)) for i in (1, 2, 3)]

    def _statement(self, id_: int, org: int, kind: str, text: str) -> StatementRecord:
        from matcher.text import content_hash

        return StatementRecord(id_, org, kind, text, content_hash(text))

    def test_rebuild_from_the_previous_index_equals_a_fresh_build(self) -> None:
        before = [
            self._statement(1, 1, "competency", "Animation de jardins partagés"),
            self._statement(2, 1, "need", "Un local pour les outils"),
            self._statement(3, 2, "competency", "Médiation entre voisins"),
            self._statement(4, 3, "competency", "Ateliers de réparation de vélos"),
        ]
        after = [
            before[0],
            self._statement(2, 1, "need", "Un terrain pour un nouveau potager"),  # changed
            before[3],  # organisation 2's statement removed
            self._statement(5, 2, "need", "Animation de jardins partagés"),  # known text
            self._statement(6, 3, "competency", "Prêt de vélos aux étudiants"),  # new
        ]
        previous = NetworkIndex.build("s", self.ORGS, before)
        rebuilt = NetworkIndex.build("s", self.ORGS, after, previous=previous)
        fresh = NetworkIndex.build("s", self.ORGS, after)
        for kind in ("competency", "need"):
            a, b = rebuilt.tables[kind], fresh.tables[kind]
            assert a.ids.tolist() == b.ids.tolist()
            assert a.texts == b.texts
            assert (a.counts.tocsr() != b.counts.tocsr()).nnz == 0
            assert np.allclose(a.lexical.toarray(), b.lexical.toarray())
        query = ["jardin partagé"]
        assert np.allclose(
            rebuilt.lexical.transform(query).toarray(), fresh.lexical.transform(query).toarray()
        )

    def test_needs_read_against_profiles_at_build_as_each_would_be_alone(self) -> None:
        statements = [
            self._statement(1, 1, "competency", "Animation de jardins partagés"),
            self._statement(2, 1, "need", "Un local pour les outils du jardin"),
            self._statement(3, 2, "competency", "Prêt d'outils de jardinage"),
            self._statement(4, 3, "need", "Des jardiniers pour un potager collectif"),
        ]
        index = NetworkIndex.build("s", self.ORGS, statements)
        table = index.tables["need"]
        rows = np.arange(len(table))
        expected = np.stack([index.profile_word_similarity(table.texts[r]) for r in rows])
        np.testing.assert_allclose(index.need_profile_words(rows), expected)
        assert index.need_profile_words(rows[:0]).shape == (0, index.size)
