"""FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.accounts import endpoints as account_endpoints
from api.audit import endpoints as audit_endpoints
from api.audit.service import install_audit
from api.calls import endpoints as call_endpoints
from api.calls import fit_endpoints as call_fit_endpoints
from api.calls.fit import RankingFit
from api.consortia import endpoints as consortium_endpoints
from api.digest import endpoints as digest_endpoints
from api.digest import pages as digest_pages
from api.imports import endpoints as import_endpoints
from api.kit.abuse import install_abuse_protection
from api.kit.auth import Access, access, authorise, check_every_route_has_a_rule
from api.kit.errors import install_error_handlers, problem_responses
from api.kit.idempotency import install_idempotency
from api.kit.mail import mailer_for
from api.kit.methods import OptionsAnswer
from api.kit.openapi import install_openapi
from api.kit.overload import install_overload_protection
from api.kit.request_limits import BodyLimit
from api.kit.routing import check_every_route_is_a_route
from api.kit.settings import Settings, get_settings
from api.kit.turns import Turns
from api.matching import endpoints as matching_endpoints
from api.matching.engine import MatchingEngine
from api.organisations import endpoints as organisation_endpoints
from api.subscriptions import endpoints as subscription_endpoints
from api.territories import endpoints as territory_endpoints
from api.web.install import install_web
from matcher.encoders import QUERY
from models.db import for_writes, make_engine, make_session_factory

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def _prepare_database(app: FastAPI) -> None:
    """Database objects of the configured embedding space (PostgreSQL's HNSW indexes):
    created here, before any request, never inside one."""
    try:
        app.state.matching.create_vector_indexes(app.state.engine)
    except Exception:  # search works without the indexes, only slower
        log.exception("vector indexes not prepared; `maillage db upgrade` creates them")


def _warm_up(app: FastAPI) -> None:
    """Load the model, the speller's word lists and the network index before the first
    request needs them."""
    try:
        with app.state.session_factory() as session:
            snapshot = app.state.matching.snapshot(session)
        app.state.matching.encode(["mise en route"], role=QUERY)
        app.state.matching.correct_spelling("mise en route", snapshot)
    except Exception:  # a cold first request is better than a server that will not start
        log.exception("warm-up failed; the first request will load the model")


def create_app(settings: Settings | None = None, *, warm_up: bool = False) -> FastAPI:
    settings = settings or get_settings()
    install_audit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Threads that run sync routes and dependencies: as many as pooled connections.
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        await run_in_threadpool(_prepare_database, app)
        if warm_up:
            await run_in_threadpool(_warm_up, app)
        yield
        app.state.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own files (no CDN)
        redoc_url=None,
        dependencies=[Depends(authorise)],
        title="Maillage",
        version="0.1.0",
        description="Mise en relation des organismes Hlm et de leurs partenaires sur un même "
        "territoire : compétences, besoins, appels à projets.",
    )
    engine = make_engine(
        settings.effective_database_url, echo=settings.sql_echo, limits=settings.pool_limits
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.write_session_factory = make_session_factory(for_writes(engine))
    app.state.matching = MatchingEngine(settings)
    app.state.turns = Turns(timeout=settings.db_lock_timeout, retry_after=settings.retry_after)
    app.state.mailer = mailer_for(settings)
    # The consortium review's eligibility and similarities come from the call ranking.
    app.state.call_fit = RankingFit(lambda: app.state.matching)
    install_error_handlers(app)
    # Added first, so inside the security headers and CORS: its 503s get them too.
    install_overload_protection(app, settings)
    # The pages (and their CSRF check, inside the body limit that bounds what it reads).
    install_web(app, settings)
    # Innermost first: the body limit, then OPTIONS, then CORS and security headers.
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(OptionsAnswer)
    install_abuse_protection(app, settings)
    install_idempotency(app)
    # Every API route may meet overload (`api.kit.overload`): 503 is declared on each.
    for router in (
        organisation_endpoints.router,
        organisation_endpoints.statements_router,
        territory_endpoints.router,
        matching_endpoints.router,
        account_endpoints.router,
        audit_endpoints.router,
        import_endpoints.router,
        subscription_endpoints.router,
        consortium_endpoints.router,
        consortium_endpoints.impact_router,
        call_endpoints.router,
        call_fit_endpoints.router,
        digest_endpoints.router,
    ):
        app.include_router(router, responses=problem_responses(503))
    app.include_router(subscription_endpoints.pages)
    app.include_router(digest_pages.router)
    app.include_router(digest_endpoints.public)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False, openapi_extra=access(Access.public))
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Maillage — documentation de l'API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/", include_in_schema=False, openapi_extra=access(Access.public))
    def root() -> RedirectResponse:
        """The web pages (the sign-in page for someone not signed in)."""
        return RedirectResponse("/espace")

    @app.get("/healthz", tags=["système"], openapi_extra=access(Access.public))
    def healthz() -> dict[str, str]:
        """Liveness check."""
        return {"status": "ok"}

    check_every_route_has_a_rule(app)
    check_every_route_is_a_route(app)
    install_openapi(app)
    return app
