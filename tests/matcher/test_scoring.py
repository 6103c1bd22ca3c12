"""The matcher's pure arithmetic: scoring, calibration, ranking metrics, thesaurus, text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from matcher.calibration import Calibration, fit_calibration, fit_from_sample
from matcher.evaluation import (
    Scores,
    evaluate,
    hurried,
    merge_rankings,
    ndcg_at_k,
    partner_judgements,
    recall_at_k,
    reciprocal_rank,
)
from matcher.scoring import (
    best_per_group,
    coverage,
    group_starts,
    harmonic_mean,
    power_mean,
)
from matcher.text import content_hash, fold
from matcher.thesaurus import Thesaurus

# Two of my statements (rows) against five statements of two candidates (columns 0–1 are
# the first candidate's, 2–4 the second's).
SIMILARITY = np.array(
    [
        [0.1, 0.5, 0.2, 0.9, 0.3],
        [0.4, 0.0, 0.8, 0.1, 0.6],
    ]
)
STARTS = np.array([0, 2], dtype=np.int64)


class TestGroups:
    def test_distinct_groups_and_where_each_starts(self) -> None:
        groups, starts = group_starts([0, 0, 1, 1, 1, 3])
        assert groups.tolist() == [0, 1, 3]
        assert starts.tolist() == [0, 2, 5]

    def test_no_columns_means_no_groups(self) -> None:
        groups, starts = group_starts([])
        assert groups.size == 0
        assert starts.size == 0

    def test_unsorted_columns_are_refused(self) -> None:
        with pytest.raises(ValueError, match="sorted"):
            group_starts([0, 1, 0])

    def test_best_similarity_of_each_row_within_each_group(self) -> None:
        best = best_per_group(SIMILARITY, STARTS)
        np.testing.assert_allclose(best, [[0.5, 0.9], [0.4, 0.8]])

    def test_best_per_group_without_columns_is_an_empty_block(self) -> None:
        best = best_per_group(np.zeros((3, 0)), np.zeros(0, dtype=np.int64))
        assert best.shape == (3, 0)


class TestCoverage:
    def test_power_one_is_the_mean_of_each_rows_best(self) -> None:
        best = best_per_group(SIMILARITY, STARTS)
        np.testing.assert_allclose(coverage(best), [0.45, 0.85])

    def test_power_two_is_the_quadratic_mean(self) -> None:
        best = best_per_group(SIMILARITY, STARTS)
        np.testing.assert_allclose(
            coverage(best, power=2.0),
            [math.sqrt((0.5**2 + 0.4**2) / 2), math.sqrt((0.9**2 + 0.8**2) / 2)],
        )

    def test_nothing_to_cover_scores_zero(self) -> None:
        np.testing.assert_array_equal(coverage(np.zeros((0, 2))), [0.0, 0.0])

    def test_higher_power_leans_towards_the_best_answered_row(self) -> None:
        values = np.array([1.0, 0.0])
        assert power_mean(values, 1.0) == pytest.approx(0.5)
        assert power_mean(values, 2.0) == pytest.approx(math.sqrt(0.5))
        assert power_mean(values, 4.0) > power_mean(values, 2.0)

    def test_negative_similarities_count_as_zero(self) -> None:
        assert power_mean(np.array([-0.5, 0.5]), 1.0) == pytest.approx(0.25)

    def test_power_mean_along_an_axis(self) -> None:
        np.testing.assert_allclose(
            power_mean(np.array([[0.2, 1.0], [0.4, 0.0]]), 1.0, axis=0), [0.3, 0.5]
        )


class TestReciprocity:
    def test_harmonic_mean_elementwise_and_zero_when_a_side_is_zero(self) -> None:
        np.testing.assert_allclose(
            harmonic_mean(np.array([0.5, 0.0, 1.0, 0.0]), np.array([0.5, 0.8, 0.25, 0.0])),
            [0.5, 0.0, 0.4, 0.0],
        )


class TestCalibration:
    def test_statement_z_mixes_standardised_dense_and_lexical(self) -> None:
        cal = Calibration()
        # One spread above the dense mean, three above the lexical mean, equal weights.
        z = cal.statement_z(0.17 + 0.12, 0.05 + 3 * 0.06)
        assert float(z) == pytest.approx(0.5 * 1.0 + 0.5 * 3.0)

    def test_statement_z_follows_the_dense_weight(self) -> None:
        dense_only = Calibration(dense_weight=1.0)
        z = dense_only.statement_z([0.17, 0.41], [0.9, 0.0])
        np.testing.assert_allclose(z, [0.0, 2.0])

    def test_profile_z_standardises_against_profile_pairs(self) -> None:
        cal = Calibration(profile_mean=0.3, profile_std=0.1)
        np.testing.assert_allclose(cal.profile_z([0.3, 0.5]), [0.0, 2.0])

    def test_probability_is_one_half_at_the_centre(self) -> None:
        cal = Calibration()
        assert float(cal.probability(cal.centre)) == pytest.approx(0.5)
        assert float(cal.probability(cal.centre + 1.0, centre_shift=1.0)) == pytest.approx(0.5)

    def test_probability_rises_with_z_and_stays_between_zero_and_one(self) -> None:
        p = Calibration().probability(np.linspace(-10.0, 10.0, 41))
        assert np.all(np.diff(p) > 0)
        assert np.all((p > 0) & (p < 1))

    def test_too_few_pairs_keep_the_defaults(self) -> None:
        base = Calibration()
        fitted = fit_calibration(np.full(10, 0.9), np.full(10, 0.9), np.full(10, 0.9))
        assert fitted == base

    def test_constant_pairs_keep_the_defaults(self) -> None:
        fitted = fit_calibration(np.full(200, 0.4), np.full(200, 0.1), np.full(200, 0.5))
        assert fitted == Calibration()

    def test_enough_pairs_give_their_mean_and_spread_and_keep_the_weights(self) -> None:
        rng = np.random.default_rng(0)
        dense = rng.normal(0.3, 0.1, 500)
        lexical = rng.normal(0.1, 0.02, 500)
        profile = rng.normal(0.5, 0.2, 500)
        base = Calibration(dense_weight=0.7, profile_weight=1.5, centre=3.0, slope=2.0)
        fitted = fit_calibration(dense, lexical, profile, base=base)
        assert fitted.dense_mean == pytest.approx(dense.mean())
        assert fitted.dense_std == pytest.approx(dense.std())
        assert fitted.lexical_mean == pytest.approx(lexical.mean())
        assert fitted.lexical_std == pytest.approx(lexical.std())
        assert fitted.profile_mean == pytest.approx(profile.mean())
        assert fitted.profile_std == pytest.approx(profile.std())
        assert (fitted.dense_weight, fitted.profile_weight) == (0.7, 1.5)
        assert (fitted.centre, fitted.slope) == (3.0, 2.0)

    def test_each_kind_of_pair_falls_back_on_its_own(self) -> None:
        rng = np.random.default_rng(1)
        dense = rng.normal(0.3, 0.1, 100)
        fitted = fit_calibration(dense, np.zeros(3), np.zeros(0))
        assert fitted.dense_mean == pytest.approx(dense.mean())
        base = Calibration()
        assert (fitted.lexical_mean, fitted.lexical_std) == (base.lexical_mean, base.lexical_std)
        assert (fitted.profile_mean, fitted.profile_std) == (base.profile_mean, base.profile_std)


def _sample(
    needs: int, competencies: int, seed: int = 0
) -> tuple[np.ndarray, sparse.csr_matrix, list[str]]:
    """Unit vectors where needs lean one way and competencies another (as a role-aware
    encoder embeds queries and passages), and random lexical rows."""
    rng = np.random.default_rng(seed)
    dim = 16
    need_axis, comp_axis = np.eye(dim)[0], np.eye(dim)[1]
    rows = [need_axis * 2.0 + rng.normal(0, 1, dim) for _ in range(needs)]
    rows += [comp_axis * 2.0 + rng.normal(0, 1, dim) for _ in range(competencies)]
    vectors = np.array(rows)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lexical = np.abs(rng.normal(0, 1, (needs + competencies, 30))) * (
        rng.random((needs + competencies, 30)) < 0.2
    )
    lexical /= np.maximum(np.linalg.norm(lexical, axis=1, keepdims=True), 1e-9)
    return vectors, sparse.csr_matrix(lexical), ["need"] * needs + ["competency"] * competencies


class TestCalibrationByPairType:
    def test_need_to_competency_pairs_are_standardised_on_their_own(self) -> None:
        vectors, lexical, kinds = _sample(40, 60)
        fitted = fit_from_sample(vectors, lexical, kinds, np.zeros((0, 16)))
        cross = vectors[:40] @ vectors[40:].T
        assert fitted.dense_mean == pytest.approx(cross.mean())
        assert fitted.dense_std == pytest.approx(cross.std())
        lexical_cross = (lexical[:40] @ lexical[40:].T).toarray()
        assert fitted.lexical_mean == pytest.approx(lexical_cross.mean())

    def test_like_with_like_pairs_have_their_own_scale(self) -> None:
        vectors, lexical, kinds = _sample(40, 60)
        fitted = fit_from_sample(vectors, lexical, kinds, np.zeros((0, 16)))
        needs = vectors[:40] @ vectors[:40].T
        upper = np.triu_indices(40, k=1)
        peer = fitted.for_pair("need", "need")
        assert peer.dense_mean == pytest.approx(needs[upper].mean())
        assert peer.dense_std == pytest.approx(needs[upper].std())
        # Two needs are closer to each other than a need to a competency here.
        assert peer.dense_mean > fitted.dense_mean + 0.15
        assert fitted.for_pair("competency", "competency").dense_mean > fitted.dense_mean + 0.15
        # Weights and the logistic are shared; cross pairs read the calibration itself.
        assert (peer.dense_weight, peer.centre, peer.slope) == (
            fitted.dense_weight,
            fitted.centre,
            fitted.slope,
        )
        assert fitted.for_pair("need", "competency") is fitted
        assert fitted.for_pair("competency", "need") is fitted

    def test_profiles_and_words_are_read_from_the_needs(self) -> None:
        vectors, lexical, kinds = _sample(40, 60)
        profiles = vectors[40:50]  # profiles made of competencies, as they are
        words = np.vstack([np.full((40, 10), 0.1), np.full((60, 10), 0.5)])
        words[:40] += np.linspace(0, 0.05, 10)
        fitted = fit_from_sample(vectors, lexical, kinds, profiles, words)
        need_to_profile = vectors[:40] @ profiles.T
        assert fitted.profile_mean == pytest.approx(need_to_profile.mean())
        assert fitted.words_mean == pytest.approx(words[:40].mean())

    def test_pooled_calibration_is_what_it_was(self) -> None:
        vectors, lexical, kinds = _sample(40, 60)
        pooled = fit_from_sample(vectors, lexical, kinds, vectors[40:50], by_pair_type=False)
        upper = np.triu_indices(100, k=1)
        profile = (vectors @ vectors[40:50].T).ravel()
        expected = fit_calibration(
            (vectors @ vectors.T)[upper],
            (lexical @ lexical.T).toarray()[upper],
            profile[np.abs(profile) > 0],
        )
        assert pooled == expected
        assert pooled.for_pair("need", "need") is pooled

    def test_a_network_without_needs_falls_back_on_the_pooled_pairs(self) -> None:
        vectors, lexical, kinds = _sample(0, 60)
        fitted = fit_from_sample(vectors, lexical, kinds, np.zeros((0, 16)))
        comps = vectors @ vectors.T
        upper = np.triu_indices(60, k=1)
        assert fitted.dense_mean == pytest.approx(comps[upper].mean())
        assert fitted.for_pair("need", "need").dense_mean == pytest.approx(comps[upper].mean())


class TestRankingMetrics:
    def test_ndcg_with_exponential_gain(self) -> None:
        relevant = {"a": 0, "b": 2, "c": 1}
        found = (2**2 - 1) / math.log2(3) + (2**1 - 1) / math.log2(4)
        ideal = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
        assert ndcg_at_k(["a", "b", "c"], relevant) == pytest.approx(found / ideal)

    def test_ideal_ranking_scores_one(self) -> None:
        assert ndcg_at_k(["b", "c", "x"], {"b": 2, "c": 1}) == pytest.approx(1.0)

    def test_ndcg_ignores_what_comes_after_k(self) -> None:
        assert ndcg_at_k(["x", "y", "a"], {"a": 1}, k=2) == 0.0

    def test_ndcg_without_any_relevant_item_is_zero(self) -> None:
        assert ndcg_at_k(["a", "b"], {"a": 0}) == 0.0

    def test_recall_counts_relevant_items_in_the_first_k(self) -> None:
        ranking = ["x", "a", "y", "z", "w", "b"]
        assert recall_at_k(ranking, {"a": 1, "b": 2, "c": 0}, k=5) == pytest.approx(0.5)
        assert recall_at_k(ranking, {"a": 1, "b": 2, "c": 0}, k=6) == pytest.approx(1.0)

    def test_recall_without_relevant_items_is_zero(self) -> None:
        assert recall_at_k(["a"], {"a": 0}) == 0.0

    def test_reciprocal_rank_of_the_first_relevant_item(self) -> None:
        assert reciprocal_rank(["x", "y", "a", "b"], {"a": 1, "b": 3, "x": 0}) == pytest.approx(
            1 / 3
        )
        assert reciprocal_rank(["x", "y"], {"a": 1}) == 0.0

    def test_evaluate_averages_over_queries(self) -> None:
        rankings = [["a", "x"], ["x", "b"]]
        judgements = [{"a": 1}, {"b": 1}]
        scores = evaluate(rankings, judgements)
        assert scores.queries == 2
        assert scores.mrr == pytest.approx((1.0 + 0.5) / 2)
        assert scores.recall5 == pytest.approx(1.0)
        assert scores.ndcg10 == pytest.approx((1.0 + 1 / math.log2(3)) / 2)

    def test_evaluate_nothing_gives_zeros(self) -> None:
        assert evaluate([], []) == Scores(0.0, 0.0, 0.0, 0)

    def test_evaluate_needs_one_ranking_per_judged_query(self) -> None:
        with pytest.raises(ValueError, match="one ranking per judged query"):
            evaluate([["a"]], [])


THESAURUS = Thesaurus(
    name="test",
    acronyms={
        "QPV": "quartier prioritaire de la politique de la ville",
        "ARA": "auto-réhabilitation accompagnée",
    },
    concepts={"jardin partagé": ("potager collectif", "potagers collectifs")},
)


class TestThesaurus:
    def test_acronym_is_spelled_out_after_the_text(self) -> None:
        assert (
            THESAURUS.expand("Animation en QPV")
            == "Animation en QPV (quartier prioritaire de la politique de la ville)"
        )

    def test_expand_reads_acronyms_as_written(self) -> None:
        """Case is the business of `normalise`, which runs first (see test_normalisation)."""
        assert THESAURUS.expand("animation en qpv") == "animation en qpv"
        assert THESAURUS.expand(THESAURUS.normalise("animation en qpv")) == (
            "animation en QPV (quartier prioritaire de la politique de la ville)"
        )

    def test_acronym_inside_a_word_is_left_alone(self) -> None:
        for text in ("aqpvz", "Les SQPVA du centre", "QPVs", "ex-QPV", "ARAignée"):
            assert THESAURUS.expand(text) == text, text

    def test_acronym_between_punctuation_is_a_whole_word(self) -> None:
        assert THESAURUS.annotations("Chantiers (ARA), en QPV.") == [
            "auto-réhabilitation accompagnée",
            "quartier prioritaire de la politique de la ville",
        ]

    def test_concept_variant_appends_its_label_whatever_the_case_and_accents(self) -> None:
        assert THESAURUS.expand("Un potager collectif en bas des tours") == (
            "Un potager collectif en bas des tours (jardin partagé)"
        )
        assert THESAURUS.expand("POTAGERS Collectifs") == "POTAGERS Collectifs (jardin partagé)"

    def test_variant_must_be_whole_words(self) -> None:
        assert THESAURUS.expand("potager collectivement") == "potager collectivement"

    def test_text_is_kept_whole_and_first(self) -> None:
        text = "Potager collectif  en QPV, avec l'ARA !"
        expanded = THESAURUS.expand(text)
        assert expanded.startswith(text + " (")
        assert expanded.endswith(")")

    def test_each_annotation_once(self) -> None:
        assert THESAURUS.annotations("QPV nord et QPV sud") == [
            "quartier prioritaire de la politique de la ville"
        ]

    def test_label_already_in_the_text_is_not_repeated(self) -> None:
        assert THESAURUS.expand("Un jardin partagé") == "Un jardin partagé"

    def test_nothing_recognised_leaves_the_text_unchanged(self) -> None:
        assert THESAURUS.expand("Réparer les vélos") == "Réparer les vélos"

    def test_fingerprint_follows_the_content(self) -> None:
        same = Thesaurus(name="autre nom", acronyms=THESAURUS.acronyms, concepts=THESAURUS.concepts)
        changed = Thesaurus(
            name="test",
            acronyms={**THESAURUS.acronyms, "GUP": "gestion urbaine de proximité"},
            concepts=THESAURUS.concepts,
        )
        assert same.fingerprint == THESAURUS.fingerprint
        assert changed.fingerprint != THESAURUS.fingerprint


class TestText:
    @pytest.mark.parametrize(
        ("raw", "folded"),
        [
            ("Saint-Étienne", "saint etienne"),
            ("  Œuvre d’art !  ", "oeuvre d art"),
            ("Auto-réhabilitation ACCOMPAGNÉE", "auto rehabilitation accompagnee"),
            ("", ""),
        ],
    )
    def test_fold_lowers_strips_accents_and_punctuation(self, raw: str, folded: str) -> None:
        assert fold(raw) == folded

    def test_content_hash_is_stable_under_whitespace_changes(self) -> None:
        reference = content_hash("Animer un jardin partagé")
        assert content_hash("  Animer   un\njardin\tpartagé ") == reference

    def test_content_hash_is_stable_under_unicode_composition(self) -> None:
        composed = "partag\u00e9"
        decomposed = "partage\u0301"
        assert content_hash(composed) == content_hash(decomposed)

    def test_content_hash_differs_for_different_words(self) -> None:
        assert content_hash("Animer un jardin") != content_hash("Animer un jardin partagé")
        assert content_hash("jardin") != content_hash("Jardin")


def test_sparse_row_dot_matches_scipy() -> None:
    from scipy import sparse

    from matcher.scoring import sparse_row_dot

    a = sparse.random(4, 5000, density=0.01, format="csr", random_state=1)
    b = sparse.random(299, 5000, density=0.02, format="csr", random_state=2)
    b = sparse.vstack([b, sparse.csr_matrix((1, 5000))], format="csr")  # an empty row
    expected = (a @ b.T).toarray()
    assert np.allclose(sparse_row_dot(a, b), expected)
    empty = sparse.csr_matrix((2, 5000))
    assert sparse_row_dot(empty, b).shape == (2, 300)


def test_lookup_positions_finds_ids_in_any_order_and_marks_the_missing() -> None:
    from matcher.index import lookup_positions

    keys = np.array([40, 10, 30, 20], dtype=np.int64)
    found = lookup_positions(keys, np.argsort(keys), [10, 20, 99, 40, 5])
    assert found.tolist() == [1, 3, -1, 0, -1]
    assert lookup_positions(
        np.array([], dtype=np.int64), np.array([], dtype=np.int64), [1]
    ).tolist() == [-1]


def test_word_stems_fold_drop_function_words_and_cut_to_six_letters() -> None:
    from matcher.encoders import word_stems

    assert word_stems("Les jardins partagés et le Jardinage, à l'école !") == [
        "jardin",
        "partag",
        "jardin",
        "ecole",
    ]
    assert word_stems("de la et") == []


def test_word_encoder_matches_profiles_sharing_stems() -> None:
    from matcher.encoders import WordEncoder, word_stems

    profiles = ["Création de jardins partagés", "Médiation entre voisins", ""]
    encoder = WordEncoder().fit_tokens([word_stems(p) for p in profiles])
    rows = encoder.transform_tokens([word_stems(p) for p in profiles])
    similarity = (encoder.transform(["un jardinier pour nos potagers"]) @ rows.T).toarray()[0]
    assert similarity[0] > 0
    assert similarity[1] == 0
    assert similarity[2] == 0


class TestPartnerEvaluation:
    def test_gold_partners_answer_any_need_with_their_best_grade(self) -> None:
        queries = [
            {"asker": "a", "relevant": {"x": 1, "y": 2}},
            {"asker": "a", "relevant": {"x": 2}},
            {"asker": None, "relevant": {"z": 2}},
            {"asker": "b", "relevant": {"x": 1}},
        ]
        assert partner_judgements(queries) == {"a": {"x": 2, "y": 2}, "b": {"x": 1}}

    def test_merged_search_keeps_each_item_at_its_best_score(self) -> None:
        merged = merge_rankings([[("x", 0.9), ("y", 0.2)], [("y", 0.95), ("z", 0.1)]], k=2)
        assert merged == ["y", "x"]


class TestHurriedQueries:
    ACRONYMS = {
        "QPV": "quartier prioritaire de la politique de la ville",
        "PV": "procès-verbal",
        "Anah": "agence nationale de l'habitat",
    }

    def test_no_accents_no_capitals_no_final_full_stop(self) -> None:
        assert hurried("Réparer l’Éclairage.", typo_rate=0) == "reparer l'eclairage"

    def test_spelled_out_forms_become_lower_case_acronyms_longest_first(self) -> None:
        text = "Un Quartier prioritaire de la Politique de la Ville et un procès-verbal"
        assert hurried(text, self.ACRONYMS, typo_rate=0) == "un qpv et un pv"
        # A mixed-case spelling ("Anah") is a name, not an acronym people type in a hurry.
        assert hurried("l'agence nationale de l'habitat", self.ACRONYMS, typo_rate=0) == (
            "l'agence nationale de l'habitat"
        )

    def test_a_typo_is_one_edit_inside_a_long_word_and_repeats_on_every_run(self) -> None:
        text = "accompagnement renforcé des locataires vieillissants dans leurs logements"
        typed = hurried(text, typo_rate=1)
        assert typed == hurried(text, typo_rate=1)
        for before, after in zip(hurried(text, typo_rate=0).split(), typed.split(), strict=True):
            if len(before) < 7:
                assert after == before
                continue
            inner = {
                before[:i] + before[i + 1] + before[i] + before[i + 2 :]  # swapped
                for i in range(1, len(before) - 2)
            }
            inner |= {before[:i] + before[i + 1 :] for i in range(1, len(before) - 2)}  # dropped
            inner |= {before[:i] + before[i] + before[i:] for i in range(1, len(before) - 2)}
            assert after in inner, (before, after)
