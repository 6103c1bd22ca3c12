"""The OpenAPI document is what the server does: schemathesis runs every phase (examples,
coverage, fuzzing, stateful) and every check against the app, on the test database (SQLite,
or PostgreSQL with MAILLAGE_TEST_DATABASE_URL), as an admin and as a member.

The number of generated cases per operation and phase is MAILLAGE_CONTRACT_MAX_EXAMPLES
(default below, a few minutes per database on two cores); runs are derandomized, so CI
sees the same cases every time. A larger budget, locally:

    MAILLAGE_CONTRACT_MAX_EXAMPLES=300 pytest -q tests/api/test_contract.py -s

The stand-in encoder keeps the model out: the contract is about the HTTP layer.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.engine import events, from_schema
from sqlalchemy.orm import Session

from api.accounts.service import create_account, issue_token
from api.kit.idempotency import KEY_PATTERN
from api.matching import engine as matching_engine
from matcher.identifiers import luhn_valid
from models.enums import AccountRole
from tests.factories import make_organisation
from tests.fakes import FakeEncoder

pytestmark = pytest.mark.contract

MAX_EXAMPLES = int(os.environ.get("MAILLAGE_CONTRACT_MAX_EXAMPLES", "12"))
SEED = 20261130
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
]
# An import's body is a spreadsheet (or, for calls, a catalogue's JSON records): the
# document can say it is a file, not which rows are valid; the importer's 422 lists the
# problems by row and column. Every other operation's schema-valid request must be
# accepted.
IMPORT_ACCEPTANCE = ["2xx", "401", "403", "404", "409", "422", "429"]


def _siren(first_eight: str) -> str:
    return next(first_eight + k for k in "0123456789" if luhn_valid(first_eight + k))


# The custom format `siren` (api.kit.fields): its Luhn key and the refusal of placeholders
# are rules a pattern cannot state.
SIRENS = st.from_regex(r"\A[0-9]{8}\Z").map(_siren).filter(lambda s: len(set(s)) > 1)
schemathesis.openapi.format("siren", SIRENS)


@dataclass
class Outcome:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    transitions: int = 0


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> FakeEncoder:
    fake = FakeEncoder("contract-fake", 16, role_aware=True)
    monkeypatch.setattr(matching_engine, "dense_encoder", lambda model: fake)
    return fake


@pytest.fixture
def app(fake_encoder: FakeEncoder, app: FastAPI) -> FastAPI:  # conftest's, stand-in encoder
    return app


@pytest.fixture
def network(session: Session) -> list[int]:
    """A few organisations for the operations to find, link and suggest."""
    orgs = [
        make_organisation(session, name="Habitat des Calanques", siren="552100554"),
        make_organisation(
            session,
            name="Jardins Solidaires",
            kind="association",
            territories=("departement:13",),
            competencies=("Animation de jardins partagés avec les locataires",),
            needs=("Trouver un local pour stocker du matériel",),
        ),
        make_organisation(session, name="Cité Énergie", kind="company", territories=("13055",)),
    ]
    session.flush()
    return [org.id for org in orgs]


@dataclass(frozen=True)
class Bearer:
    token_id: int
    secret: str


def _bearer(session: Session, role: AccountRole, organisation_ids: list[int]) -> Bearer:
    account = create_account(
        session, name=f"Contrat ({role.value})", role=role, organisation_ids=organisation_ids
    )
    issued = issue_token(session, account, expires_at=None)
    session.flush()
    return Bearer(issued.token.id, issued.secret)


@schemathesis.hook("before_call")
def one_key_per_request(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """A client sends a new Idempotency-Key with each new request (the same one only to
    retry it): a generated key reused with another body is rightly a 422, which the schema
    cannot say. Malformed keys are left as generated (negative tests). A global hook:
    schemathesis refuses `before_call` on one schema."""
    if case.meta is not None and case.meta.generation.mode.is_negative:
        # An edit makes schemathesis revalidate the case, which may turn a negative case
        # (say, one without its Authorization header) positive and send what it removed.
        return
    headers = case.headers or {}
    for name in [n for n in headers if n.lower() == "idempotency-key"]:
        if re.fullmatch(KEY_PATTERN, str(headers[name])):
            headers[name] = uuid.uuid4().hex


def run_contract(app: FastAPI, bearer: Bearer, organisation_ids: list[int]) -> Outcome:
    """Every phase and check, as the holder of `bearer` (which the run never revokes).
    Most drawn `organisation_id`s are among `organisation_ids` (ids differ between
    databases: PostgreSQL's sequences outlive a test's rolled-back transaction)."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "dictionaries": {"known": {"values": organisation_ids}},
            "parameters": {"path.organisation_id": {"dictionary": "known", "probability": 0.7}},
            "workers": 1,
            "headers": {"Authorization": f"Bearer {bearer.secret}"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {name: {"enabled": True} for name in CHECKS},
            "operations": [
                {
                    "include-path": [
                        "/api/v1/imports/organisations",
                        "/api/v1/imports/calls",
                    ],
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": IMPORT_ACCEPTANCE}
                    },
                }
            ],
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)

    @schema.hook("filter_case")
    def keep_own_token(context: Any, case: schemathesis.Case) -> bool:
        # Revoking the run's own token would leave every later request a 401.
        path_parameters = case.path_parameters or {}
        return not (
            case.method == "DELETE" and str(path_parameters.get("token_id")) == str(bearer.token_id)
        )

    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(outcome, event)
        elif isinstance(event, events.PhaseStarted) and event.payload is not None:
            outcome.transitions = event.payload.transitions_selected
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.errors.append(_describe_error(event))
    return outcome


