"""`GET /api/v1/impact`: what the consortia became, by status, département and quarter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.consortia.composition import store_consortium
from models import Consortium
from models.enums import AccountRole, ConsortiumStatus
from tests.conftest import bearer
from tests.consortia import FakeFit, make_call
from tests.factories import make_organisation


def _set(
    consortium: Consortium,
    status: ConsortiumStatus,
    *,
    decided: date,
    submitted: date | None = None,
    outcome: date | None = None,
    amount: str | None = None,
) -> None:
    consortium.status = status
    consortium.decided_at = datetime(decided.year, decided.month, decided.day, tzinfo=UTC)
    consortium.submitted_on = submitted
    consortium.outcome_on = outcome
    consortium.outcome_amount = Decimal(amount) if amount else None


def test_the_impact_report(client: TestClient, session: Session) -> None:
    fit = FakeFit()
    a = make_organisation(session, name="Bailleur A").id
    b = make_organisation(session, name="Bailleur B").id
    c = make_organisation(session, name="Association C", kind="association").id
    d = make_organisation(
        session, name="Bailleur D", territories=("commune:84007",)
    ).id  # Avignon, Vaucluse
    call = make_call(session, departement=None)
    other_call = make_call(session, title="Autre appel", departement=None)
    first = store_consortium(session, call, [a, b, c], a, None, fit=fit)
    _set(
        first,
        ConsortiumStatus.won,
        decided=date(2026, 2, 1),
        submitted=date(2026, 3, 1),
        outcome=date(2026, 5, 10),
        amount="15000.50",
    )
    second = store_consortium(session, other_call, [a, c], a, None, fit=fit)
    _set(
        second,
        ConsortiumStatus.lost,
        decided=date(2026, 7, 1),
        submitted=date(2026, 8, 1),
        outcome=date(2026, 10, 2),
    )
    third = store_consortium(session, other_call, [d, c], d, None, fit=fit)
    _set(third, ConsortiumStatus.approved, decided=date(2026, 11, 3))
    store_consortium(session, call, [b, c], b, None, fit=fit)  # proposed, created today
    rejected = store_consortium(session, call, [d, b], d, None, fit=fit)
    _set(rejected, ConsortiumStatus.rejected, decided=date(2026, 11, 4))
    session.flush()

    report = client.get("/api/v1/impact", params={"from": "2026-01-01", "to": "2026-12-31"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["by_status"]["won"] == 1
    assert body["by_status"]["lost"] == 1
    assert body["by_status"]["approved"] == 1
    assert body["by_status"]["rejected"] == 1
    assert body["inter_landlord"] == 1  # only the first holds two landlords and was formed
    assert body["calls_answered"] == 2
    assert body["amount_won"] == "15000.50"
    # Pairs in formed consortia: {a,b}, {a,c}, {b,c} (first), {a,c} again, {c,d}.
    assert body["pairs"] == {"distinct": 4, "new": 4, "repeated": 0}
    quarters = {q["quarter"]: q for q in body["by_quarter"]}
    assert quarters["2026-T2"]["won"] == 1
    assert quarters["2026-T2"]["amount_won"] == "15000.50"
    assert quarters["2026-T4"]["consortia"] >= 3
    departements = {d["departement"]: d for d in body["by_departement"]}
    assert departements["13"]["won"] == 1
    assert departements["84"]["formed"] == 1

    # From the second half: the pair {a, c} was formed earlier, so it is repeated.
    later = client.get("/api/v1/impact", params={"from": "2026-07-01", "to": "2026-12-31"}).json()
    assert later["pairs"] == {"distinct": 2, "new": 1, "repeated": 1}
    assert later["amount_won"] == "0.00"
    assert later["by_status"]["won"] == 0


def test_bad_periods_and_members_are_refused(client: TestClient, session: Session) -> None:
    # « from » after « to »: an empty period, so a report of nothing.
    backwards = client.get("/api/v1/impact", params={"from": "2026-12-31", "to": "2026-01-01"})
    assert backwards.status_code == 200
    assert backwards.json()["consortia"] == 0
    for day in ("demain", "0", "20260101"):
        assert client.get("/api/v1/impact", params={"from": day}).status_code == 422
    member = {"Authorization": bearer(session, AccountRole.member, [make_organisation(session).id])}
    assert client.get("/api/v1/impact", headers=member).status_code == 403
