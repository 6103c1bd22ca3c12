"""Turns per organisation (`api.kit.turns`): writes to one organisation's texts run one
after the other in a process, from their read-ahead to their commit, so that none encodes
while it holds a database lock."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

import httpx
import pytest
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.kit.deps import TURNS
from api.kit.errors import ServiceUnavailable
from api.kit.settings import Settings
from api.kit.turns import HeldTurns, Turns
from api.matching import engine as matching_module
from api.matching.engine import MatchingEngine
from api.organisations import service
from api.organisations.schemas import StatementIn
from models.enums import AccountRole
from tests.api.servers import Server, seed
from tests.factories import make_organisation
from tests.fakes import FakeEncoder


class TestTurns:
    def test_a_turn_waits_for_the_previous_one_given_back_by_any_thread(self) -> None:
        turns = Turns(timeout=30, retry_after=2)
        first, second = HeldTurns(turns), HeldTurns(turns)
        first.take(7)
        got: list[str] = []
        waiting = threading.Thread(target=lambda: (second.take(7), got.append("second")))
        waiting.start()
        waiting.join(0.2)
        assert got == []  # still waiting
        releasing = threading.Thread(target=first.release_all)  # as a commit's thread does
        releasing.start()
        releasing.join(10)
        waiting.join(10)
        assert got == ["second"]
        second.release_all()
        assert turns._turns == {}  # nothing kept for keys no request holds

    def test_a_turn_not_given_back_in_time_is_a_503(self) -> None:
        turns = Turns(timeout=0.05, retry_after=3)
        holder = HeldTurns(turns)
        holder.take(7)
        with pytest.raises(ServiceUnavailable) as refused:
            HeldTurns(turns).take(7)
        assert refused.value.headers["Retry-After"] == "3"
        HeldTurns(turns).take(8)  # another organisation: its own turn
        holder.release_all()
        assert set(turns._turns) == {8}

    def test_a_request_takes_its_own_turn_once(self) -> None:
        turns = Turns(timeout=0.05, retry_after=2)
        held = HeldTurns(turns)
        held.take(7)
        held.take(7)
        held.release_all()
        assert turns._turns == {}


@pytest.fixture
def matching(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> MatchingEngine:
    monkeypatch.setattr(
        matching_module, "dense_encoder", lambda model: FakeEncoder("fake-tour", 8, role_aware=True)
    )
    return MatchingEngine(settings)


def test_a_statement_write_waits_for_its_organisations_turn(
    session: Session, matching: MatchingEngine
) -> None:
    """The service takes the turn before it reads ahead: while another request holds it,
    the write is a 503 and writes nothing."""
    org = make_organisation(session, name="Organisation disputée")
    turns = Turns(timeout=0.05, retry_after=2)
    other = HeldTurns(turns)
    other.take(org.id)
    session.info[TURNS] = HeldTurns(turns)
    viewer = Principal(account_id=None, role=AccountRole.coordinator, name="coordination")

    def read() -> AbstractContextManager[Session]:
        return nullcontext(session)  # the test's rows are in its session

    data = StatementIn(kind="need", text="Un besoin qui attend son tour")
    try:
        with pytest.raises(ServiceUnavailable):
            service.create_statement(session, read, matching, viewer, org.id, data)
        other.release_all()
        created = service.create_statement(session, read, matching, viewer, org.id, data)
        assert created.text == "Un besoin qui attend son tour"
    finally:
        session.info.pop(TURNS).release_all()


@pytest.mark.slow
def test_the_server_gives_every_turn_back(fake_server: Server) -> None:
    """Taken by statement writes, given back after their commit (and their failures)."""
    owner = seed(fake_server, 1)[0]
    member = {"Authorization": fake_server.token(AccountRole.coordinator)}
    with httpx.Client(base_url=fake_server.url, headers=member, timeout=60) as client:
        path = f"/api/v1/organisations/{owner}/statements"
        created = client.post(path, json={"kind": "need", "text": "Un besoin passager"})
        assert created.status_code == 201, created.text
        statement = created.headers["location"]
        refused = client.patch(statement, json={"text": "x" * 100_000})
        assert refused.status_code == 422
        assert client.delete(statement).status_code == 204
        assert client.delete(statement).status_code == 404
    assert fake_server.app.state.turns._turns == {}
