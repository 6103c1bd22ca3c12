"""Writes reach the in-memory index as deltas: on the demo, the index a process updates by
deltas ranks exactly as the one a fresh process builds from the database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.kit.settings import Settings
from api.matching import service
from api.matching.engine import MatchingEngine
from api.matching.repository import bump_version, changes_since, current_version
from api.matching.schemas import PartnerMode, Within
from matcher.index import KINDS
from matcher.text import content_hash
from models import MatchChange, Organisation, Statement
from models.enums import StatementKind, Visibility
from tests.api.test_search import (  # noqa: F401 (a fixture)
    GARDENERS,
    IMPACT_LAB,
    LANDLORD,
    OnDemoNetwork,
    demo_connection,
    org_id,
)

QUERIES = [
    ("jardins partagés avec les habitants", None),
    ("médiation entre voisins", "departement:13"),
    ("mesurer l'impact social", None),
    ("précarité énergétique des ménages", "region:93"),
    ("potager collectif pour les seniors", None),
    # The need the edit adds: its author is left out of the search (need owners, patched).
    ("Mesure de l'impact social de nos actions de proximité", None),
]
NEW_ORGANISATION = {
    "name": "Les Jardins de la Durance",
    "kind": "association",
    "territories": ["departement:13"],
    "statements": [
        {"kind": "competency", "text": "Création et animation de potagers collectifs"},
        {"kind": "competency", "text": "Ateliers de jardinage avec des seniors isolés"},
        {"kind": "need", "text": "Un bailleur qui prête un terrain en pied d'immeuble"},
    ],
}


def _build_counter(matching: MatchingEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Versions that `matching` built from the whole database."""
    full: list[int] = []
    build = matching._full_build

    def counted(session: Session, version: int) -> Any:
        full.append(version)
        return build(session, version)

    monkeypatch.setattr(matching, "_full_build", counted)
    return full


def _edit(session: Session, matching: MatchingEngine, organisation_id: int) -> None:
    """An organisation's statements changed (one replaced, one added, one hidden) and its
    description, as an edit would, then logged."""
    org = session.scalars(
        select(Organisation)
        .where(Organisation.id == organisation_id)
        .options(selectinload(Organisation.statements))
    ).one()
    org.description = (org.description or "") + " Nous animons aussi des jardins partagés."
    first = next(s for s in org.statements if s.kind == StatementKind.competency)
    first.text = "Jardins partagés et compostage collectif en pied d'immeuble"
    first.content_hash = content_hash(first.text)
    need = next(s for s in org.statements if s.kind == StatementKind.need)
    need.visibility = Visibility.coordinator
    text = "Mesure de l'impact social de nos actions de proximité"
    org.statements.append(
        Statement(kind=StatementKind.need, text=text, themes=[], content_hash=content_hash(text))
    )
    session.flush()
    matching.organisation_written(session, org)


def _delete(session: Session, organisation_id: int) -> None:
    session.delete(session.get(Organisation, organisation_id))
    session.flush()
    bump_version(session, [organisation_id])


def _search(session: Session, matching: MatchingEngine) -> list[list[tuple[int, float]]]:
    return [
        [
            (item.organisation.id, item.score)
            for item in service.search(session, matching, q, territory, limit=20).items
        ]
        for q, territory in QUERIES
    ]


def _partners(session: Session, matching: MatchingEngine) -> list[list[tuple[int, float]]]:
    ids = session.scalars(select(Organisation.id).order_by(Organisation.id)).all()
    return [
        [
            (item.organisation.id, item.score)
            for item in service.partners(session, matching, i, mode, within, limit=10).items
        ]
        for i in ids
        for mode, within in (
            (PartnerMode.complementary, Within.any),
            (PartnerMode.peer, Within.departement),
        )
    ]


