"""Alerter service: the consumer loop that turns signals into alerts, the delivery workers, the reminder/digest
scheduler and the alert API. Wiring only: the rules are in core.py, the SQL in store.py."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.alerter.api import ApiConfig, alerts_api
from services.alerter.changes import NoticeRouting
from services.alerter.compose import NoticeComposer
from services.alerter.delivery import DeliveryWorker
from services.alerter.grouping import GroupTiming
from services.alerter.links import LinkSigner
from services.alerter.notice_mode import DeliveryMode, DeliveryPolicy
from services.alerter.notifiers import notifiers_for
from services.alerter.outage import OutageLog
from services.alerter.outgoing import RetryPolicy
from services.alerter.processor import AlertingProcessor
from services.alerter.routing import Channel
from services.alerter.routing_config import load_rules
from services.alerter.scheduler import AlertScheduler, Timers
from services.alerter.settings import AlerterSettings
from shared.consumer_loop import ConsumerLoop
from shared.db import build_engine, session_factory
from shared.kafka import DeadLetterPublisher
from shared.key_auth import KeyAuth
from shared.service_app import BackgroundWorker, worker_service

log = logging.getLogger(__name__)


def timers_from(settings: AlerterSettings) -> Timers:
    return Timers(
        repeat_interval=timedelta(seconds=settings.repeat_interval_seconds)
        if settings.repeat_interval_seconds
        else None,
        digest_interval=timedelta(seconds=settings.digest_interval_seconds),
        digest_offset=timedelta(seconds=settings.digest_offset_seconds),
        tick=timedelta(seconds=settings.clock_interval_seconds),
    )


def group_timing_from(settings: AlerterSettings) -> GroupTiming:
    return GroupTiming(
        timedelta(seconds=settings.group_wait_seconds), timedelta(seconds=settings.group_interval_seconds)
    )


def delivery_policy_from(settings: AlerterSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        settings.delivery_mode, timedelta(seconds=settings.notify_max_age_seconds), settings.min_rule_lift
    )


def log_delivery_mode(policy: DeliveryPolicy) -> None:
    shadow = policy.delivery is DeliveryMode.SHADOW
    (log.warning if shadow else log.info)(
        "delivery mode %s (%s); signals older than %.0f s are historic: recorded, not sent",
        policy.delivery.value,
        "every notice recorded as shadow, none sent" if shadow else "notices are sent",
        policy.notify_max_age.total_seconds(),
    )
    if policy.min_rule_lift > 0:
        log.info("signals of rules with a backtested lift below %g are quiet: recorded, not sent", policy.min_rule_lift)
    else:
        log.info("no rule lift floor (CHURNWATCH_MIN_RULE_LIFT=0): every rule's signals are routed")


def create_app(settings: AlerterSettings | None = None) -> FastAPI:
    settings = settings or AlerterSettings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per webhook post is noise
    rules = load_rules(settings.routing_path)  # a bad rules file stops start-up here, naming the line
    addresses = settings.addresses()
    delivery_policy = delivery_policy_from(settings)
    engine = build_engine(settings)
    sessions = session_factory(engine)
    http = httpx.AsyncClient()
    wake = asyncio.Event()
    signer = (
        LinkSigner(settings.public_url, settings.link_secret, timedelta(seconds=settings.link_ttl_seconds))
        if settings.public_url and settings.link_secret
        else None
    )
    composer = NoticeComposer(rules.playbooks, signer, settings.account_url_template)
    timing = group_timing_from(settings)
    outage = OutageLog(logging.getLogger("services.alerter"))  # one per process: "database lost" is said once
    processor = AlertingProcessor(
        rules=rules, addresses=addresses, wake_delivery=wake, delivery=delivery_policy, timing=timing
    )
    policy = RetryPolicy(
        settings.delivery_max_attempts,
        settings.delivery_backoff_seconds,
        settings.delivery_backoff_cap_seconds,
        settings.delivery_max_age_seconds,
    )
    delivery = DeliveryWorker(
        sessions=sessions,
        notifiers=notifiers_for(settings, http),
        composer=composer,
        policy=policy,
        wake=wake,
        concurrency=settings.delivery_workers,
        min_interval={Channel.SLACK: settings.slack_min_interval_seconds},
        outage=outage,
    )
    scheduler = AlertScheduler(
        sessions=sessions,
        rules=rules,
        addresses=addresses,
        timers=timers_from(settings),
        wake_delivery=wake,
        delivery=delivery_policy,
        timing=timing,
        outage=outage,
    )

    def workers(producer: AIOKafkaProducer) -> list[BackgroundWorker]:
        log_delivery_mode(delivery_policy)  # here, in the lifespan: logging is configured by now
        loop = ConsumerLoop(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=f"{settings.topic_prefix}.alerter",
            topics=[settings.topics.signals],
            sessions=sessions,
            processor=processor,
            dead_letter=DeadLetterPublisher(producer, settings.topics.dead_letter),
        )
        return [
            BackgroundWorker("alerter_loop", loop.run),
            BackgroundWorker("delivery", delivery.run),
            BackgroundWorker("scheduler", scheduler.run),
        ]

    app = worker_service(
        title="Churnwatch alerter",
        settings=settings,
        client_id="churnwatch-alerter",
        engine=engine,
        build_workers=workers,
        on_close=http.aclose,
    )
    api = ApiConfig(
        sessions,
        settings.alerter_api_token,
        settings.link_secret,
        timedelta(seconds=settings.snooze_seconds),
        NoticeRouting(rules, addresses, delivery_policy),
        timing=timing,
    )
    app.state.key_auth = KeyAuth.for_service(settings, engine)
    alerts_api(app, api)
    return app
