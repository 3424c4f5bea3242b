"""Alerter service: the consumer loop that turns signals into alerts, and the delivery worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.alerter.delivery import DeliveryWorker, RetryPolicy
from services.alerter.notifiers import ConsoleNotifier, Notifier, SlackWebhookNotifier, SmtpNotifier
from services.alerter.processor import AlertingProcessor
from services.alerter.routing import Channel, RoutingDefaults
from services.alerter.settings import AlerterSettings
from shared.consumer_loop import ConsumerLoop
from shared.db import build_engine, database_reachable, session_factory
from shared.kafka import DeadLetterPublisher, build_producer, kafka_reachable
from shared.service_app import BackgroundWorker, add_probes


def create_app(settings: AlerterSettings | None = None) -> FastAPI:
    settings = settings or AlerterSettings()
    engine = build_engine(settings)
    sessions = session_factory(engine)
    http = httpx.AsyncClient()
    wake = asyncio.Event()
    routing = RoutingDefaults(
        slack_webhook_url=settings.slack_webhook_url,
        support_email=settings.support_email if settings.email_enabled else None,
        fallback_email=settings.fallback_email if settings.email_enabled else None,
        console=settings.console_alerts,
    )
    notifiers: dict[Channel, Notifier] = {
        Channel.SLACK: SlackWebhookNotifier(http),
        Channel.EMAIL: SmtpNotifier(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_starttls,
        ),
        Channel.CONSOLE: ConsoleNotifier(),
    }
    processor = AlertingProcessor(routing=routing, wake_delivery=wake)
    policy = RetryPolicy(
        settings.delivery_max_attempts, settings.delivery_backoff_seconds, settings.delivery_backoff_cap_seconds
    )
    delivery = DeliveryWorker(sessions=sessions, notifiers=notifiers, policy=policy, wake=wake)
    workers: list[BackgroundWorker] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = build_producer(settings, client_id="churnwatch-alerter")  # aiokafka needs the running loop
        await producer.start()
        app.state.producer = producer
        loop = ConsumerLoop(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=f"{settings.topic_prefix}.alerter",
            topics=[settings.topics.signals],
            sessions=sessions,
            processor=processor,
            dead_letter=DeadLetterPublisher(producer, settings.topics.dead_letter),
        )
        workers[:] = [BackgroundWorker("alerter_loop", loop.run), BackgroundWorker("delivery", delivery.run)]
        for w in workers:
            w.start()
        try:
            yield
        finally:
            for w in workers:
                await w.shutdown()
            await producer.stop()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="Churnwatch alerter", lifespan=lifespan)
    add_probes(
        app,
        {"kafka": lambda: kafka_reachable(app.state.producer), "database": lambda: database_reachable(engine)},
        workers,
    )
    return app
