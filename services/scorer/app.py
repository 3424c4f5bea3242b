"""Scorer service: wires the consumer loop around the scoring core, and exposes probes and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.scorer.evaluate import ScoringConfig
from services.scorer.processor import ScoringProcessor
from services.scorer.settings import ScorerSettings
from shared.consumer_loop import ConsumerLoop
from shared.db import build_engine, database_reachable, session_factory
from shared.kafka import DeadLetterPublisher, build_producer, kafka_reachable
from shared.service_app import BackgroundWorker, add_probes


def create_app(settings: ScorerSettings | None = None) -> FastAPI:
    settings = settings or ScorerSettings()
    engine = build_engine(settings)
    sessions = session_factory(engine)
    config = ScoringConfig(
        current_days=settings.current_window_days,
        baseline_days=settings.baseline_window_days,
        horizon_days=settings.horizon_days,
    )
    workers: list[BackgroundWorker] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = build_producer(settings, client_id="churnwatch-scorer")  # aiokafka needs the running loop
        await producer.start()
        app.state.producer = producer
        processor = ScoringProcessor(topics=settings.topics, producer=producer, sessions=sessions, config=config)
        loop = ConsumerLoop(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=f"{settings.topic_prefix}.scorer",
            topics=[settings.topics.accounts, settings.topics.events],
            sessions=sessions,
            processor=processor,
            dead_letter=DeadLetterPublisher(producer, settings.topics.dead_letter),
            max_batch=settings.max_batch,
        )
        workers[:] = [BackgroundWorker("scorer_loop", loop.run)]
        workers[0].start()
        try:
            yield
        finally:
            await workers[0].shutdown()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title="Churnwatch scorer", lifespan=lifespan)
    add_probes(
        app,
        {"kafka": lambda: kafka_reachable(app.state.producer), "database": lambda: database_reachable(engine)},
        workers,
    )
    return app
