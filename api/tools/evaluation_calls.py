"""`maillage eval`, calls section: the labelled calls for projects (fixtures/eval/calls.json)
run through the HTTP API, in process, against a scratch database holding the evaluation
organisations.

For each call: `POST /api/v1/calls` (title, funder, description, requirements, perimeter
as territory references, deadline), `GET /api/v1/calls/{id}/organisations` (the whole
eligible ranking), then `POST /api/v1/calls/{id}/consortia` (the composer's defaults).
The ranking is scored with nDCG@10 (linear gains, the grades as gains), Recall@10 and MRR
(grade ≥ 1 is relevant), over all calls and over the two halves used for tuning: odd call
numbers are the dev half, even numbers the held-out half. Each proposed consortium is
checked independently of the service's own eligibility code: it must hold a landlord, be
led by one, have 2–5 members, and every member must have a territory that lies in,
contains or overlaps the call's perimeter (départements and régions, read from the
territory referential file).
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from matcher.evaluation import Scores, evaluate

DEV = "dev"
HELD_OUT = "réservé"
ALL = "tous"
HALVES = (ALL, DEV, HELD_OUT)
MIN_SIZE, MAX_SIZE = 2, 5  # the composer's defaults, which the section asks for


def half(call_id: str) -> str:
    """DEV for an odd call number ("call-07"), HELD_OUT for an even one."""
    return DEV if int(call_id.rsplit("-", 1)[-1]) % 2 else HELD_OUT


# --- eligibility, independently of matcher.eligibility --------------------------------------


def region_of_departement(referential: Path) -> dict[str, str]:
    """Département code → région code, from the territory referential file (gzipped JSON
    with `departements` rows [code, name, region, population])."""
    with gzip.open(referential, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    return {str(row[0]): str(row[2]) for row in data["departements"]}


def _overlap(territory: str, perimeter: str, region_of: Mapping[str, str]) -> bool:
    """Whether two references of level département or région lie one in the other."""
    if territory == perimeter:
        return True
    level_a, _, code_a = territory.partition(":")
    level_b, _, code_b = perimeter.partition(":")
    if level_a == "departement" and level_b == "region":
        return region_of.get(code_a) == code_b
    if level_a == "region" and level_b == "departement":
        return region_of.get(code_b) == code_a
    return False


def is_eligible(
    territories: Sequence[str], perimeter: Sequence[str], region_of: Mapping[str, str]
) -> bool:
    """An organisation (its territory references) may answer a call on `perimeter`
    ("France": anywhere). Only département and région references are understood, which
    is what the evaluation set uses."""
    if "France" in perimeter:
        return True
    return any(_overlap(t, p, region_of) for t in territories for p in perimeter)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRanking:
    call_id: str
    half: str
    ranking: list[str]  # slugs, best first, every eligible organisation
    relevant: dict[str, int]
    total: int  # eligible organisations, as the endpoint counts them


@dataclass(frozen=True)
class ConsortiumCheck:
    call_id: str
    members: list[str]  # slugs, the lead first
    problems: list[str]  # French; empty when valid


@dataclass
class CallsResult:
    scores: dict[str, Scores]  # ALL, DEV, HELD_OUT
    rankings: list[CallRanking]
    consortia: list[ConsortiumCheck]
    refused: dict[str, str] = field(default_factory=dict)  # call id → the API's answer
    seconds: float = 0.0  # the API calls (creating, ranking, composing)
    setup_seconds: float = 0.0  # database, organisations and their vectors

    @property
    def invalid(self) -> list[ConsortiumCheck]:
        return [c for c in self.consortia if c.problems]


def score_rankings(rankings: Sequence[CallRanking]) -> dict[str, Scores]:
    """nDCG@10 (linear gains), Recall@10, MRR over all calls and each half."""
    out = {}
    for name in HALVES:
        chosen = [r for r in rankings if name == ALL or r.half == name]
        out[name] = evaluate([r.ranking for r in chosen], [r.relevant for r in chosen], linear=True)
    return out


def check_consortium(
    call: Mapping[str, Any],
    consortium: Mapping[str, Any],
    slugs: Mapping[int, str],
    organisations: Mapping[str, Mapping[str, Any]],
    region_of: Mapping[str, str],
) -> ConsortiumCheck:
    """Validity of one proposed consortium (the API's JSON) against the fixture."""
    lead = consortium.get("lead_id")
    ids = [m["organisation"]["id"] for m in consortium.get("members", [])]
    ids.sort(key=lambda i: i != lead)
    members = [slugs.get(i, f"#{i}") for i in ids]
    problems = []
    landlords = [s for s in members if organisations.get(s, {}).get("kind") == "landlord"]
    if not landlords:
        problems.append("aucun bailleur")
    if lead is None or organisations.get(slugs.get(lead, ""), {}).get("kind") != "landlord":
        problems.append("chef de file non bailleur")
    if not MIN_SIZE <= len(members) <= MAX_SIZE:
        problems.append(f"{len(members)} membres")
    for slug in members:
        record = organisations.get(slug)
        if record is None:
            problems.append(f"{slug} inconnue")
        elif not is_eligible(record["territories"], call["perimeter"], region_of):
            problems.append(f"{slug} hors périmètre")
    return ConsortiumCheck(call["id"], members, problems)


# --- the run ---------------------------------------------------------------------------------


def call_body(call: Mapping[str, Any]) -> dict[str, Any]:
    """The `POST /api/v1/calls` body of a labelled call."""
    return {
        "title": call["title"],
        "funders": [call["funder"]],
        "description": call["description"],
        "requirements": list(call["requirements"]),
        "perimeter": list(call["perimeter"]),
        "deadline": call["deadline"],
        "source": "eval",
        "external_id": call["id"],
    }


def run_calls_evaluation(settings: Settings, *, alternatives: int = 3) -> CallsResult:
    """Load the evaluation organisations into a scratch SQLite database, serve the app on
    it (the configured model, rate limits off) and run every labelled call through the
    API as an administrator. Raises RuntimeError when the API refuses a call or a
    ranking (the set itself is then wrong)."""
    from fastapi.testclient import TestClient

    from api.accounts.service import create_account, issue_token
    from api.app import create_app
    from api.matching.texts import reindex
    from api.territories.referential import REFERENTIAL_FILE
    from api.tools.demo import ensure_territories, load_organisations
    from models import Organisation, migrate
    from models.db import make_engine, make_session_factory
    from models.enums import AccountRole

    eval_dir = settings.fixtures_dir / "eval"
    records = json.loads((eval_dir / "organisations.json").read_text(encoding="utf-8"))
    organisations = {r["slug"]: r for r in records}
    calls = json.loads((eval_dir / "calls.json").read_text(encoding="utf-8"))
    region_of = region_of_departement(settings.fixtures_dir / REFERENTIAL_FILE)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="maillage-eval-calls-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'eval.sqlite3'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as session, session.begin():
            ensure_territories(session, settings.fixtures_dir)
            load_organisations(session, eval_dir / "organisations.json")
            account = create_account(session, name="Évaluation", role=AccountRole.admin)
            secret = issue_token(session, account, expires_at=None).secret
        engine.dispose()
        app = create_app(settings.model_copy(update={"database_url": url, "rate_limits": False}))
        with app.state.session_factory() as session, session.begin():
            reindex(session, app.state.matching)
        with app.state.session_factory() as session:
            slugs = _slugs(session, Organisation)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        with TestClient(
            app, raise_server_exceptions=True, headers={"Authorization": f"Bearer {secret}"}
        ) as client:
            result = _run(client, calls, slugs, organisations, region_of, alternatives)
        result.seconds = time.perf_counter() - start
        result.setup_seconds = setup
        app.state.engine.dispose()
    return result


def _slugs(session: Session, organisation: Any) -> dict[int, str]:
    return {i: s or "" for i, s in session.execute(select(organisation.id, organisation.slug))}


def _run(
    client: Any,
    calls: Sequence[Mapping[str, Any]],
    slugs: Mapping[int, str],
    organisations: Mapping[str, Mapping[str, Any]],
    region_of: Mapping[str, str],
    alternatives: int,
) -> CallsResult:
    rankings: list[CallRanking] = []
    checks: list[ConsortiumCheck] = []
    refused: dict[str, str] = {}
    for call in calls:
        created = client.post(
            "/api/v1/calls", json=call_body(call), headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        if created.status_code != 201:
            raise RuntimeError(
                f"{call['id']}: POST /api/v1/calls {created.status_code} {created.text}"
            )
        call_id = created.json()["id"]
        ranked = client.get(f"/api/v1/calls/{call_id}/organisations", params={"limit": 100})
        if ranked.status_code != 200:
            raise RuntimeError(f"{call['id']}: classement {ranked.status_code} {ranked.text}")
        page = ranked.json()
        rankings.append(
            CallRanking(
                call_id=call["id"],
                half=half(call["id"]),
                ranking=[slugs.get(i["organisation"]["id"], "") for i in page["items"]],
                relevant=dict(call["relevant"]),
                total=page["total"],
            )
        )
        proposed = client.post(
            f"/api/v1/calls/{call_id}/consortia",
            json={"min_size": MIN_SIZE, "max_size": MAX_SIZE, "alternatives": alternatives},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if proposed.status_code != 201:
            refused[call["id"]] = f"{proposed.status_code} {proposed.json().get('detail', '')}"
            continue
        checks.extend(
            check_consortium(call, c, slugs, organisations, region_of) for c in proposed.json()
        )
    return CallsResult(score_rankings(rankings), rankings, checks, refused)


def describe(result: CallsResult) -> list[str]:
    """Plain French lines of the section (what `maillage eval` prints before its table)."""
    lines = []
    for name in HALVES:
        s = result.scores[name]
        lines.append(
            f"appels {name:<8} nDCG@10 {s.ndcg10:.3f}  Recall@10 {s.recall10:.3f}  "
            f"MRR {s.mrr:.3f}  ({s.queries} appels)"
        )
    lines.append(
        f"consortiums proposés {len(result.consortia)}, invalides {len(result.invalid)}, "
        f"appels sans proposition {len(result.refused)} "
        f"(API {result.seconds:.1f} s, préparation {result.setup_seconds:.1f} s)"
    )
    lines.extend(f"  invalide {c.call_id} : {', '.join(c.problems)}" for c in result.invalid)
    lines.extend(f"  refusé {k} : {v}" for k, v in result.refused.items())
    return lines


def calls_table(result: CallsResult) -> Any:
    """A rich Table of the section: one row per half, then the consortia."""
    from rich.table import Table

    table = Table("partie", "nDCG@10", "Recall@10", "MRR", "appels", "consortiums", "invalides")
    for name in HALVES:
        s = result.scores[name]
        mine = [c for c in result.consortia if name == ALL or half(c.call_id) == name]
        table.add_row(
            name,
            f"{s.ndcg10:.3f}",
            f"{s.recall10:.3f}",
            f"{s.mrr:.3f}",
            str(s.queries),
            str(len(mine)),
            str(sum(1 for c in mine if c.problems)),
        )
    return table
