"""Ingest service: wires settings, the Kafka producer and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.ingest.errors import install_error_handlers
from services.ingest.publisher import EventPublisher
from services.ingest.routes import install_event_schema, router
from services.ingest.settings import IngestSettings
from shared.kafka import build_producer, kafka_reachable
from shared.service_app import add_probes


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = build_producer(settings, client_id="churnwatch-ingest")  # aiokafka needs the running loop
        await producer.start()
        app.state.producer = producer
        app.state.publisher = EventPublisher(producer, settings.topics, settings.produce_timeout_seconds)
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(title="Churnwatch ingest", version="1", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(router)
    install_event_schema(app)
    add_probes(app, {"kafka": lambda: kafka_reachable(app.state.producer)})
    return app
