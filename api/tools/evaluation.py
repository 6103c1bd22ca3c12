"""`maillage eval`: the labelled French set run through the same search path as the API."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.settings import Settings
from api.matching.engine import MatchingEngine
from api.matching.schemas import PartnerMode, Within
from api.matching.service import partners, search
from api.matching.texts import reindex
from api.tools.demo import ensure_territories, load_organisations
from matcher.encoders import (
    E5_SMALL,
    PASSAGE,
    QUERY,
    USE_MULTILINGUAL,
    blend_name,
    canonical_model,
    make_encoder,
    parse_blend,
)
from matcher.evaluation import Scores, evaluate, hurried, merge_rankings, partner_judgements
from matcher.thesaurus import Thesaurus
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
    # The dense model or blend; None: the configured one (MAILLAGE_MODEL), which is what
    # the API serves.
    encoder: str | None = None


# The methods of the configured model, unprefixed; "default" is what the API does.
METHODS: tuple[Method, ...] = (
    Method("lexical", "TF-IDF caractères 3–5", 0.0, False, False, False),
    Method("dense", "dense (cosinus)", 1.0, False, False, False),
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
# The other encoders measured beside it (one of them may be the configured model: it is
# then left out, its figures are the unprefixed ones).
COMPARED_ENCODERS: tuple[tuple[str, str], ...] = (
    (USE_MULTILINGUAL, "USE multilingue"),
    (E5_SMALL, "e5"),
    ("e5+use@0.5", "[0,5 e5 + 0,5 USE]"),
    ("e5+use@0.6", "[0,6 e5 + 0,4 USE]"),
    ("e5+use@0.7", "[0,7 e5 + 0,3 USE]"),
)


def space_name(encoder: str) -> str:
    """One spelling per model or blend ("e5" and "multilingual-e5-small" alike)."""
    parts = parse_blend(encoder)
    return blend_name(parts) if parts else canonical_model(encoder)


def encoder_methods(encoder: str, label: str) -> tuple[Method, ...]:
    """The methods above, the lexical one aside, with another dense encoder; each is
    named after it ("e5/blend")."""
    prefix = space_name(encoder).replace(E5_SMALL, "e5").replace(USE_MULTILINGUAL, "use")
    return tuple(
        Method(
            f"{prefix}/{m.name}",
            m.description.replace("dense", label),
            m.dense_weight,
            m.thesaurus,
            m.profile,
            m.words,
            encoder,
        )
        for m in METHODS
        if m.dense_weight > 0
    )


def all_methods(model: str) -> tuple[Method, ...]:
    """The configured model's methods, then every other compared encoder's."""
    configured = space_name(model)
    return METHODS + tuple(
        method
        for encoder, label in COMPARED_ENCODERS
        if space_name(encoder) != configured
        for method in encoder_methods(encoder, label)
    )


def partner_methods(model: str) -> tuple[str, ...]:
    """Whose partner suggestions are scored: the configured model's full method (what
    the API serves) and, beside it, USE's (the former default) when it is another."""
    if space_name(model) == USE_MULTILINGUAL:
        return ("default",)
    return ("default", "use/default")


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


