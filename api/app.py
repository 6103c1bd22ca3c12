"""FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.accounts import endpoints as account_endpoints
from api.kit.auth import Access, access, authorise, check_every_route_has_a_rule, rule_of
from api.kit.errors import install_error_handlers, problem_responses
from api.kit.settings import Settings, get_settings
from api.matching import endpoints as matching_endpoints
from api.matching.engine import MatchingEngine
from api.organisations import endpoints as organisation_endpoints
from api.territories import endpoints as territory_endpoints
from matcher.encoders import QUERY
from models.db import for_writes, make_engine, make_session_factory

log = logging.getLogger(__name__)


def _prepare_database(app: FastAPI) -> None:
    """Database objects of the configured embedding space (PostgreSQL's HNSW indexes):
    created here, before any request, never inside one."""
    try:
        app.state.matching.create_vector_indexes(app.state.engine)
    except Exception:  # search works without the indexes, only slower
        log.exception("vector indexes not prepared; `maillage db upgrade` creates them")


def _warm_up(app: FastAPI) -> None:
    """Load the model and build the network index before the first request needs them."""
    try:
        with app.state.session_factory() as session:
            app.state.matching.snapshot(session)
        app.state.matching.encode(["mise en route"], role=QUERY)
    except Exception:  # a cold first request is better than a server that will not start
        log.exception("warm-up failed; the first request will load the model")


def create_app(settings: Settings | None = None, *, warm_up: bool = False) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_prepare_database, app)
        if warm_up:
            await run_in_threadpool(_warm_up, app)
        yield
        app.state.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        dependencies=[Depends(authorise)],
        title="Maillage",
        version="0.1.0",
        description="Mise en relation des organismes Hlm et de leurs partenaires sur un même "
        "territoire : compétences, besoins, appels à projets.",
    )
    engine = make_engine(settings.effective_database_url, echo=settings.sql_echo)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.write_session_factory = make_session_factory(for_writes(engine))
    app.state.matching = MatchingEngine(settings)
    install_error_handlers(app)
    app.include_router(organisation_endpoints.router)
    app.include_router(territory_endpoints.router)
    app.include_router(matching_endpoints.router)
    app.include_router(account_endpoints.router)

    @app.get("/", include_in_schema=False, openapi_extra=access(Access.public))
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/healthz", tags=["système"], openapi_extra=access(Access.public))
    def healthz() -> dict[str, str]:
        """Liveness check."""
        return {"status": "ok"}

    check_every_route_has_a_rule(app)
    _declare_auth_responses(app)
    return app


def _declare_auth_responses(app: FastAPI) -> None:
    """List 401 (and 403 where a rule can refuse) in each route's OpenAPI responses."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            rule = rule_of(route)
            codes = (401,) if rule in (Access.public, Access.signed_in) else (401, 403)
            for code, spec in problem_responses(*codes).items():
                route.responses.setdefault(code, spec)