def _assert_same(a: list[list[tuple[int, float]]], b: list[list[tuple[int, float]]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert [i for i, _ in x] == [i for i, _ in y]
        assert [s for _, s in x] == pytest.approx([s for _, s in y], abs=1e-6)


class TestIndexFollowsWrites(OnDemoNetwork):
    def test_a_delta_updated_index_ranks_as_a_fresh_build(
        self,
        app: FastAPI,
        client: TestClient,
        session: Session,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        matching: MatchingEngine = app.state.matching
        full = _build_counter(matching, monkeypatch)
        # The caches a delta carries over are filled first (territory masks, need owners,
        # postings), so that their patching is what the comparison sees.
        _search(session, matching)
        _partners(session, matching)
        assert len(full) == 1

        created = client.post("/api/v1/organisations", json=NEW_ORGANISATION)
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        # Read your own writes: the next search finds it, from a delta.
        hits = service.search(session, matching, "potagers collectifs", None, limit=10).items
        assert new_id in [h.organisation.id for h in hits]
        assert len(full) == 1

        _edit(session, matching, org_id(session, GARDENERS))
        _delete(session, org_id(session, IMPACT_LAB))
        delta_search = _search(session, matching)
        delta_partners = _partners(session, matching)
        loaded = matching.snapshot(session)
        assert loaded.version == current_version(session)
        assert len(full) == 1  # every version since the first came from a delta

        fresh = MatchingEngine(settings)
        fresh_search = _search(session, fresh)
        fresh_partners = _partners(session, fresh)
        _assert_same(delta_search, fresh_search)
        _assert_same(delta_partners, fresh_partners)
        assert matching.snapshot(session).calibration == fresh.snapshot(session).calibration
        # What the writes changed is seen: the new organisation among the landlord's
        # partners, the edited one's new need excluding it from that need's search.
        landlord = org_id(session, LANDLORD)
        landlord_partners = service.partners(
            session, matching, landlord, PartnerMode.complementary, Within.any, limit=50
        )
        assert new_id in [item.organisation.id for item in landlord_partners.items]
        assert org_id(session, GARDENERS) not in [i for i, _ in delta_search[-1]]

    def test_without_a_refit_the_rows_are_a_fresh_builds(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        matching = MatchingEngine(settings.model_copy(update={"index_refit_share": 1.0}))
        before = matching.snapshot(session)
        gardeners = org_id(session, GARDENERS)
        _edit(session, matching, gardeners)
        created = client.post("/api/v1/organisations", json=NEW_ORGANISATION)
        assert created.status_code == 201, created.text
        after = matching.snapshot(session)
        assert after.index.lexical is before.index.lexical  # the idf of the last fit
        assert after.calibration == before.calibration
        fresh = MatchingEngine(settings).snapshot(session)
        assert [o.id for o in after.index.organisations] == [
            o.id for o in fresh.index.organisations
        ]
        assert after.index.organisations == fresh.index.organisations
        for kind in KINDS:
            a, b = after.index.tables[kind], fresh.index.tables[kind]
            assert a.ids.tolist() == b.ids.tolist()
            assert a.org_pos.tolist() == b.org_pos.tolist()
            assert a.texts == b.texts
            assert (a.counts.tocsr() != b.counts.tocsr()).nnz == 0
        if after.numpy_scorer is not None and fresh.numpy_scorer is not None:
            for kind in KINDS:
                assert (after.numpy_scorer.matrix(kind) == fresh.numpy_scorer.matrix(kind)).all()
        hits = service.search(session, matching, "potagers collectifs", None, limit=10).items
        assert created.json()["id"] in [h.organisation.id for h in hits]


class TestBackgroundRefit(OnDemoNetwork):
    def test_a_large_network_is_answered_at_once_and_refitted_behind(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        """Past `index_background_refit_rows` (here every network), the request after a
        write is answered by the delta with the last fit's statistics; a thread refits and
        the refitted index, the fresh build's, replaces it at the same version."""
        matching = MatchingEngine(settings.model_copy(update={"index_background_refit_rows": 0}))
        before = matching.snapshot(session)
        created = client.post("/api/v1/organisations", json=NEW_ORGANISATION)
        assert created.status_code == 201, created.text
        served = matching.snapshot(session)
        assert served.version > before.version
        assert served.index.lexical is before.index.lexical  # not refitted yet
        assert created.json()["id"] in served.index.org_pos
        thread = matching._refitting
        assert thread is not None
        thread.join(120)
        assert not thread.is_alive()
        refitted = matching.snapshot(session)
        assert refitted is not served
        assert refitted.version == served.version
        assert refitted.index.changed_since_fit == 0
        fresh = MatchingEngine(settings)
        _assert_same(_search(session, matching), _search(session, fresh))
        assert refitted.calibration == fresh.snapshot(session).calibration


class TestChangeLog:
    def test_each_write_names_what_it_changed(self, session: Session) -> None:
        start = current_version(session)
        bump_version(session, [7, 3, 7])
        bump_version(session, [5])
        assert changes_since(session, start, start + 2) == {3, 5, 7}
        assert changes_since(session, start + 1, start + 2) == {5}
        rows = session.execute(
            select(MatchChange.version, MatchChange.organisation_id).where(
                MatchChange.version > start
            )
        ).all()
        assert sorted(rows) == [(start + 1, 3), (start + 1, 7), (start + 2, 5)]

    def test_a_whole_network_change_or_a_gap_means_rebuild(self, session: Session) -> None:
        start = current_version(session)
        bump_version(session, [1])
        bump_version(session, None)
        assert changes_since(session, start, start + 1) == {1}
        assert changes_since(session, start, start + 2) is None
        # A version bumped without logging (an older process, a bulk load by hand).
        from sqlalchemy import update

        from models import MatchState

        session.execute(update(MatchState).values(version=MatchState.version + 1))
        bump_version(session, [2])
        assert changes_since(session, start + 2, start + 4) is None
        assert changes_since(session, start + 3, start + 4) == {2}