def hurried_queries(settings: Settings, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The queries as typed in a hurry (`matcher.evaluation.hurried`: no accents or
    capitals, spelled-out forms of the configured thesaurus's acronyms contracted, typos),
    the same judgements. The thesaurus that contracts them is the one that expands them
    back: its figure measures typos, case and accents more than acronyms it lacks."""
    path = settings.thesaurus_path
    acronyms = Thesaurus.from_file(path).acronyms if path and path.exists() else {}
    return [{**q, "text": hurried(q["text"], acronyms)} for q in queries]


def run_evaluation(
    settings: Settings,
    *,
    methods: tuple[Method, ...] | None = None,
    limit: int = 10,
    on_method: Callable[[MethodResult], None] | None = None,
    on_partners: Callable[[PartnerResult], None] | None = None,
    on_hurried: Callable[[MethodResult], None] | None = None,
    partners_of: tuple[str, ...] | None = None,
) -> list[MethodResult]:
    """Load the evaluation organisations into a scratch SQLite database, then rank the
    organisations for every query with each method, exactly as the search API does.

    `methods` defaults to `all_methods(settings.model)`; partner suggestions, and search
    with the queries typed in a hurry (`hurried_queries`), are scored for the methods named
    in `partners_of` (default: `partner_methods(settings.model)`), each with its own
    encoder (the configured one for unprefixed methods)."""
    if methods is None:
        methods = all_methods(settings.model)
    if partners_of is None:
        partners_of = partner_methods(settings.model)
    eval_dir = settings.fixtures_dir / "eval"
    queries = json.loads((eval_dir / "queries.json").read_text(encoding="utf-8"))
    hurried_set = hurried_queries(settings, queries) if on_hurried else []
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
                    "model": method.encoder or settings.model,
                    "search_min_score": settings.search_min_score,
                }
            )
            matching = MatchingEngine(method_settings)
            with factory() as session, session.begin():
                reindex(session, matching)
            result = _search_result(factory, matching, method, queries, limit)
            results.append(result)
            if on_method:
                on_method(result)
            if on_hurried and method.name in partners_of:
                on_hurried(_search_result(factory, matching, method, hurried_set, limit))
            if on_partners and method.name in partners_of:
                with factory() as session, session.begin():
                    on_partners(evaluate_partners(session, matching, method, queries, limit))
        engine.dispose()
    return results


def _search_result(
    factory: Callable[[], Session],
    matching: MatchingEngine,
    method: Method,
    queries: list[dict[str, Any]],
    limit: int,
) -> MethodResult:
    """Every query searched as the API does, its asker left out (the API leaves it out
    only of a query that is exactly one of its needs), scored against its judgements."""
    start = time.perf_counter()
    with factory() as session, session.begin():
        slugs = _slugs(session)
        rankings = [
            [
                slug
                for slug in (
                    slugs[h.organisation.id]
                    for h in search(session, matching, q["text"], None, limit + 1).items
                )
                if slug != q.get("asker")
            ][:limit]
            for q in queries
        ]
    scores = evaluate(rankings, [q["relevant"] for q in queries])
    return MethodResult(method, scores, time.perf_counter() - start)


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

    from api.matching.engine import dense_encoder

    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh) if len(r) >= 3]
    encoder = dense_encoder(settings.model)
    # Similarity of two sentences is symmetric: e5 reads both as queries, as its card says.
    a = encoder.encode([r[0] for r in rows], role=QUERY)
    b = encoder.encode([r[1] for r in rows], role=QUERY)
    cosine = (a * b).sum(axis=1)
    rho = spearmanr(cosine, [float(r[2]) for r in rows]).statistic
    return float(rho), len(rows)


@dataclass(frozen=True)
class EncoderSpeed:
    encoder: str
    load_seconds: float  # weights loaded and a first vector out
    query_ms: float  # median time to encode one search (a single text, as the API does)
    statements: int
    seconds: float  # to encode them in batches, wall clock
    cpu_seconds: float  # the process's CPU time meanwhile, every thread summed

    @property
    def statements_per_second(self) -> float:
        return self.statements / self.seconds if self.seconds else 0.0


def speed_encoders(methods: Sequence[Method], model: str) -> list[str]:
    """One encoder per distinct speed (blends of the same models differ in weights only),
    `model` standing for the methods of the configured model."""
    seen: dict[tuple[str, ...], str] = {}
    for method in methods:
        encoder = method.encoder or model
        parts = parse_blend(encoder)
        key = tuple(sorted(m for m, _ in parts)) if parts else (canonical_model(encoder),)
        seen.setdefault(key, encoder)
    return list(seen.values())


def encoder_speed(settings: Settings, encoder_name: str, *, searches: int = 20) -> EncoderSpeed:
    """Load time, single-search latency and batch throughput of a fresh encoder (its
    cache off), on the evaluation set: needs read as queries, competencies as passages,
    free-text searches one by one."""
    import statistics

    import sentence_transformers  # noqa: F401  (imported before the clock: not the model)

    eval_dir = settings.fixtures_dir / "eval"
    records = json.loads((eval_dir / "organisations.json").read_text(encoding="utf-8"))
    queries = json.loads((eval_dir / "queries.json").read_text(encoding="utf-8"))
    needs = [s["text"] for r in records for s in r["statements"] if s["kind"] == "need"]
    competencies = [s["text"] for r in records for s in r["statements"] if s["kind"] != "need"]
    free_text = [q["text"] for q in queries if q.get("asker") is None][:searches]
    encoder = make_encoder(encoder_name, cache_size=0)
    start = time.perf_counter()
    encoder.encode(["mise en route"], role=QUERY)
    load = time.perf_counter() - start
    latencies = []
    for text in free_text:
        start = time.perf_counter()
        encoder.encode([text], role=QUERY)
        latencies.append(time.perf_counter() - start)
    start, cpu = time.perf_counter(), time.process_time()
    encoder.encode(needs, role=QUERY)
    encoder.encode(competencies, role=PASSAGE)
    return EncoderSpeed(
        encoder=encoder.name,
        load_seconds=load,
        query_ms=1000 * statistics.median(latencies) if latencies else 0.0,
        statements=len(needs) + len(competencies),
        seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu,
    )
