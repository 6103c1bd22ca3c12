"""Writes applied to an index as deltas: the rows a fresh build would have, and with a
refit, exactly the index (and dense scorer) a fresh build would make."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from matcher.delta import Changes, apply_changes
from matcher.dense import NumpyDenseScorer
from matcher.encoders import FloatMatrix
from matcher.index import KINDS, NetworkIndex, OrganisationRecord, StatementRecord
from matcher.territory import make_place
from matcher.text import content_hash

AIX = make_place("commune", "13001", epci="200054807", departement="13", region="93")
SUBJECTS = [
    "jardins partagés en pied d'immeuble",
    "médiation de voisinage",
    "ateliers d'inclusion numérique",
    "précarité énergétique des ménages",
    "maintien à domicile des seniors",
    "chantiers d'auto-réhabilitation",
    "concertation locative",
    "mesure de l'impact social",
]
DIMENSION = 8


def _expand(text: str) -> str:
    """A stand-in thesaurus: the delta must read texts through the same function."""
    return text.replace("seniors", "seniors personnes âgées")


def _network(
    n_orgs: int, seed: int
) -> tuple[list[OrganisationRecord], list[StatementRecord], dict[str, FloatMatrix]]:
    rng = np.random.default_rng(seed)
    orgs = [
        OrganisationRecord(i, f"Organisation {i}", "association", (AIX,), f"Description {i}")
        for i in range(1, n_orgs + 1)
    ]
    statements: list[StatementRecord] = []
    for org in orgs:
        for _ in range(int(rng.integers(0, 4))):
            kind = KINDS[int(rng.integers(2))]
            text = f"{SUBJECTS[int(rng.integers(len(SUBJECTS)))]} {int(rng.integers(5))}"
            statements.append(
                StatementRecord(len(statements) + 1, org.id, kind, text, content_hash(text))
            )
    return orgs, statements, {}


def _vector(text: str) -> FloatMatrix:
    rng = np.random.default_rng(int(content_hash(text)[:8], 16))
    v = rng.normal(size=DIMENSION).astype(np.float32)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def _vectors(
    orgs: Sequence[OrganisationRecord], statements: Sequence[StatementRecord]
) -> tuple[dict[int, FloatMatrix], dict[int, FloatMatrix]]:
    by_statement = {s.id: _vector(s.kind + s.text) for s in statements}
    profiles = {o.id: _vector("profile" + o.description) for o in orgs if o.id % 5}
    return by_statement, profiles


def _write(
    orgs: list[OrganisationRecord], statements: list[StatementRecord]
) -> tuple[list[OrganisationRecord], list[StatementRecord], Changes]:
    """Organisation 3 edited (one statement replaced, one kept under a new id, its
    description changed), 4 deleted, 7 loses its statements, a new organisation with a
    known text and a new one."""
    next_id = max(s.id for s in statements) + 1
    new_org = OrganisationRecord(max(o.id for o in orgs) + 1, "Nouvelle", "company", (AIX,))
    edited = OrganisationRecord(3, "Organisation 3", "association", (AIX,), "Autre chose")
    after_orgs = [edited if o.id == 3 else o for o in orgs if o.id != 4] + [new_org]
    kept = [s for s in statements if s.organisation_id not in (3, 4, 7)]
    fresh = [
        StatementRecord(next_id, 3, "need", "un terrain pour un potager", content_hash("u")),
        StatementRecord(next_id + 1, 3, "competency", SUBJECTS[0], content_hash(SUBJECTS[0])),
        StatementRecord(next_id + 2, new_org.id, "competency", SUBJECTS[4], content_hash("s4")),
        StatementRecord(next_id + 3, new_org.id, "need", "des seniors", content_hash("sen")),
    ]
    after = kept + fresh
    changes = Changes(
        organisation_ids=frozenset({3, 4, 7, new_org.id}),
        organisations=[o for o in after_orgs if o.id in (3, 7, new_org.id)],
        statements=[s for s in after if s.organisation_id in (3, 7, new_org.id)],
    )
    return after_orgs, after, changes


def _assert_same_rows(a: NetworkIndex, b: NetworkIndex) -> None:
    assert [o.id for o in a.organisations] == [o.id for o in b.organisations]
    assert a.organisations == b.organisations
    assert a.org_pos == b.org_pos
    for kind in KINDS:
        x, y = a.tables[kind], b.tables[kind]
        assert x.ids.tolist() == y.ids.tolist()
        assert x.org_pos.tolist() == y.org_pos.tolist()
        assert x.texts == y.texts
        assert x.hashes == y.hashes
        assert (x.counts.tocsr() != y.counts.tocsr()).nnz == 0
        assert x.groups.tolist() == y.groups.tolist()
        assert x.starts.tolist() == y.starts.tolist()
    assert a.profile_tokens == b.profile_tokens
    assert dict(a.vocabulary) == dict(b.vocabulary)  # no word left at a count of zero


class TestIndexDelta:
    def test_a_refitted_delta_is_the_fresh_build(self) -> None:
        orgs, statements, _ = _network(40, seed=1)
        before = NetworkIndex.build("s", orgs, statements, expand=_expand)
        after_orgs, after, changes = _write(orgs, statements)
        delta = apply_changes(before, changes, expand=_expand, refit=True)
        fresh = NetworkIndex.build("s", after_orgs, after, expand=_expand)
        assert delta.refitted
        _assert_same_rows(delta.index, fresh)
        for kind in KINDS:
            x, y = delta.index.tables[kind], fresh.tables[kind]
            assert abs(x.lexical.tocsr() - y.lexical.tocsr()).max() == 0
            queries = fresh.lexical.transform(["jardins partagés", "médiation"])
            np.testing.assert_array_equal(x.lexical_dot(queries), y.lexical_dot(queries))
        assert abs(delta.index.profile_words - fresh.profile_words).max() == 0
        assert abs(delta.index.need_words - fresh.need_words).max() == 0
        query = ["jardins pour des personnes âgées"]
        np.testing.assert_array_equal(
            delta.index.lexical.transform(query).toarray(), fresh.lexical.transform(query).toarray()
        )
        np.testing.assert_array_equal(
            delta.index.profile_word_similarity(query[0]), fresh.profile_word_similarity(query[0])
        )
        assert delta.index.changed_since_fit == 0

    def test_without_refit_rows_are_the_fresh_builds_weighted_with_the_last_fit(self) -> None:
        orgs, statements, _ = _network(40, seed=2)
        before = NetworkIndex.build("s", orgs, statements, expand=_expand)
        after_orgs, after, changes = _write(orgs, statements)
        delta = apply_changes(before, changes, expand=_expand, refit=False)
        fresh = NetworkIndex.build("s", after_orgs, after, expand=_expand)
        assert not delta.refitted
        _assert_same_rows(delta.index, fresh)
        assert delta.index.lexical is before.lexical
        assert delta.index.words is before.words
        for kind in KINDS:
            table, old = delta.index.tables[kind], before.tables[kind]
            expected = before.lexical.weight(table.counts.tocsr())
            assert abs(table.lexical.tocsr() - expected).max() < 1e-12
            queries = before.lexical.transform(["jardins partagés", "médiation"])
            np.testing.assert_allclose(
                table.lexical_dot(queries), (queries @ expected.T).toarray(), atol=1e-12
            )
            rows = np.array([len(table) - 1, 0, 2])
            assert abs(table.lexical[rows] - expected[rows]).max() < 1e-12
            # An unchanged statement keeps its previous row.
            for row, statement_id in enumerate(table.ids.tolist()):
                old_row = int(old.positions([statement_id])[0])
                if old_row >= 0:
                    assert abs(table.lexical[row] - old.lexical[old_row]).max() == 0
        expected_words = before.words.transform_tokens(delta.index.profile_tokens)
        assert abs(delta.index.profile_words - expected_words).max() < 1e-12
        assert delta.index.changed_since_fit > 0

    def test_positions_follow_the_organisations(self) -> None:
        orgs, statements, _ = _network(20, seed=3)
        before = NetworkIndex.build("s", orgs, statements)
        _, _, changes = _write(orgs, statements)
        delta = apply_changes(before, changes, refit=False)
        index = delta.index
        for old_pos, new_pos in enumerate(delta.old_to_new.tolist()):
            old_id = before.organisations[old_pos].id
            if old_id in changes.organisation_ids:
                assert new_pos == -1
            else:
                assert index.organisations[new_pos].id == old_id
        assert sorted(index.organisations[p].id for p in delta.changed_positions) == [3, 7, 21]
        assert 4 not in index.org_pos
        assert index.org_positions([4, 21]).tolist() == [-1, index.size - 1]

    def test_drift_past_the_share_refits(self) -> None:
        orgs, statements, _ = _network(200, seed=4)
        index = NetworkIndex.build("s", orgs, statements)
        refits = []
        for step in range(12):
            org = orgs[step]
            text = f"nouvel énoncé {step}"
            changes = Changes(
                frozenset({org.id}),
                [org],
                [StatementRecord(10_000 + step, org.id, "need", text, content_hash(text))],
            )
            previous = index.changed_since_fit
            delta = apply_changes(index, changes, refit_share=0.02)
            index = delta.index
            refits.append(delta.refitted)
            if not delta.refitted:
                assert index.changed_since_fit > previous
        assert any(refits)
        assert not all(refits)
        assert not refits[0]

    def test_deleting_every_statement_still_gives_an_index(self) -> None:
        orgs, statements, _ = _network(5, seed=5)
        before = NetworkIndex.build("s", orgs, statements)
        changes = Changes(frozenset(o.id for o in orgs), orgs, [])
        delta = apply_changes(before, changes)
        fresh = NetworkIndex.build("s", orgs, [])
        assert delta.refitted
        _assert_same_rows(delta.index, fresh)


class TestScorerDelta:
    @pytest.mark.parametrize("refit", [True, False])
    def test_the_scorer_follows_the_index(self, refit: bool) -> None:
        orgs, statements, _ = _network(60, seed=6)
        before = NetworkIndex.build("s", orgs, statements)
        vectors, profiles = _vectors(orgs, statements)
        options = {
            "exact_below": 10,
            "reduced_dimension": 4,
            "coarse_dimension": 2,
            "coarse_pool": 6,
        }
        scorer = NumpyDenseScorer(before, vectors, profiles, DIMENSION, **options)
        after_orgs, after, changes = _write(orgs, statements)
        delta = apply_changes(before, changes, refit=refit)
        new_vectors, new_profiles = _vectors(changes.organisations, changes.statements)
        updated = scorer.with_changes(delta, new_vectors, new_profiles)
        all_vectors, all_profiles = _vectors(after_orgs, after)
        fresh_index = NetworkIndex.build("s", after_orgs, after)
        fresh = NumpyDenseScorer(fresh_index, all_vectors, all_profiles, DIMENSION, **options)
        queries = np.stack([_vector("q1"), _vector("q2")])
        for kind in KINDS:
            np.testing.assert_array_equal(updated.matrix(kind), fresh.matrix(kind))
            if refit:
                for top_k in (None, 3):  # a search's first pass, and the coarse one
                    np.testing.assert_array_equal(
                        updated.statements(queries, kind, None, top_k),
                        fresh.statements(queries, kind, None, top_k),
                    )
            else:  # the first pass keeps its basis: the top-k may differ, not the vectors
                basis = scorer._reduced[kind][0]
                assert updated._reduced[kind][0] is basis
        ids = [s.id for s in after] + [999_999]
        np.testing.assert_array_equal(updated.statement_vectors(ids), fresh.statement_vectors(ids))
        np.testing.assert_array_equal(
            updated.profiles(queries, None), fresh.profiles(queries, None)
        )
        org_ids = [o.id for o in after_orgs] + [4]
        np.testing.assert_array_equal(
            updated.profile_vectors(org_ids), fresh.profile_vectors(org_ids)
        )
        assert updated.vectors_by_text().keys() == fresh.vectors_by_text().keys()


class TestFirstPass:
    """The numpy scorer's first pass on a large table (here: above 10 statements)."""

    def _scorers(self, pool: int) -> tuple[NumpyDenseScorer, NumpyDenseScorer, FloatMatrix]:
        orgs, statements, _ = _network(60, seed=7)
        index = NetworkIndex.build("s", orgs, statements)
        vectors, profiles = _vectors(orgs, statements)
        approximate = NumpyDenseScorer(
            index,
            vectors,
            profiles,
            DIMENSION,
            exact_below=10,
            reduced_dimension=4,
            coarse_dimension=2,
            coarse_pool=pool,
        )
        exact = NumpyDenseScorer(index, vectors, profiles, DIMENSION, exact_below=10**6)
        queries = np.stack([_vector("q1"), _vector("q2"), _vector("q3")])
        return approximate, exact, queries

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_pool_as_large_as_the_table_gives_the_exact_top_k(self, kind: str) -> None:
        approximate, exact, queries = self._scorers(pool=10_000)
        reference = exact.statements(queries, kind, None)
        got = approximate.statements(queries, kind, None, 5)
        for row in range(len(queries)):
            kept = np.flatnonzero(np.isfinite(got[row]))
            assert len(kept) == 5
            best = np.sort(reference[row])[::-1][:5]
            np.testing.assert_allclose(np.sort(got[row, kept])[::-1], best, rtol=1e-6)
            # Exact cosines where kept, NaN elsewhere.
            np.testing.assert_allclose(got[row, kept], reference[row, kept], rtol=1e-6)

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_narrow_pool_keeps_top_k_exact_cosines_of_its_candidates(self, kind: str) -> None:
        approximate, exact, queries = self._scorers(pool=8)
        reference = exact.statements(queries, kind, None)
        got = approximate.statements(queries, kind, None, 5)
        kept = np.isfinite(got)
        assert (kept.sum(axis=1) == 5).all()
        np.testing.assert_allclose(got[kept], reference[kept], rtol=1e-6)
