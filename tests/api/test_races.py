"""Requests that race for the same row get the answer the sequential request would have got:
the first creates, the others find it (or are told it exists), never a 500.

On the real server (a fake encoder), on both databases: SQLite's writers take the write
lock at their first statement and run one after the other; PostgreSQL's run together and
meet on unique indexes, row locks and the advisory locks of organisation identities.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.identifiers import luhn_valid
from models import Dismissal, Organisation, Statement
from tests.api.servers import Server, at_once, seed

ORGANISATIONS = "/api/v1/organisations"
AT_ONCE = 10

pytestmark = pytest.mark.slow


def unique_siren() -> str:
    """A SIREN no other test uses, with its check digit."""
    base = str(uuid.uuid4().int)[:8]
    return next(base + d for d in "0123456789" if luhn_valid(base + d))


def new_organisation(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "association",
        "territories": ["commune:13001"],
        "statements": [{"kind": "competency", "text": f"Savoir-faire de {name}"}],
        **extra,
    }


def send(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**server.headers, **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=60, **kwargs)


def count(server: Server, query: Any) -> int:
    with Session(server.app.state.engine) as session:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


class TestCreationRaces:
    def test_the_same_dismissal_sent_at_once_is_created_once(self, fake_server: Server) -> None:
        owner, other = seed(fake_server, 2)
        path = f"{ORGANISATIONS}/{owner}/dismissals"
        answers = at_once(
            lambda _: send(fake_server, "POST", path, json={"organisation_id": other}), AT_ONCE
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * (AT_ONCE - 1) + [201], [a.text for a in answers]
        assert {a.json()["organisation"]["id"] for a in answers} == {other}
        rows = select(Dismissal).where(
            Dismissal.organisation_id == owner, Dismissal.dismissed_id == other
        )
        assert count(fake_server, rows) == 1

    def test_one_siren_sent_at_once_makes_one_organisation(self, fake_server: Server) -> None:
        siren = unique_siren()
        tag = uuid.uuid4().hex[:6]
        answers = at_once(
            lambda i: send(
                fake_server,
                "POST",
                ORGANISATIONS,
                json=new_organisation(f"Porteur {tag} n° {i}", siren=siren),
            ),
            AT_ONCE,
        )
        created = [a for a in answers if a.status_code == 201]
        assert len(created) == 1, [a.text for a in answers]
        first = created[0].json()
        refused = [a for a in answers if a is not created[0]]
        assert {a.status_code for a in refused} == {409}
        for answer in refused:  # the conflict a request coming second gets: it names the first
            assert f"(n° {first['id']})" in answer.json()["detail"], answer.text
        assert count(fake_server, select(Organisation).where(Organisation.siren == siren)) == 1

    def test_one_name_sent_at_once_makes_one_organisation(self, fake_server: Server) -> None:
        name = f"Les Compagnons du {uuid.uuid4().hex[:6]}"
        answers = at_once(
            lambda _: send(fake_server, "POST", ORGANISATIONS, json=new_organisation(name)),
            AT_ONCE,
        )
        created = [a for a in answers if a.status_code == 201]
        assert len(created) == 1, [a.text for a in answers]
        first = created[0].json()
        for answer in answers:
            if answer is not created[0]:
                assert answer.status_code == 409, answer.text
                assert f"(n° {first['id']}, association)" in answer.json()["detail"]
        assert count(fake_server, select(Organisation).where(Organisation.name == name)) == 1

    def test_one_idempotency_key_sent_at_once_creates_once(self, fake_server: Server) -> None:
        name = f"Clé partagée {uuid.uuid4().hex[:6]}"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        answers = at_once(
            lambda _: send(
                fake_server, "POST", ORGANISATIONS, json=new_organisation(name), headers=key
            ),
            AT_ONCE,
        )
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        assert len({a.headers["location"] for a in answers}) == 1
        replayed = [a for a in answers if a.headers.get("idempotent-replayed") == "true"]
        assert len(replayed) == AT_ONCE - 1
        assert count(fake_server, select(Organisation).where(Organisation.name == name)) == 1


class TestWritesToOneOrganisation:
    def test_statements_added_at_once_are_all_kept(self, fake_server: Server) -> None:
        owner = seed(fake_server, 1)[0]
        tag = uuid.uuid4().hex[:6]
        answers = at_once(
            lambda i: send(
                fake_server,
                "POST",
                f"{ORGANISATIONS}/{owner}/statements",
                json={"kind": "competency", "text": f"Compétence {tag} n° {i}"},
            ),
            AT_ONCE,
        )
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        mine = select(Statement).where(
            Statement.organisation_id == owner, Statement.text.contains(tag)
        )
        assert count(fake_server, mine) == AT_ONCE
        detail = send(fake_server, "GET", f"{ORGANISATIONS}/{owner}").json()
        assert sum(tag in s["text"] for s in detail["statements"]) == AT_ONCE

    def test_territories_replaced_at_once_end_as_one_of_them(self, fake_server: Server) -> None:
        owner = seed(fake_server, 1)[0]
        choices = [["commune:13001", "commune:13055"], ["commune:13002"], ["departement:13"]]
        answers = at_once(
            lambda i: send(
                fake_server,
                "PATCH",
                f"{ORGANISATIONS}/{owner}",
                json={"territories": choices[i % len(choices)]},
            ),
            AT_ONCE,
        )
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        final = send(fake_server, "GET", f"{ORGANISATIONS}/{owner}").json()
        assert sorted(t["ref"] for t in final["territories"]) in [sorted(c) for c in choices]

    def test_one_statement_deleted_at_once_is_deleted_once(self, fake_server: Server) -> None:
        owner = seed(fake_server, 1)[0]
        created = send(
            fake_server,
            "POST",
            f"{ORGANISATIONS}/{owner}/statements",
            json={"kind": "need", "text": "Un besoin à effacer"},
        )
        assert created.status_code == 201, created.text
        path = created.headers["location"]
        answers = at_once(lambda _: send(fake_server, "DELETE", path), 5)
        assert sorted(a.status_code for a in answers) == [204, 404, 404, 404, 404], [
            a.text for a in answers
        ]
