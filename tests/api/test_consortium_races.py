"""Two coordinators deciding the same consortium at once, against the real app behind
uvicorn on 127.0.0.1 (committed transactions on several connections): one wins, the
other gets 409, and the audit shows one decision. On PostgreSQL the loser's UPDATE waits
for the winner's row lock, then matches no row of its version (StaleDataError → 409); on
SQLite writers queue at BEGIN IMMEDIATE and the loser reads the new version (409)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.consortia.composition import store_consortium
from models import AuditEvent, ConsortiumReview
from models.enums import AccountRole
from tests.api.servers import Server, at_once
from tests.conftest import bearer
from tests.consortia import FakeFit, make_call
from tests.factories import make_organisation


@pytest.mark.slow
@pytest.mark.parametrize("rounds", [3])
def test_two_coordinators_deciding_at_once_one_wins(server: Server, rounds: int) -> None:
    engine = server.app.state.engine
    with Session(engine) as session, session.begin():
        lead = make_organisation(session, name="Bailleur des courses").id
        partner = make_organisation(session, name="Association des courses", kind="association").id
        call = make_call(session, title="Appel disputé")
        ids = [
            store_consortium(session, call, [lead, partner], lead, None, fit=FakeFit()).id
            for _ in range(rounds)
        ]
        coordinators = [bearer(session, AccountRole.coordinator) for _ in range(2)]
    bodies = [
        {"decision": "approve", "version": 1},
        {"decision": "reject", "reason_code": "duplicate", "version": 1},
    ]
    for consortium_id in ids:

        def decide(i: int, consortium_id: int = consortium_id) -> int:
            return httpx.post(
                f"{server.url}/api/v1/consortia/{consortium_id}/reviews",
                json=bodies[i],
                headers={"Authorization": coordinators[i]},
                timeout=120,
            ).status_code

        codes = at_once(decide, 2)
        assert sorted(codes) == [201, 409], codes
        final = httpx.get(
            f"{server.url}/api/v1/consortia/{consortium_id}", headers=server.headers, timeout=60
        ).json()
        winner = codes.index(201)
        assert final["status"] == ("approved" if winner == 0 else "rejected")
        assert final["version"] == 2
        assert len(final["reviews"]) == 1
        with Session(engine) as session:
            reviews = session.scalars(
                select(ConsortiumReview.id).where(ConsortiumReview.consortium_id == consortium_id)
            ).all()
            assert len(reviews) == 1
            audited = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.object_type == "review", AuditEvent.object_id == reviews[0])
            )
            assert audited == 1
        audit = httpx.get(
            f"{server.url}/api/v1/audit",
            params={"object_type": "review", "object_id": reviews[0]},
            headers=server.headers,
            timeout=60,
        ).json()
        assert audit["total"] == 1
        assert audit["items"][0]["details"]["changes"]["decision"] == bodies[winner]["decision"]
