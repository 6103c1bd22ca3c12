"""`maillage eval`: the labelled French set run through the same search path as the API."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas.matching import PartnerMode, Within
from api.services.demo import ensure_territories, load_organisations
from api.services.matching import MatchingEngine, reindex
from api.services.search import partners, search
from api.settings import Settings
from matcher.evaluation import Scores, evaluate, merge_rankings, partner_judgements
from models import Organisation, Statement, migrate
from models.db import make_engine, make_session_factory
from models.enums import StatementKind


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    dense_weight: float
    thesaurus: bool
    profile: bool  # the profile signals, at the settings' weights
    words: bool


METHODS = (
    Method("lexical", "TF-IDF caractères 3–5", 0.0, False, False, False),
    Method("dense", "USE multilingue (cosinus)", 1.0, False, False, False),
    Method("blend", "0,5 × TF-IDF + 0,5 × dense (z-scores)", 0.5, False, False, False),
    Method("blend+thesaurus", "mélange, textes enrichis par le thésaurus", 0.5, True, False, False),
    Method(
        "blend+thesaurus+profile",
        "mélange + thésaurus + profil entier (dense)",
        0.5,
        True,
        True,
        False,
    ),
    Method(
        "default",
        "mélange + thésaurus + profil entier (dense et mots)",
        0.5,
        True,
        True,
        True,
    ),
)


@dataclass(frozen=True)
class MethodResult:
    method: Method
    scores: Scores
    seconds: float


@dataclass(frozen=True)
class PartnerResult:
    """Partner suggestions of one method against its merged per-need search, on the
    organisations that declared needs."""

    method: Method
    endpoint: Scores
    merged_search: Scores
    seconds: float


def run_evaluation(
    settings: Settings,
    *,
    methods: tuple[Method, ...] = METHODS,
    limit: int = 10,
    on_method: Callable[[MethodResult], None] | None = None,
    on_partners: Callable[[PartnerResult], None] | None = None,
    partner_methods: tuple[str, ...] = ("default",),
) -> list[MethodResult]:
    """Load the evaluation organisations into a scratch SQLite database, then rank the
    organisations for every query with each method, exactly as the search API does."""
    eval_dir = settings.fixtures_dir / "eval"
    queries = json.loads((eval_dir / "queries.json").read_text(encoding="utf-8"))
    results = []
    with tempfile.TemporaryDirectory(prefix="maillage-eval-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.sqlite3'}")
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as session, session.begin():
            ensure_territories(session, settings.fixtures_dir)
            load_organisations(session, eval_dir / "organisations.json")
        for method in methods:
            method_settings = settings.model_copy(
                update={
                    "dense_weight": method.dense_weight,
                    "profile_weight": settings.profile_weight if method.profile else 0.0,
                    "words_weight": settings.words_weight if method.words else 0.0,
                    "thesaurus": settings.thesaurus if method.thesaurus else "",
                    "search_min_score": settings.search_min_score,
                }
            )
            matching = MatchingEngine(method_settings)
            with factory() as session, session.begin():
                reindex(session, matching)
            start = time.perf_counter()
            with factory() as session, session.begin():
                slugs = _slugs(session)
                rankings = [
                    [
                        slugs[h.organisation.id]
                        for h in search(session, matching, q["text"], None, limit).items
                    ]
                    for q in queries
                ]
            scores = evaluate(rankings, [q["relevant"] for q in queries])
            result = MethodResult(method, scores, time.perf_counter() - start)
            results.append(result)
            if on_method:
                on_method(result)
            if on_partners and method.name in partner_methods:
                with factory() as session, session.begin():
                    on_partners(evaluate_partners(session, matching, method, queries, limit))
        engine.dispose()
    return results


def evaluate_partners(
    session: Session,
    matching: MatchingEngine,
    method: Method,
    queries: list[dict[str, Any]],
    limit: int = 10,
) -> PartnerResult:
    """Score `GET /organisations/{id}/partners` (complementary, any territory) for every
    organisation that declared needs, against what a user could do by hand: search with
    each of its needs and merge the lists by best score. Gold: `partner_judgements`."""
    slugs = _slugs(session)
    ids = {slug: i for i, slug in slugs.items()}
    gold = partner_judgements(queries)
    needs: dict[int, list[str]] = {}
    for organisation_id, text in session.execute(
        select(Statement.organisation_id, Statement.text).where(
            Statement.kind == StatementKind.need
        )
    ):
        needs.setdefault(organisation_id, []).append(text)
    askers = [slug for slug in gold if slug in ids and ids[slug] in needs]
    start = time.perf_counter()
    endpoint = [
        [
            slugs[item.organisation.id]
            for item in partners(
                session, matching, ids[slug], PartnerMode.complementary, Within.any, limit
            ).items
        ]
        for slug in askers
    ]
    seconds = time.perf_counter() - start
    merged = [
        merge_rankings(
            [
                [
                    (slugs[h.organisation.id], h.score)
                    for h in search(session, matching, text, None, limit).items
                    if h.organisation.id != ids[slug]
                ]
                for text in needs[ids[slug]]
            ],
            limit,
        )
        for slug in askers
    ]
    judgements = [gold[slug] for slug in askers]
    return PartnerResult(
        method, evaluate(endpoint, judgements), evaluate(merged, judgements), seconds
    )


def _slugs(session: Session) -> dict[int, str]:
    return {i: s or "" for i, s in session.execute(select(Organisation.id, Organisation.slug))}


def stsb_spearman(settings: Settings, path: Path) -> tuple[float, int]:
    """Spearman correlation (cosine vs gold score) of the dense model on STS-B pairs."""
    import csv

    from scipy.stats import spearmanr

    from api.services.matching import dense_encoder

    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh) if len(r) >= 3]
    encoder = dense_encoder(settings.model)
    a = encoder.encode([r[0] for r in rows])
    b = encoder.encode([r[1] for r in rows])
    cosine = (a * b).sum(axis=1)
    rho = spearmanr(cosine, [float(r[2]) for r in rows]).statistic
    return float(rho), len(rows)
