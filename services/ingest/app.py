"""Ingest service: wires settings, the Kafka producer, the key store and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.ingest.errors import install_error_handlers
from services.ingest.keystore import KeyStore
from services.ingest.observability import install_request_logging
from services.ingest.publisher import EventPublisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.routes import install_event_schema, router
from services.ingest.segment_routes import segment_router
from services.ingest.settings import IngestSettings
from shared.db import build_engine, database_reachable
from shared.kafka import build_producer, kafka_reachable
from shared.service_app import add_probes


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = build_producer(settings, client_id="churnwatch-ingest")  # aiokafka needs the running loop
        await producer.start()
        engine = build_engine(settings)
        app.state.producer = producer
        app.state.engine = engine
        app.state.keys = KeyStore(engine, settings.key_cache_seconds)
        app.state.publisher = EventPublisher(producer, settings.topics, settings.produce_timeout_seconds)
        try:
            yield
        finally:
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title="Churnwatch ingest", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    install_error_handlers(app)
    install_request_logging(app)
    app.include_router(router)
    app.include_router(segment_router)
    install_event_schema(app)
    add_probes(
        app,
        {
            "kafka": lambda: kafka_reachable(app.state.producer),
            "database": lambda: database_reachable(app.state.engine),
        },
    )
    return app
