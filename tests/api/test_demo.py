"""The French demo data that `maillage demo` loads."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.tools.demo import load_demo
from models import Call, Organisation, Territory
from models.digest import DigestSubscription
from models.enums import CallStatus, OrganisationKind, StatementKind, TerritoryLevel
from tests.conftest import FIXTURES

PACA_CORSE = {"93", "94"}


def _touches_paca_or_corsica(session: Session, territory: Territory) -> bool:
    if territory.level == TerritoryLevel.region:
        return territory.code in PACA_CORSE
    if territory.region_code is not None:
        return territory.region_code in PACA_CORSE
    # An EPCI across two régions (the Grand Avignon reaches into the Gard).
    regions = session.scalars(
        select(Territory.region_code).where(Territory.epci_code == territory.code).distinct()
    ).all()
    return bool(set(regions) & PACA_CORSE)


class TestDemoData:
    def test_fifty_organisations_half_landlords_with_competencies_and_needs(
        self, session: Session
    ) -> None:
        report = load_demo(session, FIXTURES, today=date(2026, 11, 25))
        assert report.organisations >= 40
        assert report.calls >= 15
        orgs = session.scalars(
            select(Organisation).options(
                selectinload(Organisation.statements), selectinload(Organisation.territories)
            )
        ).all()
        kinds = Counter(o.kind for o in orgs)
        assert 0.4 <= kinds[OrganisationKind.landlord] / len(orgs) <= 0.6
        assert len({o.legal_form for o in orgs if o.kind == OrganisationKind.landlord}) >= 3
        for org in orgs:
            statement_kinds = Counter(s.kind for s in org.statements)
            assert 3 <= statement_kinds[StatementKind.competency] <= 6, org.name
            assert 2 <= statement_kinds[StatementKind.need] <= 4, org.name
            assert org.territories, org.name
            for territory in org.territories:
                assert _touches_paca_or_corsica(session, territory), (org.name, territory.ref)

    def test_calls_have_requirements_perimeter_and_relative_deadlines(
        self, session: Session
    ) -> None:
        today = date(2026, 11, 25)
        load_demo(session, FIXTURES, today=today)
        calls = session.scalars(select(Call).options(selectinload(Call.requirements))).all()
        assert len(calls) >= 15
        assert all(c.requirements and c.perimeter for c in calls)
        open_calls = [c for c in calls if c.status == CallStatus.open]
        assert len(open_calls) >= 10
        assert all(c.deadline is None or c.deadline >= today for c in open_calls)

    def test_loading_twice_updates_instead_of_duplicating(self, session: Session) -> None:
        load_demo(session, FIXTURES)
        first = session.scalar(select(func.count()).select_from(Organisation))
        load_demo(session, FIXTURES)
        assert session.scalar(select(func.count()).select_from(Organisation)) == first

    def test_every_demo_organisation_with_a_contact_receives_its_digest(
        self, session: Session
    ) -> None:
        load_demo(session, FIXTURES)
        load_demo(session, FIXTURES)
        subs = session.scalars(select(DigestSubscription)).all()
        orgs = session.scalars(select(Organisation)).all()
        with_contact = {o.id for o in orgs if any(c.email for c in o.contacts)}
        assert {s.organisation_id for s in subs} == with_contact
        assert len(subs) == len(with_contact)  # loading twice adds none
        assert all(s.confirmed_at is not None and s.frequency == "weekly" for s in subs)
