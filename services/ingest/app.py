"""Ingest service: wires settings, the Kafka producer and its health probe, the key check, admission and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.ingest.admission import InFlightLimit
from services.ingest.auth import build_key_auth
from services.ingest.broker_health import BrokerHealth, watch_broker
from services.ingest.errors import install_error_handlers
from services.ingest.observability import install_request_logging
from services.ingest.publisher import EventPublisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.readiness import key_check_ready
from services.ingest.routes import install_event_schema, router
from services.ingest.segment_routes import segment_router
from services.ingest.settings import IngestSettings
from shared.db import build_engine
from shared.kafka import build_producer, kafka_reachable
from shared.key_store import KeyStore
from shared.service_app import BackgroundWorker, add_probes


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    health = BrokerHealth()
    workers: list[BackgroundWorker] = []
    notes: dict[str, str] = {}  # filled by the readiness check while PostgreSQL is away

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = build_producer(settings, client_id="churnwatch-ingest")  # aiokafka needs the running loop
        await producer.start()
        engine = build_engine(settings)
        app.state.producer = producer
        app.state.engine = engine
        app.state.keys = KeyStore(engine, settings.cache_policy(), lookup_timeout=settings.auth_lookup_timeout_seconds)
        app.state.key_auth = build_key_auth(settings, app.state.keys)
        app.state.publisher = EventPublisher(producer, settings.topics, settings.produce_timeout_seconds, health)
        probe = BackgroundWorker(
            "broker_probe",
            lambda stop: watch_broker(health, lambda: kafka_reachable(producer), settings.broker_probe_seconds, stop),
        )
        workers[:] = [probe]
        probe.start()
        try:
            yield
        finally:
            await probe.shutdown()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title="Churnwatch ingest", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.broker_health = health
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    install_error_handlers(app)
    install_request_logging(app)
    app.add_middleware(  # added last, so it runs first: a shed request costs no logging, body or key check
        InFlightLimit,
        limit=settings.max_in_flight,
        retry_after_seconds=settings.shed_retry_after_seconds,
        max_retry_after_seconds=settings.max_retry_after_seconds,
    )
    app.include_router(router)
    app.include_router(segment_router)
    install_event_schema(app)
    add_probes(
        app,
        {
            "kafka": lambda: kafka_reachable(app.state.producer),
            "api_keys": lambda: key_check_ready(
                app.state.engine, app.state.keys, auth_required=settings.auth_required, notes=notes
            ),
        },
        workers,
        notes,
    )
    return app
