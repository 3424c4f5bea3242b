"""Console service: wires settings, the user table, the scorer and alerter clients, sessions and the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from services.console import account_page, pages, signin
from services.console.errors import add_error_pages
from services.console.settings import ConsoleSettings
from services.console.upstream import build_upstream
from shared.db import build_engine, database_reachable
from shared.service_app import add_probes

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    engine = build_engine(settings)
    timeout = settings.upstream_timeout_seconds
    scorer = build_upstream("scorer", settings.scorer_url, read_key=settings.read_api_key, timeout=timeout)
    alerter = build_upstream(
        "alerter",
        settings.alerter_url,
        read_key=settings.read_api_key,
        timeout=timeout,
        write_token=settings.alerter_token,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await scorer.client.aclose()
            await alerter.client.aclose()
            await engine.dispose()

    app = FastAPI(title="Churnwatch console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.engine, app.state.scorer, app.state.alerter = settings, engine, scorer, alerter
    add_probes(
        app,
        {"database": lambda: database_reachable(engine), "scorer": scorer.reachable, "alerter": alerter.reachable},
    )
    add_error_pages(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="churnwatch_console",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (signin, pages, account_page):
        app.include_router(module.router)
    return app
