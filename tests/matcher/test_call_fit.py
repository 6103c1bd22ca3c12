"""Requirement coverage: best competency per organisation and requirement, the eligible
mask, the organisation score and ranking (hand-made similarities, no database)."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.calibration import Calibration
from matcher.call_fit import FIT_ORDER, call_score, rank, requirement_fit
from matcher.index import NetworkIndex, OrganisationRecord, StatementRecord
from matcher.territory import make_place
from matcher.text import content_hash

AIX = make_place("commune", "13001", departement="13", region="93")
TEXTS = {
    1: (1, "Création et animation de jardins partagés avec les habitants"),
    2: (1, "Compostage collectif en pied d'immeuble"),
    3: (2, "Concertation locative et mobilisation des locataires"),
    4: (3, "Médiation de voisinage"),
    5: (3, "Jardins partagés et potagers collectifs"),
}


def network() -> NetworkIndex:
    orgs = [OrganisationRecord(i, f"Organisation {i}", "association", (AIX,)) for i in (1, 2, 3, 4)]
    statements = [
        StatementRecord(sid, org, "competency", text, content_hash(text))
        for sid, (org, text) in TEXTS.items()
    ]
    return NetworkIndex.build("test", orgs, statements)


def dense_for(index: NetworkIndex, by_statement: dict[int, list[float]]) -> np.ndarray:
    """(n_req × n_competencies) cosines from {statement id: [cosine per requirement]}."""
    table = index.tables["competency"]
    n_req = len(next(iter(by_statement.values())))
    out = np.full((n_req, len(table)), 0.1, dtype=np.float32)
    for sid, values in by_statement.items():
        out[:, int(table.positions([sid])[0])] = values
    return out


def test_each_requirement_gets_the_best_competency_of_each_organisation() -> None:
    index = network()
    calibration = Calibration(words_weight=0.0, profile_weight=0.0)
    requirements = ["jardins partagés", "concertation des locataires"]
    dense = dense_for(index, {1: [0.9, 0.1], 2: [0.4, 0.1], 3: [0.1, 0.8], 5: [0.7, 0.1]})
    profiles = np.full((2, index.size), np.nan, dtype=np.float32)
    mask = np.ones(index.size, dtype=bool)
    fit = requirement_fit(index, calibration, requirements, dense, profiles, mask)
    ids = [index.organisations[p].id for p in fit.positions]
    assert ids == [1, 2, 3, 4]
    assert fit.statements[0].tolist()[0] == 1  # organisation 1: its gardens competency
    assert fit.statements[2].tolist()[0] == 5  # organisation 3: not its mediation one
    assert fit.statements[1].tolist()[1] == 3
    assert fit.statements[3].tolist() == [-1, -1]  # no competency at all
    assert fit.similarity[3].tolist() == [0.0, 0.0]
    assert np.allclose(fit.score, call_score(fit.similarity))
    assert min(fit.similarity[0, 0], fit.similarity[2, 0]) > fit.similarity[1, 0]
    assert ((fit.similarity >= 0) & (fit.similarity <= 1)).all()
    order = [ids[i] for i in rank(fit)]
    assert order[-1] == 4


def test_only_the_masked_organisations_are_scored() -> None:
    index = network()
    dense = dense_for(index, {1: [0.9], 5: [0.7]})
    profiles = np.full((1, index.size), np.nan, dtype=np.float32)
    mask = np.zeros(index.size, dtype=bool)
    mask[index.org_pos[3]] = True
    fit = requirement_fit(index, Calibration(), ["jardins partagés"], dense, profiles, mask)
    assert [index.organisations[p].id for p in fit.positions] == [3]
    assert fit.statements.tolist() == [[5]]


def test_a_call_without_requirement_scores_zero() -> None:
    index = network()
    fit = requirement_fit(
        index,
        Calibration(),
        [],
        np.zeros((0, len(index.tables["competency"])), dtype=np.float32),
        np.zeros((0, index.size), dtype=np.float32),
        np.ones(index.size, dtype=bool),
    )
    assert fit.similarity.shape == (4, 0)
    assert fit.score.tolist() == [0.0] * 4
    assert len(rank(fit)) == 4


def test_the_call_score_is_a_power_mean() -> None:
    assert FIT_ORDER == 3
    s = np.array([[0.9, 0.1, 0.2], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    score = call_score(s)
    assert np.allclose(score, np.mean(s**3, axis=1) ** (1 / 3))
    assert np.allclose(score[1:], [0.5, 0.0, 1.0])  # every requirement at s reads s
    assert (score >= s.mean(axis=1) - 1e-12).all()
    assert (score <= s.max(axis=1) + 1e-12).all()
    assert np.allclose(call_score(s, order=1), s.mean(axis=1))


def test_a_specialist_comes_before_an_organisation_that_half_matches_everything() -> None:
    specialist = [0.97, 0.05, 0.05]  # answers one requirement very well
    broad = [0.6, 0.6, 0.6]  # half-matches every requirement
    score = call_score(np.array([specialist, broad]))
    assert score[0] > score[1]
    assert np.mean(specialist) < np.mean(broad)  # what the plain mean ranked the other way


def test_the_call_score_of_no_requirement_and_bad_input() -> None:
    assert call_score(np.zeros((3, 0))).tolist() == [0.0, 0.0, 0.0]
    assert call_score(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        call_score(np.zeros(3))
    with pytest.raises(ValueError, match="order"):
        call_score(np.zeros((1, 1)), order=0)