def _record(outcome: Outcome, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    outcome.cases += len(recorder.cases)
    for interaction in recorder.interactions.values():
        if interaction.response is not None:
            outcome.statuses[interaction.response.status_code] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            outcome.failures.append(
                f"{recorder.label} [{event.phase.value}] {check.name}: {failure.title}\n"
                f"{failure.message}\n{check.failure_info.code_sample}\n"
                f"{_answer(recorder.interactions.get(case_id))}"
            )


def _answer(interaction: Any) -> str:
    """The server's answer to a failing case: its status and the start of its body."""
    response = getattr(interaction, "response", None)
    if response is None:
        return "(no answer recorded)"
    body = (response.content or b"")[:600].decode("utf-8", "replace")
    return f"-> {response.status_code} {body}"


def _describe_error(event: events.NonFatalError | events.FatalError) -> str:
    if isinstance(event, events.FatalError):
        return f"fatal: {event.exception!r}"
    return f"{event.label}: {event.value!r}"


def _one_per_kind(failures: list[str]) -> list[str]:
    """The first failure of each (operation, check, title)."""
    kinds: dict[str, str] = {}
    for failure in failures:
        first_line = failure.split("\n", 1)[0]
        label, _, rest = first_line.partition(" [")
        kinds.setdefault(label + rest.partition("]")[2], failure)
    return [kinds[k] for k in sorted(kinds)]


def _assert_clean(outcome: Outcome, capsys: pytest.CaptureFixture[str], who: str) -> None:
    with capsys.disabled():  # the figures of the run, in the test log
        sys.stdout.write(
            f"\n[contract] {who}: {outcome.cases} cases, {outcome.transitions} stateful "
            f"transitions, {len(outcome.failures)} failures, "
            f"statuses {sorted(outcome.statuses.items())}\n"
        )
    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, "\n\n".join(_one_per_kind(outcome.failures))
    # A run whose token stopped working would pass on 401s alone.
    answered = sum(outcome.statuses.values())
    assert outcome.statuses[401] < answered * 0.1, outcome.statuses
    assert outcome.transitions > 0


def test_the_server_keeps_its_contract_for_an_admin(
    app: FastAPI, session: Session, network: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    admin = _bearer(session, AccountRole.admin, [])
    _assert_clean(run_contract(app, admin, network), capsys, "admin")


def test_the_server_keeps_its_contract_for_a_member(
    app: FastAPI, session: Session, network: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    member = _bearer(session, AccountRole.member, network[:1])
    _assert_clean(run_contract(app, member, network), capsys, "member")
