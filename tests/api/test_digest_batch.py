"""The batched digest builder (every open call scored once against every organisation,
`api.calls.fit_batch`) selects exactly what the per-organisation path
(`fit.organisation_calls` for each) selects, on the demo network with the real model:
the same calls, scores, coverage, statuses (new, changed, reminder, interested),
dismissals left out, order and suggested partners; and the requirements' query vectors a
run stores, read back instead of encoded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from api.calls import fit, requirement_queries
from api.calls.fit_batch import OpenCallsFit
from api.calls.requirement_queries import requirement_vectors, store_requirement_queries
from api.digest.content import ItemStatus
from api.digest.selection import DigestBuilder
from api.digest.weeks import IsoWeek, current_week, today_in_paris
from api.kit.settings import Settings
from api.matching import engine as matching_engine
from api.matching.engine import MatchingEngine
from matcher.encoders import QUERY
from models import CallChange, CallInterest, Organisation
from models.digest import CallDismissal, DigestDelivery, DigestSubscription
from models.enums import DeliveryStatus, MatchLevel
from tests.api.test_call_fit import make_call
from tests.api.test_search import OnDemoNetwork, demo_connection, org_id  # noqa: F401
from tests.fakes import FakeEncoder

LANDLORD = "arc-touloubre-habitat"


class TestRequirementQueries:
    def test_a_run_stores_the_open_calls_requirements_read_as_queries_once(
        self,
        connection: Connection,
        session: Session,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        fake = FakeEncoder("fake-aware", 16, role_aware=True)
        monkeypatch.setattr(matching_engine, "dense_encoder", lambda model: fake)
        monkeypatch.setattr(requirement_queries, "_VECTORS", {})
        matching = MatchingEngine(settings.model_copy(update={"thesaurus": ""}))
        texts = ["Un bailleur qui met le foncier à disposition", "Une association d'animation"]
        make_call(session, requirements=texts, deadline=date.today() + timedelta(days=30))
        make_call(session, title="Appel clos", requirements=["Un suivi"], deadline=date(2020, 1, 1))
        factory = sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        fake.calls.clear()
        assert store_requirement_queries(factory, factory, matching, date.today()) == 2
        assert [role for role, _ in fake.calls] == [QUERY]  # read as the fit reads them
        assert store_requirement_queries(factory, factory, matching, date.today()) == 0
        # A new process reads them instead of encoding them, the same vectors.
        fake.calls.clear()
        expanded = [matching.expand(t) for t in texts]
        stored = requirement_vectors(matching, expanded, session=session, texts=texts)
        assert fake.calls == []
        encoded = matching.encode(texts, role=QUERY)
        assert np.allclose(stored, encoded, atol=1e-6)


@pytest.mark.slow
class TestBatchedSelection(OnDemoNetwork):
    def test_every_organisation_gets_the_same_calls_scores_and_coverage(
        self, app: FastAPI, session: Session
    ) -> None:
        matching = app.state.matching
        today = today_in_paris()
        batch = OpenCallsFit(session, matching, today)
        organisations = session.scalars(
            select(Organisation.id).where(Organisation.archived_at.is_(None))
        ).all()
        compared = 0
        for organisation_id in organisations:
            page = fit.organisation_calls(
                session, matching, organisation_id, limit=10_000, today=today
            )
            scores = batch.scores(organisation_id)
            assert scores is not None
            assert [(s.call_id, s.score, s.days_left) for s in scores] == [
                (i.call.id, i.score, i.days_left) for i in page.items
            ]
            for item in page.items:
                assert batch.coverage(organisation_id, item.call.id) == item.coverage
                compared += 1
        assert compared > len(organisations)  # calls for most organisations
        # Suggested partners: the API's call page, up to the last bits of the cosines (the
        # batch multiplies whole matrices, a page one call's vectors; on PostgreSQL a page
        # reads pgvector's own cosines), which may move a rounded figure in its fourth
        # decimal: the same organisations, in the same order, with the same statements.
        for call_id in batch.calls:
            alone = fit.call_organisations(session, matching, call_id, limit=5, offset=0)
            many = batch.organisations(session, call_id, limit=5)
            assert many is not None
            assert (many.total, many.requirements) == (alone.total, alone.requirements)
            assert [(i.organisation.id, i.covered) for i in many.items] == [
                (i.organisation.id, i.covered) for i in alone.items
            ]
            for mine, theirs in zip(many.items, alone.items, strict=True):
                assert mine.score == pytest.approx(theirs.score, abs=2e-4)
                for a, b in zip(mine.coverage, theirs.coverage, strict=True):
                    assert (a.requirement_id, a.statement, a.covered) == (
                        b.requirement_id,
                        b.statement,
                        b.covered,
                    )
                    assert a.similarity == pytest.approx(b.similarity, abs=2e-4)
                    assert a.statement_similarity == pytest.approx(b.statement_similarity, abs=2e-4)

    def test_the_batched_builder_selects_what_each_organisation_alone_selects(
        self, app: FastAPI, session: Session, settings: Settings
    ) -> None:
        matching = app.state.matching
        week = current_week()
        landlord = org_id(session, LANDLORD)
        page = fit.organisation_calls(session, matching, landlord, limit=100)
        assert len(page.items) >= 3
        best, second, weakest = page.items[0], page.items[1], page.items[-1]
        # History: last week's digest held the best two calls; one changed since.
        sub = session.scalar(
            select(DigestSubscription).where(DigestSubscription.organisation_id == landlord)
        )
        assert sub is not None
        sent_at = datetime.now(UTC) - timedelta(days=7)
        session.add(
            DigestDelivery(
                subscription_id=sub.id,
                iso_week=str(IsoWeek.of(week.monday - timedelta(days=7))),
                status=DeliveryStatus.sent,
                sent_at=sent_at,
                items=[
                    {"call_id": best.call.id, "status": "new"},
                    {"call_id": second.call.id, "status": "new"},
                ],
            )
        )
        session.add(
            CallChange(
                call_id=second.call.id,
                changed_at=sent_at + timedelta(days=1),
                field="title",
                old="Ancien titre",
                new=second.call.title,
            )
        )
        # The weakest call marked « intéressé », the third dismissed; a strict level elsewhere.
        session.add(CallInterest(call_id=weakest.call.id, organisation_id=landlord))
        if len(page.items) > 3:
            session.add(CallDismissal(organisation_id=landlord, call_id=page.items[2].call.id))
        others = session.scalars(
            select(DigestSubscription).where(DigestSubscription.organisation_id != landlord)
        ).all()
        others[0].min_level = MatchLevel.strong
        others[1].min_level = MatchLevel.weak
        session.flush()

        alone = DigestBuilder(settings, matching)
        batched = DigestBuilder(settings, matching, batched=True)
        subscriptions = session.scalars(
            select(DigestSubscription).order_by(DigestSubscription.id)
        ).all()
        pairs = [(alone(session, s, week), batched(session, s, week)) for s in subscriptions]
        assert sum(a is not None for a, _ in pairs) >= len(subscriptions) // 2
        for one, many in pairs:
            assert one == many
        mine = next(a for a, _ in pairs if a is not None and a.organisation_id == landlord)
        statuses = {i.call_id: i.status for i in mine.items}
        assert statuses.get(weakest.call.id) == ItemStatus.interested
        assert statuses.get(second.call.id) == ItemStatus.changed
        assert any(i.partners for i in mine.items)
